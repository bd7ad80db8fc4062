"""ISPRS Potsdam / Vaihingen converters on fake archives in the real layout and naming.

The expected crops come from a straightforward reimplementation, here, of the standard converter
as the spec describes it (boxes counted with stride 256, origins stepping by 512, the last one
shifted to end at the border; labels read as BGR and matched by the (2, 3, 4) colour sums).
"""

from __future__ import annotations

import io
import math
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crossearth.data.prepare.common import PrepareOptions, Source
from crossearth.data.prepare.isprs import crop_boxes
from crossearth.data.prepare.potsdam import prepare_potsdam, prepare_potsdam_rescue
from crossearth.data.prepare.vaihingen import prepare_vaihingen
from crossearth.errors import InputError

H, W = 1100, 1300  # Potsdam fake tiles: not multiples of 512, not square
OFF_PALETTE = (10, 200, 30)  # no class; nearest: green (tree)
COLLIDING = (0, 170, 0)  # 4R + 3G + 2B = 510, the sum of blue: the standard converter says building
PALETTE_RGB = [(0, 0, 0), (255, 255, 255), (0, 0, 255), (0, 255, 255), (0, 255, 0), (255, 255, 0)]
PALETTE_RGB.append((255, 0, 0))
QUIET = PrepareOptions(quiet=True)

TRAIN, VAL = ("2_10", "6_7"), ("2_13",)
LABEL_ONLY, IMAGE_ONLY = "3_10", "7_13"


# ---------------------------------------------------------------------------------------------
# The reference: the spec's description of the standard converter, written out literally


def ref_crops(image: np.ndarray, prefix: str) -> dict[str, np.ndarray]:
    h, w = image.shape[:2]
    clip, stride = 512, 256
    n_rows = math.ceil((h - clip) / stride) + 1
    n_cols = math.ceil((w - clip) / stride) + 1
    crops = {}
    for row in range(n_rows):
        for col in range(n_cols):
            x1, y1 = col * clip, row * clip
            x2, y2 = min(x1 + clip, w), min(y1 + clip, h)
            if x1 + clip > w:
                x1 = w - clip
            if y1 + clip > h:
                y1 = h - clip
            crops[f"{prefix}_{x1}_{y1}_{x2}_{y2}.png"] = image[y1:y2, x1:x2]  # later ones win
    return crops


def ref_decode(rgb: np.ndarray) -> np.ndarray:
    bgr = rgb[..., ::-1].astype(np.int64)
    coefficients = np.array([2, 3, 4])
    sums = bgr @ coefficients
    palette_bgr = [[0, 0, 0], [255, 255, 255], [255, 0, 0], [255, 255, 0], [0, 255, 0]]
    palette_bgr += [[0, 255, 255], [0, 0, 255]]
    out = np.zeros(rgb.shape[:2], dtype=np.uint8)
    for idx, colour in enumerate(palette_bgr):
        out[sums == np.array(colour) @ coefficients] = idx
    return out


# ---------------------------------------------------------------------------------------------
# Fake data


