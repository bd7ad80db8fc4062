"""The viewer in headless Chromium: colours where the class map puts them, the legend, the class
under a point, the image layer, a large scene's tiles from 127.0.0.1, and no request leaving the
machine."""

from __future__ import annotations

import re

import numpy as np
import pytest
from rasterio.warp import transform
from viewer_browser import is_local, needs_chromium, run_page
from viewer_scenes import NAMES, ORIGIN, PALETTE, UTM, make_outputs

from crossearth.geo.vectorize import vectorize_class_map
from crossearth.viewer import show, write_map
from crossearth.viewer.serve import start_server

pytestmark = needs_chromium
WINDOW = (1000, 700)
CENTRE = (WINDOW[0] // 2, WINDOW[1] // 2)
# screen offsets from the scene's centre (the map opens fitted on it) -> quadrant class
SAMPLES = [((dx * s, dy * s), q) for s in (60, 140) for (dx, dy), q in
           (((-1, -1), 0), ((1, -1), 1), ((-1, 1), 2), ((1, 1), 3))]  # fmt: skip


def colour_at(shot: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    x, y = CENTRE[0] + offset[0], CENTRE[1] + offset[1]
    return shot[y - 2 : y + 3, x - 2 : x + 3].reshape(-1, 3).astype(int)


def assert_only_local(run) -> None:
    leaving = [url for url in run.page_requests() if not is_local(url)]
    assert leaving == [], f"the page asked for {leaving}"


def test_network_check_catches_a_remote_request(tmp_path):
    """The check below is real: a page that asks for a remote tile is caught (and, with the
    resolver rules, the request still cannot leave the machine)."""
    page = tmp_path / "remote.html"
    page.write_text('<!DOCTYPE html><img src="https://tiles.example.com/0/0/0.png">')
    run = run_page(page.as_uri(), tmp_path / "chromium", screenshot=False, size=(200, 200))
    assert [u for u in run.page_requests() if not is_local(u)] == [
        "https://tiles.example.com/0/0/0.png"
    ]


@pytest.fixture(scope="module")
def small_map(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small")
    classes = make_outputs(folder, height=400, width=600)
    vectorize_class_map(classes, folder / "scene.gpkg", NAMES)
    return folder, write_map(folder, opacity=1.0)[0]


def test_classes_in_place_and_legend_offline(small_map, tmp_path):
    _, page = small_map
    run = run_page(page.as_uri(), tmp_path)
    for offset, quadrant in SAMPLES:
        got = colour_at(run.screenshot, offset)
        assert np.abs(got - PALETTE[quadrant]).max() <= 3, (offset, quadrant, got[0])
    assert_only_local(run)


def test_legend_polygons_and_class_under_a_point(small_map, tmp_path):
    _, page = small_map
    # the centre of the bottom-right quadrant (roof, confidence 70 %), in degrees
    x, y = ORIGIN[0] + 450.0, ORIGIN[1] - 300.0
    (lon,), (lat,) = transform(UTM, "EPSG:4326", [x], [y])
    run = run_page(f"{page.as_uri()}#at={lat:.7f},{lon:.7f}", tmp_path, screenshot=False)
    dom = run.dom
    assert 'data-ready="1"' in dom
    legend = re.search(r'<table id="ce-legend">(.*?)</table>', dom, re.S).group(1)
    for name in NAMES:
        assert f"<td>{name}</td>" in legend
    # 200 x 300 pixels of 1 m² per quadrant: 6 ha, a quarter of the scene each
    assert legend.count("6.00 ha") == 4 and legend.count("25.0 %") == 4
    readout = re.search(r'<div class="ce-readout" id="ce-readout"[^>]*>(.*?)</div>', dom).group(1)
    assert readout.startswith("roof · confidence 70 %"), readout
    assert dom.count('class="leaflet-interactive"') >= 4  # the polygons, drawn as SVG paths
    assert_only_local(run)


def test_image_layer_in_place(tmp_path):
    folder = tmp_path / "out"
    make_outputs(folder, height=400, width=600)
    page = write_map(folder, opacity=0.0)[0]
    run = run_page(page.as_uri(), tmp_path / "chromium")
    for offset, quadrant in SAMPLES:
        expected = (30 + 40 * quadrant, 200 - 30 * quadrant, 90)  # the generated input image
        got = colour_at(run.screenshot, offset)
        assert np.abs(got - expected).max() <= 12, (offset, quadrant, got[0])


def test_large_scene_opens_from_tiles_served_on_loopback(tmp_path):
    folder = tmp_path / "out"
    make_outputs(folder, height=1200, width=2600, gsd=0.5)  # beyond one 2048-px overview
    page = write_map(folder, opacity=1.0)[0]
    assert (folder / "scene_map_files" / "classes").is_dir()
    server, url = start_server(folder)
    try:
        run = run_page(url + page.name, tmp_path / "chromium")
    finally:
        server.shutdown()
        server.server_close()
    tiles = [u for u in run.page_requests() if "/scene_map_files/classes/" in u]
    assert len(tiles) >= 4
    assert all(u.startswith(url) and url.startswith("http://127.0.0.1:") for u in tiles)
    assert_only_local(run)
    for offset, quadrant in SAMPLES:
        got = colour_at(run.screenshot, offset)
        assert np.abs(got - PALETTE[quadrant]).max() <= 3, (offset, quadrant, got[0])


def test_map_without_crs_in_pixel_coordinates(tmp_path):
    folder = tmp_path / "out"
    make_outputs(folder, height=300, width=300, crs=None)
    page = write_map(folder, opacity=1.0)[0]
    run = run_page(f"{page.as_uri()}#at=-50,250", tmp_path / "chromium", screenshot=False)
    readout = re.search(r'id="ce-readout"[^>]*>(.*?)</div>', run.dom).group(1)
    assert readout == "road · confidence 30 % · row 50, column 250"
    assert_only_local(run)


def test_show_renders_inside_a_notebook_iframe(small_map, tmp_path):
    folder, _ = small_map
    view = show(folder / "scene_classes.tif", opacity=1.0, height=WINDOW[1])
    notebook = tmp_path / "notebook.html"
    notebook.write_text(f'<!DOCTYPE html><body style="margin:0">{view._repr_html_()}</body>')
    run = run_page(notebook.as_uri(), tmp_path / "chromium")
    for offset, quadrant in SAMPLES:
        got = colour_at(run.screenshot, offset)
        assert np.abs(got - PALETTE[quadrant]).max() <= 3, (offset, quadrant, got[0])
    assert_only_local(run)


def test_large_scene_reads_the_class_under_a_point_at_full_resolution(tmp_path):
    """A 6-pixel patch lost in the embedded (here 64-px) lookup grid is read from the tiles."""
    folder = tmp_path / "out"
    make_outputs(folder, height=800, width=1200, gsd=0.5, patch=(500, 300))
    page = write_map(folder, tiles=True, inline_max=64)[0]
    (lon,), (lat,) = transform(UTM, "EPSG:4326", [ORIGIN[0] + 151.5], [ORIGIN[1] - 251.5])
    url = f"{page.as_uri()}#at={lat:.8f},{lon:.8f},20"
    run = run_page(url, tmp_path / "chromium", screenshot=False)
    readout = re.search(r'id="ce-readout"[^>]*>(.*?)</div>', run.dom).group(1)
    assert readout.startswith("grass · confidence 90 %"), readout
    assert_only_local(run)
