"""Files that are not (the right) CrossEarth checkpoints fail with a clear, typed error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import crossearth
from crossearth.errors import CheckpointError, ConfigError, WeightsUnavailableError
from crossearth.weights import zoo


def _side_effect(path: str) -> None:
    Path(path).write_text("code ran while unpickling")


class Malicious:
    """Unpickling this calls `_side_effect`: only a full (unsafe) pickle load would run it."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (_side_effect, (self.path,))


def _save_tiny(state, path: Path) -> Path:
    torch.save({"state_dict": state, "meta": {}}, path)
    return path


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("keep", [0.0, 0.5, 0.999])
def test_truncated_checkpoint(tmp_path, tiny_full_state, keep, legacy):
    path = tmp_path / "tiny.pth"
    torch.save(
        {"state_dict": tiny_full_state, "meta": {}},
        path,
        _use_new_zipfile_serialization=not legacy,
    )
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="truncated"):
        crossearth.load_model(path, config="vit-tiny-256")


@pytest.mark.parametrize(
    "text",
    [
        "this is not a checkpoint\n" * 10,
        "hello",
        "<html><body>404 Not Found</body></html>\n",
        "version https://git-lfs.github.com/spec/v1\noid sha256:0123abcd\nsize 1309066472\n",
        '{"state_dict": {}}',
    ],
    ids=["prose", "hello", "html", "git-lfs-pointer", "json"],
)
def test_text_file(tmp_path, text):
    path = tmp_path / "notes.pth"
    path.write_text(text)
    with pytest.raises(CheckpointError):
        crossearth.load_model(path, config="vit-tiny-256")


_SAVED_PAGE = (
    '<!DOCTYPE html>\n<html class="" lang="en">\n<head><meta charset="utf-8">\n'
    "<title>Potsdam(i)-source.pth \u00b7 Cusyoung/CrossEarth at main</title></head>\n"
    "<body>" + "<div>file view</div>\n" * 200 + "</body></html>\n"
)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_saved_web_page_is_called_an_html_page(tmp_path, suffix):
    """A Hub file page saved as the checkpoint: named for what it is, with the direct-link advice."""
    path = tmp_path / f"Potsdam(i)-source{suffix}"
    path.write_text(_SAVED_PAGE, encoding="utf-8")
    with pytest.raises(CheckpointError) as info:
        crossearth.load_model(path, config="vit-tiny-256")
    message = str(info.value)
    assert "HTML page" in message
    assert "/resolve/main/" in message
    assert "weights_only" not in message


def test_git_lfs_pointer_is_named(tmp_path):
    path = tmp_path / "model.pth"
    path.write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 1309066472\n"
    )
    with pytest.raises(CheckpointError, match="Git LFS pointer"):
        crossearth.load_model(path, config="vit-tiny-256")


def test_empty_file_is_named(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        crossearth.load_model(path)


@pytest.mark.parametrize("keep", [0.0005, 0.5, 0.999])
def test_truncated_safetensors(tmp_path, keep):
    model = crossearth.create_model("vit-tiny-256")
    path = crossearth.save_model(model, tmp_path / "model.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: max(9, int(len(data) * keep))])
    with pytest.raises(CheckpointError, match="truncated safetensors") as info:
        crossearth.load_model(path)
    assert "weights_only" not in str(info.value)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("keep", [0.01, 0.5, 0.999])
def test_truncated_checkpoint_never_advises_disabling_weights_only(
    tmp_path, tiny_full_state, keep, legacy
):
    path = tmp_path / "tiny.pth"
    torch.save({"state_dict": tiny_full_state}, path, _use_new_zipfile_serialization=not legacy)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError) as info:
        crossearth.load_model(path, config="vit-tiny-256")
    assert "weights_only" not in str(info.value)


def test_random_bytes_are_not_a_checkpoint(tmp_path):
    path = tmp_path / "noise.pth"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        crossearth.load_model(path, config="vit-tiny-256")


def test_misnamed_files_are_read_by_content(tmp_path, tiny_full_state):
    """A safetensors file named .pth (and a .pth named .safetensors) still load."""
    model = crossearth.create_model("vit-tiny-256")
    st = crossearth.save_model(model, tmp_path / "model.safetensors")
    as_pth = tmp_path / "model.pth"
    as_pth.write_bytes(st.read_bytes())
    assert crossearth.load_model(as_pth).load_report.missing == []
    pth = _save_tiny(tiny_full_state, tmp_path / "tiny.safetensors")
    assert crossearth.load_model(pth, config="vit-tiny-256").load_report.missing == []


def test_text_file_named_safetensors(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_text("this is not a checkpoint either\n")
    with pytest.raises(CheckpointError):
        crossearth.load_model(path)


def test_missing_file_that_is_no_zoo_name(tmp_path):
    with pytest.raises(CheckpointError, match="zoo"):
        crossearth.load_model(tmp_path / "nope.pth")


def test_pickle_that_needs_code_execution_is_refused(tmp_path):
    sentinel = tmp_path / "side_effect.txt"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"x": torch.zeros(2)}, "payload": Malicious(sentinel)}, path)
    assert not sentinel.exists()
    with pytest.raises(CheckpointError, match="weights_only=True only") as info:
        crossearth.load_model(path, config="vit-tiny-256")
    assert not sentinel.exists()
    assert "weights_only=False" not in str(info.value)
    assert "Malicious" in str(info.value) or "_side_effect" in str(info.value)


