"""User data sets: the description file, every label form (a)-(d), checks and bad input.

Labels are compared with an independent computation: the class of each pixel centre from the
generating shapes in UTM (`user_data.truth`), or, for a label raster on another grid, the label
pixel that contains each image pixel centre, found with pyproj.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import user_data as ud
from PIL import Image
from pyproj import Transformer

from crossearth.data.check import check_data
from crossearth.data.labels import IGNORE, LabelProblem
from crossearth.data.scenes import RandomWindows, SceneDataset, ValidationBlocks
from crossearth.data.spec import load_data_spec
from crossearth.errors import ConfigError, InputError

HEADER = """classes: [water, forest, bare]
palette: [[30, 90, 200], [20, 130, 40], [200, 180, 140]]
"""


def whole(dataset: SceneDataset, i: int) -> tuple[np.ndarray, np.ndarray]:
    h, w = dataset.shape(i)
    return dataset.read(i, 0, h, 0, w)


def test_chip_folders_with_id_masks_png_and_tiff(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    geoms = [ud.scene_geometry(i, (64, 80)) for i in range(4)]
    for i, g in enumerate(geoms):
        Image.fromarray(np.array(ud.PALETTE, np.uint8)[ud.truth(g)]).save(
            tmp_path / f"images/c{i}.png"
        )
        ud.write_id_mask(tmp_path / f"masks/c{i}{'.png' if i % 2 else '.tif'}", g, ignore_rows=3)
    spec = load_data_spec(
        ud.write_yaml(
            tmp_path / "d.yaml", HEADER + "val: null\ntrain: {images: images, labels: masks/}\n"
        )
    )
    assert [p.name for p in spec.train.images] == ["c0.png", "c1.png", "c2.png"]
    assert [p.name for p in spec.val.images] == ["c3.png"]  # every 5th, at least one
    data = SceneDataset(spec, spec.train)
    for i, g in enumerate(geoms[:3]):
        image, label = whole(data, i)
        expected = ud.truth(g)
        expected[:3] = IGNORE
        assert np.array_equal(label, expected)
        assert np.array_equal(image, np.array(ud.PALETTE, np.uint8)[ud.truth(g)])


def test_colour_masks_are_decoded_with_the_palette(tmp_path):
    g = ud.scene_geometry(1)
    ud.write_image(tmp_path / "top_area1_RGB.tif", g)
    ud.write_colour_mask(tmp_path / "top_area1_label.png", g)
    spec = load_data_spec(
        ud.write_yaml(
            tmp_path / "d.yaml",
            HEADER + "holdout: 0\ntrain: {images: '*RGB.tif', labels: '*label.png'}\n",
        )
    )
    _, label = whole(SceneDataset(spec, spec.train), 0)
    assert np.array_equal(label, ud.truth(g))


def test_unknown_colours_are_reported_or_ignored(tmp_path):
    g = ud.scene_geometry(2)
    ud.write_image(tmp_path / "a.tif", g)
    mask = np.array(ud.PALETTE, np.uint8)[ud.truth(g)]
    mask[:4] = (0, 0, 0)  # ISPRS-style black boundary
    Image.fromarray(mask).save(tmp_path / "a_mask.png")
    text = HEADER + "holdout: 0\ntrain: {images: a.tif, labels: a_mask.png}\n"
    spec = load_data_spec(ud.write_yaml(tmp_path / "d.yaml", text))
    report = check_data(spec)
    assert any("[0, 0, 0]" in p and "palette" in p for p in report.problems)
    with pytest.raises(LabelProblem, match=r"colour \[0, 0, 0\]"):
        whole(SceneDataset(spec, spec.train), 0)
    spec = load_data_spec(
        ud.write_yaml(tmp_path / "d.yaml", "ignore_colours: [[0, 0, 0]]\n" + text)
    )
    assert not check_data(spec).problems
    _, label = whole(SceneDataset(spec, spec.train), 0)
    assert (label[:4] == IGNORE).all() and np.array_equal(label[4:], ud.truth(g)[4:])


def test_label_raster_on_another_grid_is_reprojected_with_nearest(tmp_path):
    g = ud.scene_geometry(3)
    ud.write_image(tmp_path / "scene.tif", g)
    ud.write_label_raster_other_grid(tmp_path / "labels.tif", g, crs="EPSG:3857", res=3.0)
    spec = load_data_spec(
        ud.write_yaml(
            tmp_path / "d.yaml",
            HEADER + "holdout: 0\ntrain: {images: scene.tif, labels: labels.tif}\n",
        )
    )
    _, label = whole(SceneDataset(spec, spec.train), 0)
    # independent: the label pixel containing each image pixel centre
    with rasterio.open(tmp_path / "labels.tif") as src:
        stored = src.read(1)
        to_label = Transformer.from_crs("EPSG:32633", src.crs.to_wkt(), always_xy=True)
        x, y = ud.pixel_centres(g)
        lx, ly = to_label.transform(x, y)
        rows, cols = rasterio.transform.rowcol(src.transform, lx.ravel(), ly.ravel())
        expected = stored[np.asarray(rows), np.asarray(cols)].reshape(label.shape)
    assert (label == expected).mean() >= 0.999
    assert (label == ud.truth(g)).mean() >= 0.97  # 3 m labels on a 2 m grid: only edges differ


@pytest.mark.parametrize("nodata", [None, 0, 255])
def test_what_a_label_raster_on_another_grid_does_not_cover_is_ignored(tmp_path, nodata):
    """Whatever its nodata (none, a class's id, the ignore index), image pixels beyond a label
    raster's extent are unlabelled, never class 0."""
    g = ud.scene_geometry(3)
    ud.write_image(tmp_path / "scene.tif", g)
    # labels for the western part only: x < x0 + 2 * (w - 40) + 20 m (the writer's margin)
    ud.write_label_raster_other_grid(tmp_path / "labels.tif", dict(g, w=g["w"] - 40))
    with rasterio.open(tmp_path / "labels.tif", "r+") as dst:
        dst.nodata = nodata
        edge = dst.bounds.right
    spec = load_data_spec(ud.write_yaml(
        tmp_path / "d.yaml", HEADER + "holdout: 0\ntrain: {images: scene.tif, labels: labels.tif}\n"
    ))  # fmt: skip
    _, label = whole(SceneDataset(spec, spec.train), 0)
    x, y = ud.pixel_centres(g)
    lx, _ = Transformer.from_crs("EPSG:32633", "EPSG:3857", always_xy=True).transform(x, y)
    outside, inside = lx > edge + 3, lx < edge - 3  # a pixel of margin for nearest
    assert outside.sum() > 20 * g["h"] and (label[outside] == IGNORE).all()
    assert (label[inside] != IGNORE).all() and (label[inside] == ud.truth(g)[inside]).mean() > 0.97


def test_vector_labels_in_epsg4326_are_rasterised_on_the_utm_grid(tmp_path):
    geoms = [ud.scene_geometry(i) for i in range(2)]
    for i, g in enumerate(geoms):
        ud.write_image(tmp_path / f"s{i}.tif", g, seed=i)
    ud.write_polygons(tmp_path / "labels.gpkg", geoms)
    spec = load_data_spec(
        ud.write_yaml(
            tmp_path / "d.yaml",
            HEADER
            + "holdout: 0\ntrain: {images: 's*.tif', labels: labels.gpkg, label_field: landcover}\n",
        )
    )
    data = SceneDataset(spec, spec.train)
    for i, g in enumerate(geoms):
        _, label = whole(data, i)
        assert (label[-10:] == IGNORE).all(), "pixels under no polygon are ignored"
        expected = ud.truth(g)[:-10]
        agree = label[:-10] == expected
        assert agree.mean() >= 0.995
        # any disagreement lies on a class edge (the polygons' straight 4326 edges vs UTM shapes)
        from scipy.ndimage import binary_dilation

        edges = np.zeros_like(agree)
        for c in range(3):
            m = expected == c
            edges |= binary_dilation(m) & ~m
        assert not (~agree & ~binary_dilation(edges)).any()
    # a window read equals the same part of the whole read
    _, full = whole(data, 1)
    _, part = data.read(1, 30, 90, 50, 120)
    assert np.array_equal(part, full[30:90, 50:120])


def test_vector_ids_shapefile_and_geojson(tmp_path):
    g = ud.scene_geometry(0)
    ud.write_image(tmp_path / "s.tif", g)
    for name in ("l.shp", "l.geojson"):
        ud.write_polygons(tmp_path / name, [g], field="cls", names=False, crs="EPSG:4326")
        spec = load_data_spec(
            ud.write_yaml(
                tmp_path / "d.yaml",
                HEADER
                + f"holdout: 0\ntrain: {{images: s.tif, labels: {name}, label_field: cls}}\n",
            )
        )
        _, label = whole(SceneDataset(spec, spec.train), 0)
        assert (label[:-10] == ud.truth(g)[:-10]).mean() >= 0.995


def test_image_nodata_is_ignored_and_bands_follow_the_predict_rule(tmp_path):
    g = ud.scene_geometry(4)
    ud.write_image(tmp_path / "s.tif", g, bands=4, dtype="uint16", nodata_cols=7)
    with rasterio.open(tmp_path / "s.tif", "r+") as dst:  # described bands in a non-RGB order
        dst.descriptions = ("red", "green", "blue", "nir")
    ud.write_id_mask(tmp_path / "s_mask.tif", g)
    spec = load_data_spec(
        ud.write_yaml(
            tmp_path / "d.yaml", HEADER + "holdout: 0\ntrain: {images: s.tif, labels: s_mask.tif}\n"
        )
    )
    image, label = whole(SceneDataset(spec, spec.train), 0)
    assert (label[:, :7] == IGNORE).all() and np.array_equal(label[:, 7:], ud.truth(g)[:, 7:])
    # the same pixels predict and style fit read from this file
    from crossearth.geo.raster import RasterSource
    from crossearth.train.style.fit import _read_raster

    with RasterSource.open(tmp_path / "s.tif", "RGB", None, "auto") as src:
        pixels, _ = src.read(0, src.height, 0, src.width)
        assert src.bands == (1, 2, 3)
    assert np.array_equal(image, pixels)
    assert np.array_equal(_read_raster(tmp_path / "s.tif", 256), np.moveaxis(pixels, -1, 0))
    # explicit bands in the description file
    spec = load_data_spec(
        ud.write_yaml(
            tmp_path / "d.yaml",
            HEADER + "bands: [4, 1, 2]\nholdout: 0\ntrain: {images: s.tif, labels: s_mask.tif}\n",
        )
    )
    data = SceneDataset(spec, spec.train)
    assert data.source(0).bands == (4, 1, 2)


def test_random_windows_are_position_deterministic_and_within_the_split(tmp_path):
    import torch

    g = ud.scene_geometry(5, (300, 200))
    ud.write_image(tmp_path / "big.tif", g)
    ud.write_id_mask(tmp_path / "big_label.tif", g)
    spec = load_data_spec(
        ud.write_yaml(
            tmp_path / "d.yaml", HEADER + "train: {images: big.tif, labels: big_label.tif}\n"
        )
    )
    # one scene: the last fifth of its rows validates
    assert spec.train.rows == ((0.0, 0.8),) and spec.val.rows == ((0.8, 1.0),)
    train = SceneDataset(spec, spec.train)
    assert train.row_range(0) == (0, 240)
    windows = RandomWindows(train, crop=64, scale_range=(0.5, 2.0))
    assert len(windows) == 4 * 4  # 240/64 -> 4 rows of slots, 200/64 -> 4 columns
    a = windows.sample(3, torch.Generator().manual_seed(7))
    b = windows.sample(3, torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    read_sizes = []
    real_read = train.read

    def spy(i, y1, y2, x1, x2, labels=None):
        read_sizes.append((y2 - y1, x2 - x1))
        assert y2 <= 240, "a training window reached the held-out rows"
        return real_read(i, y1, y2, x1, x2, labels)

    train.read = spy
    out = [windows.sample(s % 16, torch.Generator().manual_seed(s))[0].shape for s in range(30)]
    # windows of crop/f source pixels (f in 0.5..2), resized by f: about one crop each
    assert all(abs(h - 64) <= 1 and abs(w - 64) <= 1 for _, h, w in out)
    sides = [h for h, _ in read_sizes]
    assert min(sides) < 45 and max(sides) > 90 and all(32 <= s <= 128 for s in sides)
    blocks = ValidationBlocks(SceneDataset(spec, spec.val), block=50)
    assert sum((b[2] - b[1]) * (b[4] - b[3]) for b in blocks.items) == 60 * 200
    assert min(b[1] for b in blocks.items) == 240


def test_check_reports_counts_and_every_problem(tmp_path):
    geoms = [ud.scene_geometry(i) for i in range(3)]
    for i, g in enumerate(geoms):
        ud.write_image(tmp_path / f"s{i}.tif", g)
    ud.write_image(tmp_path / "lonely.tif", ud.scene_geometry(9))
    far = dict(geoms[0], x0=geoms[0]["x0"] + 90_000)  # labels far from their image
    ud.write_id_mask(tmp_path / "s0_label.tif", geoms[0])
    ud.write_id_mask(tmp_path / "s1_label.tif", far)
    bad = ud.truth(geoms[2])
    bad[0, :5] = 7  # an id out of range
    with rasterio.open(tmp_path / "s2_label.tif", "w", driver="GTiff", width=bad.shape[1],
                       height=bad.shape[0], count=1, dtype="uint8", crs=ud.UTM,
                       transform=rasterio.transform.from_origin(geoms[2]["x0"], geoms[2]["y0"], 2, 2)) as dst:  # fmt: skip
        dst.write(bad[None])
    spec = load_data_spec(
        ud.write_yaml(
            tmp_path / "d.yaml",
            HEADER + "holdout: 0\ntrain: {images: '*.tif', labels: '*_label.tif'}\n",
        )
    )
    report = check_data(spec)
    problems = "\n".join(report.problems)
    assert "lonely.tif has no label file" in problems
    assert "s1.tif: labels s1_label.tif do not overlap" in problems
    assert "s2_label.tif: label values out of range" in problems and "7 (5 px)" in problems
    train = report.splits[0]
    assert train.images == 4
    expected = np.bincount(ud.truth(geoms[0]).ravel(), minlength=3)
    truth2 = bad[bad < 3]
    expected += np.bincount(truth2.ravel(), minlength=3)
    assert np.array_equal(train.labelled, expected)
    with pytest.raises(InputError, match=r"lonely\.tif"):
        report.raise_problems()


def test_vector_problems_name_the_file_and_values(tmp_path):
    import shapely

    g = ud.scene_geometry(0)
    ud.write_image(tmp_path / "s.tif", g)
    extra = [
        (shapely.box(14.9, 49.6, 14.91, 49.61), "urban"),
        (shapely.box(14.9, 49.6, 14.91, 49.61), "Marsh"),
    ]
    ud.write_polygons(tmp_path / "l.gpkg", [g], extra=extra)
    base = HEADER + "holdout: 0\ntrain: {images: s.tif, labels: l.gpkg, label_field: %s}\n"
    spec = load_data_spec(ud.write_yaml(tmp_path / "d.yaml", base % "landcover"))
    problems = check_data(spec).problems
    assert (
        len(problems) == 1
        and "l.gpkg" in problems[0]
        and "'Marsh'" in problems[0]
        and "'urban'" in problems[0]
    )
    spec = load_data_spec(ud.write_yaml(tmp_path / "d.yaml", base % "kind"))
    problems = check_data(spec).problems
    assert "no attribute 'kind'" in problems[0] and "landcover" in problems[0]


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        (
            "classes: [a, b]\ntrain: {images: s.tif, labels: s_mask.tif}\nlabel_feild: x\n",
            ConfigError,
            "label_feild",
        ),
        (
            "classes: [a, b]\ntrain: {images: s.tif, labels: s_mask.tif, field: x}\n",
            ConfigError,
            "field",
        ),
        ("classes: [a, a]\ntrain: {images: s.tif, labels: s_mask.tif}\n", ConfigError, "unique"),
        (
            "classes: {0: a, 2: b}\ntrain: {images: s.tif, labels: s_mask.tif}\n",
            ConfigError,
            "without gaps",
        ),
        (
            "classes: [a, b]\npalette: [[1, 2, 3]]\ntrain: {images: s.tif, labels: s_mask.tif}\n",
            ConfigError,
            "one",
        ),
        (
            "classes: [a, b]\nbands: [1, 2, 2, 4]\ntrain: {images: s.tif, labels: s_mask.tif}\n",
            ConfigError,
            "bands",
        ),
        (
            "classes: [a, b]\nignore_index: 1\ntrain: {images: s.tif, labels: s_mask.tif}\n",
            ConfigError,
            "also a class",
        ),
        (
            "classes: [a, b]\ntrain: {images: nope/*.tif, labels: s_mask.tif}\n",
            InputError,
            "nothing matches",
        ),
        ("classes: [a, b]\ntrain: {images: s.tif, labels: l.gpkg}\n", ConfigError, "label_field"),
        ("classes: [a, b]\n", ConfigError, "train"),
    ],
)
def test_bad_descriptions_name_the_file(tmp_path, text, error, match):
    g = ud.scene_geometry(0, (32, 32))
    ud.write_image(tmp_path / "s.tif", g)
    ud.write_id_mask(tmp_path / "s_mask.tif", g)
    ud.write_polygons(tmp_path / "l.gpkg", [g])
    with pytest.raises(error, match=match) as info:
        load_data_spec(ud.write_yaml(tmp_path / "d.yaml", text))
    assert "d.yaml" in str(info.value)


