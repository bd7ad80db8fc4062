"""Resume (issue 14): the manifest of a `predict` run into a folder.

A six-scene run is killed (SIGKILL, no cleanup) while it works on its third scene; the same
command again must process exactly the four scenes left, and every output must equal a clean
run's; the killed task's temporary folder is gone after the rerun.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from cli_runner import run_cli_captured as run
from rasterio.crs import CRS
from rasterio.transform import from_origin

FAST = ("--precision", "fp32", "--device", "cpu", "--no-overlay")  # one window per scene

# Runs the CLI, killing itself with SIGKILL when the third scene starts (a node lost mid-run).
KILL_ON_THIRD = """
import os, signal, sys
import crossearth.predict.raster as gp
real, calls = gp.predict_raster, [0]
def faulty(*args, **kwargs):
    calls[0] += 1
    if calls[0] == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
gp.predict_raster = faulty
from crossearth.cli import main
sys.argv = ["crossearth", *sys.argv[1:]]
main()
"""


@pytest.fixture(scope="module")
def model_file(varied_model_file):
    return varied_model_file


@pytest.fixture
def scenes(tmp_path) -> list[Path]:
    folder = tmp_path / "scenes"
    folder.mkdir()
    paths = []
    for i in range(6):
        rng = np.random.default_rng(i)
        base = rng.integers(1, 256, (3, 5, 6))
        data = np.kron(base, np.ones((1, 16, 16), np.int64))[:, :70, :90].astype(np.uint8)
        path = folder / f"s{i}.tif"
        profile = {
            "driver": "GTiff", "height": 70, "width": 90, "count": 3, "dtype": "uint8",
            "crs": CRS.from_epsg(32632), "transform": from_origin(5e5, 5.8e6, 0.3, 0.3),
        }  # fmt: skip
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
        paths.append(path)
    return paths


def processed(text: str) -> list[str]:
    """Input file names of the result lines `<input> -> <class map> (...)`."""
    return sorted(Path(m).name for m in re.findall(r"(\S+\.tif) -> ", text))


def outputs(folder: Path) -> dict[str, bytes]:
    """Every visible output's bytes; summaries without timings, with the folder as OUT."""
    result = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.name.endswith("_summary.json"):
            summary = json.loads(path.read_text().replace(str(folder), "OUT"))
            summary.pop("seconds"), summary.pop("megapixels_per_second")
            result[path.name] = json.dumps(summary, sort_keys=True).encode()
        else:
            result[path.name] = path.read_bytes()
    return result


def test_killed_run_resumes_with_only_the_scenes_left(
    monkeypatch, capsys, tmp_path, model_file, scenes
):
    folder = scenes[0].parent
    clean, resumed = tmp_path / "clean", tmp_path / "resumed"
    code, _ = run(monkeypatch, capsys, "predict", folder, "-m", model_file, "-o", clean, *FAST)
    assert code == 0

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    for name in ("WORLD_SIZE", "SLURM_STEP_NUM_TASKS"):
        env.pop(name, None)
    args = ["predict", str(folder), "-m", str(model_file), "-o", str(resumed), *FAST, "-q"]
    killed = subprocess.run(
        [sys.executable, "-c", KILL_ON_THIRD, *args], env=env, capture_output=True, timeout=120
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    records = sorted(p.stem for p in (resumed / ".crossearth" / "scenes").glob("*.json"))
    assert records == ["s0", "s1"]
    assert not list(resumed.glob("s2*"))  # the scene being worked on left nothing visible
    assert [p.name.split(".")[0] for p in (resumed / ".crossearth" / "tmp").iterdir()] == ["s2"]

    code, text = run(monkeypatch, capsys, "predict", folder, "-m", model_file, "-o", resumed, *FAST)
    assert code == 0, text
    assert processed(text) == ["s2.tif", "s3.tif", "s4.tif", "s5.tif"]
    assert "2 scenes completed by an earlier run skipped" in text
    assert outputs(resumed) == outputs(clean)
    assert not (resumed / ".crossearth" / "tmp").exists()  # the killed task's folder is gone


def test_rerun_skips_done_scenes_and_redoes_gone_changed_or_overwritten_ones(
    monkeypatch, capsys, tmp_path, model_file, scenes
):
    out = tmp_path / "out"
    base = ("predict", *scenes[:3], "-m", model_file, "-o", out, *FAST)
    assert run(monkeypatch, capsys, *base)[0] == 0
    first = outputs(out)
    code, text = run(monkeypatch, capsys, *base)
    assert code == 0 and processed(text) == []
    assert "3 scenes completed by an earlier run skipped" in text
    (out / "s1_classes.tif").unlink()
    code, text = run(monkeypatch, capsys, *base)
    assert code == 0 and processed(text) == ["s1.tif"]
    assert outputs(out) == first
    code, text = run(monkeypatch, capsys, *base, "--overwrite")
    assert code == 0 and processed(text) == ["s0.tif", "s1.tif", "s2.tif"]
    code, text = run(monkeypatch, capsys, *base, "--blend", "cosine")  # another command
    assert code == 0 and processed(text) == ["s0.tif", "s1.tif", "s2.tif"]
