"""Ctrl-C in `crossearth train` and `crossearth demo` (issue 22): exit 130 within seconds, one
line saying what is kept, and no run folder without a checkpoint left behind (a folder that
existed before the run stays). Real processes, stopped with SIGINT as a terminal's Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crossearth.stopping import RunFolder

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
import user_data as ud

SRC = Path(__file__).resolve().parents[2] / "src"
STOPPED_WITHIN_S = 20  # from SIGINT to exit, on a loaded 2-core machine (measured: 1-3 s)


@pytest.fixture(scope="module")
def chips(tmp_path_factory) -> Path:
    """Two 64-px scenes with label rasters: a data set description for `train --data`."""
    root = tmp_path_factory.mktemp("chips")
    for folder in ("images", "masks"):
        (root / folder).mkdir()
    for i in range(2):
        geom = ud.scene_geometry(i, (64, 64))
        ud.write_image(root / "images" / f"s{i}.tif", geom, seed=i)
        ud.write_id_mask(root / "masks" / f"s{i}.tif", geom)
    data = root / "data.yaml"
    data.write_text(
        "classes: [water, forest, bare]\n"
        "train: {images: images, labels: masks}\n"
        "val: {images: images, labels: masks}\n"
    )
    return data


def start(*args: object, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SRC), "CROSSEARTH_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "crossearth", *map(str, args)], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip


def interrupt_when(
    proc: subprocess.Popen, ready, timeout: float = 240, signum: int = signal.SIGINT
) -> tuple[int, str, float]:
    """Wait for `ready()` (or the process's end), send `signum`, return (exit code, output,
    seconds from the signal to the exit)."""
    deadline = time.monotonic() + timeout
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    sent = time.monotonic()
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=STOPPED_WITHIN_S + 60)
    return proc.returncode, out, time.monotonic() - sent


TRAIN = ("--set", "preset=vit-tiny-256", "--set", "crop=64", "--set", "num_points=256",
         "--set", "num_workers=0", "--precision", "32-true", "--accelerator", "cpu",
         "--batch-size", "1", "--max-steps", "100000")  # fmt: skip


def test_ctrl_c_before_a_checkpoint_removes_the_run_folder(chips, tmp_path):
    out = tmp_path / "runs" / "try"
    proc = start("train", "--data", chips, "--out", out, *TRAIN,
                 "--set", "checkpoint_every=100000", cwd=tmp_path)  # fmt: skip
    code, output, seconds = interrupt_when(proc, lambda: (out / "config.yaml").is_file())
    assert code == 130, output
    assert seconds < STOPPED_WITHIN_S
    last = output.strip().splitlines()[-1]
    assert last.startswith("aborted; ") and "nothing kept" in last and "removed" in last
    assert "Traceback" not in output
    assert not (tmp_path / "runs").exists()  # the run made runs/ and runs/try: both go


@pytest.mark.parametrize(
    ("signum", "headline"),
    [
        (signal.SIGINT, "aborted"),
        # a scheduler's stop (Slurm, Kubernetes): Lightning alone would exit 0, as if finished
        pytest.param(signal.SIGTERM, "terminated by SIGTERM", marks=pytest.mark.slow),
    ],
)
def test_stopped_after_a_checkpoint_keeps_it_and_says_how_to_resume(
    chips, tmp_path, signum, headline
):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    ckpt = out / "checkpoints" / "last.ckpt"
    proc = start("train", "--data", chips, "--out", out, *TRAIN,
                 "--set", "checkpoint_every=1", cwd=tmp_path)  # fmt: skip
    code, output, seconds = interrupt_when(proc, ckpt.is_file, signum=signum)
    assert code == 128 + signum and seconds < STOPPED_WITHIN_S, output
    last = output.strip().splitlines()[-1]
    assert last.startswith(f"{headline}; kept {ckpt}") and f"--resume {ckpt}" in last
    assert ckpt.is_file() and (out / "notes.txt").read_text() == "the user's"


@pytest.mark.slow  # about 20 s: the demo's parity step and data come first
def test_ctrl_c_in_the_demo_exits_130_and_leaves_no_empty_folder(tmp_path):
    output = tmp_path / "demo"
    proc = start("demo", "--quick", "--output", output, cwd=tmp_path)
    code, text, seconds = interrupt_when(proc, lambda: (output / "runs").is_dir())
    assert code == 130 and seconds < STOPPED_WITHIN_S, text
    last = text.strip().splitlines()[-1]
    assert last.startswith("aborted; ") and "Traceback" not in text
    assert not output.exists()  # nothing finished: the folder the demo made is removed


def test_a_folder_that_existed_keeps_everything_that_was_there(tmp_path):
    folder = tmp_path / "run"
    (folder / "old").mkdir(parents=True)
    (folder / "old" / "a.txt").write_text("kept")
    run = RunFolder(folder)
    (folder / "old" / "new.txt").write_text("made by the run")
    (folder / "csv" / "version_0").mkdir(parents=True)
    (folder / "config.yaml").write_text("x: 1")
    run.remove_created()
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == [
        "old",
        "old/a.txt",
    ]
