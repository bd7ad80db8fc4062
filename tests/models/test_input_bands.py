"""Models of any number of input bands: the patch embedding, the RGB -> N initialisation (the
zero-init property), the model file's band metadata, and what trains under Rein PEFT."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from crossearth.config import IMAGENET_MEAN, IMAGENET_STD, ModelConfig
from crossearth.errors import ConfigError
from crossearth.inference import predict_array
from crossearth.models.bands import expand_input_bands
from crossearth.models.presets import get_preset
from crossearth.models.segmentor import CrossEarth


def tiny(in_chans: int = 3, seed: int = 0, classes: int = 3) -> CrossEarth:
    torch.manual_seed(seed)
    cfg = get_preset("vit-tiny-256", classes)
    cfg = cfg.replace(backbone=dataclasses.replace(cfg.backbone, in_chans=in_chans))
    return CrossEarth(cfg).eval()


@pytest.mark.parametrize("bands", [1, 2, 4, 13])
def test_patch_embedding_takes_any_band_count(bands):
    model = tiny(bands)
    assert model.backbone.patch_embed.proj.weight.shape[1] == bands
    with torch.no_grad():
        out = model(torch.randn(2, bands, 64, 64))
    assert out.shape == (2, 3, 64, 64) and torch.isfinite(out).all()
    with pytest.raises(RuntimeError):  # three bands into a model of another count
        model(torch.randn(1, 3 if bands != 3 else 4, 64, 64))


@pytest.mark.parametrize(
    ("bands", "slots"),
    [(4, (0, 1, 2)), (4, (1, 2, 3)), (6, (5, 0, 3)), (3 + 10, (3, 2, 1))],
)
def test_n_band_model_from_rgb_equals_it_on_the_rgb_bands_whatever_the_others_hold(bands, slots):
    rgb = tiny(3, seed=1)
    wide = expand_input_bands(rgb, bands, slots).eval()
    gen = torch.Generator().manual_seed(bands)
    base = torch.randn(2, bands, 64, 64, generator=gen)
    others = [i for i in range(bands) if i not in slots]
    with torch.no_grad():
        want = rgb(base[:, list(slots)])
        for fill in (0.0, 1e3, -50.0, None):  # constant, huge, negative, random extra bands
            x = base.clone()
            x[:, others] = (
                torch.randn(2, len(others), 64, 64, generator=gen) * 30 if fill is None else fill
            )
            got = wide(x)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # every tensor but the input kernel is the RGB model's own
    a, b = rgb.state_dict(), wide.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if k != "backbone.patch_embed.proj.weight")


def test_the_property_holds_through_predict_array_with_the_rgb_normalisation():
    rgb = tiny(3, seed=2)
    wide = expand_input_bands(rgb, 4, (0, 1, 2))
    inference = dataclasses.replace(wide.config.inference, mean=(*IMAGENET_MEAN, 80.0),
                                    std=(*IMAGENET_STD, 40.0))  # fmt: skip
    wide.config = wide.config.replace(inference=inference)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (70, 90, 4), dtype=np.uint8)
    with torch.no_grad():
        want = predict_array(rgb, np.ascontiguousarray(image[..., :3]), test_resize=False)
        for nir in (0, 255):
            image[..., 3] = nir
            got = predict_array(wide, image, test_resize=False)
            np.testing.assert_allclose(got.scores, want.scores, rtol=1e-4, atol=1e-5)
        with pytest.raises(ValueError, match="4 band"):
            predict_array(wide, np.ascontiguousarray(image[..., :3]))


def test_bands_without_rgb_start_from_the_mean_kernel_like_a_grey_image():
    """SAR (VV, VH): no red, green or blue; an image whose bands hold the same values is embedded
    as the RGB model embeds the grey image of those values."""
    rgb = tiny(3, seed=3)
    sar = expand_input_bands(rgb, 2, (None, None, None)).eval()
    grey = torch.randn(1, 1, 64, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(sar(grey.expand(1, 2, 64, 64)), rgb(grey.expand(1, 3, 64, 64)),
                                   rtol=1e-5, atol=1e-5)  # fmt: skip


def test_only_a_three_band_model_is_extended_and_slots_must_fit():
    with pytest.raises(ConfigError, match="3-band"):
        expand_input_bands(tiny(4), 5, (0, 1, 2))
    with pytest.raises(ConfigError, match="do not fit"):
        expand_input_bands(tiny(3), 4, (0, 1, 4))
    with pytest.raises(ConfigError, match="do not fit"):
        expand_input_bands(tiny(3), 4, (0, 0, 1))


def test_model_file_keeps_band_count_names_and_per_band_statistics(tmp_path):
    from crossearth.weights import load_model, save_model

    model = tiny(4, seed=4)
    inference = dataclasses.replace(model.config.inference, mean=(1.0, 2.0, 3.0, 4.5),
                                    std=(5.0, 6.0, 7.0, 8.25))  # fmt: skip
    model.config = model.config.replace(
        inference=inference, band_indices=(3, 2, 1, 4), band_names=("red", "green", "blue", "nir")
    )
    save_model(model, tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    cfg = loaded.config
    assert cfg.in_chans == 4 and cfg.band_indices == (3, 2, 1, 4)
    assert cfg.band_names == ("red", "green", "blue", "nir")
    assert cfg.inference.mean == (1.0, 2.0, 3.0, 4.5) and cfg.inference.std[3] == 8.25
    x = torch.randn(1, 4, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(x), model(x))
    # an old config dict without the new keys is a 3-band model
    data = model.config.to_dict()
    del data["band_names"], data["backbone"]["in_chans"]
    assert ModelConfig.from_dict(data).in_chans == 3


@pytest.mark.parametrize(("bands", "patch_trains"), [(3, False), (4, True), (1, True)])
def test_patch_embedding_trains_under_rein_peft_only_for_other_band_counts(bands, patch_trains):
    from crossearth.train.config import TrainConfig
    from crossearth.train.module import CrossEarthModule

    model = tiny(bands)
    CrossEarthModule(model, TrainConfig(freeze_backbone=True, preset="vit-tiny-256"))
    grad = {n: p.requires_grad for n, p in model.named_parameters()}
    assert grad["backbone.patch_embed.proj.weight"] is patch_trains
    assert grad["backbone.patch_embed.proj.bias"] is patch_trains
    assert not grad["backbone.blocks.0.attn.qkv.weight"]
    assert any(v for k, v in grad.items() if ".reins." in k or k.startswith("backbone.reins"))


def test_style_methods_refuse_other_band_counts():
    from crossearth.train.config import TrainConfig
    from crossearth.train.module import CrossEarthModule

    with pytest.raises(ConfigError, match="3-band"):
        CrossEarthModule(tiny(4), TrainConfig(mtt=True, preset="vit-tiny-256"))
