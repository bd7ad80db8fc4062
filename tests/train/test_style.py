"""Earth-Style Injection: the style distribution, the injection rule, both stylizers, fitting."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import rasterio
import torch
from PIL import Image
from rasterio.crs import CRS
from rasterio.transform import Affine

from crossearth.errors import CheckpointError, InputError
from crossearth.train.style import (
    EarthStyle,
    EarthStyleInjection,
    GhiasiTransformer,
    NeuralStylizer,
    SpectralStylizer,
    StylePredictor,
    Stylizer,
    fit_earth_style,
    load_style_embeddings,
    read_style_image,
)
from crossearth.train.style.neural import predictor_input_affine


def random_cov(dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(dim, dim))
    return a @ a.T / dim + 0.05 * np.eye(dim)


def scenes(n: int, size: int = 96, seed: int = 0) -> torch.Tensor:
    """Textured 3-band images with varied brightness, contrast, band mixing, texture and haze."""
    g = torch.Generator().manual_seed(seed)
    out = []
    freq = torch.sqrt(torch.fft.fftfreq(size)[:, None] ** 2 + torch.fft.fftfreq(size)[None] ** 2)
    for _ in range(n):
        noise = torch.fft.fft2(torch.randn(3, size, size, generator=g))
        power = 0.6 + 1.2 * torch.rand(1, generator=g).item()
        base = torch.fft.ifft2(noise / freq.clamp(min=1 / size) ** power).real
        base = torch.einsum("ij,jhw->ihw", torch.eye(3) + torch.rand(3, 3, generator=g), base)
        base = (base - base.mean((1, 2), keepdim=True)) / base.std((1, 2), keepdim=True)
        img = base * (15 + 40 * torch.rand(3, 1, 1, generator=g))
        img = img + 60 + 100 * torch.rand(3, 1, 1, generator=g)
        t = 0.5 + 0.5 * torch.rand(1, generator=g).item()
        out.append((img * t + 255 * (1 - t)).clamp(0, 255))
    return torch.stack(out)


class RecordingStylizer:
    """A fake stylizer: embedding = band means / 255, restyled image = constant 250."""

    name = "recording"
    embedding_dim = 3

    def __init__(self) -> None:
        self.given: list[torch.Tensor] = []

    def embed(self, images):
        return images.mean((2, 3)) / 255

    def stylize(self, images, embeddings):
        self.given.append(embeddings.clone())
        return torch.full_like(images, 250.0)


# ---------------------------------------------------------------- EarthStyle


def test_sampling_follows_the_svd_rule_and_the_distribution():
    cov = random_cov(5)
    mean = np.arange(5.0) - 2
    style = EarthStyle(mean, cov)
    u, s, _ = np.linalg.svd(cov)
    factor = torch.from_numpy((u * np.sqrt(s)).astype(np.float32))
    z = torch.randn(7, 5, generator=torch.Generator().manual_seed(3))
    expected = z @ factor.T + torch.tensor(mean, dtype=torch.float32)
    got = style.sample(7, torch.Generator().manual_seed(3))
    assert got.dtype == torch.float32 and got.shape == (7, 5)
    torch.testing.assert_close(got, expected)

    many = style.sample(200_000, torch.Generator().manual_seed(0)).double().numpy()
    np.testing.assert_allclose(many.mean(0), mean, atol=0.01)
    np.testing.assert_allclose(np.cov(many, rowvar=False), cov, atol=0.02)
    assert abs(cov[0, 1]) > 0.1  # really non-diagonal


def test_streaming_fit_equals_numpy():
    rng = np.random.default_rng(1)
    data = rng.normal(size=(531, 6)) @ rng.normal(size=(6, 6)) + 1e3
    cuts = [0, 1, 8, 100, 101, 400, 531]
    batches = [data[a:b] for a, b in itertools.pairwise(cuts)]
    batches[1] = torch.from_numpy(batches[1])  # tensors and arrays both work
    style = EarthStyle.fit(iter(batches))
    np.testing.assert_allclose(style.mean.numpy(), data.mean(0), rtol=1e-12)
    np.testing.assert_allclose(style.cov.numpy(), np.cov(data, rowvar=False), rtol=1e-9)
    assert style.count == 531
    with pytest.raises(InputError, match="at least 2"):
        EarthStyle.fit([data[:1]])


def test_save_load_roundtrip_and_clear_errors(tmp_path):
    style = EarthStyle(np.ones(4), random_cov(4), count=9, stylizer="spectral-v1")
    path = style.save(tmp_path / "s.npz")
    back = EarthStyle.load(path, dim=4)
    torch.testing.assert_close(back.cov, style.cov)
    assert (back.count, back.stylizer) == (9, "spectral-v1")
    with pytest.raises(InputError, match="16 dimensions"):
        EarthStyle.load(path, dim=16)
    with pytest.raises(InputError, match="not found"):
        EarthStyle.load(tmp_path / "missing.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(InputError, match="not a readable earth style"):
        EarthStyle.load(tmp_path / "text.npz")
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(InputError, match="lacks"):
        EarthStyle.load(tmp_path / "other.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(InputError, match="single array"):
        EarthStyle.load(tmp_path / "single.npy")
    np.save(tmp_path / "mean.npy", style.mean.numpy())
    np.save(tmp_path / "covariance.npy", style.cov.numpy())
    torch.testing.assert_close(
        EarthStyle.from_npy(tmp_path / "mean.npy", tmp_path / "covariance.npy").cov, style.cov
    )
    with pytest.raises(InputError, match="must be 3 x 3"):
        EarthStyle(np.zeros(3), np.eye(4))
    with pytest.raises(InputError, match="positive semi-definite"):
        EarthStyle(np.zeros(2), np.array([[1.0, 0.0], [0.0, -1.0]]))


# ---------------------------------------------------------------- injection


def test_blend_rule_uses_alpha_sampled_plus_own_style():
    stylizer = RecordingStylizer()
    earth = EarthStyle(np.array([0.5, -1.0, 2.0]), random_cov(3, seed=2))
    esi = EarthStyleInjection(stylizer, earth, prob=1.0)
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 255
    out, fired = esi(images, torch.Generator().manual_seed(5))
    assert fired and out.shape == images.shape and out.dtype == torch.float32

    replay = torch.Generator().manual_seed(5)
    torch.rand(1, generator=replay)  # the firing draw
    sampled = earth.sample(4, replay)
    expected = 0.1 * sampled + 0.9 * images.mean((2, 3)) / 255
    torch.testing.assert_close(stylizer.given[0], expected)


def test_blocks_are_aligned_and_each_fully_original_or_stylised():
    esi = EarthStyleInjection(
        RecordingStylizer(), EarthStyle(np.zeros(3), np.eye(3)), prob=1.0, block=64
    )
    g = torch.Generator().manual_seed(0)
    shares = []
    for _ in range(12):
        images = torch.randint(0, 200, (8, 3, 200, 300), generator=g, dtype=torch.uint8)
        result = esi.inject(images, g)
        styled = result.images == 250
        assert torch.equal(styled, result.mask.expand_as(styled))
        assert torch.equal(result.images[~styled], images.float()[~styled])
        for top in range(0, 200, 64):
            for left in range(0, 300, 64):
                block = styled[:, :, top : top + 64, left : left + 64].flatten(1)
                assert torch.all(block.all(1) | (~block).all(1))
        shares.append(result.mask[:, :, ::64, ::64].float().mean().item())
    assert abs(np.mean(shares) - 0.7) < 0.03


def test_firing_rate_and_reproducibility():
    earth = EarthStyle(np.zeros(3), np.eye(3))
    images = torch.rand(2, 3, 16, 16) * 255

    def run(seed: int):
        esi = EarthStyleInjection(RecordingStylizer(), earth, block=8)
        g = torch.Generator().manual_seed(seed)
        return [esi(images, g) for _ in range(3000)]

    first = run(7)
    fired = [f for _, f in first]
    assert 0.085 < np.mean(fired) < 0.115
    assert all(out is images for out, f in first if not f)  # unchanged input returned as is
    second = run(7)
    assert [f for _, f in second] == fired
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(first, second, strict=True))
    assert [f for _, f in run(8)] != fired


def test_injection_rejects_mismatched_styles_and_bad_settings():
    earth = EarthStyle(np.zeros(4), np.eye(4))
    with pytest.raises(InputError, match="4-d embeddings"):
        EarthStyleInjection(RecordingStylizer(), earth)
    other = EarthStyle(np.zeros(3), np.eye(3), stylizer="spectral-v1")
    with pytest.raises(InputError, match="fitted with the spectral-v1"):
        EarthStyleInjection(RecordingStylizer(), other)
    with pytest.raises(InputError, match="prob"):
        EarthStyleInjection(RecordingStylizer(), EarthStyle(np.zeros(3), np.eye(3)), prob=1.5)
    esi = EarthStyleInjection(RecordingStylizer(), EarthStyle(np.zeros(3), np.eye(3)))
    with pytest.raises(InputError, match="B x 3 x H x W"):
        esi(torch.zeros(3, 8, 8))


# ---------------------------------------------------------------- spectral stylizer


def test_spectral_stylizer_moves_images_towards_the_target():
    stylizer = SpectralStylizer()
    assert isinstance(stylizer, Stylizer) and stylizer.embedding_dim == 16
    images = scenes(12)
    own = stylizer.embed(images)
    assert own.shape == (12, 16) and torch.isfinite(own).all()
    targets = own.roll(5, 0)
    out = stylizer.stylize(images, targets)
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 255
    after = stylizer.embed(out)
    before_dist = (own - targets).norm(dim=1)
    after_dist = (after - targets).norm(dim=1)
    assert torch.all(after_dist < 0.5 * before_dist)
    # the per-band levels (log-means and log-stds) move towards the target
    levels_before = (own - targets)[:, :6].norm(dim=1)
    assert torch.all((after - targets)[:, :6].norm(dim=1) < 0.5 * levels_before)

    # one image restyles the same alone or in a batch (per-image, deterministic)
    torch.testing.assert_close(stylizer.stylize(images[3:4], targets[3:4]), out[3:4])


def test_spectral_stylizer_keeps_an_image_in_its_own_style():
    stylizer = SpectralStylizer()
    images = scenes(4, size=80, seed=3)
    own = stylizer.embed(images)
    out = stylizer.stylize(images, own)
    assert (out - images).abs().max() < 0.05
    # mixed-precision training does not change the arithmetic
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(stylizer.embed(images), own)
        assert torch.equal(stylizer.stylize(images, own), out)


def test_spectral_components_follow_physical_changes():
    stylizer = SpectralStylizer()
    clear = scenes(2, seed=4)
    hazy = clear * 0.6 + 0.4 * 255
    blurred = torch.nn.functional.avg_pool2d(clear, 5, stride=1, padding=2, count_include_pad=False)
    names = stylizer.component_names
    tau, slope = names.index("haze_tau"), names.index("slope_high_b1")
    e_clear, e_hazy, e_blur = (stylizer.embed(x) for x in (clear, hazy, blurred))
    assert torch.all(e_hazy[:, tau] > e_clear[:, tau] + 0.3)
    assert torch.all(e_blur[:, slope] < e_clear[:, slope] - 0.5)
    # restyling towards the blurred image's style blurs, towards the hazy one adds haze
    assert torch.all(stylizer.embed(stylizer.stylize(clear, e_blur))[:, slope] < e_clear[:, slope])
    assert torch.all(stylizer.embed(stylizer.stylize(clear, e_hazy))[:, tau] > e_clear[:, tau])


def test_spectral_injection_end_to_end():
    stylizer = SpectralStylizer()
    images = scenes(6, size=64)
    earth = EarthStyle.fit([stylizer.embed(images)], stylizer=stylizer.name)
    esi = EarthStyleInjection(stylizer, earth, prob=1.0, alpha=1.0, block=32)
    out, fired = esi(images.to(torch.uint8), torch.Generator().manual_seed(0))
    assert fired and out.shape == images.shape and torch.isfinite(out).all()
    assert (out - images.to(torch.uint8).float()).abs().mean() > 1


# ---------------------------------------------------------------- neural stylizer


def published_predictor_layout(with_tracked: bool) -> dict[str, tuple[int, ...]]:
    """`state_dict_stylepredictor` keys and shapes, written out from the published description."""
    units = {
        "Conv2d_1a_3x3": (32, 3, 3, 3),
        "Conv2d_2a_3x3": (32, 32, 3, 3),
        "Conv2d_2b_3x3": (64, 32, 3, 3),
        "Conv2d_3b_1x1": (80, 64, 1, 1),
        "Conv2d_4a_3x3": (192, 80, 3, 3),
    }
    for name, cin, pool in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
        units |= {
            f"{name}.branch1x1": (64, cin, 1, 1),
            f"{name}.branch5x5_1": (48, cin, 1, 1),
            f"{name}.branch5x5_2": (64, 48, 5, 5),
            f"{name}.branch3x3dbl_1": (64, cin, 1, 1),
            f"{name}.branch3x3dbl_2": (96, 64, 3, 3),
            f"{name}.branch3x3dbl_3": (96, 96, 3, 3),
            f"{name}.branch_pool": (pool, cin, 1, 1),
        }
    units |= {
        "Mixed_6a.branch3x3": (384, 288, 3, 3),
        "Mixed_6a.branch3x3dbl_1": (64, 288, 1, 1),
        "Mixed_6a.branch3x3dbl_2": (96, 64, 3, 3),
        "Mixed_6a.branch3x3dbl_3": (96, 96, 3, 3),
    }
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        units |= {
            f"{name}.branch1x1": (192, 768, 1, 1),
            f"{name}.branch7x7_1": (c7, 768, 1, 1),
            f"{name}.branch7x7_2": (c7, c7, 1, 7),
            f"{name}.branch7x7_3": (192, c7, 7, 1),
            f"{name}.branch7x7dbl_1": (c7, 768, 1, 1),
            f"{name}.branch7x7dbl_2": (c7, c7, 7, 1),
            f"{name}.branch7x7dbl_3": (c7, c7, 1, 7),
            f"{name}.branch7x7dbl_4": (c7, c7, 7, 1),
            f"{name}.branch7x7dbl_5": (192, c7, 1, 7),
            f"{name}.branch_pool": (192, 768, 1, 1),
        }
    assert len(units) == 70
    layout: dict[str, tuple[int, ...]] = {}
    for unit, shape in units.items():
        layout[f"{unit}.conv.weight"] = shape
        for part in ("weight", "bias", "running_mean", "running_var"):
            layout[f"{unit}.bn.{part}"] = (shape[0],)
        if with_tracked:
            layout[f"{unit}.bn.num_batches_tracked"] = ()
    layout["fc.weight"], layout["fc.bias"] = (100, 768), (100,)
    return layout


def published_transformer_layout() -> dict[str, tuple[int, ...]]:
    layout: dict[str, tuple[int, ...]] = {}
    for idx, (cout, cin, k) in enumerate(((32, 3, 9), (64, 32, 3), (128, 64, 3))):
        layout[f"layers.{idx}.conv.weight"], layout[f"layers.{idx}.conv.bias"] = (
            (cout, cin, k, k),
            (cout,),
        )
    for idx in range(3, 8):
        for conv in ("conv1", "conv2"):
            layout[f"layers.{idx}.{conv}.weight"] = (128, 128, 3, 3)
            layout[f"layers.{idx}.{conv}.bias"] = (128,)
        for fc in ("fc_beta1", "fc_gamma1", "fc_beta2", "fc_gamma2"):
            layout[f"layers.{idx}.{fc}.weight"], layout[f"layers.{idx}.{fc}.bias"] = (
                (128, 100),
                (128,),
            )
    for idx, (cout, cin, k) in zip(
        (8, 9, 10), ((64, 128, 3), (32, 64, 3), (3, 32, 9)), strict=True
    ):
        layout[f"layers.{idx}.conv.weight"], layout[f"layers.{idx}.conv.bias"] = (
            (cout, cin, k, k),
            (cout,),
        )
        for fc in ("fc_beta", "fc_gamma"):
            layout[f"layers.{idx}.{fc}.weight"], layout[f"layers.{idx}.{fc}.bias"] = (
                (cout, 100),
                (cout,),
            )
    return layout


def random_state(layout: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in layout.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            state[key] = torch.randn(shape, generator=g) / fan_in**0.5
    return state


@pytest.fixture(scope="module")
def published_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("styleaug")
    predictor = random_state(published_predictor_layout(with_tracked=False), 0)
    transformer = random_state(published_transformer_layout(), 1)
    torch.save(
        {"state_dict_stylepredictor": predictor},
        folder / "checkpoint_stylepredictor.pth",
        _use_new_zipfile_serialization=False,  # the published files are legacy pickles
    )
    torch.save({"state_dict_ghiasi": transformer}, folder / "checkpoint_transformer.pth")
    cov = torch.from_numpy(random_cov(100, seed=3))
    embeddings = {
        "pbn_embedding_mean": torch.linspace(-0.3, 1.4, 100),
        "pbn_embedding_covariance": cov,
        "imagenet_embedding_mean": torch.linspace(0, 1, 100, dtype=torch.float64),
    }
    torch.save(
        embeddings, folder / "checkpoint_embeddings.pth", _use_new_zipfile_serialization=False
    )
    return folder, predictor, transformer


def test_published_layouts_match_the_architecture():
    predictor, transformer = StylePredictor(), GhiasiTransformer()
    tracked = published_predictor_layout(with_tracked=True)
    assert {k: tuple(v.shape) for k, v in predictor.state_dict().items()} == tracked
    assert len(published_predictor_layout(with_tracked=False)) == 352 and len(tracked) == 422
    assert sum(p.numel() for p in predictor.parameters()) == 9_042_756
    assert {k: tuple(v.shape) for k, v in transformer.state_dict().items()} == (
        published_transformer_layout()
    )
    assert len(transformer.state_dict()) == 84
    assert sum(p.numel() for p in transformer.parameters()) == 1_954_593


def test_neural_stylizer_loads_published_checkpoints(published_files):
    folder, predictor, transformer = published_files
    stylizer = NeuralStylizer.from_checkpoints(
        folder / "checkpoint_stylepredictor.pth", folder / "checkpoint_transformer.pth"
    )
    loaded = stylizer.predictor.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in predictor.items())
    loaded = stylizer.transformer.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in transformer.items())
    # checkpoint_embeddings.pth beside the transformer: float32 statistics
    assert stylizer.imagenet_mean.dtype == torch.float32 and stylizer.imagenet_mean.shape == (100,)
    assert stylizer.pbn_style.dim == 100

    images = torch.rand(2, 3, 64, 70, generator=torch.Generator().manual_seed(0)) * 255
    embeddings = stylizer.embed(images)
    assert embeddings.shape == (2, 100) and torch.isfinite(embeddings).all()
    out = stylizer.stylize(images, embeddings)
    assert out.shape == images.shape and out.min() > 0 and out.max() < 255
    stylizer.train()
    assert not stylizer.predictor.training  # BatchNorm keeps its running statistics

    earth = EarthStyle.load(folder / "checkpoint_embeddings.pth")
    esi = EarthStyleInjection(stylizer, earth, prob=1.0)
    result, fired = esi(images, torch.Generator().manual_seed(0))
    assert fired and result.shape == images.shape


def test_neural_stylizer_rejects_wrong_files(published_files, tmp_path):
    folder, predictor, _ = published_files
    pred, trans = folder / "checkpoint_stylepredictor.pth", folder / "checkpoint_transformer.pth"
    with pytest.raises(CheckpointError, match="swapped"):
        NeuralStylizer.from_checkpoints(trans, pred)
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(CheckpointError, match=r"text\.pth"):
        NeuralStylizer.from_checkpoints(tmp_path / "text.pth", trans)
    partial = {k: v for k, v in predictor.items() if not k.startswith("fc.")}
    torch.save({"state_dict_stylepredictor": partial}, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match=r"2 missing: fc\.weight, fc\.bias"):
        NeuralStylizer.from_checkpoints(tmp_path / "partial.pth", trans)
    bad = dict(predictor, **{"fc.weight": torch.zeros(10, 768)})
    torch.save({"state_dict_stylepredictor": bad}, tmp_path / "shape.pth")
    with pytest.raises(CheckpointError, match=r"wrong shape: fc\.weight"):
        NeuralStylizer.from_checkpoints(tmp_path / "shape.pth", trans)
    torch.save(
        {"state_dict_stylepredictor": predictor, "extra": Image.new("L", (2, 2))},
        tmp_path / "obj.pth",
    )
    with pytest.raises(CheckpointError, match="weights-only"):
        NeuralStylizer.from_checkpoints(tmp_path / "obj.pth", trans)
    with pytest.raises(CheckpointError, match="not found"):
        NeuralStylizer.from_checkpoints(tmp_path / "none.pth", trans)
    with pytest.raises(CheckpointError, match="not a style embeddings file"):
        load_style_embeddings(trans)


def test_predictor_preprocessing_keeps_the_upstream_blue_typo():
    scale, shift = predictor_input_affine()
    torch.testing.assert_close(scale[:2], torch.tensor([2.0, 2.0], dtype=torch.float64))
    torch.testing.assert_close(shift[:2], torch.tensor([-1.0, -1.0], dtype=torch.float64))
    assert abs(scale[2] - 1.7647) < 1e-4 and abs(shift[2] + 0.9045) < 1e-4


TORCHVISION_TRUNK = (
    *("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1"),
    *("Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d"),
    *("Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"),
)


def test_predictor_trunk_matches_torchvision_inception(published_files):
    models = pytest.importorskip(
        "torchvision.models",
        reason="the peer model comes from torchvision: pip install torchvision",
    )
    _, predictor, _ = published_files
    ours = StylePredictor()
    ours.load_state_dict(predictor, strict=False)
    peer = models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    peer.load_state_dict(
        {k: v for k, v in predictor.items() if not k.startswith("fc.")}, strict=False
    )
    ours.eval(), peer.eval()
    x = torch.rand(2, 3, 80, 80, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = x * ours.input_scale + ours.input_shift
        for name in TORCHVISION_TRUNK:
            y = getattr(peer, name)(y)
        expected = ours.fc(y.mean((2, 3)))
        torch.testing.assert_close(ours(x), expected, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- fitting on a folder


GEO = {"crs": CRS.from_epsg(32632), "transform": Affine(0.5, 0, 500_000, 0, -0.5, 5_000_000)}


def write_images(folder, count: int = 5, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    imgs = (scenes(count, size=72, seed=seed).permute(0, 2, 3, 1).numpy()).astype(np.uint8)
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(imgs[: count - 2]):
        Image.fromarray(img).save(folder / ("sub" if i % 2 else ".") / f"img{i}.png")
    Image.fromarray(imgs[-2]).save(folder / "photo.jpg", quality=95)
    data = (imgs[-1].transpose(2, 0, 1).astype(np.uint16) * 40 + 1000).astype(np.uint16)
    data = np.concatenate([data, rng.integers(0, 5000, (1, 72, 72), dtype=np.uint16)])
    profile = {"driver": "GTiff", "width": 72, "height": 72, "count": 4, "dtype": "uint16", **GEO}
    with rasterio.open(folder / "scene.tif", "w", **profile) as dst:
        dst.write(data)
        # described bands: style fit maps them by the rule predict and training use
        dst.descriptions = ("red", "green", "blue", "nir")


def test_read_style_image_stretches_and_crops(tmp_path):
    data = np.linspace(0, 10_000, 3 * 50 * 80).reshape(3, 50, 80).astype(np.uint16)
    profile = {"driver": "GTiff", "width": 80, "height": 50, "count": 3, "dtype": "uint16", **GEO}
    with rasterio.open(tmp_path / "a.tif", "w", **profile) as dst:
        dst.write(data)
    image = read_style_image(tmp_path / "a.tif", size=32)
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert image.min() >= 0 and image.max() <= 255 and image.max() > 100


def test_fit_earth_style_streams_the_folder(tmp_path):
    write_images(tmp_path, 6)
    (tmp_path / "broken.png").write_text("not an image")
    Image.new("RGB", (40, 40), (0, 0, 0)).save(tmp_path / "nodata.png")
    stylizer = SpectralStylizer()
    style = fit_earth_style(tmp_path, stylizer, size=64, progress=False, batch_size=4, workers=2)
    assert style.count == 6 and style.dim == 16 and style.stylizer == "spectral-v1"
    files = sorted(p for p in tmp_path.rglob("*") if p.suffix in {".png", ".jpg", ".tif"})
    used = [p for p in files if p.name not in ("broken.png", "nodata.png")]
    images = torch.stack([read_style_image(p, 64) for p in used])
    direct = stylizer.embed(images).double().numpy()
    np.testing.assert_allclose(style.mean.numpy(), direct.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        style.cov.numpy(), np.cov(direct, rowvar=False), rtol=1e-4, atol=1e-6
    )
    (tmp_path / "broken.png").unlink()
    (tmp_path / "nodata.png").unlink()
    assert fit_earth_style(tmp_path, stylizer, size=64, limit=3, progress=False).count == 3
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        fit_earth_style(tmp_path / "empty", stylizer, progress=False)
