"""Class codes in label files and label rasters' nodata, as users' files have them.

One rule for codes (`crossearth.data.codes`): integer, float and text fields holding the same
codes give the same labels; `label_values` maps product codes (WorldCover, CORINE) to classes;
ambiguous fields and unknown codes are errors that name `label_values`. A label raster's declared
nodata never erases a class silently. A class without a labelled pixel is an error in train and a
warning in validation. Every expected label comes from the generating shapes (`user_data.truth`).
"""

from __future__ import annotations

import numpy as np
import pyogrio.raw
import pytest
import rasterio
import user_data as ud
from cli_runner import run_cli_captured as cli
from rasterio.transform import from_origin

from crossearth.data.check import check_data
from crossearth.data.labels import IGNORE, LabelProblem
from crossearth.data.scenes import SceneDataset
from crossearth.data.spec import load_data_spec
from crossearth.errors import ConfigError

WORLDCOVER = {"water": 80, "forest": 10, "bare": 60}  # ESA WorldCover codes of our classes
CLASSES_LINE = "classes: [water, forest, bare]\n"


def scenes(root, n=2, size=(48, 56)):
    geoms = [ud.scene_geometry(i, size) for i in range(n)]
    for i, g in enumerate(geoms):
        ud.write_image(root / f"s{i}.tif", g, seed=i)
    return geoms


def write_codes(path, geoms, codes: dict[str, object], dtype) -> None:
    """The scenes' polygons (`user_data.write_polygons`) with each class's code in field `code`,
    stored with `dtype` (an integer, float or text field)."""
    tmp = path.with_name("names_" + path.name)
    ud.write_polygons(tmp, geoms, field="code")
    meta, _, wkb, fields = pyogrio.raw.read(tmp)
    values = np.array([codes[name] for name in fields[0]], dtype=dtype)
    pyogrio.raw.write(path, wkb, geometry_type="MultiPolygon", field_data=[values],
                      fields=["code"], crs=meta["crs"])  # fmt: skip


def labels_of(spec, split="train", i=0):
    data = SceneDataset(spec, spec.split(split))
    h, w = data.shape(i)
    out = data.read_labels(i, 0, h, 0, w)
    data.close()
    return out


def vector_spec(tmp_path, gpkg, head=CLASSES_LINE, extra=""):
    text = (head + extra + f"train: {{images: s0.tif, labels: {gpkg}, label_field: code}}\n"
            f"val: {{images: s1.tif, labels: {gpkg}, label_field: code}}\n")  # fmt: skip
    return load_data_spec(ud.write_yaml(tmp_path / "d.yaml", text))


def agrees_with_truth(label, geom) -> bool:
    """Burnt polygons equal the pixel-centre truth on >= 99.5 % of the covered rows (edges)."""
    return (label[:-10] == ud.truth(geom)[:-10]).mean() >= 0.995


@pytest.mark.parametrize(
    ("codes", "head", "extra"),
    [
        ({"water": 0, "forest": 1, "bare": 2}, CLASSES_LINE, ""),  # class ids
        (WORLDCOVER, CLASSES_LINE, "label_values: {80: water, 10: forest, 60: bare}\n"),
        (WORLDCOVER, "classes: [80, 10, 60]\n", ""),  # classes given as the codes themselves
        (WORLDCOVER, "classes: ['80', '10', '60']\n", ""),
    ],
    ids=["ids", "label_values", "numeric-classes", "numeric-text-classes"],
)
def test_integer_float_and_text_fields_with_the_same_codes_give_the_same_labels(
    tmp_path, codes, head, extra
):
    geoms = scenes(tmp_path)
    results = []
    for kind, dtype, as_value in (("int", np.int32, int), ("float", np.float64, float),
                                  ("text", object, str), ("padded", object, lambda c: f" {c} ")):  # fmt: skip
        write_codes(tmp_path / f"{kind}.gpkg", geoms,
                    {k: as_value(v) for k, v in codes.items()}, dtype)  # fmt: skip
        spec = vector_spec(tmp_path, f"{kind}.gpkg", head, extra)
        assert check_data(spec).problems == [], kind
        results.append(labels_of(spec))
        assert agrees_with_truth(results[-1], geoms[0]), kind
    for other in results[1:]:
        assert np.array_equal(other, results[0])


