"""`predict --cluster` (issue 24): scenes and parts of scenes on a real Dask cluster of worker
processes, against the single-process run of the same command.

Every comparison is with a plain run without `--cluster` in a fresh folder, file bytes against
file bytes, with one intra-op thread in every process (the arithmetic is then the same). The
cluster the tests share is a `distributed.LocalCluster` of two worker processes started here
(the CLI reaches it as `--cluster tcp://...`); `--cluster local` starts its own.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run_cli_captured as run
from geotiff import write_geotiff
from rasterio.crs import CRS
from rasterio.transform import from_origin

distributed = pytest.importorskip("distributed", reason="needs crossearth[dask]")

UTM = CRS.from_epsg(32632)
FAST = ("--precision", "fp32", "--device", "cpu", "--tile", "96", "--stride", "64",
        "--no-overlay")  # fmt: skip
SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(scope="module")
def model_file(varied_model_file):
    return varied_model_file


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread in this process and in every worker (they inherit the environment
    when they start)."""
    saved = {k: os.environ.get(k) for k in ("CROSSEARTH_THREADS", "OMP_NUM_THREADS")}
    os.environ.update(CROSSEARTH_THREADS="1", OMP_NUM_THREADS="1")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def cluster(one_thread):
    """Two worker processes (one task at a time each) and their scheduler, on 127.0.0.1."""
    import logging

    logging.getLogger("distributed").setLevel(logging.ERROR)
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = SRC + (os.pathsep + env_path if env_path else "")
    local = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     host="127.0.0.1", dashboard_address=None,
                                     silence_logs=logging.ERROR)  # fmt: skip
    os.environ["PYTHONPATH"] = env_path
    client = distributed.Client(local)
    yield local, client
    client.close()
    local.close()


def scene(path: Path, height: int, width: int, seed: int) -> Path:
    """Blocky RGB with a nodata strip (some windows skipped)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(1, 256, (3, height // 16 + 1, width // 16 + 1))
    data = np.kron(base, np.ones((1, 16, 16), np.int64))[:, :height, :width].astype(np.uint8)
    data[:, : height // 5] = 0
    transform = from_origin(500_000.0, 5_800_000.0, 0.25, 0.25)
    return write_geotiff(path, data, crs=UTM, transform=transform, nodata=0)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    """Four small scenes and one that holds most of the windows (split over two workers)."""
    folder = tmp_path_factory.mktemp("scenes")
    for i in range(4):
        scene(folder / f"s{i}.tif", 100 + 10 * i, 120, seed=i)
    scene(folder / "big.tif", 420, 200, seed=9)
    return folder


@pytest.fixture(scope="module")
def single(scenes, model_file, tmp_path_factory) -> Path:
    """The reference: the same command in this process, no cluster."""
    out = tmp_path_factory.mktemp("single") / "out"
    code = _run_plain([str(scenes), "-m", str(model_file), "-o", str(out), *FAST, "-q"])
    assert code == 0
    return out


def _run_plain(args: list[str]) -> int:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["crossearth", "predict", *args])
        from crossearth.cli import main

        try:
            main()
        except SystemExit as exc:
            return exc.code or 0
    return 0


def files_of(folder: Path) -> dict[str, bytes]:
    """Every visible output's bytes; summaries without timings, with the folder as OUT."""
    out = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.name.endswith("_summary.json"):
            summary = json.loads(path.read_text().replace(str(folder), "OUT"))
            for key in ("seconds", "megapixels_per_second", "parts", "windows_run"):
                summary.pop(key, None)
            out[path.name] = json.dumps(summary, sort_keys=True).encode()
        else:
            out[path.name] = path.read_bytes()
    return out


