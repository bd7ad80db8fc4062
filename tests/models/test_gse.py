"""Optional GSE + injectors: identity when fresh, active when gated, exact removal, cost figures."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import crossearth
from crossearth.models.gse import GeoSemanticExtractor, GSEInjection, Injector, install


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny ops: threads only add contention on a busy CI machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = crossearth.create_model("vit-tiny-256", num_classes=4)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = model(x)
    return model, x, reference


def _open_gates(gse: GSEInjection) -> None:
    with torch.no_grad():
        for injector in gse.injectors:
            injector.gate.fill_(0.5)


def test_fresh_gse_is_exactly_the_identity(tiny):
    model, x, reference = tiny
    keys = list(model.state_dict())
    gse = GSEInjection.for_backbone(model)
    assert gse.stages == (1, 2, 4, 5)
    with torch.no_grad():
        handle = install(model, gse)
        gse.set_image(x)
        out = model(x)
        assert gse.pending is None  # consumed by that one backbone forward
        handle.remove()
    assert torch.equal(out, reference)
    assert list(model.state_dict()) == keys  # never part of the segmentor's state dict


def test_gated_gse_changes_outputs_and_remove_restores_exactly(tiny):
    model, x, reference = tiny
    gse = GSEInjection.for_backbone(model)
    _open_gates(gse)
    with torch.no_grad(), install(model, gse, auto_image=True) as handle:
        changed = model(x)
        assert handle.active
        assert gse.pending is None
    assert not handle.active
    assert not torch.allclose(changed, reference)
    with torch.no_grad():
        assert torch.equal(model(x), reference)
    handle.remove()  # idempotent
    # Installing again after removal works; the second handle also restores exactly.
    with torch.no_grad(), install(model.backbone, gse, auto_image=True):
        assert torch.equal(model(x), changed)
    with torch.no_grad():
        assert torch.equal(model(x), reference)


def test_only_the_stage_tokens_change_and_cls_is_untouched(tiny):
    model, x, _ = tiny
    backbone = model.backbone
    gse = GSEInjection(128, stages=(2,))
    _open_gates(gse)
    seen: dict[str, list[torch.Tensor]] = {"plain": [], "gse": []}
    key = "plain"
    hook = backbone.reins.register_forward_hook(lambda m, a, o: seen[key].append(o))
    with torch.no_grad():
        backbone(x)
        key = "gse"
        with install(backbone, gse):
            gse.set_image(x)
            backbone(x)
    hook.remove()
    plain, injected = seen["plain"], seen["gse"]
    # The reins hook registered first sees the pre-injection output: stages 0..2 agree.
    for layer in range(3):
        assert torch.equal(plain[layer], injected[layer])
    tokens = plain[2]
    q = gse.extract(x)
    assert q.shape == (2, 16, 128)
    out = gse.inject(tokens, 0, q)
    assert torch.equal(out[:, 0], tokens[:, 0]) and not torch.equal(out[:, 1:], tokens[:, 1:])
    assert not torch.equal(plain[3], injected[3])  # later blocks see the injected tokens


def test_missing_image_double_install_and_bad_stages_raise(tiny):
    model, x, _ = tiny
    gse = GSEInjection.for_backbone(model)
    handle = install(model, gse)
    try:
        with torch.no_grad(), pytest.raises(RuntimeError, match="set_image"):
            model(x)
        with pytest.raises(RuntimeError, match="already installed"):
            install(model, gse)
        gse.set_image(x[:1])
        with torch.no_grad(), pytest.raises(ValueError, match="does not match"):
            model(x)
    finally:
        handle.remove()
    with pytest.raises(ValueError, match="outside"):
        install(model, GSEInjection(128, stages=(6,)))
    with pytest.raises(ValueError):
        GeoSemanticExtractor(128, stride=12)


def test_gradients_reach_the_gate_of_a_fresh_gse(tiny):
    model, x, _ = tiny
    gse = GSEInjection.for_backbone(model)
    with install(model, gse, auto_image=True):
        model(x).square().mean().backward()
    for injector in gse.injectors:
        assert injector.gate.grad is not None and injector.gate.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)


def test_parameter_counts_and_macs():
    gse = GSEInjection(128, stages=(1, 2, 4, 5))
    counts = gse.num_parameters()
    convs = [(3, 64), (64, 128), (128, 256), (256, 256), (256, 256)]
    extractor = sum(i * o * 9 + o for i, o in convs) + 256 * 128 + 128
    injector = 2 * 2 * 128 + 4 * (128 * 128 + 128) + 128  # 2 LayerNorms, q/k/v/proj, gate
    assert counts == {
        "extractor": extractor,
        "injector": injector,
        "total": extractor + 4 * injector,
    }
    # Analytic MACs against PyTorch's FLOP counter (2 FLOPs per MAC) on a 64 x 64 image.
    x = torch.randn(1, 3, 64, 64)
    tokens = torch.randn(1, 17, 128)
    # The math SDPA backend runs attention as counted matmuls (CPU flash kernels are not counted).
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        q = gse.extract(x)
        for i in range(4):
            tokens = gse.inject(tokens, i, q)
    assert counter.get_total_flops() == 2 * gse.macs(64, 64)["total"]
    # ViT-L figures quoted in the module docstring.
    vitl = GSEInjection(1024, stages=(7, 11, 15, 23))
    assert vitl.num_parameters()["total"] == 18_628_224
    assert vitl.macs(512, 512)["total"] == 29_775_364_096
    assert vitl.macs(1024, 1024)["total"] == 222_180_671_488
    print(f"\nGSE vit-tiny params {counts}; ViT-L {vitl.num_parameters()}")


def test_injector_attention_width_and_head_checks():
    inj = Injector(128, num_heads=8, attn_dim=64)
    assert (
        sum(p.numel() for p in inj.parameters())
        == 4 * 128 + 128 * 64 * 3 + 64 * 3 + 64 * 128 + 128 + 128
    )
    with pytest.raises(ValueError, match="divisible"):
        Injector(128, num_heads=7)
