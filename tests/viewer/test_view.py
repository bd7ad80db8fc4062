"""`crossearth view` without a browser: layers and tiles in the right place, legends, the CLI's
failures, `predict --map`, `crossearth.show` and the loopback server."""

from __future__ import annotations

import base64
import copy
import dataclasses
import html
import io
import json
import math
import os
import re
import urllib.request

import numpy as np
import pytest
import rasterio
from cli_runner import run_cli as run
from PIL import Image
from rasterio.transform import from_origin
from rasterio.warp import transform
from viewer_scenes import NAMES, ORIGIN, PALETTE, UTM, make_outputs

import crossearth
from crossearth.errors import InputError
from crossearth.viewer import show, write_map
from crossearth.viewer.layers import lookup_layers
from crossearth.viewer.scene import find_scenes
from crossearth.viewer.serve import start_server
from crossearth.viewer.tiles import write_pyramid

R = 6378137.0  # the Web Mercator sphere
QUADRANT_CENTRES = {0: (150, 100), 1: (450, 100), 2: (150, 300), 3: (450, 300)}  # (col, row)


def lonlat_of(col: float, row: float, gsd: float = 1.0) -> tuple[float, float]:
    (lon,), (lat,) = transform(UTM, "EPSG:4326", [ORIGIN[0] + col * gsd], [ORIGIN[1] - row * gsd])
    return lon, lat


def test_lookup_grid_puts_classes_and_confidence_in_place(tmp_path):
    make_outputs(tmp_path, height=400, width=600)
    layers = lookup_layers(find_scenes(tmp_path)[0], max_size=256)
    grid = layers.grid
    assert grid.mercator and max(grid.width, grid.height) <= 256
    for quadrant, (col, row) in QUADRANT_CENTRES.items():
        lon, lat = lonlat_of(col, row)
        x = R * math.radians(lon)
        y = R * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))
        c, r = int((x - grid.x0) / grid.dx), int((grid.y0 - y) / grid.dy)
        assert layers.classes[r, c] == quadrant
        assert layers.confidence[r, c] == 10 + 20 * quadrant
        assert layers.image[r, c, 3] == 255
        assert tuple(layers.image[r, c, :3]) == (30 + 40 * quadrant, 200 - 30 * quadrant, 90)
    assert (layers.classes == 255).any()  # the rotated UTM footprint leaves empty corners


def slippy(lon: float, lat: float, z: int) -> tuple[int, int, int, int]:
    """(tile x, tile y, pixel column, pixel row) of a point at zoom z (the OSM tile scheme)."""
    n = 2**z
    fx = (lon + 180.0) / 360.0 * n
    fy = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n
    return int(fx), int(fy), int((fx % 1) * 256), int((fy % 1) * 256)


def test_tile_pyramid_holds_each_class_where_the_map_has_it(tmp_path):
    make_outputs(tmp_path, height=400, width=600, gsd=0.5)
    folder = tmp_path / "tiles"
    folder.mkdir()
    pyramid = write_pyramid(find_scenes(tmp_path)[0], folder)
    # 0.5 m in UTM at 52.5 N is 0.82 m of Web Mercator: zoom 18 (0.60 m) is the closest
    assert pyramid.zmax == 18 and pyramid.image
    assert pyramid.zmin < pyramid.zmax
    for z in (pyramid.zmax, pyramid.zmin):
        for quadrant, (col, row) in QUADRANT_CENTRES.items():
            lon, lat = lonlat_of(col, row, gsd=0.5)
            tx, ty, px, py = slippy(lon, lat, z)
            with Image.open(folder / "classes" / str(z) / str(tx) / f"{ty}.png") as im:
                assert im.mode == "P"
                assert im.getpixel((px, py)) == quadrant
                assert tuple(im.getpalette()[3 * quadrant : 3 * quadrant + 3]) == PALETTE[quadrant]
            with Image.open(folder / "image" / str(z) / str(tx) / f"{ty}.png") as im:
                r, g, b, a = im.getpixel((px, py))
                assert (r, g, b, a) == (30 + 40 * quadrant, 200 - 30 * quadrant, 90, 255)
            if z == pyramid.zmax:  # the pointer read-out's class and confidence
                script = (folder / "lookup" / str(z) / str(tx) / f"{ty}.js").read_text()
                key, uri = re.fullmatch(r'crossearthLookup\("(.*)","(.*)"\);\n', script).groups()
                assert key == f"{z}/{tx}/{ty}"
                png = base64.b64decode(uri.removeprefix("data:image/png;base64,"))
                with Image.open(io.BytesIO(png)) as im:
                    assert im.getpixel((px, py))[:2] == (quadrant, 10 + 20 * quadrant)
    top = list((folder / "classes" / str(pyramid.zmin)).rglob("*.png"))
    assert 1 <= len(top) <= 4  # the scene fits in one tile at the coarsest level (2 x 2 if cut)


