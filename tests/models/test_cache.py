"""Image-independent Rein and position-embedding work is computed once at inference, and never
served stale: weight edits, casts, moves and `load_state_dict` all invalidate it."""

from __future__ import annotations

import copy

import torch

import crossearth


def fresh_queries(model) -> torch.Tensor:
    """The queries recomputed from the current weights, bypassing the cache."""
    return model.backbone.reins._compute_queries()


def test_queries_and_token_features_are_cached_under_no_grad():
    model = crossearth.create_model("vit-tiny-256", num_classes=3)
    reins = model.backbone.reins
    with torch.no_grad():
        first = reins.queries()
        assert reins.queries() is first
        model(torch.randn(1, 3, 32, 32))
        entries = len(reins.cache)
        model(torch.randn(2, 3, 32, 32))  # another batch: nothing recomputed
        assert len(reins.cache) == entries == 1 + model.config.backbone.depth


def test_nothing_is_cached_with_autograd_and_gradients_reach_the_tokens():
    model = crossearth.create_model("vit-tiny-256", num_classes=3)
    reins = model.backbone.reins
    model(torch.randn(1, 3, 32, 32)).sum().backward()
    assert len(reins.cache) == 0 and len(model.backbone.cache) == 0
    tokens = reins.learnable_tokens_a  # vit-tiny-256 uses LoRA Rein tokens
    assert tokens.grad is not None and tokens.grad.abs().sum() > 0
    assert reins.merge.weight.grad.abs().sum() > 0


def test_in_place_weight_edit_invalidates():
    model = crossearth.create_model("vit-tiny-256", num_classes=3)
    reins = model.backbone.reins
    with torch.no_grad():
        before = reins.queries()
        reins.transform.bias.add_(1.0)  # an optimiser step is an in-place edit like this
        after = reins.queries()
    assert not torch.equal(before, after)
    torch.testing.assert_close(after, fresh_queries(model), rtol=0, atol=0)


def test_cast_round_trip_and_load_state_dict_invalidate():
    model = crossearth.create_model("vit-tiny-256", num_classes=3)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        model(x)
        model.to(torch.bfloat16).to(torch.float32)  # weights now rounded to bf16 precision
        assert len(model.backbone.reins.cache) == 0
        torch.testing.assert_close(model.backbone.reins.queries(), fresh_queries(model))
        other = crossearth.create_model("vit-tiny-256", num_classes=3)
        torch.manual_seed(5)
        for p in other.parameters():
            p.normal_()
        model.load_state_dict(other.state_dict())
        assert len(model.backbone.reins.cache) == 0 and len(model.backbone.cache) == 0
        torch.testing.assert_close(model(x), other(x), rtol=0, atol=1e-5)


def test_position_embedding_for_another_grid_is_cached_per_grid():
    model = crossearth.create_model("vit-tiny-256", num_classes=3)
    backbone = model.backbone
    with torch.no_grad():
        a = backbone.prepare_tokens(torch.randn(1, 3, 48, 64))
        b = backbone.prepare_tokens(torch.randn(1, 3, 48, 64))
        assert len(backbone.cache) == 1
        backbone.prepare_tokens(torch.randn(1, 3, 32, 32))
        assert len(backbone.cache) == 2
        reference = copy.deepcopy(backbone)
        reference.cache.clear()
    x = torch.randn(1, 3, 48, 64)
    with torch.no_grad():
        torch.testing.assert_close(backbone.prepare_tokens(x), reference.prepare_tokens(x))
    assert a.shape == b.shape == (1, 1 + 3 * 4, model.config.backbone.embed_dim)


def test_models_with_a_filled_cache_pickle_without_it():
    import pickle

    model = crossearth.create_model("vit-tiny-256", num_classes=3)
    x = torch.randn(1, 3, 48, 64)
    with torch.no_grad():
        expected = model(x)
    assert len(model.backbone.reins.cache) > 0
    clone = pickle.loads(pickle.dumps(model))  # DDP spawn pickles the model
    assert len(clone.backbone.reins.cache) == 0 and len(clone.backbone.cache) == 0
    with torch.no_grad():
        torch.testing.assert_close(clone(x), expected, rtol=0, atol=0)


def test_a_fused_optimiser_step_after_a_training_forward_is_seen():
    # Fused optimisers update weights without bumping their version counters; the training
    # forward that must precede a step drops the cache.
    model = crossearth.create_model("vit-tiny-256", num_classes=3)
    reins = model.backbone.reins
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        before = reins.queries()
    optimiser = torch.optim.AdamW(model.parameters(), lr=0.1, fused=True)
    model(x).sum().backward()
    optimiser.step()
    with torch.no_grad():
        after = reins.queries()
    assert not torch.equal(before, after)
    torch.testing.assert_close(after, fresh_queries(model), rtol=0, atol=0)
