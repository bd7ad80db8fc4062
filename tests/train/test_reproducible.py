"""The same training command gives the same model: every random draw comes from the run's seed."""

from __future__ import annotations

import pytest
import torch

from crossearth.data.synthetic import DOMAINS, generate_domain


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    for spec in DOMAINS.values():
        generate_domain(root, spec, train=2, val=1, size=64)
    return root


def _train(monkeypatch, root, out, *extra):
    from cli_runner import run_cli

    code = run_cli(monkeypatch, "train", "--setting", "SynthEarth", "--data-root", root,
                   "--out", out, "--max-steps", "2", "--batch-size", "1", "--precision",
                   "32-true", "--set", "crop=64", "--set", "num_workers=0", *extra)  # fmt: skip
    assert code == 0
    from crossearth.weights import load_model

    return load_model(out / "last.safetensors").state_dict()


def test_same_command_same_model_and_another_seed_another(monkeypatch, synth_root, tmp_path):
    first = _train(monkeypatch, synth_root, tmp_path / "a")
    torch.rand(7)  # the caller's random state must not matter
    second = _train(monkeypatch, synth_root, tmp_path / "b")
    assert first.keys() == second.keys()
    differing = [k for k in first if not torch.equal(first[k], second[k])]
    assert not differing, differing[:5]
    other = _train(monkeypatch, synth_root, tmp_path / "c", "--set", "seed=7")
    assert any(not torch.equal(first[k], other[k]) for k in first if k.startswith("decode_head."))


def test_a_finished_run_is_never_replaced_silently(monkeypatch, capsys, synth_root, tmp_path):
    from cli_runner import run_cli

    out = tmp_path / "run"
    _train(monkeypatch, synth_root, out)
    before = (out / "last.safetensors").read_bytes()
    capsys.readouterr()
    args = ("train", "--setting", "SynthEarth", "--data-root", synth_root, "--out", out,
            "--max-steps", "2", "--batch-size", "1", "--precision", "32-true",
            "--set", "crop=64", "--set", "num_workers=0", "--set", "seed=3")  # fmt: skip
    assert run_cli(monkeypatch, *args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "--overwrite" in err[0], err
    assert "--resume" in err[0] and (out / "last.safetensors").read_bytes() == before
    assert run_cli(monkeypatch, *args, "--overwrite") == 0
    assert (out / "last.safetensors").read_bytes() != before
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.ckpt"]
