"""Training defaults that follow the hardware and the model (issue 22): precision auto, and a
small model's crop, points and a short run on your data; options and --set still win."""

from __future__ import annotations

import pytest
import torch
import yaml
from cli_runner import run_cli_captured as cli

import crossearth.runtime
from crossearth.models.presets import get_preset
from crossearth.models.segmentor import CrossEarth
from crossearth.runtime import slow_precision_warning, training_precision
from crossearth.train.config import TrainConfig
from crossearth.train.defaults import follow_model, interval, model_config_of
from crossearth.weights import save_model

CPU = torch.device("cpu")


@pytest.fixture
def avx2_only(monkeypatch):
    """A CPU without native bf16 (no AMX, no AVX512-BF16), as an AVX2-only AMD EPYC."""
    monkeypatch.setattr(crossearth.runtime, "cpu_has_fast_bf16", lambda: False)


@pytest.fixture
def bf16_cpu(monkeypatch):
    monkeypatch.setattr(crossearth.runtime, "cpu_has_fast_bf16", lambda: True)


@pytest.fixture(scope="module")
def small_model_file(tmp_path_factory):
    """A vit-tiny-256 model file, as the demo leaves (crop 256)."""
    path = tmp_path_factory.mktemp("small") / "model.safetensors"
    torch.manual_seed(0)
    return save_model(CrossEarth(get_preset("vit-tiny-256", 6)), path)


def test_auto_precision_is_fp32_on_a_cpu_without_native_bf16(avx2_only):
    chosen, why = training_precision("auto", CPU)
    assert chosen == "32-true"
    assert why.startswith("precision 32-true (auto:") and "no native bf16" in why


def test_auto_precision_is_bf16_where_the_cpu_computes_it(bf16_cpu):
    chosen, why = training_precision("auto", CPU)
    assert chosen == "bf16-mixed" and "natively" in why


def test_auto_precision_on_a_gpu_follows_its_bf16_support(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert training_precision("auto", torch.device("cuda"))[0] == "bf16-mixed"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert training_precision("auto", torch.device("cuda"))[0] == "32-true"


def test_an_explicit_precision_is_kept_and_bf16_on_a_slow_cpu_is_warned(avx2_only):
    assert training_precision("bf16-mixed", CPU) == ("bf16-mixed", "")
    warning = slow_precision_warning("bf16-mixed", CPU)
    assert warning is not None and "32-true" in warning and "\n" not in warning
    assert slow_precision_warning("32-true", CPU) is None
    assert slow_precision_warning("bf16-mixed", torch.device("cuda")) is None


def test_no_warning_for_bf16_where_the_cpu_computes_it(bf16_cpu):
    assert slow_precision_warning("bf16-mixed", CPU) is None


def test_validation_interval_ends_on_the_last_step():
    for steps in (300, 80, 7, 1, 3000, 50):
        every = interval(steps)
        assert steps % every == 0  # the last step is a validation step
        assert steps // every <= 3  # about three validations, never more
    assert interval(300) == 100 and interval(80) == 40 and interval(7) == 7


def test_a_small_model_brings_its_crop_points_and_a_short_run_on_a_cpu():
    model = get_preset("vit-tiny-256")
    cfg, line = follow_model(TrainConfig(data="d.yaml"), set(), model, "cpu")
    assert cfg.crop == 256 and cfg.num_points == 3136  # 12544 * (256 / 512)^2
    assert cfg.max_steps == 300 and cfg.val_every == cfg.checkpoint_every == 100
    assert line is not None and "crop 256" in line and "max_steps 300" in line
    gpu, _ = follow_model(TrainConfig(data="d.yaml"), set(), model, "cuda")
    assert gpu.max_steps == 3000 and gpu.val_every == 1000


def test_options_the_user_gave_win():
    model = get_preset("vit-tiny-256")
    given = TrainConfig(data="d.yaml", crop=128, max_steps=80, val_every=5)
    cfg, _ = follow_model(given, {"crop", "max_steps", "val_every"}, model, "cpu")
    assert cfg.crop == 128 and cfg.num_points == 784  # points follow the crop given
    assert cfg.max_steps == 80 and cfg.val_every == 5 and cfg.checkpoint_every == 40


def test_vit_l_and_benchmark_settings_keep_the_official_recipe():
    official = TrainConfig(data="d.yaml")
    assert follow_model(official, set(), get_preset("vitl-512"), "cpu") == (official, None)
    setting = TrainConfig(setting="P(i)2V")
    assert follow_model(setting, set(), get_preset("vit-tiny-256"), "cpu")[1] is None


def test_model_config_is_read_from_a_model_file_header(small_model_file):
    cfg = model_config_of(str(small_model_file), "vitl-512")
    assert cfg is not None and cfg.backbone.embed_dim == 128
    assert model_config_of(None, "vit-tiny-256").backbone.embed_dim == 128
    assert model_config_of("potsdam-rgb", "vit-tiny-256").backbone.embed_dim == 1024


def test_train_from_a_small_model_file_on_a_cpu_without_bf16(
    avx2_only, small_model_file, monkeypatch, capsys
):
    code, out = cli(monkeypatch, capsys, "train", "--data", "d.yaml", "--init", small_model_file,
                    "--accelerator", "cpu", "--dump-config")  # fmt: skip
    assert code == 0, out
    comments = [line for line in out.splitlines() if line.startswith("#")]
    assert any("precision 32-true (auto:" in c for c in comments)
    cfg = yaml.safe_load(out)
    assert cfg["precision"] == "32-true" and cfg["crop"] == 256 and cfg["num_points"] == 3136
    assert cfg["max_steps"] == 300 and cfg["val_every"] == 100
    code, out = cli(monkeypatch, capsys, "train", "--data", "d.yaml", "--init", small_model_file, "--accelerator",
                    "cpu", "--precision", "bf16-mixed", "--set", "crop=128", "--dump-config")  # fmt: skip
    cfg = yaml.safe_load(out)
    assert cfg["precision"] == "bf16-mixed" and cfg["crop"] == 128 and cfg["num_points"] == 784
    assert "# warning: --precision bf16-mixed on a CPU without native bf16" in out


def test_lightning_accelerator_names_map_to_devices():
    from crossearth.runtime import training_device

    assert training_device("gpu").type == "cuda" and training_device("cuda").type == "cuda"
    assert training_device("cpu").type == "cpu"
    assert training_device("tpu").type == "cpu"  # unknown to torch: Lightning reports it