def hidden_files(folder: Path) -> list[str]:
    """Temporary files anywhere under the folder (ours start with a dot), the manifest's
    records aside."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and "scenes" not in p.parts and any(s.startswith(".") for s in
                                                             p.relative_to(folder).parts[-1:])
    )  # fmt: skip


def tool_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "CROSSEARTH_THREADS": "1"}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return env


# ---------------------------------------------------------------------------------------------
# the same bytes as one process


def test_local_cluster_of_two_workers_writes_the_single_process_bytes(
    monkeypatch, capsys, tmp_path, scenes, model_file, single
):
    out = tmp_path / "out"
    code, text = run(monkeypatch, capsys, "predict", scenes, "-m", model_file, "-o", out, *FAST,
                     "--cluster", "local", "--workers", "2")  # fmt: skip
    assert code == 0, text
    assert re.search(r"Dask cluster local: 2 workers(; dashboard http://\S+)?\n", text)
    # one line per finished scene, the big one assembled from its two parts (auto: it holds
    # more than its share of the windows)
    finished = sorted(Path(m).name for m in re.findall(r"(\S+\.tif) -> ", text))
    assert finished == ["big.tif", "s0.tif", "s1.tif", "s2.tif", "s3.tif"]
    assert "assembled from 2 parts" in text and len(re.findall(r"part \d/2 \(rows", text)) == 2
    assert files_of(out) == files_of(single)
    assert sorted(os.listdir(out / ".crossearth")) == ["scenes"]  # parts and temporaries gone


def test_worker_killed_mid_scene_the_scene_runs_elsewhere(
    tmp_path, scenes, model_file, single, cluster
):
    """SIGKILL the worker of a scene while it writes (its task folder is there): the scheduler
    runs the task on the other worker; every output complete and equal, no temporary left."""
    local, client = cluster
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "crossearth", "predict", str(scenes), "-m", str(model_file),
           "-o", str(out), *FAST, "--parts", "1", "--cluster", local.scheduler_address]  # fmt: skip
    proc = subprocess.Popen(cmd, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    killed = None
    deadline = time.time() + 120
    while killed is None and proc.poll() is None and time.time() < deadline:
        for folder in (out / ".crossearth" / "tmp").glob("*.*.*"):
            killed = int(folder.name.rsplit(".", 1)[1])  # <task>.<host>.<pid>
            os.kill(killed, signal.SIGKILL)
            break
        time.sleep(0.005)
    log = proc.communicate(timeout=180)[0]
    assert killed is not None, log
    assert proc.returncode == 0, log
    assert files_of(out) == files_of(single)
    assert hidden_files(out) == []
    assert sorted(os.listdir(out / ".crossearth")) == ["scenes"]
    client.wait_for_workers(2, timeout=60)  # the nanny restarted the killed one


def test_job_killed_whole_resumes_with_the_scenes_left(
    monkeypatch, capsys, tmp_path, scenes, model_file, single, cluster
):
    """A whole job (client, scheduler, workers) killed after its first recorded scene: the same
    command again runs only the scenes left, and the outputs equal a clean run's."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "crossearth", "predict", str(scenes), "-m", str(model_file),
           "-o", str(out), *FAST, "--cluster", "local", "--workers", "2", "-q"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    records = out / ".crossearth" / "scenes"
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline and not list(records.glob("*.json")):
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    done = len(list(records.glob("*.json")))
    assert 1 <= done < 5, proc.stdout.read()

    code, text = run(monkeypatch, capsys, "predict", scenes, "-m", model_file, "-o", out, *FAST,
                     "--cluster", cluster[0].scheduler_address)  # fmt: skip
    assert code == 0, text
    skipped = re.search(r"(\d+) scenes? completed by an earlier run skipped", text)
    assert skipped and int(skipped.group(1)) >= done
    assert len(re.findall(r"\.tif -> ", text)) == 5 - int(skipped.group(1))
    assert files_of(out) == files_of(single)
    assert hidden_files(out) == []


