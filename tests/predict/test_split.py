"""One scene split into parts (bands of window rows), run as tasks of their own and
assembled: the outputs are the single-process outputs byte for byte.

The reference is always a whole run of the same command without `--parts` in a fresh folder;
the tests compare file bytes, never values computed by the code under test.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run_cli
from geotiff import write_geotiff
from rasterio.crs import CRS
from rasterio.transform import from_origin

from crossearth.errors import InputError
from crossearth.predict import split
from crossearth.predict.split import auto_parts, part_rows

UTM = CRS.from_epsg(32632)
FAST = ("--precision", "fp32", "--device", "cpu", "--tile", "96", "--stride", "64")


@pytest.fixture(scope="module")
def model_file(named_model_file):
    return named_model_file


def scene(path: Path, height: int = 300, width: int = 150, *, georef: bool = True) -> Path:
    """Blocky RGB with a nodata band across the top (whole windows skipped) and a hole."""
    rng = np.random.default_rng(7)
    base = rng.integers(1, 256, (3, height // 16 + 1, width // 16 + 1))
    data = np.kron(base, np.ones((1, 16, 16), np.int64))[:, :height, :width].astype(np.uint8)
    data[:, :100] = 0
    data[:, 200:230, 40:90] = 0
    if not georef:
        return write_geotiff(path, data, nodata=0)
    transform = from_origin(500_000.0, 5_800_000.0, 0.25, 0.25)
    return write_geotiff(path, data, crs=UTM, transform=transform, nodata=0)


def files_of(folder: Path) -> dict[str, object]:
    """Every output file's bytes by name; the summary (it holds timings) left out, and a
    GeoPackage by its features (the file records when it was written)."""
    from pyogrio.raw import read

    out: dict[str, object] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix == ".gpkg":
            meta, _, geometry, fields = read(p)
            out[p.name] = (meta["crs"], list(geometry), [f.tolist() for f in fields])
        elif p.is_file() and not p.name.endswith("_summary.json"):
            out[p.name] = p.read_bytes()
    return out


def summary_of(folder: Path, stem: str = "scene") -> dict:
    return json.loads((folder / f"{stem}_summary.json").read_text())


# ---------------------------------------------------------------------------------------------
# the plan


def test_part_rows_tile_the_scene_in_order():
    for height, parts in [(700, 2), (701, 3), (5, 5), (1000, 7)]:
        rows = part_rows(height, parts)
        assert len(rows) == parts and rows[0][0] == 0 and rows[-1][1] == height
        assert all(a < b for a, b in rows)
        assert all(rows[k][1] == rows[k + 1][0] for k in range(parts - 1))
        sizes = [b - a for a, b in rows]
        assert max(sizes) - min(sizes) <= 1
    with pytest.raises(InputError, match="cannot split 3 rows into 4 parts"):
        part_rows(3, 4)


def test_auto_splits_only_a_scene_that_would_hold_its_process_back():
    assert auto_parts([100], [10], world=1) == [1]
    assert auto_parts([100], [10], world=2) == [2]
    assert auto_parts([100], [1], world=4) == [1]  # one row of windows cannot be split
    assert auto_parts([10] * 6, [3] * 6, world=2) == [1] * 6  # many even scenes: whole
    assert auto_parts([900, 10, 10, 10, 10], [30] + [3] * 4, world=4) == [4, 1, 1, 1, 1]


# ---------------------------------------------------------------------------------------------
# one process, several parts


@pytest.mark.parametrize(
    "extra,georef",
    [
        (("--confidence", "--cog", "--vector", "gpkg"), True),
        (("--blend", "gaussian"), True),
        ((), False),  # a PNG class map with a world file: no CRS
    ],
)
def test_parts_in_one_process_equal_the_whole_run(monkeypatch, tmp_path, model_file, extra, georef):
    src = scene(tmp_path / "scene.tif", georef=georef)
    whole, parted = tmp_path / "whole", tmp_path / "parted"
    assert (
        run_cli(monkeypatch, "predict", src, "-m", model_file, "-o", whole, *FAST, "-q", *extra)
        == 0
    )
    code = run_cli(
        monkeypatch, "predict", src, "-m", model_file, "-o", parted, *FAST, "-q", "--parts", "3", *extra
    )  # fmt: skip
    assert code == 0
    expected = files_of(whole)
    assert expected == files_of(parted)
    assert ("scene_classes.tif" in expected) == georef
    a, b = summary_of(whole), summary_of(parted)
    for key in ("windows", "skipped_windows", "nodata_pixels", "classes", "size"):
        assert a[key] == b[key], key
    assert a["skipped_windows"] > 0
    assert b["parts"] == 3 and b["windows_run"] > b["windows"]
    # the parts are gone once the scene is recorded
    assert sorted(os.listdir(parted / ".crossearth")) == ["scenes"]


def test_match_gsd_scene_in_parts_equals_the_whole_run(monkeypatch, tmp_path, model_file):
    """Parts run on the model's grid (resampled from 0.25 m to the model's 0.3 m)."""
    src = scene(tmp_path / "scene.tif")
    args = ("predict", src, "-m", model_file, *FAST, "-q", "--match-gsd")
    assert run_cli(monkeypatch, *args, "-o", tmp_path / "whole") == 0
    assert run_cli(monkeypatch, *args, "-o", tmp_path / "parted", "--parts", "2") == 0
    assert files_of(tmp_path / "whole") == files_of(tmp_path / "parted")


def test_a_run_killed_between_parts_resumes_with_the_missing_parts(
    monkeypatch, capsys, tmp_path, model_file
):
    src = scene(tmp_path / "scene.tif")
    out = tmp_path / "out"
    args = ("predict", src, "-m", model_file, "-o", out, *FAST, "--parts", "3", "--confidence")
    ran: list[int] = []
    real = split.predict_part

    def interrupted(model, image, classes, options, index, parts, **kw):
        if len(ran) == 2:
            raise KeyboardInterrupt  # Ctrl-C during the third part
        ran.append(index)
        return real(model, image, classes, options, index, parts, **kw)

    monkeypatch.setattr(split, "predict_part", interrupted)
    assert run_cli(monkeypatch, *args) == 130
    assert ran == [0, 1]
    assert not (out / "scene_classes.tif").exists()
    # two finished parts (rows and confidence) with their records, nothing half-written
    kept = sorted(p.name for p in (out / ".crossearth" / "parts" / "scene").iterdir())
    assert [re.sub(r"^\w+-", "", name) for name in kept] == [
        "part1of3.confidence.tif", "part1of3.json", "part1of3.tif",
        "part2of3.confidence.tif", "part2of3.json", "part2of3.tif",
    ]  # fmt: skip

    ran.clear()
    monkeypatch.setattr(split, "predict_part", lambda *a, **kw: ran.append(a[4]) or real(*a, **kw))
    capsys.readouterr()
    assert run_cli(monkeypatch, *args) == 0
    assert ran == [2], "only the missing part runs again"
    assert "assembled from 3 parts" in capsys.readouterr().err
    whole = tmp_path / "whole"
    assert run_cli(monkeypatch, "predict", src, "-m", model_file, "-o", whole, *FAST, "-q",
                   "--confidence") == 0  # fmt: skip
    assert files_of(whole) == files_of(out)
    # run again: the scene is done, nothing runs
    ran.clear()
    assert run_cli(monkeypatch, *args) == 0
    assert ran == []


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_bad_parts_value_is_one_error_line(monkeypatch, capsys, tmp_path, model_file, value):
    src = scene(tmp_path / "scene.tif", 64, 64)
    code = run_cli(
        monkeypatch, "predict", src, "-m", model_file, "-o", tmp_path / "o", "--parts", value
    )
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        f"error: --parts must be auto or a whole number >= 1, got {value!r}"
    ]
    assert not (tmp_path / "o").exists()
