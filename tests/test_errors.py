"""The error classes: builtin bases Python users can catch, exported from `crossearth`."""

from __future__ import annotations

import pytest

import crossearth


@pytest.mark.parametrize(
    ("name", "builtin"),
    [
        ("CrossEarthError", Exception),
        ("InputError", ValueError),
        ("InputNotFoundError", FileNotFoundError),
        ("ConfigError", ValueError),
        ("UnknownNameError", KeyError),
        ("CheckpointError", ValueError),
        ("CheckpointNotFoundError", FileNotFoundError),
        ("WeightsUnavailableError", FileNotFoundError),
    ],
)
def test_error_classes_are_exported_and_subclass_builtins(name, builtin):
    cls = getattr(crossearth, name)
    assert name in crossearth.__all__
    assert issubclass(cls, builtin) and issubclass(cls, crossearth.CrossEarthError)
    assert str(cls("a clear message")) == "a clear message"  # not quoted, no errno


def test_unknown_preset_is_a_key_error_with_a_readable_message():
    with pytest.raises(KeyError) as info:
        crossearth.get_preset("vit-huge")
    assert isinstance(info.value, crossearth.UnknownNameError)
    assert str(info.value).startswith("unknown preset 'vit-huge'")


def test_missing_checkpoint_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a file nor a zoo model"):
        crossearth.load_model(tmp_path / "absent.safetensors")


def test_missing_image_is_a_file_not_found_error(tmp_path):
    net = crossearth.create_model("vit-tiny-256", num_classes=2)
    with pytest.raises(FileNotFoundError, match="input image not found") as info:
        crossearth.predict_raster(net, tmp_path / "absent.tif", tmp_path)
    assert isinstance(info.value, crossearth.InputError)


def test_bad_option_is_a_value_error():
    with pytest.raises(ValueError, match="--batch-size"):
        crossearth.PredictOptions(batch_size=0)


def test_public_functions_document_what_they_raise():
    from crossearth.geo.area import pixel_size_m
    from crossearth.geo.vectorize import vectorize_class_map
    from crossearth.predict.plan import plan_outputs

    for function in (
        crossearth.load_model, crossearth.predict_raster, crossearth.create_model,
        crossearth.get_preset, crossearth.save_model, crossearth.PredictOptions,
        plan_outputs, pixel_size_m, vectorize_class_map,
    ):  # fmt: skip
        assert "Raises:" in (function.__doc__ or ""), function.__qualname__
