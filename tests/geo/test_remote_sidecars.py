"""Remote inputs keep their sidecar files (issue 14): a raster served over HTTP is read as the
same local file is, world file (`.pgw`), external mask (`.msk`) and PAM file (`.aux.xml`)
included, for a bounded number of extra requests (GDAL probes only the sidecar names that
can matter, and caches the answers).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from cli_runner import run_cli_captured as run
from rasterio.crs import CRS
from rasterio.transform import from_origin
from remote_server import RangeServer

FAST = ("--precision", "fp32", "--device", "cpu", "--no-overlay", "-q")


@pytest.fixture(scope="module")
def model_file(varied_model_file):
    return varied_model_file


def pixels(seed: int, height: int = 70, width: int = 90) -> np.ndarray:
    base = np.random.default_rng(seed).integers(1, 256, (3, height // 16 + 1, width // 16 + 1))
    return np.kron(base, np.ones((1, 16, 16), np.int64))[:, :height, :width].astype(np.uint8)


def png_with_world_file(folder: Path) -> tuple[str, list[str]]:
    """A PNG placed by a `.pgw` world file, with band descriptions in its `.aux.xml`."""
    data = pixels(0)
    with rasterio.open(folder / "scene.png", "w", driver="PNG", height=70, width=90, count=3,
                       dtype="uint8") as dst:  # fmt: skip
        dst.write(data)
    (folder / "scene.pgw").write_text("0.5\n0\n0\n-0.5\n500000.25\n5800000.75\n")
    bands = "".join(
        f'<PAMRasterBand band="{i}"><Description>{name}</Description></PAMRasterBand>'
        for i, name in enumerate(("blue", "red", "green"), start=1)
    )
    (folder / "scene.png.aux.xml").write_text(f"<PAMDataset>{bands}</PAMDataset>")
    return "scene.png", ["scene.pgw", "scene.png.aux.xml"]


def tif_with_mask_file(folder: Path) -> tuple[str, list[str]]:
    """A GeoTIFF whose valid pixels are given by an external `.msk` file."""
    profile = {
        "driver": "GTiff", "height": 70, "width": 90, "count": 3, "dtype": "uint8",
        "crs": CRS.from_epsg(32632), "transform": from_origin(5e5, 5.8e6, 0.3, 0.3),
    }  # fmt: skip
    mask = np.full((70, 90), 255, np.uint8)
    mask[:, :40] = 0
    with (
        rasterio.Env(GDAL_TIFF_INTERNAL_MASK=False),
        rasterio.open(folder / "scene.tif", "w", **profile) as dst,
    ):
        dst.write(pixels(1))
        dst.write_mask(mask)
    assert (folder / "scene.tif.msk").exists()
    return "scene.tif", ["scene.tif.msk"]


@pytest.mark.parametrize("make", [png_with_world_file, tif_with_mask_file], ids=["pgw", "msk"])
def test_remote_file_with_sidecars_equals_the_local_file(
    monkeypatch, capsys, tmp_path, model_file, make
):
    served = tmp_path / "served"
    served.mkdir()
    name, sidecars = make(served)
    local_out, remote_out = tmp_path / "local", tmp_path / "remote"
    args = ("-m", model_file, *FAST, "--tile", "64", "--stride", "48")
    code, text = run(monkeypatch, capsys, "predict", served / name, "-o", local_out, *args)
    assert code == 0, text
    with RangeServer(served) as server:
        code, text = run(monkeypatch, capsys, "predict", server.url(name), "-o", remote_out, *args)
        assert code == 0, text
    local = json.loads(next(local_out.glob("*_summary.json")).read_text())
    remote = json.loads(next(remote_out.glob("*_summary.json")).read_text())
    assert remote["nodata_pixels"] == local["nodata_pixels"]
    names = sorted(p.name for p in local_out.iterdir() if not p.name.endswith("_summary.json"))
    assert names == sorted(
        p.name for p in remote_out.iterdir() if not p.name.endswith("_summary.json")
    )
    for file in names:
        assert (local_out / file).read_bytes() == (remote_out / file).read_bytes(), file
    fetched = {path for method, path, _ in server.requests if method == "GET"}
    assert {f"/{s}" for s in sidecars} <= fetched
    missing = [path for method, path, _ in server.requests if path.lstrip("/") not in
               {name, *sidecars}]  # fmt: skip
    print(f"{len(server.requests)} requests, {len(missing)} for absent sidecars: {missing}")
    assert len(missing) <= 4, missing
