"""The shipped `synthearth-backbone`: found by name, installed as package data, a backbone that
`train --backbone` takes with its preset, frozen under Rein."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from crossearth.data.synthetic import DOMAINS, generate_domain
from crossearth.errors import CheckpointNotFoundError
from crossearth.weights.backbone_file import BACKBONES, read_backbone_record, resolve_backbone
from crossearth.weights.checkpoint_io import read_checkpoint

NAME = "synthearth-backbone"


def test_the_name_resolves_to_the_shipped_file():
    path = resolve_backbone(NAME)
    assert path == BACKBONES[NAME] and path.is_file()
    assert "synthearth" in path.name and path.suffix == ".safetensors"
    assert path.stat().st_size <= 25 * 1024 * 1024
    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["crossearth.weights"]
    assert any(path.match(f"*/crossearth/weights/{p}") for p in patterns)  # it installs


def test_the_file_says_what_it_is():
    record = read_backbone_record(resolve_backbone(NAME))
    assert record.preset == "vit-tiny-256" and record.config.embed_dim == 128
    assert record.record["command"].startswith("crossearth pretrain ")
    assert record.record["objective"] == "both" and record.record["steps"] >= 1000
    assert record.record["trained_on"].startswith("SynthEarth archive: 1,500 unlabelled scenes")
    assert record.record["inputs"] == [
        "crossearth synth --archive 1500 --size 256 --seed 0 -o archive"
    ]


def test_unknown_name_or_missing_file_is_an_error():
    with pytest.raises(CheckpointNotFoundError, match="neither a file nor a shipped backbone"):
        resolve_backbone("synthearth-backbon")


def test_train_takes_the_preset_and_weights_from_the_file():
    from crossearth.train.config import TrainConfig
    from crossearth.train.run import build_model

    notes = []
    model = build_model(TrainConfig(backbone=NAME), 6, report=notes.append)  # default vitl-512
    assert model.config.backbone.embed_dim == 128 and model.config.backbone.img_size == 256
    assert notes == ["preset vit-tiny-256 (from the backbone file; not vitl-512)"]
    shipped = read_checkpoint(resolve_backbone(NAME)).state_dict
    state = model.backbone.state_dict()
    assert all(torch.equal(state[k], v) for k, v in shipped.items())


def test_synthearth_training_with_the_frozen_shipped_backbone(tmp_path, monkeypatch, capsys):
    """`train --setting SynthEarth --backbone synthearth-backbone --set freeze_backbone=true`,
    with ESI and MTT on: the backbone's weights stay as shipped, Rein and the head train."""
    from cli_runner import run_cli

    from crossearth.weights import load_model

    root = tmp_path / "data"
    for spec in DOMAINS.values():
        generate_domain(root, spec, train=2, val=1, size=64)
    style = tmp_path / "earth.npz"
    assert run_cli(monkeypatch, "style", "fit", root / "synthearth", "-o", style) == 0
    out = tmp_path / "run"
    code = run_cli(monkeypatch, "train", "--setting", "SynthEarth", "--data-root", root, "--out", out,
                   "--backbone", NAME, "--max-steps", "2", "--batch-size", "1", "--precision",
                   "32-true", "--set", "freeze_backbone=true", "--set", "crop=64",
                   "--set", "esi=true", "--set", "esi_prob=1.0", "--set", f"earth_style={style}",
                   "--set", "mtt=true", "--set", "lr=1e-2")  # fmt: skip
    assert code == 0, capsys.readouterr()
    assert "backbone frozen (Rein PEFT)" in capsys.readouterr().out
    trained = load_model(out / "last.safetensors").state_dict()
    shipped = read_checkpoint(resolve_backbone(NAME)).state_dict
    for key, value in shipped.items():
        if key in ("mask_token", "norm.weight", "norm.bias"):
            continue  # never used by the forward pass; kept as shipped
        assert torch.equal(trained[f"backbone.{key}"], value), key


def test_frozen_backbone_only_rein_and_head_train_with_esi_and_mtt(tmp_path):
    from crossearth.data.synthetic import render_scene
    from crossearth.demo import DemoBudget, _earth_style
    from crossearth.train.config import TrainConfig
    from crossearth.train.data import ArraySource, StreamDataset
    from crossearth.train.run import build_model, fit
    from crossearth.train.transforms import TrainPipeline

    cfg = TrainConfig(
        preset="vit-tiny-256", backbone=NAME, freeze_backbone=True, esi=True, esi_prob=1.0,
        mtt=True, max_steps=2, schedule_steps=10, batch_size=2, crop=64, scales=(64,), max_size=128,
        num_workers=0, precision="32-true", accelerator="cpu", num_points=256, lr=1e-3,
        esi_block=32, mim_block=32, mim_channels=16, checkpoint_every=2, out_dir=str(tmp_path / "run"),
    )  # fmt: skip
    model = build_model(cfg, 6)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    pairs = [render_scene(DOMAINS["urban-aerial-rgb"], i, 64) for i in range(4)]
    stream = StreamDataset(ArraySource([p[0] for p in pairs], [p[1] for p in pairs]),
                           TrainPipeline(crop=64, scales=(64,), max_size=128), 0)  # fmt: skip
    earth = _earth_style(DemoBudget(tile=64), 0)
    fit(cfg, stream, [], [], model, enable_progress_bar=False, earth_style=earth, verbose=False,
        progress_lines=False)  # fmt: skip
    changed = {k for k, v in model.state_dict().items() if not torch.equal(before[k], v)}
    frozen = {k for k in before if k.startswith("backbone.") and ".reins" not in k
              and not k.startswith("backbone.reins")}  # fmt: skip
    assert not changed & frozen, sorted(changed & frozen)[:3]
    assert any(k.startswith("backbone.reins.") for k in changed)
    assert any(k.startswith("decode_head.") for k in changed)


def test_models_lists_the_shipped_backbone(monkeypatch, capsys):
    from cli_runner import run_cli

    assert run_cli(monkeypatch, "models") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"shipped backbone {NAME}: vit-tiny-256" in out
    assert f"train --backbone {NAME} --set freeze_backbone=true" in out


def test_a_backbone_file_is_not_taken_for_a_model():
    from crossearth.errors import CheckpointError
    from crossearth.weights import load_model

    with pytest.raises(
        CheckpointError, match=r"pretrained vit-tiny-256 backbone .* train --backbone"
    ):
        load_model(resolve_backbone(NAME))
