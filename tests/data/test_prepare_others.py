"""Converters of LoveDA, WHU, DeepGlobe, Massachusetts, RescueNet and CASID on small fakes laid out
as their publishers ship them (zips where they ship zips)."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crossearth.data.classes import CASID, RESCUE
from crossearth.data.prepare.casid import prepare_casid
from crossearth.data.prepare.common import PrepareOptions
from crossearth.data.prepare.deepglobe import prepare_deepglobe
from crossearth.data.prepare.loveda import prepare_loveda
from crossearth.data.prepare.massachusetts import prepare_massachusetts
from crossearth.data.prepare.rescuenet import (
    RESCUENET_PALETTE,
    RESCUENET_TO_CROSSEARTH,
    prepare_rescuenet,
)
from crossearth.data.prepare.whu import prepare_whu_aerial, prepare_whu_satellite
from crossearth.errors import InputError

OPTS = PrepareOptions(quiet=True)
RNG = np.random.default_rng(0)
S = 64


def encode(array: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def rgb(size: int = S) -> np.ndarray:
    return RNG.integers(0, 256, (size, size, 3), dtype=np.uint8)


def ids(top: int, size: int = S) -> np.ndarray:
    return RNG.integers(0, top + 1, (size, size), dtype=np.uint8)


def binary_mask(size: int = S) -> np.ndarray:
    """0/255 stripes with a little compression noise: 200 (-> 1) and 100 (-> 0) on under 1 %."""
    mask = np.zeros((size, size), np.uint8)
    mask[:, : size // 4] = 255
    mask[:, size // 2 : 3 * size // 4] = 255
    mask[5, size - 3 : size] = 200  # noise in the background: these 3 pixels become road
    mask[7, :4] = 100  # noise in a stripe: these 4 pixels become background
    return mask


EXPECTED_BINARY = (binary_mask() >= 128).astype(np.uint8)


def make_zip(path: Path, files: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def read(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def rerun_writes_nothing(prepare, raw: Path, out: Path) -> None:
    again = prepare(raw, out, OPTS)
    for report in again if isinstance(again, list) else [again]:
        assert report.written == 0
        assert report.skipped_existing > 0 or sum(report.found.values()) == 0


# ---------------------------------------------------------------- LoveDA


def loveda_files(split: str, ids_by_domain: dict[str, list[int]]) -> dict[str, bytes]:
    files = {}
    for domain, names in ids_by_domain.items():
        for i in names:
            files[f"{split}/{domain}/images_png/{i}.png"] = encode(rgb(), "PNG")
            if split != "Test":
                files[f"{split}/{domain}/masks_png/{i}.png"] = encode(ids(7), "PNG")
    return files


@pytest.fixture()
def loveda_raw(tmp_path):
    raw = tmp_path / "raw"
    train = loveda_files("Train", {"Urban": [1366, 1367, 1368], "Rural": [0, 1]})
    val = loveda_files("Val", {"Urban": [3514], "Rural": [2522, 2523]})
    make_zip(raw / "Train.zip", train)
    make_zip(raw / "Val.zip", val)
    make_zip(raw / "Test.zip", loveda_files("Test", {"Urban": [4191], "Rural": [5167]}))
    return raw, {**train, **val}


def test_loveda_zips_keep_domains_apart(loveda_raw, tmp_path):
    raw, files = loveda_raw
    out = tmp_path / "data"
    urban, rural = prepare_loveda(raw, out, OPTS)
    assert (urban.dataset, rural.dataset) == ("loveda-urban", "loveda-rural")
    assert urban.found == {"train": 3, "val": 1}
    assert rural.found == {"train": 2, "val": 2}
    assert urban.expected == {"train": 1156, "val": 677}
    assert rural.expected == {"train": 1366, "val": 992}
    assert urban.written == 8 and rural.written == 8 and not urban.missing
    root = out / "loveda"
    assert sorted(p.name for p in (root / "Train/Urban/images_png").iterdir()) == [
        "1366.png",
        "1367.png",
        "1368.png",
    ]
    assert sorted(p.name for p in (root / "Train/Rural/masks_png").iterdir()) == ["0.png", "1.png"]
    assert sorted(p.name for p in (root / "Val/Rural/images_png").iterdir()) == [
        "2522.png",
        "2523.png",
    ]
    for name, data in files.items():  # images and masks copied byte for byte
        assert (root / name).read_bytes() == data
    assert not (root / "Test").exists() and not (root / "img_dir").exists()
    assert any("Test split ignored" in n for n in urban.notes)
    assert any("667" in n for n in urban.notes)
    rerun_writes_nothing(prepare_loveda, raw, out)
    again = prepare_loveda(raw, out, OPTS)
    assert again[0].skipped_existing == 8


def test_loveda_unpacked_folder_and_duplicates(loveda_raw, tmp_path):
    raw, files = loveda_raw
    make_tree(raw / "LoveDA", files)  # also unpacked: every file twice
    urban, rural = prepare_loveda(raw, tmp_path / "out", OPTS)
    assert urban.found == {"train": 3, "val": 1} and rural.found == {"train": 2, "val": 2}
    assert any("duplicate" in n for n in urban.notes)
    only_folder = make_tree(tmp_path / "unpacked", files)
    urban, _ = prepare_loveda(only_folder, tmp_path / "out2", OPTS)
    assert urban.found == {"train": 3, "val": 1}


def test_loveda_limit_applies_per_split(loveda_raw, tmp_path):
    raw, _ = loveda_raw
    urban, rural = prepare_loveda(raw, tmp_path / "out", PrepareOptions(quiet=True, limit=1))
    assert urban.found == {"train": 1, "val": 1} and rural.found == {"train": 1, "val": 1}
    assert not urban.complete


def test_loveda_bad_inputs(tmp_path):
    other = make_tree(tmp_path / "other", {"train/1_sat.jpg": encode(rgb(), "JPEG")})
    with pytest.raises(
        InputError, match=re.escape("no LoveDA Train.zip/Val.zip or Train/ folder found")
    ):
        prepare_loveda(other, tmp_path / "o", OPTS)
    only_val = tmp_path / "val_only"
    make_zip(only_val / "Val.zip", loveda_files("Val", {"Urban": [1], "Rural": [2]}))
    with pytest.raises(InputError, match="Train/Urban not found"):
        prepare_loveda(only_val, tmp_path / "o", OPTS)
    with pytest.raises(InputError, match="does not exist"):
        prepare_loveda(tmp_path / "nowhere", tmp_path / "o", OPTS)

    files = loveda_files("Train", {"Urban": [1], "Rural": [2]}) | loveda_files(
        "Val", {"Urban": [3], "Rural": [4]}
    )
    bad = dict(files)
    mask = ids(7)
    mask[5, 5] = 9
    bad["Val/Rural/masks_png/4.png"] = encode(mask, "PNG")
    with pytest.raises(InputError, match="value 9 is out of range for LoveDA"):
        prepare_loveda(make_tree(tmp_path / "bad", bad), tmp_path / "o", OPTS)

    files["Train/Urban/masks_png/1.png"] = encode(ids(7, 32), "PNG")  # wrong size
    files["Train/Rural/extra.txt"] = b"x"
    del files["Val/Urban/masks_png/3.png"]  # image without mask
    urban, rural = prepare_loveda(make_tree(tmp_path / "mixed", files), tmp_path / "o2", OPTS)
    assert urban.found == {"train": 0, "val": 0} and rural.found == {"train": 1, "val": 1}
    assert len(urban.missing) == 2
    assert any("Train/Urban/1.png (image 64x64 but label 32x32)" in m for m in urban.missing)
    assert any("Val/Urban/3.png (no label)" in m for m in urban.missing)
    assert any("sizes differ" in n for n in urban.notes)
    assert not (tmp_path / "o2/loveda/Train/Urban/images_png/1.png").exists()


# ---------------------------------------------------------------- WHU


def whu_split_files(prefix: str, split: str, names: list[str], dirs=("image", "label")):
    files = {}
    for name in names:
        files[f"{prefix}/{split}/{dirs[0]}/{name}"] = encode(rgb(), "TIFF")
        files[f"{prefix}/{split}/{dirs[1]}/{name}"] = encode(binary_mask(), "TIFF")
    return files


def test_whu_aerial_zip(tmp_path):
    inner = "3. The cropped image tiles and raster labels"
    files = {}
    for split, names in {"train": ["0.tif", "1.tif"], "val": ["2.tif"], "test": ["3.tif"]}.items():
        files |= whu_split_files(inner, split, names)
    raw = tmp_path / "raw"
    make_zip(raw / "3. The cropped aerial image tiles and raster labels.zip", files)
    out = tmp_path / "data"
    report = prepare_whu_aerial(raw, out, OPTS)
    assert report.found == {"train": 2, "val": 1, "test": 1}
    assert report.expected == {"train": 4736, "val": 1036, "test": 2416}
    assert report.written == 8 and not report.missing
    base = out / "whu/aerial"
    assert sorted(p.name for p in (base / "train/label2").iterdir()) == ["0.tif", "1.tif"]
    assert (base / "val/image/2.tif").read_bytes() == files[f"{inner}/val/image/2.tif"]
    label = read(base / "test/label2/3.tif")
    assert label.dtype == np.uint8 and label.ndim == 2
    np.testing.assert_array_equal(label, EXPECTED_BINARY)  # 255, 200 -> 1; 100, 0 -> 0
    rerun_writes_nothing(prepare_whu_aerial, raw, out)


def test_whu_aerial_bad_inputs(tmp_path):
    inner = "3. The cropped image tiles and raster labels"
    files = whu_split_files(inner, "train", ["0.tif"]) | whu_split_files(inner, "test", ["1.tif"])
    with pytest.raises(InputError, match="WHU aerial split val/ not found"):
        prepare_whu_aerial(make_tree(tmp_path / "noval", files), tmp_path / "o", OPTS)
    files |= whu_split_files(inner, "val", ["2.tif"])
    ids = np.zeros((S, S), np.uint8)
    ids[:, S // 3 :] = 1
    ids[:, 2 * S // 3 :] = 2  # class ids 0/1/2: not a binary mask
    files[f"{inner}/val/label/2.tif"] = encode(ids, "TIFF")
    with pytest.raises(InputError, match=r"val/label/2\.tif: not a binary WHU mask.*0, 1, 2"):
        prepare_whu_aerial(make_tree(tmp_path / "conv", files), tmp_path / "o", OPTS)
    sat = make_tree(tmp_path / "sat", whu_split_files("x", "train_no", ["0.tif"]))
    with pytest.raises(InputError, match="no WHU aerial tiles found"):
        prepare_whu_aerial(sat, tmp_path / "o", OPTS)
    with pytest.raises(InputError, match="no WHU satellite dataset II tiles found"):
        prepare_whu_satellite(tmp_path / "conv", tmp_path / "o", OPTS)


@pytest.mark.parametrize("dirs", [("image", "label"), ("img", "lab")])
def test_whu_satellite_union_and_clash(tmp_path, dirs):
    prefix = "Satellite dataset Ⅱ (East Asia)/1. The cropped image data and raster labels"
    files = (
        whu_split_files(prefix, "train", ["1_0.tif", "1_1.tif"], dirs)
        | whu_split_files(prefix, "train_no", ["2_0.tif", "1_1.tif"], dirs)
        | whu_split_files(prefix, "test", ["0.tif"], dirs)
        | whu_split_files(prefix, "test_no", ["1.tif", "2.tif"], dirs)
    )
    files["Satellite dataset Ⅱ (East Asia)/2. The shape file of the whole images/train1.tif"] = (
        encode(rgb(), "TIFF")
    )
    raw = make_tree(tmp_path / "raw", files)
    out = tmp_path / "data"
    report = prepare_whu_satellite(raw, out, OPTS)
    assert report.found == {"train": 4, "test": 3}
    assert report.expected == {"train": 13662, "test": 3726}
    base = out / "whu/satellite"
    assert sorted(p.name for p in (base / "train_all/image").iterdir()) == [
        "1_0.tif",
        "1_1.tif",
        "2_0.tif",
        "no_1_1.tif",
    ]
    assert sorted(p.name for p in (base / "test_all/label").iterdir()) == [
        "0.tif",
        "1.tif",
        "2.tif",
    ]
    assert (base / "train_all/image/no_1_1.tif").read_bytes() == files[
        f"{prefix}/train_no/{dirs[0]}/1_1.tif"
    ]
    np.testing.assert_array_equal(read(base / "train_all/label/no_1_1.tif"), EXPECTED_BINARY)
    assert any("prefix no_" in n and n.startswith("1 ") for n in report.notes)
    rerun_writes_nothing(prepare_whu_satellite, raw, out)


def test_whu_satellite_missing_split_and_unclear_folders(tmp_path):
    prefix = "Satellite dataset Ⅱ (East Asia)/1. The cropped image data and raster labels"
    files = whu_split_files(prefix, "train", ["0.tif"]) | whu_split_files(
        prefix, "train_no", ["1.tif"]
    )
    files |= whu_split_files(prefix, "test", ["2.tif"])
    with pytest.raises(InputError, match="test_no/ not found"):
        prepare_whu_satellite(make_tree(tmp_path / "a", files), tmp_path / "o", OPTS)
    files |= whu_split_files(prefix, "test_no", ["3.tif"], ("foo", "bar"))
    with pytest.raises(InputError, match="cannot tell the image and label folders apart"):
        prepare_whu_satellite(make_tree(tmp_path / "b", files), tmp_path / "o", OPTS)


# ---------------------------------------------------------------- DeepGlobe


def deepglobe_mask(colour: bool = False) -> np.ndarray:
    if colour:  # land-cover style: cyan urban, yellow agriculture
        mask = np.zeros((S, S, 3), np.uint8)
        mask[: S // 2] = (0, 255, 255)
        mask[S // 2 :] = (255, 255, 0)
        return mask
    return np.repeat(binary_mask()[..., None], 3, axis=2)  # 3 identical channels, not pure 0/255


def test_deepglobe_kaggle_zip(tmp_path):
    files = {
        "metadata.csv": b"image_id,sat_image_path,mask_path,split\n"
        b"100034,train/100034_sat.jpg,train/100034_mask.png,train\n"
        b"100081,train/100081_sat.jpg,train/100081_mask.png,train\n"
        b"100123,valid/100123_sat.jpg,,valid\n",
        "valid/100123_sat.jpg": encode(rgb(), "JPEG"),
        "test/100456_sat.jpg": encode(rgb(), "JPEG"),
    }
    for i in ("100034", "100081"):
        files[f"train/{i}_sat.jpg"] = encode(rgb(), "JPEG")
        files[f"train/{i}_mask.png"] = encode(deepglobe_mask(), "PNG")
    raw = tmp_path / "raw"
    make_zip(raw / "archive.zip", files)
    out = tmp_path / "data"
    report = prepare_deepglobe(raw, out, OPTS)
    assert report.found == {"train": 2} and report.expected == {"train": 6226}
    base = out / "deepglobe/train"
    assert sorted(p.name for p in base.iterdir()) == [
        "100034_mask.png",
        "100034_sat.jpg",
        "100081_mask.png",
        "100081_sat.jpg",
    ]
    assert (base / "100034_sat.jpg").read_bytes() == files["train/100034_sat.jpg"]
    np.testing.assert_array_equal(read(base / "100081_mask.png"), EXPECTED_BINARY)
    assert any("valid/ ignored (1 images" in n for n in report.notes)
    assert any("test/ ignored" in n for n in report.notes)
    assert any("metadata.csv lists 2 train images, as found" in n for n in report.notes)
    assert not (out / "deepglobe/valid").exists()
    rerun_writes_nothing(prepare_deepglobe, raw, out)


def test_deepglobe_bad_inputs(tmp_path):
    only_valid = make_tree(tmp_path / "v", {"valid/1_sat.jpg": encode(rgb(), "JPEG")})
    with pytest.raises(InputError, match="found only valid/"):
        prepare_deepglobe(only_valid, tmp_path / "o", OPTS)
    landcover = make_tree(
        tmp_path / "lc",
        {
            "train/1_sat.jpg": encode(rgb(), "JPEG"),
            "train/1_mask.png": encode(deepglobe_mask(colour=True), "PNG"),
        },
    )
    with pytest.raises(InputError, match="land-cover"):
        prepare_deepglobe(landcover, tmp_path / "o", OPTS)


# ---------------------------------------------------------------- Massachusetts


def test_massachusetts_kaggle_layout_and_blank_tiles(tmp_path):
    blank = rgb()
    blank[: S // 2] = 0  # half the tile is missing imagery
    files = {}
    for split, stems in {"train": ["10078660_15", "10228690_15"], "val": ["10228675_15"]}.items():
        for stem in stems:
            files[f"tiff/{split}/{stem}.tiff"] = encode(rgb(), "TIFF")
            files[f"tiff/{split}_labels/{stem}.tif"] = encode(binary_mask(), "TIFF")
    files["tiff/test/10378780_15.tiff"] = encode(blank, "TIFF")
    files["tiff/test_labels/10378780_15.tif"] = encode(binary_mask(), "TIFF")
    files["metadata.csv"] = b"image_id,tiff_image_path\n"
    raw = make_tree(tmp_path / "raw", files)
    out = tmp_path / "data"
    report = prepare_massachusetts(raw, out, OPTS)
    assert report.found == {"train": 2, "test": 1}
    assert report.expected == {"train": 1108, "test": 49}
    base = out / "massachusetts"
    assert sorted(p.name for p in base.iterdir()) == [
        "test",
        "test_labels_new",
        "train",
        "train_labels_new",
    ]
    assert (base / "test/10378780_15.tiff").read_bytes() == files["tiff/test/10378780_15.tiff"]
    np.testing.assert_array_equal(read(base / "train_labels_new/10228690_15.tif"), EXPECTED_BINARY)
    assert any("among the 3 written" in n and "1 with zero-valued" in n for n in report.notes)
    assert any("validation split ignored (1 tiles" in n for n in report.notes)
    rerun_writes_nothing(prepare_massachusetts, raw, out)


def test_massachusetts_original_layout(tmp_path):
    files = {}
    for split, stems in {"train": ["a"], "valid": ["b"], "test": ["c", "d"]}.items():
        for stem in stems:
            files[f"mass_roads/{split}/sat/{stem}.tiff"] = encode(rgb(), "TIFF")
            files[f"mass_roads/{split}/map/{stem}.tif"] = encode(binary_mask(), "TIFF")
    report = prepare_massachusetts(make_tree(tmp_path / "raw", files), tmp_path / "data", OPTS)
    assert report.found == {"train": 1, "test": 2}
    label = read(tmp_path / "data/massachusetts/test_labels_new/d.tif")
    np.testing.assert_array_equal(label, EXPECTED_BINARY)
    del files["mass_roads/test/sat/c.tiff"], files["mass_roads/test/sat/d.tiff"]
    del files["mass_roads/test/map/c.tif"], files["mass_roads/test/map/d.tif"]
    with pytest.raises(InputError, match="Massachusetts test split not found"):
        prepare_massachusetts(make_tree(tmp_path / "raw2", files), tmp_path / "d2", OPTS)
    with pytest.raises(InputError, match="no Massachusetts roads data found"):
        prepare_massachusetts(make_tree(tmp_path / "raw3", {"a.txt": b""}), tmp_path / "d3", OPTS)


# ---------------------------------------------------------------- RescueNet

# RescueNet v2 id -> (expected written id, CrossEarth class name or None for ignore)
RESCUE_MAPPING = {
    0: (0, None),  # background / unlabelled
    1: (5, "clutter"),  # water
    2: (2, "building"),  # building no damage
    3: (2, "building"),  # minor damage
    4: (2, "building"),  # major damage
    5: (2, "building"),  # total destruction
    6: (4, "car"),  # vehicle
    7: (1, "impervious_surface"),  # road clear
    8: (1, "impervious_surface"),  # road blocked
    9: (3, "vegetation"),  # tree
    10: (5, "clutter"),  # pool
}


def rescue_label() -> np.ndarray:
    label = np.zeros((S, S), np.uint8)
    for raw_id in range(11):
        label[raw_id * 5 : raw_id * 5 + 5] = raw_id
    return label


def test_rescuenet_mapping_entry_by_entry(tmp_path):
    files = {}
    for split, stems in {"train": ["10794"], "val": ["10781"], "test": ["10800", "10801"]}.items():
        for stem in stems:
            files[f"RescueNet/{split}/{split}-org-img/{stem}.jpg"] = encode(rgb(), "JPEG")
            files[f"RescueNet/{split}/{split}-label-img/{stem}_lab.png"] = encode(
                rescue_label(), "PNG"
            )
    raw = tmp_path / "raw"
    make_zip(raw / "RescueNet.zip", files)
    out = tmp_path / "data"
    report = prepare_rescuenet(raw, out, OPTS)
    assert report.found == {"test": 2} and report.expected == {"test": 449}
    base = out / "rescuenet"
    assert sorted(p.name for p in base.iterdir()) == ["test-label-img", "test-org-img"]
    assert sorted(p.name for p in (base / "test-label-img").iterdir()) == [
        "10800_lab.png",
        "10801_lab.png",
    ]
    assert (base / "test-org-img/10800.jpg").read_bytes() == files[
        "RescueNet/test/test-org-img/10800.jpg"
    ]
    written = read(base / "test-label-img/10800_lab.png")
    assert written.ndim == 2
    for raw_id, (new_id, class_name) in RESCUE_MAPPING.items():
        assert RESCUENET_TO_CROSSEARTH[raw_id] == new_id
        assert (written[raw_id * 5 : raw_id * 5 + 5] == new_id).all(), raw_id
        # reduce_zero_label: written k is class k - 1 of the RescueNet set
        assert (RESCUE.names[new_id - 1] if new_id else None) == class_name
    assert (written[55:] == 0).all()
    rerun_writes_nothing(prepare_rescuenet, raw, out)

    every = prepare_rescuenet(raw, tmp_path / "all", OPTS, splits=("train", "val", "test"))
    assert every.found == {"test": 2, "train": 1, "val": 1}
    assert (tmp_path / "all/rescuenet/train-label-img/10794_lab.png").exists()

    colour = np.array(RESCUENET_PALETTE, np.uint8)[rescue_label()]  # labels stored as colours
    coloured = {
        "test/test-org-img/1.jpg": encode(rgb(), "JPEG"),
        "test/test-label-img/1_lab.png": encode(colour, "PNG"),
    }
    prepare_rescuenet(make_tree(tmp_path / "colour", coloured), tmp_path / "c", OPTS)
    np.testing.assert_array_equal(read(tmp_path / "c/rescuenet/test-label-img/1_lab.png"), written)


def test_rescuenet_450_note_and_bad_inputs(tmp_path):
    files = {}
    for i in range(450):
        files[f"test/test-org-img/{i}.jpg"] = encode(np.zeros((4, 4, 3), np.uint8), "JPEG")
        files[f"test/test-label-img/{i}_lab.png"] = encode(np.full((4, 4), 7, np.uint8), "PNG")
    report = prepare_rescuenet(make_tree(tmp_path / "raw", files), tmp_path / "data", OPTS)
    assert report.found == {"test": 450}
    assert any("450" in n and "449" in n for n in report.notes)

    label = rescue_label()
    label[0, 0] = 11
    bad = {
        "test/test-org-img/1.jpg": encode(rgb(), "JPEG"),
        "test/test-label-img/1_lab.png": encode(label, "PNG"),
    }
    with pytest.raises(InputError, match="value 11 is out of range for RescueNet"):
        prepare_rescuenet(make_tree(tmp_path / "bad", bad), tmp_path / "o", OPTS)
    train_only = {k.replace("test", "train"): v for k, v in bad.items()}
    with pytest.raises(InputError, match="RescueNet test split"):
        prepare_rescuenet(make_tree(tmp_path / "train", train_only), tmp_path / "o", OPTS)
    with pytest.raises(InputError, match="no RescueNet data found"):
        prepare_rescuenet(tmp_path / "raw/test/test-org-img", tmp_path / "o", OPTS)


# ---------------------------------------------------------------- CASID


def casid_files(domain: str, split: str, stems: list[str], label_dir="label", one_based=False):
    files = {}
    for stem in stems:
        label = ids(4) + (1 if one_based else 0)
        files[f"CAISD/{domain}/all_{split}/image/{stem}.png"] = encode(rgb(), "PNG")
        files[f"CAISD/{domain}/all_{split}/{label_dir}/{stem}-label.png"] = encode(label, "PNG")
    return files


def test_casid_repack(tmp_path):
    files = (
        casid_files("SubMs", "train", ["a_0_0", "a_0_1"])
        | casid_files("SubMs", "test", ["b_0_0"])
        | casid_files("temperate_monsoon", "train", ["c_0_0"], one_based=True)
        | casid_files("troms", "train", ["d_0_0"])
        | casid_files("troms", "test", ["e_0_0"], label_dir="label_id")
        | casid_files("Trf", "train", ["f_0_0"])
        | casid_files("Trf", "test", ["g_0_0"])
    )
    raw = tmp_path / "raw"
    make_zip(raw / "CAISD.zip", files)
    out = tmp_path / "data"
    sub, tem, tms, trf = prepare_casid(raw, out, OPTS)
    assert [r.dataset for r in (sub, tem, tms, trf)] == [
        "casid-subms",
        "casid-temms",
        "casid-troms",
        "casid-trorf",
    ]
    assert sub.found == {"train": 2, "test": 1} and sub.expected == {"train": 4900, "test": 2200}
    assert tem.found == {"train": 1, "test": 0}
    assert tms.found == {"train": 1, "test": 1} and trf.found == {"train": 1, "test": 1}
    base = out / "casid"
    assert sorted(p.name for p in base.iterdir()) == ["SubMs", "TemMs", "TroMs", "TroRf"]
    assert (base / "TroMs/all_test/label_id/e_0_0-label.png").exists()
    assert (base / "TroRf/all_test/label/g_0_0-label.png").exists()
    src = "CAISD/SubMs/all_train/label/a_0_1-label.png"
    assert (base / "SubMs/all_train/label/a_0_1-label.png").read_bytes() == files[src]
    assert any("zero-based" in n for n in sub.notes)
    assert any("one-based" in n for n in tem.notes)
    assert any("TemMs/all_test not found" in n and "#15" in n for n in tem.notes)
    rerun_writes_nothing(prepare_casid, raw, out)


def test_casid_colour_labels_are_decoded(tmp_path):
    label = ids(4)
    files = casid_files("TroRf", "train", ["a"])
    files["CAISD/TroRf/all_train/label/a-label.png"] = encode(
        np.array(CASID.palette, np.uint8)[label], "PNG"
    )
    reports = prepare_casid(make_tree(tmp_path / "raw", files), tmp_path / "o", OPTS)
    np.testing.assert_array_equal(
        read(tmp_path / "o/casid/TroRf/all_train/label/a-label.png"), label
    )
    assert reports[3].found == {"train": 1, "test": 0} and not reports[3].unknown_colours


def test_casid_bad_inputs(tmp_path):
    with pytest.raises(InputError, match=r"raw Baidu archives .* not supported"):
        prepare_casid(make_tree(tmp_path / "raw", {"scene_1.tif": b"x"}), tmp_path / "o", OPTS)
    files = casid_files("SubMs", "train", ["a"])
    files["CAISD/SubMs/all_train/label/a-label.png"] = encode(np.full((S, S), 7, np.uint8), "PNG")
    with pytest.raises(InputError, match="value 7 is out of range for CASID"):
        prepare_casid(make_tree(tmp_path / "bad", files), tmp_path / "o", OPTS)


# ---------------------------------------------------------------------------------------------
# one binary-mask rule in every converter (issue 12)


def _road_files(mask: np.ndarray) -> tuple[dict, dict]:
    deepglobe = {"train/1_sat.jpg": encode(rgb(), "JPEG"), "train/1_mask.png": encode(mask, "PNG")}
    mass = {
        "tiff/train/a.tiff": encode(rgb(), "TIFF"),
        "tiff/train_labels/a.tif": encode(mask, "TIFF"),
        "tiff/test/b.tiff": encode(rgb(), "TIFF"),
        "tiff/test_labels/b.tif": encode(mask, "TIFF"),
    }
    return deepglobe, mass


@pytest.mark.parametrize("scale", [1, 255], ids=["0-1", "0-255"])
def test_deepglobe_and_massachusetts_read_0_1_and_0_255_masks_alike(tmp_path, scale):
    roads = np.zeros((S, S), np.uint8)
    roads[S // 4 : S // 2] = 1
    deepglobe, mass = _road_files(roads * scale)
    out = tmp_path / f"out{scale}"
    dg = prepare_deepglobe(make_tree(tmp_path / "dg", deepglobe), out, OPTS)
    ma = prepare_massachusetts(make_tree(tmp_path / "ma", mass), out, OPTS)
    np.testing.assert_array_equal(read(out / "deepglobe/train/1_mask.png"), roads)
    np.testing.assert_array_equal(read(out / "massachusetts/train_labels_new/a.tif"), roads)
    assert not any("empty" in n for n in dg.notes + ma.notes)


def test_other_mask_values_are_refused_by_every_binary_converter(tmp_path):
    palette = np.tile(np.arange(S, dtype=np.uint8) * 4, (S, 1))  # 0, 4, 8 ... 252
    deepglobe, mass = _road_files(palette)
    with pytest.raises(InputError, match=r"1_mask\.png: not a binary DeepGlobe mask"):
        prepare_deepglobe(make_tree(tmp_path / "dg", deepglobe), tmp_path / "o", OPTS)
    with pytest.raises(InputError, match=r"a\.tif: not a binary Massachusetts mask"):
        prepare_massachusetts(make_tree(tmp_path / "ma", mass), tmp_path / "o", OPTS)


def test_an_empty_class_is_reported(tmp_path):
    deepglobe, _ = _road_files(np.zeros((S, S), np.uint8))  # no road pixel at all
    report = prepare_deepglobe(make_tree(tmp_path / "dg", deepglobe), tmp_path / "o", OPTS)
    assert any(n.startswith("class road is empty") for n in report.notes), report.notes
