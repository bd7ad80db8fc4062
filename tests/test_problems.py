"""Every problem of a configuration reported at once (`crossearth.problems`)."""

from __future__ import annotations

import pytest

from crossearth.errors import ConfigError
from crossearth.problems import Problems, unknown_keys
from crossearth.train.config import TrainConfig, load_config


def test_unknown_keys_suggest_near_misses_and_list_the_known_when_none_is_near():
    known = {"classes", "palette", "train"}
    assert unknown_keys(["clases", "train", "pallete"], known) == [
        "unknown key clases (did you mean classes?)",
        "unknown key pallete (did you mean palette?)",
    ]
    assert unknown_keys(["zzz"], known) == ["unknown key zzz (known: classes, palette, train)"]
    assert unknown_keys(["image"], {"images", "labels"}, where="val.") == [
        "unknown key val.image (did you mean val.images?)"
    ]
    assert unknown_keys(["train"], known) == []


def test_problems_make_one_line_error_and_strip_a_repeated_prefix():
    problems = Problems("d.yaml")
    assert not problems
    problems.add("d.yaml: first")
    problems.add("second")
    problems.add("second")  # the same problem once
    assert problems.check(int, "12") == 12

    def bad() -> None:
        raise ConfigError("d.yaml: third")

    assert problems.check(bad) is None
    with pytest.raises(ConfigError) as info:
        problems.raise_if_any()
    assert str(info.value) == "d.yaml: 3 problems: first; second; third"
    assert "\n" not in str(info.value)
    Problems("x").raise_if_any()  # nothing noted: no error


def test_training_config_reports_every_bad_key_and_value(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("max_stesp: 10\nlr: fast\nbatch_sise: 2\nfreeze_backbone: maybe\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, None)
    message = str(info.value)
    assert message.startswith(f"{path}: 4 problems: ")
    for part in ("max_stesp (did you mean max_steps?)", "batch_sise (did you mean batch_size?)",
                 "lr must be a number, got 'fast'", "freeze_backbone must be true or false"):  # fmt: skip
        assert part in message


def test_set_overrides_report_every_mistake():
    with pytest.raises(ConfigError) as info:
        TrainConfig().override(["lrr=1", "nonsense", "max_steps=many"])
    message = str(info.value)
    assert "3 problems" in message
    assert "--set: unknown training config key lrr (did you mean lr?)" in message
    assert "--set needs key=value, got 'nonsense'" in message
    assert "max_steps must be an integer, got 'many'" in message