def test_legend_without_summary_is_computed_from_the_class_map(tmp_path):
    make_outputs(tmp_path, height=400, width=600, summary=False)
    scene = find_scenes(tmp_path)[0]
    assert scene.class_names == list(NAMES)
    assert scene.palette == list(PALETTE)
    legend = scene.legend()
    # a quadrant is 200 x 300 pixels of 1 m x 1 m of map: 6 ha of map area; legends give ground
    # area, which the UTM scale factor (0.9996 on the central meridian) moves by well under 0.1 %
    assert [row["area_ha"] for row in legend] == pytest.approx([6.0, 6.0, 6.0, 6.0, 0.0], rel=1e-3)
    assert [row["share"] for row in legend] == pytest.approx([0.25] * 4 + [0.0])
    assert scene.image is None and any("summary" in note for note in scene.notes)


def test_page_is_self_contained(tmp_path):
    make_outputs(tmp_path)
    page = write_map(tmp_path)[0].read_text()
    assert "Leaflet 1.9.4" in page  # the licence header of the inlined library
    assert "<link" not in page and "<script src" not in page
    assert not [u for u in re.findall(r"url\((?!data:)[^)]*\)", page) if "#" not in u]


def assert_error(code, stderr: str, *needles: str) -> None:
    assert code not in (0, None), stderr
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    for needle in needles:
        assert needle in errors[0], stderr


