"""STAC items with one asset per band (issue 14), served from 127.0.0.1.

The item's band assets (single-band COGs, `eo:bands` common names) must give the class map
that the same pixels give from one local multi-band GeoTIFF, band choice by common name
(automatic for the model's layout, or `--bands nir,red,green`), and only the chosen bands'
assets are read.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from rasterio.crs import CRS
from rasterio.transform import from_origin
from remote_server import RangeServer

from crossearth.cli import main

pystac = pytest.importorskip(
    "pystac", reason="STAC inputs need pystac: pip install 'crossearth[stac]'"
)

FAST = ("--precision", "fp32", "--device", "cpu", "-q", "--no-overlay")
NAMES = ("red", "green", "blue", "nir")
PROFILE = {
    "driver": "GTiff", "height": 200, "width": 200, "dtype": "uint8",
    "crs": CRS.from_epsg(32632), "transform": from_origin(500_000.0, 5_800_000.0, 10.0, 10.0),
}  # fmt: skip


@pytest.fixture(scope="module")
def model_file(varied_model_file):
    return varied_model_file


def run(monkeypatch, capsys, *args) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["crossearth", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
        raise SystemExit(0)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.err


@pytest.fixture
def scene(tmp_path):
    """(served folder with item.json + one COG per band, local 4-band GeoTIFF, pixels)."""
    # noise: incompressible, so a band's file (40 kB) is larger than GDAL's first read (16 kB)
    data = np.random.default_rng(7).integers(1, 256, (4, 200, 200), dtype=np.uint8)
    served = tmp_path / "served"
    served.mkdir()
    item = pystac.Item(
        "scene", geometry=None, bbox=None, datetime=datetime(2024, 6, 1),
        properties={},
    )  # fmt: skip
    for i, name in enumerate(NAMES):
        plain = tmp_path / f"{name}_plain.tif"
        with rasterio.open(plain, "w", count=1, **PROFILE) as dst:
            dst.write(data[i : i + 1])
        rasterio.shutil.copy(plain, served / f"B{i + 1}.tif", driver="COG", BLOCKSIZE=64)
        asset = pystac.Asset(f"./B{i + 1}.tif", media_type=pystac.MediaType.COG)
        asset.extra_fields["eo:bands"] = [{"name": f"B{i + 1}", "common_name": name}]
        item.add_asset(f"B{i + 1}", asset)
    item.add_asset("thumbnail", pystac.Asset("./thumb.png", media_type=pystac.MediaType.PNG))
    (served / "scene.json").write_text(json.dumps(item.to_dict(include_self_link=False)))
    local = tmp_path / "local" / "scene.tif"
    local.parent.mkdir()
    with rasterio.open(local, "w", count=4, **PROFILE) as dst:
        dst.write(data)
    return served, local


def test_stac_item_over_http_equals_the_local_stack(monkeypatch, capsys, tmp_path, model_file,
                                                     scene):  # fmt: skip
    served, local = scene
    args = ("-m", model_file, *FAST)
    assert run(monkeypatch, capsys, "predict", local, "-o", tmp_path / "a", "--bands", "1,2,3",
               *args)[0] == 0  # fmt: skip
    with RangeServer(served) as server:
        code, err = run(monkeypatch, capsys, "predict", server.url("scene.json"),
                        "-o", tmp_path / "b", *args)  # fmt: skip
        assert code == 0, err
        assert server.sent["/B4.tif"] < server.sent["/B1.tif"] / 2  # nir: header only
    for name in ("scene_classes.tif", "scene_preview.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    summary = json.loads((tmp_path / "b" / "scene_summary.json").read_text())
    assert summary["bands"] == [1, 2, 3]


def test_bands_by_common_name(monkeypatch, capsys, tmp_path, model_file, scene):
    served, local = scene
    args = ("-m", model_file, *FAST)
    assert run(monkeypatch, capsys, "predict", local, "-o", tmp_path / "a", "--bands", "4,1,2",
               *args)[0] == 0  # fmt: skip
    code, err = run(monkeypatch, capsys, "predict", served / "scene.json", "-o", tmp_path / "b",
                    "--bands", "nir,red,green", *args)  # fmt: skip
    assert code == 0, err
    a, b = tmp_path / "a" / "scene_classes.tif", tmp_path / "b" / "scene_classes.tif"
    assert a.read_bytes() == b.read_bytes()
    code, err = run(monkeypatch, capsys, "predict", served / "scene.json", "-o", tmp_path / "c",
                    "--bands", "swir,red,green", *args)  # fmt: skip
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 1 and "swir" in errors[0] and "nir" in errors[0], err


def test_missing_asset_or_item_is_one_error_line(monkeypatch, capsys, tmp_path, model_file,
                                                 scene):  # fmt: skip
    served, _ = scene
    (served / "B2.tif").unlink()
    out = tmp_path / "out"
    with RangeServer(served) as server:
        for url, needle in ((server.url("scene.json"), "B2"), (server.url("gone.json"), "gone")):
            code, err = run(monkeypatch, capsys, "predict", url, "-m", model_file, "-o", out,
                            *FAST)  # fmt: skip
            errors = [line for line in err.splitlines() if line.startswith("error:")]
            assert code == 1 and len(errors) == 1 and needle in errors[0], err
            assert "Traceback" not in err
    assert not out.exists() or os.listdir(out) == []


def test_item_collection_is_a_list_of_scenes_named_by_item_id(
    monkeypatch, capsys, tmp_path, model_file, scene
):
    served, _ = scene
    item = json.loads((served / "scene.json").read_text())
    features = [{**item, "id": "S2A_0001"}, {**item, "id": "S2B_0002"}]
    collection = served / "items.json"
    collection.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    args = ("-m", model_file, *FAST)
    code, err = run(monkeypatch, capsys, "predict", collection, "-o", tmp_path / "many", *args)
    assert code == 0, err
    code, err = run(monkeypatch, capsys, "predict", served / "scene.json", "-o", tmp_path / "one",
                    *args)  # fmt: skip
    assert code == 0, err
    single = (tmp_path / "one" / "scene_classes.tif").read_bytes()
    for name in ("S2A_0001", "S2B_0002"):
        assert (tmp_path / "many" / f"{name}_classes.tif").read_bytes() == single


def test_earth_search_like_item_duplicates_and_coarser_bands(
    monkeypatch, capsys, tmp_path, model_file, scene
):
    """`red-jp2` beside `red` (the GeoTIFF is read; the .jp2 does not even exist here) and more
    bands at half the resolution than at full: the stack is on the red band's grid."""
    served, _ = scene
    item = json.loads((served / "scene.json").read_text())
    coarse = {**PROFILE, "height": 100, "width": 100}
    coarse["transform"] = from_origin(500_000.0, 5_800_000.0, 20.0, 20.0)
    with rasterio.open(served / "coarse.tif", "w", count=1, **coarse) as dst:
        dst.write(np.ones((1, 100, 100), np.uint8))
    for k in range(5):
        item["assets"][f"B1{k}"] = {
            "href": "./coarse.tif", "type": "image/tiff",
            "eo:bands": [{"name": f"B1{k}", "common_name": f"rededge{k}"}],
        }  # fmt: skip
    item["assets"]["red-jp2"] = {
        "href": "./missing.jp2", "type": "image/jp2",
        "eo:bands": [{"name": "B04", "common_name": "red"}],
    }  # fmt: skip
    (served / "es.json").write_text(json.dumps(item))
    args = ("-m", model_file, *FAST)
    code, err = run(monkeypatch, capsys, "predict", served / "scene.json", "-o", tmp_path / "a",
                    *args)  # fmt: skip
    assert code == 0, err
    code, err = run(monkeypatch, capsys, "predict", served / "es.json", "-o", tmp_path / "b", *args)
    assert code == 0, err
    a, b = tmp_path / "a" / "scene_classes.tif", tmp_path / "b" / "es_classes.tif"
    assert a.read_bytes() == b.read_bytes()


def test_collection_items_and_urls_are_named_by_item_id_and_path(tmp_path):
    from crossearth.predict.plan import plan_outputs

    inputs = [
        tmp_path / "items.json#S2A_1",
        tmp_path / "items.json#S2B_2",
        "https://h.example/stac/items.json#L8_3",
        "https://h.example/stac/S2C_4.json?sig=x",
    ]
    assert plan_outputs(inputs, tmp_path / "out") == ["S2A_1", "S2B_2", "L8_3", "S2C_4"]
