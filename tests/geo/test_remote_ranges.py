"""A server without range requests (issue 22): one clear `error:` line, before GDAL reads.

The tests' server (`remote_server.RangeServer`, an `http.server` handler in a child process)
with `ranges=False` answers every GET with the whole file, as `python -m http.server` does.
A scene on it, small or large, as a URL or as the band assets of a STAC item, must stop the
run with one line that names the server, says "range requests" and how to serve files, with
nothing written and no whole-file read; the same files on a range-capable server open.
"""

from __future__ import annotations

import json
import os
from datetime import datetime

import numpy as np
import pytest
import rasterio
from cli_runner import run_cli as run
from rasterio.crs import CRS
from rasterio.transform import from_origin
from remote_server import RangeServer, closed_port

from crossearth.errors import InputError
from crossearth.geo.ranges import answers_range_requests
from crossearth.geo.raster import open_raster

FAST = ("--precision", "fp32", "--device", "cpu", "-q", "--no-overlay")
SECRET = "s3cr3t-t0ken"
PROFILE = {
    "driver": "GTiff", "dtype": "uint8", "crs": CRS.from_epsg(32632),
    "transform": from_origin(500_000.0, 5_800_000.0, 10.0, 10.0),
}  # fmt: skip


def write_tif(path, size: int, count: int = 3, seed: int = 0):
    data = np.random.default_rng(seed).integers(0, 256, (count, size, size), dtype=np.uint8)
    with rasterio.open(path, "w", height=size, width=size, count=count, tiled=size >= 256,
                       **PROFILE) as dst:  # fmt: skip
        dst.write(data)
    return path


def one_error(err: str) -> str:
    assert "Traceback" not in err and SECRET not in err
    errors = [line for line in err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error:"), err
    return errors[0]


@pytest.mark.parametrize("size", [64, 1024])  # smaller and larger than GDAL's first read
def test_predict_from_a_server_without_ranges_is_one_line(
    monkeypatch, capsys, tmp_path, varied_model_file, size
):
    served = tmp_path / "served"
    served.mkdir()
    write_tif(served / "scene.tif", size)
    out = tmp_path / "out"
    with RangeServer(served, ranges=False) as server:
        url = server.url(f"scene.tif?token={SECRET}")
        code = run(monkeypatch, "predict", url, "-m", varied_model_file, "-o", out, *FAST)
        requests = server.requests
    line = one_error(capsys.readouterr().err)
    assert code == 1
    assert f"http://127.0.0.1:{server.port}" in line and "/scene.tif?***" in line
    assert "range requests" in line and "RangeHTTPServer" in line
    # one request for one byte, answered with the whole file; GDAL never started reading
    assert requests == [("GET", "/scene.tif", "bytes=0-0")]
    assert not out.exists() or os.listdir(out) == []


def test_stac_assets_on_a_server_without_ranges_are_one_line(
    monkeypatch, capsys, tmp_path, varied_model_file
):
    pystac = pytest.importorskip("pystac", reason="STAC inputs need the optional pystac")
    served = tmp_path / "served"
    served.mkdir()
    item = pystac.Item("scene", geometry=None, bbox=None, datetime=datetime(2024, 6, 1),
                       properties={})  # fmt: skip
    for i, name in enumerate(("red", "green", "blue")):
        write_tif(served / f"B{i + 1}.tif", 128, count=1, seed=i)
        asset = pystac.Asset(f"./B{i + 1}.tif", media_type=pystac.MediaType.GEOTIFF)
        asset.extra_fields["eo:bands"] = [{"name": f"B{i + 1}", "common_name": name}]
        item.add_asset(f"B{i + 1}", asset)
    (served / "scene.json").write_text(json.dumps(item.to_dict(include_self_link=False)))
    out = tmp_path / "out"
    with RangeServer(served, ranges=False) as server:
        code = run(monkeypatch, "predict", server.url("scene.json"), "-m", varied_model_file,
                   "-o", out, *FAST)  # fmt: skip
    line = one_error(capsys.readouterr().err)
    assert code == 1 and "/B1.tif" in line and "range requests" in line
    assert not out.exists() or os.listdir(out) == []


def test_gdal_refusal_is_worded_the_same_when_the_check_has_no_verdict(monkeypatch, tmp_path):
    """Where the check cannot decide (e.g. credentials only GDAL has), GDAL's own refusal
    ("Range downloading not supported by this server!") becomes the same line."""
    import crossearth.geo.raster as raster

    monkeypatch.setattr(raster, "require_range_requests", lambda item: None)
    write_tif(tmp_path / "big.tif", 1024)
    with RangeServer(tmp_path, ranges=False) as server, pytest.raises(InputError) as err:
        open_raster(server.url("big.tif"))
    message = str(err.value)
    assert "does not support HTTP range requests" in message and "Range downloading" not in message


def test_the_check_asks_once_and_only_plain_http(tmp_path):
    write_tif(tmp_path / "a.tif", 64)
    with RangeServer(tmp_path) as good, RangeServer(tmp_path, ranges=False) as bad:
        assert answers_range_requests(good.url("a.tif")) is True
        assert answers_range_requests(f"/vsicurl/{bad.url('a.tif')}") is False
        assert answers_range_requests(bad.url("a.tif")) is False
        assert len(bad.requests) == 1  # the verdict is kept for the process
        assert answers_range_requests(bad.url("missing.tif")) is None  # 404: GDAL will say
        with open_raster(good.url("a.tif")) as ds:
            assert ds.read(1).shape == (64, 64)
    assert answers_range_requests(f"http://127.0.0.1:{closed_port()}/a.tif") is None
    for item in ("s3://bucket/a.tif", "/vsis3/bucket/a.tif", "/vsizip//x.zip/a.tif", "a.tif"):
        assert answers_range_requests(item) is None