def test_cli_refuses_bad_inputs(monkeypatch, capsys, tmp_path):
    assert_error(run(monkeypatch, "view", tmp_path / "nope"), capsys.readouterr().err, "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    code = run(monkeypatch, "view", empty)
    assert_error(code, capsys.readouterr().err, "no class maps")
    out = tmp_path / "out"
    make_outputs(out)
    code = run(monkeypatch, "view", out / "scene.tif")  # the input image, not a class map
    assert_error(code, capsys.readouterr().err, "not a class map")
    code = run(monkeypatch, "view", out, "-o", out / "map.txt")
    assert_error(code, capsys.readouterr().err, ".html")
    make_outputs(out, stem="second")
    code = run(monkeypatch, "view", out, "-o", out / "map.html")
    assert_error(code, capsys.readouterr().err, "2 class maps")
    assert sorted(p.name for p in out.iterdir() if "map" in p.name) == []
    plain = tmp_path / "plain"
    make_outputs(plain, crs=None)
    code = run(monkeypatch, "view", plain, "--tiles")
    assert_error(code, capsys.readouterr().err, "no CRS")
    assert not (plain / "scene_map.html").exists() and not (plain / "scene_map_files").exists()


def test_cli_never_replaces_a_foreign_file(monkeypatch, capsys, tmp_path):
    make_outputs(tmp_path)
    mine = tmp_path / "scene_map.html"
    mine.write_text("<html>my notes</html>")
    assert_error(run(monkeypatch, "view", tmp_path), capsys.readouterr().err, "not replaced")
    assert mine.read_text() == "<html>my notes</html>"
    mine.unlink()
    (tmp_path / "scene_map_files").mkdir()
    (tmp_path / "scene_map_files" / "photo.jpg").write_bytes(b"x")
    code = run(monkeypatch, "view", tmp_path, "--tiles")
    assert_error(code, capsys.readouterr().err, "not replaced")
    assert (tmp_path / "scene_map_files" / "photo.jpg").read_bytes() == b"x"
    assert not mine.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cli_rewrites_its_own_map_and_drops_unused_tiles(monkeypatch, capsys, tmp_path):
    make_outputs(tmp_path)
    assert run(monkeypatch, "view", tmp_path, "--tiles", "-q") == 0
    assert (tmp_path / "scene_map_files" / "crossearth-tiles.json").is_file()
    assert '"tiles":{' in (tmp_path / "scene_map.html").read_text()
    assert run(monkeypatch, "view", tmp_path) == 0
    assert "scene_map.html" in capsys.readouterr().err
    assert not (tmp_path / "scene_map_files").exists()
    assert '"tiles":null' in (tmp_path / "scene_map.html").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_show_embeds_the_same_page(tmp_path):
    classes = make_outputs(tmp_path)
    view = crossearth.show(classes)
    markup = view._repr_html_()
    assert markup.startswith("<iframe srcdoc=")
    srcdoc = html.unescape(markup.split('srcdoc="', 1)[1].split('" style=', 1)[0])
    assert srcdoc == view.page
    config = json.loads(srcdoc.split('id="ce-config">', 1)[1].split("</script>", 1)[0])
    assert [c["name"] for c in config["classes"]] == list(NAMES)
    assert config["tiles"] is None and config["image"].startswith("data:image/webp")
    summary = json.loads((tmp_path / "scene_summary.json").read_text())
    assert show(summary).page.count("ce-config") == view.page.count("ce-config")
    make_outputs(tmp_path, stem="other")
    with pytest.raises(InputError, match="2 class maps"):
        show(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if "map" in p.name) == []


def test_server_is_on_loopback_and_serves_the_folder(tmp_path):
    page = write_map(make_outputs(tmp_path))[0]
    server, url = start_server(tmp_path)
    try:
        assert server.server_address[0] == "127.0.0.1"
        with urllib.request.urlopen(url + page.name, timeout=10) as response:
            assert response.read() == page.read_bytes()
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def model_file(varied_model, tmp_path_factory):
    net = copy.deepcopy(varied_model)
    net.config = dataclasses.replace(net.config, class_names=NAMES, palette=PALETTE)
    path = tmp_path_factory.mktemp("model") / "varied.safetensors"
    crossearth.save_model(net, path)
    return path


def test_predict_map_writes_the_map_of_each_result(monkeypatch, capsys, tmp_path, model_file):
    image = tmp_path / "field.tif"
    rng = np.random.default_rng(0)
    data = np.kron(rng.integers(1, 256, (3, 7, 7)), np.ones((1, 16, 16))).astype(np.uint8)
    with rasterio.open(
        image, "w", driver="GTiff", height=112, width=112, count=3, dtype="uint8",
        crs=UTM, transform=from_origin(*ORIGIN, 0.3, 0.3),
    ) as dst:  # fmt: skip
        dst.write(data)
    out = tmp_path / "out"
    args = ("predict", image, "-m", model_file, "-o", out, "--precision", "fp32", "--device", "cpu")
    assert run(monkeypatch, *args, "--map", "--confidence", "-q") == 0
    page = (out / "field_map.html").read_text()
    config = json.loads(page.split('id="ce-config">', 1)[1].split("</script>", 1)[0])
    summary = json.loads((out / "field_summary.json").read_text())
    assert [c["pixels"] for c in config["classes"]] == [c["pixels"] for c in summary["classes"]]
    assert config["confidence"] and config["image"] is not None
    assert sorted(os.listdir(out)) == sorted(
        ["field_classes.tif", "field_confidence.tif", "field_map.html", "field_overlay.png",
         "field_preview.png", "field_summary.json"]
    )  # fmt: skip


def test_cli_open_opens_the_page(monkeypatch, tmp_path):
    make_outputs(tmp_path)
    opened = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    assert run(monkeypatch, "view", tmp_path / "scene_classes.tif", "--open", "-q") == 0
    assert opened == [(tmp_path / "scene_map.html").resolve().as_uri()]


def test_tiles_do_not_depend_on_how_many_are_read_at_once(monkeypatch, tmp_path):
    make_outputs(tmp_path, height=400, width=600, gsd=0.5)
    scene = find_scenes(tmp_path)[0]
    trees = {}
    for chunk in (16, 1):
        monkeypatch.setattr("crossearth.viewer.tiles.CHUNK_TILES", chunk)
        folder = tmp_path / f"tiles{chunk}"
        folder.mkdir()
        write_pyramid(scene, folder)
        trees[chunk] = {
            p.relative_to(folder).as_posix(): np.asarray(Image.open(p)).tobytes()
            for p in folder.rglob("*.png")
        }
    assert len(trees[1]) > 8 and trees[1] == trees[16]