def test_label_values_map_several_codes_to_one_class_and_null_to_unlabelled(tmp_path):
    geoms = scenes(tmp_path, n=1)
    # CORINE-like: the band (forest) is 311 in the first scene's polygons; bare soil 999 = no class
    write_codes(tmp_path / "c.gpkg", geoms, {"water": 512, "forest": 311, "bare": 999}, np.int64)
    text = (CLASSES_LINE + "label_values: {511: water, 512: water, 311: forest, 312: forest, "
            "999: null}\nallow_empty_classes: [bare]\nholdout: 0\n"
            "train: {images: s0.tif, labels: c.gpkg, label_field: code}\n")  # fmt: skip
    spec = load_data_spec(ud.write_yaml(tmp_path / "d.yaml", text))
    label = labels_of(spec)
    truth = ud.truth(geoms[0])
    truth[truth == 2] = IGNORE  # bare soil polygons carry the null code
    assert (label[:-10] == truth[:-10]).mean() >= 0.995
    report = check_data(spec)
    assert report.problems == []
    (table,) = report.codes
    assert table.rule == "codes by label_values" and table.unit == "polygons"
    assert [(code, name) for code, name, _, _ in table.rows] == [
        ("311", "forest"),
        ("512", "water"),
        ("999", "unlabelled"),
    ]


def test_a_field_mixing_names_and_ids_is_ambiguous_and_unknown_codes_name_label_values(tmp_path):
    geoms = scenes(tmp_path)
    write_codes(tmp_path / "mixed.gpkg", geoms, {"water": "water", "forest": "1", "bare": "2"},
                object)  # fmt: skip
    problems = check_data(vector_spec(tmp_path, "mixed.gpkg")).problems
    assert len(problems) == 1 and "ambiguous" in problems[0] and "label_values" in problems[0]
    with pytest.raises(LabelProblem, match="ambiguous"):
        labels_of(vector_spec(tmp_path, "mixed.gpkg"))
    write_codes(tmp_path / "wc.gpkg", geoms, WORLDCOVER, np.int16)
    problems = check_data(vector_spec(tmp_path, "wc.gpkg")).problems
    assert len(problems) == 1
    for part in ("wc.gpkg", "10 (", "60 (", "80 (", "class ids 0..2", "label_values"):
        assert part in problems[0], part
    # numbers are never positions when the classes are numbers: 0..2 are unknown codes then
    write_codes(tmp_path / "ids.gpkg", geoms, {"water": 0, "forest": 1, "bare": 2}, np.int32)
    problems = check_data(vector_spec(tmp_path, "ids.gpkg", "classes: [80, 10, 60]\n")).problems
    assert len(problems) == 1 and "not in classes [80, 10, 60]" in problems[0]


def test_one_based_integer_codes_are_not_silently_shifted(tmp_path):
    """QGIS-style 1-based codes that happen to fit 0..C-1: class 0 gets no pixel in train, an
    error that points at the code table and `allow_empty_classes`."""
    geoms = scenes(tmp_path)
    write_codes(tmp_path / "q.gpkg", geoms, {"water": 1, "forest": 2, "bare": 2}, np.int32)
    report = check_data(vector_spec(tmp_path, "q.gpkg"))
    assert len(report.problems) == 1
    assert "no labelled pixel of class water" in report.problems[0]
    assert "allow_empty_classes" in report.problems[0]
    assert [(c, n, how) for c, n, how, _ in report.codes[0].rows] == [
        ("1", "forest", "class id"),
        ("2", "bare", "class id"),
    ]


