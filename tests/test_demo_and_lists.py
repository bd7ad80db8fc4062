"""`demo --quick` keeps to its own folder, leaves a usable model file and shows progress lines in
a log; settings lists name SynthEarth; `benchmark` with nothing to run is an error."""

from __future__ import annotations

import json
import re

import pytest
from cli_runner import run_cli as run

import crossearth
import crossearth.demo as demo
import crossearth.train.progress
from crossearth.data.classes import ISPRS
from crossearth.data.synthetic import DOMAINS


@pytest.mark.parametrize(
    ("args", "expected"),
    [(["--quick"], "demo_output/quick"), ([], "demo_output"), (["--quick", "-o", "q"], "q")],
)
def test_quick_and_full_demo_default_to_separate_folders(monkeypatch, tmp_path, args, expected):
    calls = []
    monkeypatch.setattr(demo, "run_demo", lambda output, *a, **k: calls.append((output, k)))
    assert run(monkeypatch, "demo", *args) == 0
    ((output, kwargs),) = calls
    assert output.as_posix() == expected
    assert (kwargs["budget"] is demo.QUICK) == ("--quick" in args)
    assert demo.QUICK.pipeline_check and not demo.DemoBudget().pipeline_check


def test_quick_demo_leaves_the_full_demo_untouched(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    full = tmp_path / "demo_output"
    before = {
        full / "report.md": "full report\n",
        full / "figure.png": "full figure",
        full / "model.safetensors": "full model",
        full / "runs" / "baseline_seed0" / "last.safetensors": "seed 0 run",
    }
    for path, text in before.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    tiny = demo.DemoBudget(
        tile=64, train_tiles=2, val_tiles=1, steps=2, batch=1, crop=64, seeds=(0,),
        pipeline_check=True,
    )  # fmt: skip
    monkeypatch.setattr(demo, "QUICK", tiny)
    monkeypatch.setattr(demo, "find_reference", lambda explicit=None: None)
    monkeypatch.setattr(crossearth.train.progress, "PROGRESS_SECONDS", 0.0)  # a line every step
    assert run(monkeypatch, "demo", "--quick") == 0
    output = capsys.readouterr().out  # captured: not a terminal, so plain progress lines
    for n, key in ((1, "baseline"), (2, "crossearth")):
        prefix = f"run {n}/2 ({key}, seed 0) step "
        lines = [line.strip() for line in output.splitlines() if line.strip().startswith(prefix)]
        assert [int(line[len(prefix) :].split("/")[0]) for line in lines] == [1, 2], output
        assert all(" loss " in line for line in lines)
    assert output.index("run 1/2") < output.index("run 2/2")
    # said plainly, before anything runs and beside the numbers: a pipeline check
    flat = " ".join(output.split())
    assert flat.index("pipeline check (--quick)") < flat.index("run 1/2")
    assert "These numbers mean nothing" in flat
    # numbered steps start at 1 even when the parity step is skipped (no reference here)
    steps = [int(m.group(1)) for m in re.finditer(r"^(\d+)\. ", output, re.MULTILINE)]
    assert steps and steps == list(range(1, len(steps) + 1)), output
    assert {p: p.read_text() for p in before} == before
    assert sorted(p.name for p in full.iterdir()) == ["figure.png", "model.safetensors", "quick",
                                                      "report.md", "runs"]  # fmt: skip
    quick = full / "quick"
    model_file = quick / "model.safetensors"
    assert str(model_file.relative_to(tmp_path)) in output.replace("\n", "")
    config = crossearth.load_model(model_file).config
    assert config.class_names == ISPRS.names and config.palette == ISPRS.palette
    assert config.gsd_m == DOMAINS[demo.SOURCE].gsd_m
    assert "model.safetensors" in (quick / "report.md").read_text()
    assert "mean nothing" in (quick / "report.md").read_text()
    summary = json.loads((quick / "summary.json").read_text())
    assert summary["model"] == str(model_file.relative_to(tmp_path))
    assert "mean nothing" in summary["pipeline_check"]
    for run_dir in (quick / "runs").iterdir():
        saved = crossearth.load_model(run_dir / "last.safetensors").config
        assert saved.class_names == ISPRS.names and saved.palette == ISPRS.palette


def test_data_list_names_synthearth(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")
    assert run(monkeypatch, "data", "list") == 0
    out = capsys.readouterr().out
    assert "SynthEarth" in out and "crossearth synth" in out


def test_unknown_setting_error_lists_synthearth(monkeypatch, tmp_path, capsys):
    code = run(monkeypatch, "train", "--setting", "NoSuch", "--data-root", tmp_path)
    assert code == 1
    captured = capsys.readouterr()
    err = captured.out + captured.err
    assert "error:" in err and "NoSuch" in err and "SynthEarth" in err and "P(i)2V" in err


def test_benchmark_with_nothing_to_run_fails(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("COLUMNS", "400")
    assert run(monkeypatch, "benchmark", "--data-root", tmp_path) == 1
    captured = capsys.readouterr()
    out = captured.out + captured.err
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    assert lines[0].startswith("error: nothing to benchmark")
    assert "crossearth data prepare" in lines[0]
    assert "mIoU" not in out  # no empty table


def test_models_table_fits_80_columns_with_whole_names(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    home = tmp_path / "home"
    monkeypatch.setenv("CROSSEARTH_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"), raising=False)
    (home / "checkpoints").mkdir(parents=True)
    (home / "checkpoints" / crossearth.ZOO["vaihingen"].filename).write_bytes(b"x")
    (home / "checkpoints" / "dinov2_converted.pth").write_bytes(b"x")
    assert run(monkeypatch, "models") == 0
    out, _, notes = capsys.readouterr().out.partition("Released files")
    title, *table = out.splitlines()
    assert str(home / "checkpoints") in title  # whole, on one line, when written to a pipe
    assert max(len(line) for line in table) <= 80
    assert len(notes.splitlines()) == 2  # written to a pipe, the notes are never broken
    rows = {line.split()[0]: line for line in out.splitlines() if line.split()}
    for name, entry in crossearth.ZOO.items():
        assert name in rows, f"{name} cut or missing:\n{out}"
        gsd = "?" if entry.gsd_m is None else f"{entry.gsd_m:g}"
        assert f" {gsd} " in rows[name]
    assert "GSD" in out and "here" in out and "needs backbone" in out
    assert " yes " in rows["vaihingen"] and "(here)" in rows["vaihingen"]
    assert " no " in rows["potsdam-irrg"] and "(here)" in rows["potsdam-irrg"]
    assert "(missing)" in rows["deepglobe-roads"]  # needs the 1024 backbone, absent


def test_synthearth_without_data_says_how_to_generate_it(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)  # the default run folder, runs/crossearth, would go here
    assert run(monkeypatch, "train", "--setting", "SynthEarth", "--data-root", tmp_path) == 1
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert "error:" in out and "crossearth synth" in out
    assert list(tmp_path.iterdir()) == []