def test_non_dict_checkpoint(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(3)], path)
    with pytest.raises(CheckpointError):
        crossearth.load_model(path, config="vit-tiny-256")


def test_dict_without_tensors(tmp_path):
    path = tmp_path / "empty.pth"
    torch.save({"state_dict": {}, "meta": {"epoch": 3}}, path)
    with pytest.raises(CheckpointError):
        crossearth.load_model(path, config="vit-tiny-256")


def _other_model_state() -> dict[str, torch.Tensor]:
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.Linear(8, 2)).state_dict()


def test_checkpoint_of_another_model(tmp_path):
    path = _save_tiny(_other_model_state(), tmp_path / "other.pth")
    with pytest.raises(CheckpointError):
        crossearth.load_model(path, config="vit-tiny-256")


def test_checkpoint_of_another_model_is_not_called_a_rein_head_checkpoint(tmp_path):
    path = _save_tiny(_other_model_state(), tmp_path / "other.pth")
    with pytest.raises(CheckpointError) as info:
        crossearth.load_model(path, config="vit-tiny-256")
    assert "Rein and head weights" not in str(info.value)


def test_checkpoint_of_another_model_with_a_backbone(tmp_path, tiny_full_state):
    """Even with a backbone to merge, the Rein and head weights are missing: refused."""
    backbone = {
        k[len("backbone.") :]: v
        for k, v in tiny_full_state.items()
        if k.startswith("backbone.") and not k.startswith("backbone.reins.")
    }
    bb_path = tmp_path / "backbone.pth"
    torch.save(backbone, bb_path)
    path = _save_tiny(_other_model_state(), tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="lacks"):
        crossearth.load_model(path, config="vit-tiny-256", backbone=bb_path)


def test_checkpoint_with_foreign_keys_next_to_crossearth_ones(tmp_path, tiny_full_state):
    state = dict(tiny_full_state)
    state["auxiliary_head.conv_seg.weight"] = torch.zeros(6, 128, 1, 1)
    model = crossearth.load_model(_save_tiny(state, tmp_path / "aux.pth"), config="vit-tiny-256")
    assert model.load_report.unexpected == ["auxiliary_head.conv_seg.weight"]
    assert model.load_report.missing == []


def test_preprocessor_buffers_and_ddp_prefix_are_accepted(tmp_path, tiny_full_state):
    state = {f"module.{k}": v for k, v in tiny_full_state.items()}
    state["module.data_preprocessor.mean"] = torch.tensor([123.675, 116.28, 103.53])
    state["module.data_preprocessor.std"] = torch.tensor([58.395, 57.12, 57.375])
    model = crossearth.load_model(_save_tiny(state, tmp_path / "ddp.pth"), config="vit-tiny-256")
    assert model.load_report.missing == [] and model.load_report.unexpected == []
    loaded = model.state_dict()
    assert torch.equal(loaded["backbone.pos_embed"], tiny_full_state["backbone.pos_embed"])


def test_bare_state_dict_without_mmengine_wrapper(tmp_path, tiny_full_state):
    path = tmp_path / "bare.pth"
    torch.save(tiny_full_state, path)
    model = crossearth.load_model(path, config="vit-tiny-256")
    assert model.load_report.missing == [] and model.load_report.unexpected == []


