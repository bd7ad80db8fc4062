"""Tests driven by the registries: every preset and every zoo entry, with no per-entry code.

A new preset or zoo entry is tested by adding it to `PRESETS` / `ZOO`; nothing here changes.
Full-size presets (ViT-B and larger) take more than a few seconds each and are marked slow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import crossearth
from crossearth.benchmark import SETTINGS, SYNTH_SETTINGS
from crossearth.data.catalog import DOMAINS
from crossearth.models.presets import PRESETS, get_preset
from crossearth.weights.zoo import ZOO

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"


def _preset_params():
    for name in PRESETS:
        big = get_preset(name, 3).backbone.embed_dim >= 768
        yield pytest.param(name, id=name, marks=[pytest.mark.slow] if big else [])


@pytest.mark.parametrize("name", list(_preset_params()))
def test_every_preset_builds_runs_and_round_trips(name, tmp_path):
    listing_path = REFERENCE / f"keys_{name.replace('-', '_')}.json"
    listing = json.loads(listing_path.read_text()) if listing_path.is_file() else None
    num_classes = listing["num_classes_used"] if listing else 3
    torch.manual_seed(0)
    model = crossearth.create_model(name, num_classes=num_classes)
    side = model.min_input_size
    with torch.no_grad():
        scores = model(torch.zeros(1, 3, side, side))
    assert scores.shape == (1, num_classes, side, side)
    assert torch.isfinite(scores).all()

    path = crossearth.save_model(model, tmp_path / f"{name}.safetensors")
    loaded = crossearth.load_model(path)
    assert loaded.config == model.config
    theirs = loaded.state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(theirs[key], value), key

    if listing is not None:  # the official checkpoint's key layout, where one is published
        official = {
            e["key"]: tuple(e["shape"])
            for e in listing["full_state_dict"]
            if not e["key"].startswith("data_preprocessor.")  # non-persistent, never saved
        }
        ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        assert ours == official


@pytest.mark.parametrize("name", list(ZOO))
def test_every_zoo_entry_fits_its_preset_and_settings(name):
    entry = ZOO[name]
    assert entry.preset in PRESETS
    config = get_preset(entry.preset, entry.num_classes)
    assert config.num_classes == entry.num_classes
    assert entry.bands in ("RGB", "IRRG")
    settings = [s for s in {**SETTINGS, **SYNTH_SETTINGS}.values() if s.model == name]
    assert settings, f"zoo entry {name} is the model of no benchmark setting"
    for setting in settings:
        assert setting.preset == entry.preset, setting.name
        assert entry.num_classes == setting.num_classes, setting.name
        assert tuple(entry.classes.names) == tuple(DOMAINS[setting.source].classes.names)