@pytest.mark.parametrize(
    ("dtype", "codes"),
    [
        ("uint8", WORLDCOVER),
        ("uint16", {"water": 512, "forest": 311, "bare": 1000}),
        ("float32", WORLDCOVER),
    ],
)
def test_label_rasters_of_product_codes_follow_label_values(tmp_path, dtype, codes):
    (g,) = scenes(tmp_path, n=1)
    truth = ud.truth(g)
    lut = np.array([codes[name] for name in ud.CLASSES])
    raw = lut[truth].astype(dtype)
    raw[:4] = 0  # WorldCover's "no data" code, mapped to null
    with rasterio.open(tmp_path / "s0_mask.tif", "w", driver="GTiff", width=g["w"], height=g["h"],
                       count=1, dtype=dtype, crs=ud.UTM,
                       transform=from_origin(g["x0"], g["y0"], ud.GSD, ud.GSD)) as dst:  # fmt: skip
        dst.write(raw[None])
    mapping = ", ".join(f"{v}: {k}" for k, v in codes.items())
    text = (CLASSES_LINE + f"label_values: {{{mapping}, 0: null}}\nholdout: 0\n"
            "train: {images: s0.tif, labels: s0_mask.tif}\n")  # fmt: skip
    spec = load_data_spec(ud.write_yaml(tmp_path / "d.yaml", text))
    expected = truth.copy()
    expected[:4] = IGNORE
    assert np.array_equal(labels_of(spec), expected)
    report = check_data(spec)
    assert report.problems == []
    rows = {code: (name, n) for code, name, _, n in report.codes[0].rows}
    assert rows == {
        str(codes[k]): (k, int((expected == i).sum())) for i, k in enumerate(ud.CLASSES)
    }
    # a code the mapping lacks is named, with what to do
    raw[0, 0] = 7
    with rasterio.open(tmp_path / "s0_mask.tif", "r+") as dst:
        dst.write(raw[None])
    problems = check_data(load_data_spec(tmp_path / "d.yaml")).problems
    assert len(problems) == 1 and "7 (1 px)" in problems[0] and "label_values" in problems[0]


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ("label_values: {10: water, 20: marsh}\n", "'marsh', which is not in classes"),
        ("label_values: {10: water, '10': forest}\n", "code '10' is given twice"),
        ("label_values: {10: water}\nignore_index: 10\n", "ignore_index 10 is also the code"),
        ("label_values: [10, 20]\n", "label_values must map"),
        ("label_nodata: drop\n", "label_nodata must be one of class, ignore"),
        ("allow_empty_classes: [snow]\n", "allow_empty_classes names snow"),
    ],
)
def test_bad_code_keys_are_reported_with_the_file(tmp_path, extra, error):
    scenes(tmp_path, n=1)
    ud.write_id_mask(tmp_path / "s0_mask.tif", ud.scene_geometry(0, (48, 56)))
    text = CLASSES_LINE + extra + "train: {images: s0.tif, labels: s0_mask.tif}\n"
    with pytest.raises(ConfigError, match=r"d\.yaml") as info:
        load_data_spec(ud.write_yaml(tmp_path / "d.yaml", text))
    assert error in str(info.value)


def write_label_like_the_image(path, image, labels, **changes) -> None:
    """A label raster written with the image's profile (its nodata included), one band."""
    with rasterio.open(image) as src:
        profile = src.profile | {"count": 1} | changes
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(labels.astype(profile["dtype"])[None])