def test_checkpoint_missing_head_weights(tmp_path, tiny_full_state):
    state = {k: v for k, v in tiny_full_state.items() if not k.startswith("decode_head.mask_embed")}
    path = _save_tiny(state, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match="mask_embed"):
        crossearth.load_model(path, config="vit-tiny-256")


def test_architecture_mismatch_names_the_key(tmp_path, tiny_full_state):
    path = _save_tiny(tiny_full_state, tmp_path / "tiny.pth")
    with pytest.raises(CheckpointError, match="shape mismatch"):
        crossearth.load_model(path, config="vits-512")


def test_wrong_class_count_against_named_classes(tmp_path):
    state = crossearth.create_model("vit-tiny-256", num_classes=5).state_dict()
    path = _save_tiny(state, tmp_path / "five.pth")
    cfg = crossearth.get_preset("vit-tiny-256", 3).replace(class_names=("a", "b", "c"))
    cfg_path = tmp_path / "three.json"
    cfg_path.write_text(json.dumps(cfg.to_dict()))
    with pytest.raises(ConfigError) as info:
        crossearth.load_model(path, config=cfg_path)
    assert "5" in str(info.value) and "3" in str(info.value)

    # Without class names the count simply comes from the checkpoint's cls_embed.
    unnamed = crossearth.get_preset("vit-tiny-256", 3)
    model = crossearth.load_model(path, config=unnamed)
    assert model.num_classes == 5
    assert model.load_report.missing == []


@pytest.fixture
def offline_home(tmp_path, monkeypatch):
    home = tmp_path / "crossearth_home"
    monkeypatch.setenv("CROSSEARTH_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hf_cache = tmp_path / "hf_cache"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_cache))
    try:  # huggingface_hub reads its environment once, at import
        from huggingface_hub import constants
    except ImportError:
        pass
    else:
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True, raising=False)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_cache), raising=False)
    return home


def test_zoo_name_offline(offline_home):
    with pytest.raises(WeightsUnavailableError) as info:
        crossearth.load_model("potsdam-irrg")
    message = str(info.value)
    assert "Potsdam(i)-source.pth" in message
    assert str(offline_home / "checkpoints") in message
    assert isinstance(info.value, CheckpointError)
    assert (
        "https://huggingface.co/Cusyoung/CrossEarth/resolve/main/Potsdam(i)-source.pth" in message
    )
    assert "/blob/" not in message
    # both files are missing: one message names both, so one download round fetches them
    assert "resolve/main/dinov2_converted.pth" in message
    assert str(offline_home / "checkpoints" / "dinov2_converted.pth") in message


def test_zoo_name_offline_with_the_backbone_present_names_only_the_checkpoint(offline_home):
    backbone = offline_home / "checkpoints" / "dinov2_converted.pth"
    backbone.parent.mkdir(parents=True)
    backbone.write_bytes(b"")
    with pytest.raises(WeightsUnavailableError) as info:
        crossearth.load_model("potsdam-irrg")
    assert "dinov2_converted" not in str(info.value)


def test_rein_only_zoo_model_offline_links_the_backbone_directly(
    offline_home, tiny_rein_head_state
):
    entry = crossearth.ZOO["potsdam-irrg"]
    local = offline_home / "checkpoints" / entry.filename
    local.parent.mkdir(parents=True)
    torch.save({"state_dict": tiny_rein_head_state}, local)
    with pytest.raises(CheckpointError) as info:
        crossearth.load_model("potsdam-irrg", config="vit-tiny-256")
    message = str(info.value)
    assert "/resolve/main/dinov2_converted.pth" in message
    assert "/blob/" not in message


def test_zoo_locate_prefers_the_local_file(offline_home):
    entry = crossearth.ZOO["potsdam-irrg"]
    local = offline_home / "checkpoints" / entry.filename
    local.parent.mkdir(parents=True)
    local.write_bytes(b"placeholder")
    assert zoo.checkpoint_dir() == offline_home / "checkpoints"
    assert zoo.locate(entry.filename) == local


def test_zoo_default_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("CROSSEARTH_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert zoo.checkpoint_dir() == tmp_path / ".cache" / "crossearth" / "checkpoints"
