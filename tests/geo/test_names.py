"""Output names valid on every file system (issue 22): no colon from a port or a STAC id, no
character or name that Windows or an SMB share refuses, whatever the input's name holds.

`windows_problems` below states Windows' naming rules independently of the code under test
(Microsoft's "Naming Files, Paths, and Namespaces"); every derived name must pass it.
"""

from __future__ import annotations

import json
import os
import string
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from cli_runner import run_cli as run
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.crs import CRS
from rasterio.transform import from_origin
from remote_server import RangeServer

from crossearth.errors import InputError
from crossearth.geo.names import MAX_BYTES, safe_name
from crossearth.predict.plan import OutputPaths, plan_outputs

FAST = ("--precision", "fp32", "--device", "cpu", "-q", "--no-overlay")
DEVICES = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{d}" for p in ("COM", "LPT") for d in "123456789"}
ENDINGS = ("_classes.tif", "_confidence.tif", "_preview.png", "_overlay.png", "_summary.json",
           ".gpkg", ".geojson")  # fmt: skip


def windows_problems(name: str) -> list[str]:
    """What makes `name` invalid as a file name on Windows / SMB (empty list: valid)."""
    problems = [f"character {c!r}" for c in name if c in '<>:"/\\|?*' or ord(c) < 32]
    if not name:
        problems.append("empty")
    if name.endswith((".", " ")):
        problems.append("ends with a dot or a space")
    if name.split(".", 1)[0].rstrip(" ").upper() in DEVICES:
        problems.append("reserved device name")
    if len(name.encode("utf-8")) > 255:
        problems.append("longer than 255 bytes")
    return problems


def all_names(stem: str) -> list[str]:
    return [f"{stem}{ending}" for ending in ENDINGS]


@pytest.mark.parametrize(
    "text",
    ["127.0.0.1:8000_scene", "S2A_MSIL2A_20240601T10:30:00", 'a<b>c"d|e?f*g', "x\\y",
     "tab\there", "bell\x07", "del\x7f", "scene. ", "scene...", "CON", "nul", "Com3.2020",
     "lpt9 ", "aux.tif", "é" * 300, "a:" * 200, ":", "..", " "],
)  # fmt: skip
def test_every_derived_name_is_valid_on_windows(text):
    stem = safe_name(text)
    for name in all_names(stem):
        assert windows_problems(name) == [], (text, name)
    assert len(stem.encode("utf-8")) <= MAX_BYTES


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_any_text_gives_a_valid_name(text):
    stem = safe_name(text)
    for name in all_names(stem):
        assert windows_problems(name) == [], (text, name)


@pytest.mark.parametrize(
    "name", ["scene", "T32UPU_2020-06-01", "tile (1)", "Ortho.2019.rgb", "Überflug_ß", "a__b"]
)
def test_safe_names_are_kept_as_they_are(name):
    assert safe_name(name) == name


def test_long_names_are_cut_and_stay_apart():
    a, b = "x" * 250 + "a", "x" * 250 + "b"
    assert safe_name(a) != safe_name(b)
    assert safe_name(a).startswith("x" * 100)


def test_planned_names_from_urls_ports_and_stac_ids_are_safe_and_distinct():
    inputs = [
        "http://127.0.0.1:8000/x.tif",
        "http://127.0.0.1:8001/x.tif",  # same name on another port: told apart by the host
        "https://h.example/cogs/a%3Ab.tif?sig=1",  # %3A is a colon in the file's name
        "https://h.example/2020/a_b.tif",  # becomes the same name: told apart by the folder
        "https://h.example/items.json#S2A_T32UPU_20240601T10:30:00",
        "/vsizip//data/tiles.zip/NUL.tif",
        "/vsicurl/https://h.example/q/what%3F%2A.tif",
    ]
    stems = plan_outputs(inputs, Path("/tmp/out"))
    assert len({s.casefold() for s in stems}) == len(stems), stems
    for stem in stems:
        for name in all_names(stem):
            assert windows_problems(name) == [], (stem, name)
    assert stems[2:5] == ["cogs_a_b", "2020_a_b", "S2A_T32UPU_20240601T10_30_00"]
    # names equal once made safe, in one folder: refused before anything is written
    with pytest.raises(InputError, match=r"a:b\.tif and .*a_b\.tif would both write"):
        plan_outputs(["https://h.example/a%3Ab.tif", "https://h.example/a_b.tif"], Path("/o"))


def test_a_python_call_without_a_stem_gets_a_safe_one(tmp_path):
    paths = OutputPaths.for_input(Path("/data/con.tif"), tmp_path, "gpkg", png=False)
    for path in paths.all():
        assert windows_problems(path.name) == [], path


def write_tif(path: Path) -> Path:
    data = np.random.default_rng(0).integers(0, 256, (3, 64, 64), dtype=np.uint8)
    profile = {"driver": "GTiff", "height": 64, "width": 64, "count": 3, "dtype": "uint8",
               "crs": CRS.from_epsg(32632), "transform": from_origin(5e5, 5.8e6, 1.0, 1.0)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def test_predict_writes_safe_names_for_a_url_and_stac_ids(
    monkeypatch, capsys, tmp_path, varied_model_file
):
    pystac = pytest.importorskip("pystac", reason="STAC inputs need the optional pystac")
    served = tmp_path / "served"
    served.mkdir()
    write_tif(served / "T10:30.tif")  # a colon is allowed on Linux, not on Windows or SMB
    item = pystac.Item("x", geometry=None, bbox=None, datetime=datetime(2024, 6, 1), properties={})
    for i, name in enumerate(("red", "green", "blue")):
        asset = pystac.Asset("./T10:30.tif", media_type=pystac.MediaType.GEOTIFF)
        asset.extra_fields["eo:bands"] = [{"name": f"B{i}", "common_name": name}]
        item.add_asset(name, asset)
    feature = item.to_dict(include_self_link=False)
    ids = ["S2A_20240601T10:30:00", "CON"]
    collection = {"type": "FeatureCollection", "features": [{**feature, "id": i} for i in ids]}
    (served / "items.json").write_text(json.dumps(collection))
    out = tmp_path / "out"
    code = run(monkeypatch, "predict", served / "items.json", "-m", varied_model_file,
               "-o", out, "--vector", "gpkg", *FAST)  # fmt: skip
    assert code == 0, capsys.readouterr().err
    with RangeServer(served) as server:
        code = run(monkeypatch, "predict", server.url("T10%3A30.tif"), "-m", varied_model_file,
                   "-o", out, *FAST)  # fmt: skip
    assert code == 0, capsys.readouterr().err
    written = sorted(os.listdir(out))
    for name in written:
        assert windows_problems(name) == [], name
    for stem in ("S2A_20240601T10_30_00", "CON_", "T10_30"):
        assert f"{stem}_classes.tif" in written, written
    assert "CON_.gpkg" in written
    assert set("".join(written)) <= set(string.ascii_letters + string.digits + "_.-")