@pytest.mark.parametrize("grid", ["image", "other"])
def test_label_nodata_that_is_a_class_is_kept_and_warned_about(tmp_path, grid, monkeypatch, capsys):
    geoms = [ud.scene_geometry(i, (48, 56)) for i in range(2)]
    for i, g in enumerate(geoms):
        ud.write_image(tmp_path / f"s{i}.tif", g, nodata_cols=0, seed=i)
        with rasterio.open(tmp_path / f"s{i}.tif", "r+") as dst:
            dst.nodata = 0  # the image declares nodata 0, and so does its label
        if grid == "image":
            write_label_like_the_image(tmp_path / f"s{i}_mask.tif", tmp_path / f"s{i}.tif",
                                       ud.truth(g))  # fmt: skip
        else:  # EPSG:3857 at 3 m, covering the scene but about its last 14 columns
            ud.write_label_raster_other_grid(tmp_path / "cut.tif", dict(g, w=g["w"] - 24))
            with rasterio.open(tmp_path / "cut.tif") as src:
                profile, data = src.profile | {"nodata": 0}, src.read()
            with rasterio.open(tmp_path / f"s{i}_mask.tif", "w", **profile) as dst:
                dst.write(data)
    text = CLASSES_LINE + ("train: {images: s0.tif, labels: s0_mask.tif}\n"
                           "val: {images: s1.tif, labels: s1_mask.tif}\n")  # fmt: skip
    data = ud.write_yaml(tmp_path / "d.yaml", text)
    spec = load_data_spec(data)
    label = labels_of(spec)
    truth = ud.truth(geoms[0])
    if grid == "image":
        assert np.array_equal(label, truth)
    else:  # nearest from 3 m pixels: agree away from edges; the uncovered columns are ignored
        assert (label[:, -10:] == IGNORE).all()
        inside, expected = label[:, :-18], truth[:, :-18]
        assert (inside == IGNORE).sum() == 0 and (inside == expected).mean() > 0.9
        assert (inside == 0).sum() > 0.9 * (expected == 0).sum() > 0
    report = check_data(spec)
    assert report.problems == []
    (warning,) = report.warnings
    for part in ("s0_mask.tif", "s1_mask.tif", "nodata 0", "class 'water'", "label_nodata: ignore"):
        assert part in warning, part
    code, output = cli(monkeypatch, capsys, "data", "check", data)
    assert (
        code == 0 and "warning: label rasters s0_mask.tif, s1_mask.tif declare nodata 0" in output
    )
    if grid == "image":  # eval --data reads the same labels, and says so too
        from crossearth import create_model
        from crossearth.evaluate import evaluate_data

        model = create_model("vit-tiny-256", num_classes=3)
        report = evaluate_data(model, spec, "val", tmp_path / "eval")
        assert report["targets"]["val"]["pixels"] == geoms[1]["h"] * geoms[1]["w"]
        (warning,) = report["warnings"]
        assert "s1_mask.tif declares nodata 0" in warning
    # said explicitly: nodata marks unlabelled pixels, so water has none left in train
    ud.write_yaml(tmp_path / "d.yaml", "label_nodata: ignore\n" + text)
    spec = load_data_spec(data)
    label = labels_of(spec)
    assert (label == 0).sum() == 0
    if grid == "image":
        assert np.array_equal(label, np.where(truth == 0, IGNORE, truth))
    problems = check_data(spec).problems
    assert len(problems) == 1 and "no labelled pixel of class water" in problems[0]


def test_label_nodata_that_is_no_class_still_marks_unlabelled_pixels(tmp_path):
    (g,) = scenes(tmp_path, n=1)
    labels = ud.truth(g)
    labels[:5] = 200
    write_label_like_the_image(tmp_path / "s0_mask.tif", tmp_path / "s0.tif", labels, nodata=200)
    spec = load_data_spec(ud.write_yaml(tmp_path / "d.yaml", CLASSES_LINE + (
        "holdout: 0\ntrain: {images: s0.tif, labels: s0_mask.tif}\n")))  # fmt: skip
    expected = ud.truth(g)
    expected[:5] = IGNORE
    assert np.array_equal(labels_of(spec), expected)
    report = check_data(spec)
    assert report.problems == [] and report.warnings == []