def test_class_mapping_form_and_default_palette(tmp_path):
    g = ud.scene_geometry(0, (32, 32))
    ud.write_image(tmp_path / "s.tif", g)
    ud.write_id_mask(tmp_path / "s_mask.tif", g)
    spec = load_data_spec(
        ud.write_yaml(
            tmp_path / "d.yaml",
            "classes: {1: forest, 0: water, 2: bare}\ntrain: {images: s.tif, labels: s_mask.tif}\n",
        )
    )
    assert spec.classes == ("water", "forest", "bare")
    assert len(set(spec.palette)) == 3


def test_every_mistake_of_a_description_is_reported_at_once(tmp_path):
    g = ud.scene_geometry(0, (32, 32))
    ud.write_image(tmp_path / "s.tif", g)
    ud.write_id_mask(tmp_path / "s_mask.tif", g)
    text = (  # a misspelt key is not reported a second time as missing
        "clases: [a, b]\n"
        "pallete: [[1, 2, 3], [4, 5, 6]]\n"
        "gsd: -1\n"
        "train: {images: s.tif, label: s_mask.tif}\n"
        "val: {image: s.tif, labels: s_mask.tif, label_format: rgb}\n"
        "targets:\n  b: {images: s.tif, labels: s_mask.tif, labelfield: x}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_data_spec(ud.write_yaml(tmp_path / "d.yaml", text))
    message = str(info.value)
    assert "\n" not in message and message.count("d.yaml") == 1
    expected = [
        "unknown key clases (did you mean classes?)",
        "unknown key pallete (did you mean palette?)",
        "gsd must be a positive number of metres, got -1",
        "unknown key train.label (did you mean train.labels?)",
        "unknown key val.image (did you mean val.images?)",
        "val.label_format must be one of auto, ids, colours, got 'rgb'",
        "unknown key targets.b.labelfield (did you mean targets.b.label_field?)",
    ]
    for part in expected:
        assert part in message, part
    assert f"{len(expected)} problems: " in message
    assert message.count(";") == len(expected) - 1


def test_a_bad_palette_is_reported_even_when_the_classes_are_misspelt(tmp_path):
    """The palette's own form does not depend on the classes: it is checked without them."""
    g = ud.scene_geometry(0, (32, 32))
    ud.write_image(tmp_path / "s.tif", g)
    ud.write_id_mask(tmp_path / "s_mask.tif", g)
    text = "clases: [a, b]\npalette: [[1, 2, 3], [20, 130]]\ngsd: -1\ntrain: {images: s.tif, label: s_mask.tif}\n"
    with pytest.raises(ConfigError) as info:
        load_data_spec(ud.write_yaml(tmp_path / "d.yaml", text))
    message = str(info.value)
    assert "4 problems: " in message, message
    assert "[20, 130]" in message and "clases (did you mean classes?)" in message


def test_few_scenes_hold_out_the_last_and_say_so(tmp_path):
    for name in ("s1", "s2"):
        g = ud.scene_geometry(0, (32, 32))
        ud.write_image(tmp_path / f"{name}.tif", g)
        ud.write_id_mask(tmp_path / f"{name}_mask.tif", g)
    text = "classes: [a, b]\ntrain: {images: 's*.tif', labels: 's*_mask.tif'}\n"
    spec = load_data_spec(ud.write_yaml(tmp_path / "d.yaml", text))
    assert [p.name for p in spec.val.images] == ["s2.tif"]
    assert (
        "fewer than 5 scenes: the last is held out for validation (1 of 2: s2.tif" in spec.holdout
    )


def test_data_check_prints_every_mistake_on_one_error_line(tmp_path, monkeypatch, capsys):
    import sys

    from crossearth.cli import main

    g = ud.scene_geometry(0, (32, 32))
    ud.write_image(tmp_path / "s.tif", g)
    ud.write_id_mask(tmp_path / "s_mask.tif", g)
    data = ud.write_yaml(
        tmp_path / "d.yaml",
        "classes: [a, b]\nbans: RGB\nignore_index: 1\ntrain: {imags: s.tif, labels: s_mask.tif}\n",
    )
    monkeypatch.setattr(sys, "argv", ["crossearth", "data", "check", str(data)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    for part in ("3 problems", "bans (did you mean bands?)", "ignore_index 1 is also a class id",
                 "train.imags (did you mean train.images?)"):  # fmt: skip
        assert part in lines[0], part
