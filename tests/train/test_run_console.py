"""What a training run shows: a step bar (right after a resume), which method parts are on, no
warning that the stream cannot resume, and Lightning's lines once; SynthEarth runs from the CLI."""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import crossearth.train.progress
import crossearth.train.run
from crossearth.data.classes import ISPRS
from crossearth.data.synthetic import DOMAINS, generate_domain, render_scene
from crossearth.train.config import TrainConfig, default_config
from crossearth.train.data import ArraySource, StreamDataset
from crossearth.train.progress import PlainProgress, methods_line
from crossearth.train.run import build_model, fit
from crossearth.train.transforms import TrainPipeline
from crossearth.weights import load_model

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def scenes():
    spec = DOMAINS["urban-aerial-rgb"]
    return [render_scene(spec, i, 64) for i in range(6)], [render_scene(spec, 900, 64)]


def config(tmp_path, **changes) -> TrainConfig:
    base = TrainConfig(
        preset="vit-tiny-256", max_steps=2, batch_size=2, crop=64, scales=(64,), max_size=128,
        num_workers=0, precision="32-true", accelerator="cpu", val_every=10_000, checkpoint_every=1,
        log_every=1, num_points=256, lr=2e-4, schedule_steps=100, out_dir=str(tmp_path / "run"),
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def train(scenes, cfg, **kwargs):
    """A run without validation (the bar and the resume are what is tested)."""
    images, labels = zip(*scenes[0], strict=True)
    pipeline = TrainPipeline(crop=cfg.crop, scales=cfg.scales, max_size=cfg.max_size)
    stream = StreamDataset(ArraySource(list(images), list(labels)), pipeline, cfg.seed)
    torch.manual_seed(0)
    model = build_model(cfg, 6, report=None)
    return fit(cfg, stream, [], [], model, **kwargs)


def test_bar_counts_steps_of_the_run_also_after_a_resume(scenes, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(crossearth.train.run, "stdout_is_terminal", lambda: True)  # the bar
    cfg = config(tmp_path)
    train(scenes, cfg)
    first = capsys.readouterr().out
    assert "step" in first and "2/2" in first
    assert "Epoch" not in first and "v_num" not in first
    assert "methods: Earth-Style Injection off, Multi-Task Training off" in first
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(scenes, dataclasses.replace(cfg, max_steps=3),
                       resume=tmp_path / "run/checkpoints/last.ckpt")  # fmt: skip
    assert result["global_step"] == 3
    resumed = capsys.readouterr().out
    assert "3/3" in resumed and "Epoch" not in resumed
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "not resumable" in m], messages


def _steps(output: str, prefix: str = "step ") -> list[int]:
    """The step numbers of the progress lines starting with `prefix` ("step 3/4 loss ...")."""
    return [int(line[len(prefix) :].split("/")[0]) for line in output.splitlines()
            if line.startswith(prefix)]  # fmt: skip


def test_plain_progress_lines_when_output_is_not_a_terminal(scenes, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(crossearth.train.progress, "PROGRESS_SECONDS", 0.0)  # a line every step
    train(scenes, config(tmp_path, max_steps=4))
    output = capsys.readouterr().out  # captured: not a terminal
    assert _steps(output) == [1, 2, 3, 4], output
    lines = [line for line in output.splitlines() if line.startswith("step ")]
    assert all(" loss " in line for line in lines)
    assert "steps/s" in lines[-1] and "left" in lines[1] and "left" not in lines[-1]
    assert "\r" not in output and "\x1b[" not in output  # no bar drawing codes in a log


def test_plain_progress_lines_are_spaced_in_time():
    lines: list[str] = []
    now = [0.0]
    progress = PlainProgress("run 1/2 ", every_seconds=15, write=lines.append, clock=lambda: now[0])
    trainer = type("T", (), {"is_global_zero": True, "max_steps": 10, "global_step": 0})()
    for step, t in enumerate([0, 5, 14, 16, 20, 29, 31, 32, 33, 34], start=1):
        now[0], trainer.global_step = t, step
        progress.on_train_batch_end(trainer, None, {"loss": torch.tensor(0.5 / step)}, None, 0)
    assert _steps("\n".join(lines), "run 1/2 step ") == [1, 4, 7, 10]  # first, every 15 s, last
    assert lines[0] == "run 1/2 step 1/10 loss 0.500"  # no rate yet
    # the rate: steps and seconds since the first step, each weighted by exp(-age / 600 s)
    times = [0, 5, 14, 16, 20, 29, 31]

    def steady(upto: int) -> float:
        now = times[upto]
        weights = [math.exp(-(now - t) / 600) for t in times[1 : upto + 1]]
        seconds = [b - a for a, b in itertools.pairwise(times[: upto + 1])]
        return sum(weights) / sum(w * s for w, s in zip(weights, seconds, strict=True))

    for line, index, step in ((lines[1], 3, 4), (lines[2], 6, 7)):
        rate = steady(index)
        left = round((10 - step) / rate)
        assert line.endswith(f"({rate:.2g} steps/s, {left} s left)"), (line, rate, left)
    assert lines[1].startswith("run 1/2 step 4/10 loss 0.125 (")
    assert lines[-1] == "run 1/2 step 10/10 loss 0.050 (0.26 steps/s)"  # the whole run's average
    trainer.is_global_zero = False  # other processes of a multi-process run stay silent
    progress.on_train_batch_end(trainer, None, {"loss": torch.tensor(1.0)}, None, 0)
    assert len(lines) == 4


def test_methods_line_names_what_is_on():
    cfg = TrainConfig(esi=True, esi_prob=0.25, mtt=True, gse=False, freeze_backbone=True)
    line = methods_line(cfg)
    assert "Earth-Style Injection on (spectral, p=0.25" in line
    assert "Multi-Task Training on" in line and "Geospatial Semantic Extractor off" in line
    assert "frozen" in line
    line = methods_line(TrainConfig(gse=True, freeze_backbone=False))
    assert "Earth-Style Injection off" in line and "Multi-Task Training off" in line
    assert "Geospatial Semantic Extractor on" in line and "full fine-tuning" in line


def test_synthearth_defaults_fit_small_tiles():
    """Crops of the default SynthEarth config come from inside 128 and 256 px tiles (no padding),
    and a run shorter than the default length still validates more than once."""
    cfg = default_config("SynthEarth")
    pipeline = TrainPipeline(crop=cfg.crop, scales=cfg.scales, max_size=cfg.max_size)
    for size in (128, 256):
        image, label = render_scene(DOMAINS["urban-aerial-rgb"], 3, size)
        for seed in range(8):
            g = torch.Generator().manual_seed(seed)
            _, out = pipeline(torch.from_numpy(image).permute(2, 0, 1), torch.from_numpy(label), g)
            assert out.shape[-1] == cfg.crop and (out != 255).all(), (size, seed)
    assert cfg.val_every * 3 <= cfg.max_steps and cfg.checkpoint_every <= cfg.val_every
    assert not cfg.freeze_backbone  # by default the whole model trains from random init


def _synth_root(root: Path, size: int, train_tiles: int) -> Path:
    for spec in DOMAINS.values():
        generate_domain(root, spec, train=train_tiles, val=1, size=size)
    return root


def test_synthearth_run_writes_models_with_isprs_classes(tmp_path, monkeypatch, capsys):
    from crossearth.cli import main

    root = _synth_root(tmp_path / "data", 64, 2)
    out = tmp_path / "run"
    args = ["crossearth", "train", "--setting", "synthearth", "--data-root", root, "--out", out,
            "--max-steps", "1", "--precision", "32-true", "--set", "num_workers=0",
            "--set", "crop=64", "--set", "scales=[64]", "--set", "num_points=256"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", list(map(str, args)))
    with pytest.raises(SystemExit) as info:
        main()
        raise SystemExit(0)
    assert info.value.code == 0, capsys.readouterr()
    for name in ("best", "last"):
        cfg = load_model(out / f"{name}.safetensors").config
        assert cfg.class_names == ISPRS.names and cfg.palette == ISPRS.palette
        assert cfg.gsd_m == DOMAINS["urban-aerial-rgb"].gsd_m and cfg.bands == "RGB"


def test_synthearth_cli_with_its_defaults_validates_and_prints_lightning_once(tmp_path):
    """A short run with SynthEarth's own defaults (only the step count given) writes
    best.safetensors; Lightning's INFO lines appear once each, its tips and pytree notice not."""
    root = _synth_root(tmp_path / "data", 128, 4)
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "crossearth", "train", "--setting", "SynthEarth", "--data-root",
           str(root), "--out", str(tmp_path / "run"), "--max-steps", "1", "--set", "num_workers=0"]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout + done.stderr
    assert text.count("GPU available") == 1, text
    assert "Tip:" not in text and "LeafSpec" not in text  # noise that says nothing about the run
    assert "step 1/1 loss " in done.stdout  # a plain progress line: the output is a pipe
    assert (tmp_path / "run" / "best.safetensors").is_file()
