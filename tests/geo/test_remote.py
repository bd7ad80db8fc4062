"""Remote inputs (issue 14): COGs behind HTTP, read window by window through GDAL.

A range-capable server on 127.0.0.1 (`remote_server.RangeServer`) serves a COG; the outputs of
a run on its URL must be the bytes of a run on the local file, a small window must cost far
fewer bytes than the file holds, and a missing URL or a refused connection must give one
`error:` line and exit 1, with a URL's query string (a token) never printed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from cli_runner import run_cli as run
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.windows import Window
from remote_server import RangeServer, closed_port

from crossearth.geo.raster import open_raster
from crossearth.geo.remote import gdal_path, is_remote, mask_text, mask_url
from crossearth.predict.plan import plan_outputs

FAST = ("--precision", "fp32", "--device", "cpu", "-q")
SECRET = "s3cr3t-t0ken"


@pytest.fixture(scope="module")
def model_file(varied_model_file):
    return varied_model_file


def write_cog(path, data: np.ndarray, block: int = 256):
    """A tiled, deflate-compressed Cloud-Optimized GeoTIFF (GDAL's COG driver) of [b, h, w]."""
    count, height, width = data.shape
    profile = {
        "driver": "GTiff", "height": height, "width": width, "count": count,
        "dtype": data.dtype.name, "crs": CRS.from_epsg(32632),
        "transform": from_origin(500_000.0, 5_800_000.0, 0.3, 0.3),
    }  # fmt: skip
    plain = path.with_name(f"plain_{path.name}")
    with rasterio.open(plain, "w", **profile) as dst:
        dst.write(data)
    rasterio.shutil.copy(plain, path, driver="COG", BLOCKSIZE=block, COMPRESS="DEFLATE")
    plain.unlink()
    return path


def blocky(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(1, 256, (3, height // 16 + 1, width // 16 + 1))
    return np.kron(base, np.ones((1, 16, 16), np.int64))[:, :height, :width].astype(np.uint8)


# ------------------------------------------------------------------ names and masking


def test_urls_are_remote_and_map_to_gdal_file_systems():
    assert gdal_path("https://h.example/a/b.tif") == "/vsicurl/https://h.example/a/b.tif"
    assert gdal_path("s3://bucket/key/b.tif") == "/vsis3/bucket/key/b.tif"
    assert gdal_path("gs://bucket/b.tif") == "/vsigs/bucket/b.tif"
    assert gdal_path("az://container/b.tif") == "/vsiaz/container/b.tif"
    assert gdal_path("/vsizip//data/a.zip/b.tif") == "/vsizip//data/a.zip/b.tif"
    assert is_remote("HTTPS://h/a.tif") and is_remote("/vsis3/b/k.tif")
    assert not is_remote("scene.tif") and not is_remote("https:/h/a.tif")


def test_credentials_are_masked_in_messages():
    url = f"https://user:pw@h.example/a.tif?X-Amz-Signature={SECRET}&b=1"
    assert mask_url(url) == "https://***@h.example/a.tif?***"
    assert mask_url(f"/vsicurl/{url}") == "/vsicurl/https://***@h.example/a.tif?***"
    text = mask_text(f"HTTP error 403 on {url}: denied")
    assert SECRET not in text and "pw" not in text and "h.example/a.tif" in text


def test_output_names_come_from_the_url_path():
    urls = [
        f"https://h.example/2020/tile_01.tif?sig={SECRET}",
        "https://h.example/2021/tile_01.tif",
        "s3://bucket/cogs/scene.tif",
    ]
    assert plan_outputs(urls, Path("/tmp/out")) == [
        "2020_tile_01",
        "2021_tile_01",
        "scene",
    ]


# ------------------------------------------------------------------ served over HTTP


def test_url_run_equals_local_run_byte_for_byte(monkeypatch, capsys, tmp_path, model_file):
    served = tmp_path / "served"
    served.mkdir()
    cog = write_cog(served / "scene.tif", blocky(300, 280, seed=3))
    local_out, remote_out = tmp_path / "local", tmp_path / "remote"
    args = ("-m", model_file, *FAST, "--confidence", "--tile", "128", "--stride", "96")
    assert run(monkeypatch, "predict", cog, "-o", local_out, *args) == 0
    with RangeServer(served) as server:
        url = server.url(f"scene.tif?token={SECRET}")
        assert run(monkeypatch, "predict", url, "-o", remote_out, *args) == 0
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    names = sorted(os.listdir(local_out))
    assert names == sorted(os.listdir(remote_out))
    assert "scene_classes.tif" in names and "scene_confidence.tif" in names
    for name in names:
        if name.endswith("_summary.json"):
            remote = json.loads((remote_out / name).read_text())
            assert SECRET not in json.dumps(remote)
            assert remote["input"].endswith("/scene.tif?***")
            continue
        assert (local_out / name).read_bytes() == (remote_out / name).read_bytes(), name
    # never downloaded in one piece: every GET asked for a byte range
    gets = [r for r in server.requests if r[0] == "GET" and r[1] == "/scene.tif"]
    assert gets and all(rng is not None for _, _, rng in gets)


def test_a_small_window_reads_far_fewer_bytes_than_the_file(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    noise = np.random.default_rng(0).integers(0, 256, (3, 1024, 1024), dtype=np.uint8)
    cog = write_cog(served / "big.tif", noise)
    size = cog.stat().st_size
    with RangeServer(served) as server, open_raster(server.url("big.tif")) as ds:
        window = ds.read(window=Window(600, 600, 64, 64))
    with rasterio.open(cog) as local:
        assert np.array_equal(window, local.read(window=Window(600, 600, 64, 64)))
    assert 0 < server.sent["/big.tif"] < size / 8, (server.sent["/big.tif"], size)
    print(f"served {server.sent['/big.tif']} of {size} bytes")


@pytest.mark.parametrize("kind", ["missing", "refused"])
def test_missing_url_or_refused_connection_is_one_error_line(
    monkeypatch, capsys, tmp_path, model_file, kind
):
    out = tmp_path / "out"
    if kind == "missing":
        with RangeServer(tmp_path) as server:
            url = server.url(f"nothing.tif?token={SECRET}")
            code = run(monkeypatch, "predict", url, "-m", model_file, "-o", out, *FAST)
    else:
        url = f"http://127.0.0.1:{closed_port()}/scene.tif?token={SECRET}"
        code = run(monkeypatch, "predict", url, "-m", model_file, "-o", out, *FAST)
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err and SECRET not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert ("/nothing.tif" if kind == "missing" else "/scene.tif") in errors[0], err
    print(errors[0])
    assert not out.exists() or os.listdir(out) == []