def test_colour_mask_whose_nodata_colour_is_a_class_keeps_it(tmp_path):
    (g,) = scenes(tmp_path, n=1)
    palette = ((0, 0, 0), (20, 130, 40), (200, 180, 140))  # water is black, as CASID's background
    rgb = np.moveaxis(np.array(palette, np.uint8)[ud.truth(g)], -1, 0)
    with rasterio.open(tmp_path / "s0_mask.tif", "w", driver="GTiff", width=g["w"], height=g["h"],
                       count=3, dtype="uint8", nodata=0, crs=ud.UTM,
                       transform=from_origin(g["x0"], g["y0"], ud.GSD, ud.GSD)) as dst:  # fmt: skip
        dst.write(rgb)
    text = (CLASSES_LINE + "palette: [[0, 0, 0], [20, 130, 40], [200, 180, 140]]\nholdout: 0\n"
            "train: {images: s0.tif, labels: s0_mask.tif}\n")  # fmt: skip
    spec = load_data_spec(ud.write_yaml(tmp_path / "d.yaml", text))
    assert np.array_equal(labels_of(spec), ud.truth(g))
    (warning,) = check_data(spec).warnings
    assert "nodata 0" in warning and "'water'" in warning


def test_a_class_without_labelled_pixels_fails_train_and_warns_in_validation(
    tmp_path, monkeypatch, capsys
):
    geoms = scenes(tmp_path)
    for i, g in enumerate(geoms):
        labels = ud.truth(g)
        if i == 1:
            labels[labels == 1] = 2  # val: no forest
        with rasterio.open(tmp_path / f"s{i}_mask.tif", "w", driver="GTiff", width=g["w"],
                           height=g["h"], count=1, dtype="uint8", crs=ud.UTM,
                           transform=from_origin(g["x0"], g["y0"], ud.GSD, ud.GSD)) as dst:  # fmt: skip
            dst.write(labels[None])
    splits = ("train: {images: s0.tif, labels: s0_mask.tif}\n"
              "val: {images: s1.tif, labels: s1_mask.tif}\n")  # fmt: skip
    data = ud.write_yaml(tmp_path / "d.yaml", "classes: [water, forest, bare, snow]\n" + splits)
    report = check_data(load_data_spec(data))
    assert report.problems == [
        "train: no labelled pixel of class snow: the model cannot learn it. Label some, check the "
        "label codes (`crossearth data check` shows how they were read), or, if it is meant to be "
        "absent, set `allow_empty_classes: [snow]` in the data set file"
    ]
    assert report.warnings == [
        "val: no labelled pixel of classes forest, snow: their F1 and recall are not scored "
        "there (left out of the means), and their IoU is 0 if the model predicts them anywhere "
        "(as in mmseg)"
    ]
    out = tmp_path / "run"
    code, output = cli(monkeypatch, capsys, "train", "--data", data, "--out", out,
                       "--set", "preset=vit-tiny-256", "--max-steps", "1")  # fmt: skip
    lines = output.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "allow_empty_classes: [snow]" in lines[0], output
    assert not out.exists()
    ud.write_yaml(tmp_path / "d.yaml", "classes: [water, forest, bare, snow]\n"
                  "allow_empty_classes: [snow]\n" + splits)  # fmt: skip
    report = check_data(load_data_spec(data))
    assert report.problems == [] and report.warnings == [
        "val: no labelled pixel of class forest: its F1 and recall are not scored there (left "
        "out of the means), and its IoU is 0 if the model predicts it anywhere (as in mmseg)"
    ]
    code, output = cli(monkeypatch, capsys, "data", "check", data)
    assert code == 0 and "warning: val: no labelled pixel of class forest" in output
    from crossearth.train.config import TrainConfig
    from crossearth.train.datasets import user_datasets

    run = user_datasets(TrainConfig(data=str(data), crop=32, num_workers=0))
    assert run.warnings == report.warnings  # printed by `train` before it starts