def fake_label(h: int, w: int, seed: int) -> np.ndarray:
    """Random palette blocks of 90 x 110 px (not aligned with 512), an off-palette block and a
    block of a colour whose colour sum collides with blue."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 7, size=(math.ceil(h / 90), math.ceil(w / 110)))
    k = min(7, cells.shape[1])
    cells[0, :k] = np.arange(k)  # every class present
    idx = np.repeat(np.repeat(cells, 90, axis=0), 110, axis=1)[:h, :w]
    label = np.array(PALETTE_RGB, dtype=np.uint8)[idx]
    label[300:340, 600:700] = OFF_PALETTE
    label[700:720, 100:150] = COLLIDING
    return label


def fake_image(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def tiff_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="TIFF")
    return buf.getvalue()


def geotiff_bytes(array: np.ndarray) -> bytes:
    import rasterio
    from rasterio.io import MemoryFile
    from rasterio.transform import Affine

    with MemoryFile() as mem:
        profile = dict(driver="GTiff", width=array.shape[1], height=array.shape[0], count=3)
        profile.update(dtype="uint8", crs="EPSG:32633", transform=Affine(0.05, 0, 0, 0, -0.05, 0))
        with mem.open(**profile) as dst:
            dst.write(np.moveaxis(array, -1, 0))
        data = mem.read()
    assert rasterio  # imported for the driver registry
    return data


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def potsdam(tmp_path_factory):
    """Flat raw folder (the three zips + a full-label zip that must not be used), the arrays, and
    the members for nesting."""
    raw = tmp_path_factory.mktemp("potsdam_raw")
    rgb, irrg, labels = {}, {}, {}
    for k, tile in enumerate((*TRAIN, *VAL, LABEL_ONLY, IMAGE_ONLY)):
        if tile != LABEL_ONLY:
            rgb[tile], irrg[tile] = fake_image(H, W, 100 + k), fake_image(H, W, 200 + k)
        if tile != IMAGE_ONLY:
            labels[tile] = fake_label(H, W, k)
    zips = {
        "2_Ortho_RGB.zip": {
            **{f"2_Ortho_RGB/top_potsdam_{t}_RGB.tif": tiff_bytes(a) for t, a in rgb.items()},
            **{f"2_Ortho_RGB/top_potsdam_{t}_RGB.tfw": b"0.05\n0\n0\n-0.05\n0\n0\n" for t in rgb},
        },
        "3_Ortho_IRRG.zip": {
            f"3_Ortho_IRRG/top_potsdam_{t}_IRRG.tif": geotiff_bytes(a) for t, a in irrg.items()
        },
        "5_Labels_all_noBoundary.zip": {
            f"top_potsdam_{t}_label_noBoundary.tif": tiff_bytes(a) for t, a in labels.items()
        },
        "5_Labels_all.zip": {  # not used while eroded labels exist
            f"top_potsdam_{t}_label.tif": tiff_bytes(np.full_like(a, 255))
            for t, a in labels.items()
        },
    }
    for name, members in zips.items():
        write_zip(raw / name, members)
    return {"raw": raw, "rgb": rgb, "irrg": irrg, "labels": labels, "zips": zips}


def files(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))}


def expected_potsdam(data, band: str, split: str, lut=None):
    images, labels = {}, {}
    for tile in TRAIN if split == "train" else VAL:
        images.update(ref_crops(data[band.lower()][tile], tile))
        ids = ref_decode(data["labels"][tile])
        labels.update(ref_crops(ids if lut is None else lut[ids], tile))
    return images, labels


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(want)
    for name, array in want.items():
        assert got[name].shape == array.shape, name
        assert np.array_equal(got[name], array), name


@pytest.fixture(scope="module")
def potsdam_out(potsdam, tmp_path_factory):
    out = tmp_path_factory.mktemp("potsdam_out")
    return out, prepare_potsdam(potsdam["raw"], out, QUIET)


# ---------------------------------------------------------------------------------------------
# Tiling


def test_crop_boxes_follow_the_standard_grid():
    boxes = crop_boxes(6000, 6000)
    assert len(boxes) == len(set(boxes)) == 144
    starts = sorted({b[0] for b in boxes})
    assert starts == [*range(0, 5121, 512), 5488]
    assert boxes[-1] == (5488, 5488, 6000, 6000)
    assert (5488, 512, 6000, 1024) in boxes  # the name 7_8_5488_512_6000_1024.png in mmseg folders
    assert (512, 2043, 1024, 2555) in crop_boxes(1980, 2555)  # area32_512_2043_1024_2555.png
    assert len(crop_boxes(W, H)) == 9
    assert crop_boxes(1024, 512) == [(0, 0, 512, 512), (512, 0, 1024, 512)]
    for size in (512, 513, 1023, 1024, 1025, 1887, 2557, 3816, 6000):
        assert len(crop_boxes(size, 512)) == math.ceil(size / 512)
        assert len(crop_boxes(size, 512)) == len(ref_crops(np.zeros((512, size)), "t"))


# ---------------------------------------------------------------------------------------------
# Potsdam


def test_potsdam_crops_equal_the_reference(potsdam, potsdam_out):
    out, reports = potsdam_out
    assert [r.dataset for r in reports] == ["potsdam-irrg", "potsdam-rgb"]
    for report, band in zip(reports, ("IRRG", "RGB"), strict=True):
        root = out / "potsdam" / band
        assert report.out_dir == root
        for split in ("train", "val"):
            want_images, want_labels = expected_potsdam(potsdam, band, split)
            got_images = files(root / "img_dir" / split)
            got_labels = files(root / "ann_dir" / split)
            assert_same(got_images, want_images)
            assert_same(got_labels, want_labels)
            assert all(a.ndim == 3 for a in got_images.values())
            assert all(a.ndim == 2 and a.dtype == np.uint8 for a in got_labels.values())
        assert report.found == {"train": 2 * 9, "val": 9}
        assert report.expected == {"train": 3456, "val": 2016}
        assert report.written == 3 * 9 * 2 and report.skipped_existing == 0
        assert not report.complete
    # RGB and IRRG are different images, the labels the same
    rgb, irrg = out / "potsdam/RGB/img_dir/train", out / "potsdam/IRRG/img_dir/train"
    name = "2_10_788_588_1300_1100.png"  # the last crop, shifted on both axes
    assert not np.array_equal(files(rgb)[name], files(irrg)[name])
    assert_same(files(out / "potsdam/RGB/ann_dir/val"), files(out / "potsdam/IRRG/ann_dir/val"))


def test_potsdam_label_colours(potsdam, potsdam_out):
    out, reports = potsdam_out
    labels = files(out / "potsdam/RGB/ann_dir/train")
    crop = labels["2_10_0_0_512_512.png"]
    first_row = [*crop[0, :512:110], *labels["2_10_512_0_1024_512.png"][0, 38:150:110]]
    assert first_row == [0, 1, 2, 3, 4, 5, 6]  # the first row of blocks: one per id
    assert np.all(crop[300:340, 600:700] == 0)  # off palette -> ignore
    assert np.all(labels["2_10_0_512_512_1024.png"][700 - 512 : 720 - 512, 100:150] == 2)
    for report in reports:
        # 3 converted tiles with 40 x 100 off-palette pixels each; the colliding colour got a class
        assert report.unknown_colours == {OFF_PALETTE: 3 * 4000}
        assert any("label 6_7" in n and "known defect" in n for n in report.notes)
        assert any("colour sums" in n for n in report.notes)


def test_potsdam_missing_tiles_reported(potsdam_out):
    _, reports = potsdam_out
    for report in reports:
        band = report.dataset.split("-")[-1].upper()
        assert f"{LABEL_ONLY} {band} image" in report.missing
        assert f"{IMAGE_ONLY} label" in report.missing
        assert "2_10 label" not in report.missing and f"2_10 {band} image" not in report.missing
        assert "4_15 label" in report.missing  # not in the fake data at all
        assert len(report.missing) == 2 * 38 - 2 * 3 - 1 - 1
        assert any("MISSING" in line for line in report.lines())


def test_potsdam_rerun_skips_and_resumes(potsdam, tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = prepare_potsdam(potsdam["raw"], out, QUIET)
    total = sum(r.written for r in first)

    def no_reading(self, name):
        raise AssertionError(f"read {name} although all its crops exist")

    with monkeypatch.context() as m:
        m.setattr(Source, "read_bytes", no_reading)
        m.setattr(Source, "read_image", no_reading)
        second = prepare_potsdam(potsdam["raw"], out, QUIET)
    assert sum(r.written for r in second) == 0
    assert sum(r.skipped_existing for r in second) == total
    assert [r.found for r in second] == [r.found for r in first]

    victim = out / "potsdam/RGB/ann_dir/val/2_13_512_512_1024_1024.png"
    before = np.asarray(Image.open(victim))
    victim.unlink()
    third = prepare_potsdam(potsdam["raw"], out, QUIET)
    assert sum(r.written for r in third) == 1
    assert sum(r.skipped_existing for r in third) == total - 1
    assert np.array_equal(np.asarray(Image.open(victim)), before)


def test_nested_potsdam_zip_gives_the_same_files(potsdam, potsdam_out, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    inner = {f"Potsdam/{name}": zip_bytes(members) for name, members in potsdam["zips"].items()}
    write_zip(raw / "Potsdam.zip", inner)
    out = tmp_path / "out"
    prepare_potsdam(raw, out, QUIET)
    reference = potsdam_out[0] / "potsdam"
    for folder in ("RGB/img_dir/train", "IRRG/img_dir/val", "RGB/ann_dir/train"):
        assert_same(files(out / "potsdam" / folder), files(reference / folder))


def test_unpacked_folders_and_one_band(potsdam, tmp_path):
    raw = tmp_path / "raw"
    for name in ("2_Ortho_RGB.zip", "5_Labels_all_noBoundary.zip"):
        with zipfile.ZipFile(potsdam["raw"] / name) as zf:
            zf.extractall(raw / name.removesuffix(".zip"))
    reports = prepare_potsdam(raw, tmp_path / "out", PrepareOptions(quiet=True, limit=1))
    assert [r.dataset for r in reports] == ["potsdam-rgb"]
    assert any("no IRRG images" in n for n in reports[0].notes)
    assert any("limit=1" in n for n in reports[0].notes)
    assert reports[0].found == {"train": 9, "val": 0}
    assert all(p.name.startswith("2_10_") for p in (tmp_path / "out").rglob("*.png"))
    assert not (tmp_path / "out/potsdam/IRRG").exists()


def test_non_eroded_labels_only_behind_the_option(potsdam, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(potsdam["raw"] / "2_Ortho_RGB.zip", raw)
    shutil.copy(potsdam["raw"] / "5_Labels_all.zip", raw)
    with pytest.raises(InputError, match="--boundary-labels"):
        prepare_potsdam(raw, tmp_path / "out", PrepareOptions(quiet=True, limit=1))
    assert not (tmp_path / "out").exists()
    options = PrepareOptions(quiet=True, limit=1, boundary_labels=True)
    (report,) = prepare_potsdam(raw, tmp_path / "out", options)
    assert any("non-eroded" in n and "paper's numbers use the eroded" in n for n in report.notes)
    labels = files(tmp_path / "out/potsdam/RGB/ann_dir/train")
    assert len(labels) == 9 and all(np.all(a == 1) for a in labels.values())  # all white


def test_boundary_labels_option_wins_over_eroded_ones(potsdam, tmp_path):
    options = PrepareOptions(quiet=True, limit=1, boundary_labels=True)
    (irrg, _) = prepare_potsdam(potsdam["raw"], tmp_path / "out", options)
    labels = files(tmp_path / "out/potsdam/IRRG/ann_dir/train")
    assert all(np.all(a == 1) for a in labels.values())  # the full labels (all white) were used
    assert any("class building" in n or "classes building" in n for n in irrg.notes)  # empty


def _rgbir_zip(potsdam, tiles) -> dict[str, bytes]:
    """4_Ortho_RGBIR.zip as TorchGeo's fixture has it: a top folder, 4-band R,G,B,IR tiles whose
    R,G,B are the RGB tile and IR is band 1 of the IRRG tile."""
    from rasterio.io import MemoryFile

    members = {}
    for t in tiles:
        rgb, irrg = potsdam["rgb"][t], potsdam["irrg"][t]
        bands = np.stack([rgb[..., 0], rgb[..., 1], rgb[..., 2], irrg[..., 0]])
        with MemoryFile() as mem:
            with mem.open(driver="GTiff", width=W, height=H, count=4, dtype="uint8") as dst:
                dst.write(bands)
            members[f"4_Ortho_RGBIR/top_potsdam_{t}_RGBIR.tif"] = mem.read()
    return members


def test_rgbir_archive_gives_the_rgb_and_irrg_crops(potsdam, tmp_path):
    """RGB crops equal those of 2_Ortho_RGB.zip; IRRG crops are bands 4,1,2 of the 4-band tile."""
    raw = tmp_path / "raw"
    raw.mkdir()
    tiles = [t for t in (*TRAIN, *VAL) if t in potsdam["rgb"]]
    write_zip(raw / "4_Ortho_RGBIR.zip", _rgbir_zip(potsdam, tiles))
    shutil.copy(potsdam["raw"] / "5_Labels_all_noBoundary.zip", raw)
    reports = prepare_potsdam(raw, tmp_path / "out", QUIET)
    assert [r.dataset for r in reports] == ["potsdam-irrg", "potsdam-rgb"]
    rgb_report = reports[1]
    assert any("derived from 4_Ortho_RGBIR.zip" in n for n in rgb_report.notes)
    assert any("was not checked" in n for n in rgb_report.notes)
    for split in ("train", "val"):
        assert_same(
            files(tmp_path / f"out/potsdam/RGB/img_dir/{split}"),
            expected_potsdam(potsdam, "RGB", split)[0],
        )
        assert_same(
            files(tmp_path / f"out/potsdam/RGB/ann_dir/{split}"),
            expected_potsdam(potsdam, "RGB", split)[1],
        )
    irrg = files(tmp_path / "out/potsdam/IRRG/img_dir/train")
    tile = TRAIN[0]
    rgb, ir = potsdam["rgb"][tile], potsdam["irrg"][tile][..., 0]
    want = ref_crops(np.stack([ir, rgb[..., 0], rgb[..., 1]], axis=-1), tile)
    assert_same({k: v for k, v in irrg.items() if k.startswith(f"{tile}_")}, want)


def test_rgbir_beside_the_three_band_archives_says_whether_they_equal(potsdam, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("2_Ortho_RGB.zip", "3_Ortho_IRRG.zip", "5_Labels_all_noBoundary.zip"):
        shutil.copy(potsdam["raw"] / name, raw)
    write_zip(raw / "4_Ortho_RGBIR.zip", _rgbir_zip(potsdam, [TRAIN[0]]))
    irrg, rgb = prepare_potsdam(raw, tmp_path / "out", PrepareOptions(quiet=True, limit=1))
    assert any(f"tile {TRAIN[0]}: the RGB image" in n and "are equal" in n for n in rgb.notes)
    # the fake IRRG tile's R and G are not the RGB tile's, so the derived IRRG differs
    assert any(f"tile {TRAIN[0]}: the IRRG image" in n and "differ" in n for n in irrg.notes)


def test_nearest_colour(potsdam, tmp_path):
    options = PrepareOptions(quiet=True, nearest_colour=True, limit=1)
    reports = prepare_potsdam(potsdam["raw"], tmp_path, options)
    labels = files(tmp_path / "potsdam/IRRG/ann_dir/train")
    assert np.all(labels["2_10_0_0_512_512.png"][300:340, 600:700] == 4)  # (10,200,30) -> tree
    assert np.all(labels["2_10_0_512_512_1024.png"][188:208, 100:150] == 4)  # (0,170,0) -> tree
    want = ref_decode(potsdam["labels"]["2_10"])
    want[300:340, 600:700] = 4
    want[700:720, 100:150] = 4
    assert_same(labels, ref_crops(want, "2_10"))
    assert all(not r.unknown_colours for r in reports)
    assert any("nearest" in n for n in reports[0].notes)


def test_potsdam_rescue_relabelling(potsdam, tmp_path):
    reports = prepare_potsdam_rescue(potsdam["raw"], tmp_path, QUIET)
    assert [r.dataset for r in reports] == ["potsdam-rescue-irrg", "potsdam-rescue-rgb"]
    lut = np.array([0, 1, 2, 3, 3, 4, 5], dtype=np.uint8)  # ignore, imp, bld, lowveg+tree, car, clt
    for band in ("IRRG", "RGB"):
        root = tmp_path / "potsdam_rescue" / band
        for split in ("train", "val"):
            want_images, want_labels = expected_potsdam(potsdam, band, split, lut)
            assert_same(files(root / "img_dir" / split), want_images)
            assert_same(files(root / "ann_dir" / split), want_labels)
    labels = files(tmp_path / "potsdam_rescue/RGB/ann_dir/train")
    first_row = [*labels["2_10_0_0_512_512.png"][0, :512:110]]
    first_row += [*labels["2_10_512_0_1024_512.png"][0, 38:150:110]]
    assert first_row == [0, 1, 2, 3, 3, 4, 5]
    assert reports[0].expected == {"train": 3456, "val": 2016}


def test_potsdam_bad_input(potsdam, tmp_path):
    other = tmp_path / "loveda"
    other.mkdir()
    write_zip(
        other / "Train.zip", {"Train/Urban/images_png/1.png": tiff_bytes(fake_image(8, 8, 0))}
    )
    with pytest.raises(InputError, match=r"no ISPRS Potsdam archives found.*another dataset"):
        prepare_potsdam(other, tmp_path / "out", QUIET)
    with pytest.raises(InputError, match="no ISPRS Vaihingen archives found"):
        prepare_vaihingen(other, tmp_path / "out", QUIET)
    with pytest.raises(InputError, match="does not exist"):
        prepare_potsdam(tmp_path / "nowhere", tmp_path / "out", QUIET)

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "2_Ortho_RGB.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputError, match=r"2_Ortho_RGB\.zip"):
        prepare_potsdam(broken, tmp_path / "out", QUIET)

    mismatch = tmp_path / "mismatch"
    mismatch.mkdir()
    image = tiff_bytes(fake_image(H, W - 1, 0))
    write_zip(mismatch / "2_Ortho_RGB.zip", {"2_Ortho_RGB/top_potsdam_2_10_RGB.tif": image})
    shutil.copy(potsdam["raw"] / "5_Labels_all_noBoundary.zip", mismatch)
    with pytest.raises(InputError, match="same size"):
        prepare_potsdam(mismatch, tmp_path / "out", QUIET)
    assert not list((tmp_path / "out").rglob("*.png"))  # checked before anything is written

    labels_only = tmp_path / "labels_only"
    labels_only.mkdir()
    shutil.copy(potsdam["raw"] / "5_Labels_all_noBoundary.zip", labels_only)
    with pytest.raises(InputError, match="no Potsdam image tiles"):
        prepare_potsdam(labels_only, tmp_path / "out", QUIET)


# ---------------------------------------------------------------------------------------------
# Vaihingen

VAIHINGEN_SIZES = {1: (700, 1100), 2: (1030, 600), 5: (600, 600)}  # area: (h, w); 5 has no label


def test_vaihingen(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    images = {n: fake_image(h, w, n) for n, (h, w) in VAIHINGEN_SIZES.items()}
    labels = {n: fake_label(h, w, 10 + n) for n, (h, w) in VAIHINGEN_SIZES.items() if n != 5}
    # the data zip also holds the participants' ground truth under the image names
    data = {f"top/top_mosaic_09cm_area{n}.tif": tiff_bytes(a) for n, a in images.items()}
    data.update({f"gts_for_participants/top_mosaic_09cm_area{n}.tif": tiff_bytes(labels[n])
                 for n in labels})  # fmt: skip
    data["dsm/dsm_09cm_matching_area1.tif"] = tiff_bytes(fake_image(8, 8, 0))
    write_zip(raw / "ISPRS_semantic_labeling_Vaihingen.zip", data)
    eroded = {f"top_mosaic_09cm_area{n}_noBoundary.tif": tiff_bytes(a) for n, a in labels.items()}
    eroded["top_mosaic_09cm_area9_noBoundary.tif"] = tiff_bytes(fake_label(600, 600, 9))
    write_zip(raw / "ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE.zip", eroded)
    complete = {f"top_mosaic_09cm_area{n}.tif": tiff_bytes(a) for n, a in labels.items()}
    write_zip(raw / "ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE.zip", complete)

    out = tmp_path / "out"
    report = prepare_vaihingen(raw, out, QUIET)
    root = out / "vaihingen"
    assert report.dataset == "vaihingen" and report.out_dir == root
    for split, area in (("train", 1), ("val", 2)):
        assert_same(files(root / "img_dir" / split), ref_crops(images[area], f"area{area}"))
        want = ref_crops(ref_decode(labels[area]), f"area{area}")
        assert_same(files(root / "ann_dir" / split), want)
    assert "area1_588_188_1100_700.png" in files(root / "img_dir/train")
    assert "area2_88_518_600_1030.png" in files(root / "img_dir/val")
    assert report.found == {"train": 6, "val": 6}
    assert report.expected == {"train": 344, "val": 398}
    assert "area5 label" in report.missing and "area3 image" in report.missing
    assert "area1 image" not in report.missing and "area2 label" not in report.missing
    assert len(report.missing) == 2 * 33 - 3 - 2
    assert any("area9" in n and "no image" in n for n in report.notes)
    off = sum(int((a == OFF_PALETTE).all(-1).sum()) for a in labels.values())
    assert report.unknown_colours == {OFF_PALETTE: off} and off > 0
    assert report.written == 24

    again = prepare_vaihingen(raw, out, QUIET)
    assert again.written == 0 and again.skipped_existing == 24


def test_vaihingen_loose_images_beside_complete_ground_truth(tmp_path):
    """Images outside a `top/` folder are taken, the same-named non-eroded labels are not."""
    raw = tmp_path / "raw"
    image, label = fake_image(600, 700, 3), fake_label(600, 700, 3)
    (raw / "images").mkdir(parents=True)
    (raw / "images/top_mosaic_09cm_area3.tif").write_bytes(tiff_bytes(image))
    gt = raw / "ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE"
    gt.mkdir()
    (gt / "top_mosaic_09cm_area3.tif").write_bytes(tiff_bytes(label))
    eroded = {"top_mosaic_09cm_area3_noBoundary.tif": tiff_bytes(label)}
    write_zip(raw / "ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE.zip", eroded)
    report = prepare_vaihingen(raw, tmp_path / "out", QUIET)
    assert_same(files(tmp_path / "out/vaihingen/img_dir/train"), ref_crops(image, "area3"))
    assert any("non-eroded" in n for n in report.notes)


def test_vaihingen_non_eroded_labels_behind_the_option(tmp_path):
    raw = tmp_path / "raw"
    image, label = fake_image(600, 700, 3), fake_label(600, 700, 3)
    (raw / "top").mkdir(parents=True)
    (raw / "top/top_mosaic_09cm_area3.tif").write_bytes(tiff_bytes(image))
    complete = {"top_mosaic_09cm_area3.tif": tiff_bytes(label)}
    write_zip(raw / "ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE.zip", complete)
    with pytest.raises(InputError, match="--boundary-labels"):
        prepare_vaihingen(raw, tmp_path / "out", QUIET)
    report = prepare_vaihingen(
        raw, tmp_path / "out", PrepareOptions(quiet=True, boundary_labels=True)
    )
    assert any("paper's numbers use the eroded" in n for n in report.notes)
    want = ref_crops(ref_decode(label), "area3")
    assert_same(files(tmp_path / "out/vaihingen/ann_dir/train"), want)


def test_vaihingen_needs_eroded_labels(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    write_zip(
        raw / "ISPRS_semantic_labeling_Vaihingen.zip",
        {"top/top_mosaic_09cm_area1.tif": tiff_bytes(fake_image(600, 600, 1))},
    )
    with pytest.raises(InputError, match="eroded"):
        prepare_vaihingen(raw, tmp_path / "out", QUIET)