def test_a_bad_scene_fails_alone_on_the_cluster(monkeypatch, capsys, tmp_path, scenes,
                                                model_file, cluster):  # fmt: skip
    """A scene whose input breaks after the check before the run fails alone: one error line
    naming it, the others written, exit 1."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("s0.tif", "s1.tif"):
        (folder / name).write_bytes((scenes / name).read_bytes())
    client = cluster[1]
    client.run(_break_s1)  # in the workers: tasks look `predict_raster` up when they run
    try:
        code, text = run(monkeypatch, capsys, "predict", folder, "-m", model_file, "-o",
                         tmp_path / "out", *FAST, "--cluster", cluster[0].scheduler_address)  # fmt: skip
    finally:
        client.run(_mend)
    assert code == 1, text
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "s1.tif: unreadable block at row 12" in errors[0]
    assert errors[1].startswith("error: 1 of 2 scenes failed")
    assert sorted(p.name for p in (tmp_path / "out").glob("*_classes.tif")) == ["s0_classes.tif"]


def _break_s1() -> None:
    import crossearth.predict.raster as r

    original = r.predict_raster

    def failing(net, image, *args, **kwargs):
        if Path(str(image)).name == "s1.tif":
            from crossearth.errors import InputError

            raise InputError(f"{image}: unreadable block at row 12")
        return original(net, image, *args, **kwargs)

    failing.original = original
    r.predict_raster = failing


def _mend() -> None:
    import crossearth.predict.raster as r

    r.predict_raster = getattr(r.predict_raster, "original", r.predict_raster)


# ---------------------------------------------------------------------------------------------
# bad input: one error line before any work


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--cluster", "kubernetes"), "error: --cluster must be local, tcp://HOST:PORT"),
        (("--cluster", "tcp://nohost"), "error: --cluster must be local, tcp://HOST:PORT"),
        (("--workers", "2"), "error: --workers needs --cluster"),
    ],
)
def test_bad_cluster_options_are_one_error_line(monkeypatch, capsys, tmp_path, scenes,
                                                model_file, args, expected):  # fmt: skip
    out = tmp_path / "out"
    code, text = run(monkeypatch, capsys, "predict", scenes / "s0.tif", "-m", model_file, "-o",
                     out, *FAST, *args)  # fmt: skip
    assert code == 1 and "Traceback" not in text
    assert [line for line in text.splitlines() if line.startswith("error:")] == [
        line for line in text.splitlines() if line.strip()
    ]
    assert text.startswith(expected)
    assert not out.exists()


def test_unreachable_scheduler_is_one_error_line(monkeypatch, capsys, tmp_path, scenes,
                                                 model_file):  # fmt: skip
    import socket

    from crossearth.predict.engines import dask as engine

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(engine, "CONNECT_TIMEOUT", "1s")
    out = tmp_path / "out"
    code, text = run(monkeypatch, capsys, "predict", scenes / "s0.tif", "-m", model_file, "-o",
                     out, *FAST, "--cluster", f"tcp://127.0.0.1:{port}")  # fmt: skip
    assert code == 1 and "Traceback" not in text
    assert text.startswith(f"error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}")
    assert len(text.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize(
    ("module", "kind", "extra"),
    [
        ("distributed", "local", "crossearth[dask]"),
        ("dask_jobqueue", "slurm", "crossearth[jobqueue]"),
    ],
)
def test_a_missing_extra_is_named(monkeypatch, capsys, tmp_path, scenes, model_file, module,
                                  kind, extra):  # fmt: skip
    monkeypatch.setitem(sys.modules, module, None)  # importing it now fails
    out = tmp_path / "out"
    code, text = run(monkeypatch, capsys, "predict", scenes / "s0.tif", "-m", model_file, "-o",
                     out, *FAST, "--cluster", kind)  # fmt: skip
    assert code == 1 and "Traceback" not in text
    assert text.strip().splitlines() == [
        f"error: --cluster {'needs Dask' if kind == 'local' else 'slurm needs dask-jobqueue'}: "
        f"pip install '{extra}'"
    ]
    assert not out.exists()


def test_jobqueue_without_configuration_is_one_error_line(monkeypatch, capsys, tmp_path, scenes,
                                                          model_file):  # fmt: skip
    pytest.importorskip("dask_jobqueue", reason="needs crossearth[jobqueue]")
    import dask

    out = tmp_path / "out"
    with dask.config.set({"jobqueue.slurm.cores": None, "jobqueue.slurm.memory": None}):
        code, text = run(monkeypatch, capsys, "predict", scenes / "s0.tif", "-m", model_file,
                         "-o", out, *FAST, "--cluster", "slurm")  # fmt: skip
    assert code == 1 and "Traceback" not in text
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: --cluster slurm: the Dask configuration (jobqueue.yaml, section jobqueue.slurm) "
        "is incomplete"
    )
    assert not out.exists()


def test_without_cluster_dask_is_never_imported(tmp_path, scenes, model_file):
    script = (
        "import sys\nfrom crossearth.cli import main\n"
        f"sys.argv = ['crossearth', 'predict', {str(scenes / 's0.tif')!r}, '-m', "
        f"{str(model_file)!r}, '-o', {str(tmp_path / 'out')!r}, '-q', '--no-overlay']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('dask', 'distributed', 'dask_jobqueue', 'fsspec', 's3fs')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=tool_env(), capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "out" / "s0_classes.tif").exists()


def test_workers_and_threads_share_the_cores_once(monkeypatch):
    from crossearth.predict.engines import dask as engine

    monkeypatch.delenv("CROSSEARTH_THREADS")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("crossearth.threads.available_cpus", lambda: 16)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert engine.default_workers() == 8
    assert [engine.threads_per_worker(n) for n in (1, 2, 3, 8, 32)] == [16, 8, 5, 2, 1]
    monkeypatch.setenv("CROSSEARTH_THREADS", "3")  # an explicit count holds for every worker
    assert engine.threads_per_worker(4) == 3
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 4)
    assert engine.default_workers() == 4
