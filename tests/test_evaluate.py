"""`crossearth eval` end to end on generated data in the benchmark layout, plus its failure modes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_runner import run_cli as run
from PIL import Image

import crossearth
from crossearth.benchmark import SETTINGS, get_setting
from crossearth.data.domains import read_label
from crossearth.evaluate import evaluate_setting
from crossearth.metrics import ConfusionMatrix, scores

sys.path.insert(0, str(Path(__file__).resolve().parent / "data"))
import user_data as ud


@pytest.fixture(scope="module")
def tiny6(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("m") / "tiny6.safetensors"
    crossearth.save_model(crossearth.create_model("vit-tiny-256", num_classes=6), path)
    return path


def make_vaihingen(root, n=3, size=(32, 64)):
    """A Vaihingen val split as the mmseg converter lays it out: labels 0..6, 0 = ignore."""
    rng = np.random.default_rng(0)
    img_dir, ann_dir = root / "vaihingen/img_dir/val", root / "vaihingen/ann_dir/val"
    img_dir.mkdir(parents=True)
    ann_dir.mkdir(parents=True)
    for k in range(n):
        name = f"area{k + 2}_0_0_{size[1]}_{size[0]}.png"
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(img_dir / name)
        Image.fromarray(rng.integers(0, 7, size, dtype=np.uint8)).save(ann_dir / name)
    return root


def test_every_setting_is_consistent():
    assert len(SETTINGS) == 29 and sum(s.in_domain for s in SETTINGS.values()) == 4
    for s in SETTINGS.values():
        for t in s.targets:
            target = crossearth.data.catalog.DOMAINS[t.domain]
            assert target.classes == s.source_domain.classes, s.name
            assert t.split in target.splits
        if s.model is not None:
            assert crossearth.ZOO[s.model].classes == s.source_domain.classes, s.name
    assert get_setting("p(i)2v").paper_miou == 67.5  # the paper's table


def test_eval_end_to_end_report(monkeypatch, tmp_path, tiny6):
    data = make_vaihingen(tmp_path / "data")
    out = tmp_path / "report"
    code = run(monkeypatch, "eval", "--setting", "P(i)2V", "--model", tiny6, "--data-root", data,
               "--out", out, "--device", "cpu", "-q")  # fmt: skip
    assert code == 0
    report = json.loads((out / "eval_Pi2V.json").read_text())
    target = report["targets"]["vaihingen"]
    for key in ("mIoU", "mF1", "mAcc", "OA", "pixels", "per_class", "images", "split"):
        assert key in target
    assert target["images"] == 3
    assert set(target["per_class"]) == set(crossearth.data.classes.ISPRS.names)
    assert report["paper_mIoU"] == 67.5 and "delta_vs_paper" in report
    assert (out / "eval_Pi2V.md").read_text().startswith("# P(i)2V")
    assert Image.open(out / "confusion_Pi2V_vaihingen.png").size[0] > 100
    # the confusion matrix equals one computed here from the model's own predictions
    model = crossearth.load_model(tiny6)
    cm = ConfusionMatrix(6)
    for img_path in sorted((data / "vaihingen/img_dir/val").iterdir()):
        label = np.asarray(Image.open(data / "vaihingen/ann_dir/val" / img_path.name)).astype(int)
        label = np.where(label == 0, 255, label - 1).astype(np.uint8)
        pred = model.predict(np.asarray(Image.open(img_path)), test_resize=512).labels
        cm.update(pred, label)
    assert np.array_equal(np.load(out / "confusion_Pi2V_vaihingen.npy"), cm.matrix)
    assert target["mIoU"] == pytest.approx(scores(cm.matrix).miou, abs=1e-3)


def test_eval_resumes_after_interruption(tmp_path, tiny6, monkeypatch):
    import crossearth.evaluate as ev

    data = make_vaihingen(tmp_path / "data", n=5)
    model = crossearth.load_model(tiny6)
    monkeypatch.setattr(ev, "SAVE_EVERY", 2)
    calls = []
    original = model.predict

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "predict", flaky)
    with pytest.raises(KeyboardInterrupt):
        evaluate_setting(model, get_setting("P(i)2V"), data, tmp_path / "out")
    monkeypatch.setattr(model, "predict", original)
    done = []
    evaluate_setting(
        model,
        get_setting("P(i)2V"),
        data,
        tmp_path / "out",
        progress=lambda d, i, n: done.append(i),
    )
    assert done[0] == 3  # images 1-2 were saved; it continued with image 3 of 5
    fresh = evaluate_setting(model, get_setting("P(i)2V"), data, tmp_path / "fresh")
    resumed = json.loads((tmp_path / "out/eval_Pi2V.json").read_text())
    assert resumed["targets"]["vaihingen"]["mIoU"] == fresh["targets"]["vaihingen"]["mIoU"]


def test_label_conventions(tmp_path):
    from crossearth.data.catalog import DOMAINS

    path = tmp_path / "l.png"
    Image.fromarray(np.array([[0, 1, 6, 255]], np.uint8)).save(path)
    assert read_label(path, DOMAINS["vaihingen"].labels, 6).tolist() == [[255, 0, 5, 255]]
    Image.fromarray(np.array([[0, 255, 1, 0]], np.uint8)).save(path)
    assert read_label(path, DOMAINS["whu-aerial"].labels, 2).tolist() == [[0, 1, 1, 0]]
    Image.fromarray(np.array([[1, 5, 3, 2]], np.uint8)).save(path)
    assert read_label(path, DOMAINS["casid-subms"].labels, 5, one_based=True).tolist() == [
        [0, 4, 2, 1]
    ]


@pytest.mark.parametrize(
    "case,needle",
    [
        ("wrong-folder", "not found"),
        ("missing-split", "not found"),
        ("bad-label", "out of range"),
        ("wrong-classes", "classes"),
    ],
)
def test_bad_inputs(monkeypatch, capsys, tmp_path, tiny6, case, needle):
    data = tmp_path / "data"
    model = tiny6
    if case == "wrong-folder":
        data.mkdir()
    elif case == "missing-split":
        make_vaihingen(data)
        (data / "vaihingen/img_dir/val").rename(data / "vaihingen/img_dir/train")
    elif case == "bad-label":
        make_vaihingen(data, n=1)
        label = next((data / "vaihingen/ann_dir/val").iterdir())
        Image.fromarray(np.full((32, 64), 9, np.uint8)).save(label)
    elif case == "wrong-classes":
        make_vaihingen(data, n=1)
        model = tmp_path / "tiny2.safetensors"
        crossearth.save_model(crossearth.create_model("vit-tiny-256", num_classes=2), model)
    out = tmp_path / "out"
    code = run(monkeypatch, "eval", "--setting", "P(i)2V", "--model", model, "--data-root", data,
               "--out", out, "--device", "cpu", "-q")  # fmt: skip
    assert code != 0
    err = capsys.readouterr().err
    assert "error" in err and needle in err and "Traceback" not in err
    assert not list(out.glob("eval_*")) if out.exists() else True


def test_from_raw_archives_to_report(monkeypatch, tmp_path):
    """`data prepare` on LoveDA zips in the publisher's layout, then `eval` on U2R: one path."""
    import io
    import zipfile

    def png(array):
        buf = io.BytesIO()
        Image.fromarray(array).save(buf, format="PNG")
        return buf.getvalue()

    rng = np.random.default_rng(0)
    raw = tmp_path / "raw"
    raw.mkdir()
    for split, names in (
        ("Train", {"Urban": [1, 2], "Rural": [3]}),
        ("Val", {"Urban": [4], "Rural": [5, 6]}),
    ):
        with zipfile.ZipFile(raw / f"{split}.zip", "w") as zf:
            for domain, ids in names.items():
                for i in ids:
                    zf.writestr(
                        f"{split}/{domain}/images_png/{i}.png",
                        png(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)),
                    )
                    zf.writestr(f"{split}/{domain}/masks_png/{i}.png", png(rng.integers(0, 8, (32, 32), dtype=np.uint8)))  # fmt: skip
    data = tmp_path / "rsdg"
    assert run(monkeypatch, "data", "prepare", "loveda", raw, "--out", data, "-q") == 0
    assert sorted(p.name for p in (data / "loveda/Val/Rural/masks_png").iterdir()) == [
        "5.png",
        "6.png",
    ]
    model = tmp_path / "tiny7.safetensors"
    torch.manual_seed(0)
    crossearth.save_model(crossearth.create_model("vit-tiny-256", num_classes=7), model)
    import dataclasses

    domains = crossearth.data.catalog.DOMAINS  # keep the test fast: no upscaling to S = 1024
    monkeypatch.setitem(
        domains, "loveda-rural", dataclasses.replace(domains["loveda-rural"], test_resize=64)
    )
    out = tmp_path / "report"
    code = run(monkeypatch, "eval", "--setting", "U2R", "--model", model, "--data-root", data, "--out", out,
               "--device", "cpu", "-q")  # fmt: skip
    assert code == 0
    report = json.loads((out / "eval_U2R.json").read_text())
    assert report["targets"]["loveda-rural"]["images"] == 2
    assert report["paper_mIoU"] == 46.6 and report["paper_source"] == "chart"


def test_eval_of_a_target_without_a_labelled_pixel_says_so(monkeypatch, capsys, tmp_path, tiny6):
    data = make_vaihingen(tmp_path / "data", n=2)
    for label in (data / "vaihingen/ann_dir/val").iterdir():  # 0 is Vaihingen's ignore value
        Image.fromarray(np.zeros((32, 64), np.uint8)).save(label)
    out = tmp_path / "out"
    code = run(monkeypatch, "eval", "--setting", "P(i)2V", "--model", tiny6, "--data-root", data,
               "--out", out, "--device", "cpu", "-q")  # fmt: skip
    output = capsys.readouterr()
    assert code == 0, output
    assert "vaihingen (2 images): no labelled pixel, nothing to score" in output.out
    assert "Traceback" not in output.out + output.err
    report = json.loads((out / "eval_Pi2V.json").read_text())
    assert report["mIoU"] is None and report["targets"]["vaihingen"]["pixels"] == 0
    assert "| vaihingen | 2 | – | – | – |" in (out / "eval_Pi2V.md").read_text()


def _user_data(root, val_labels: str):
    """A data set of two 3-class scenes whose val scene has no labelled pixel: its label raster
    holds only the ignore index, or the polygons lie elsewhere."""
    import shapely

    root.mkdir()
    geoms = [ud.scene_geometry(i, (40, 48)) for i in range(2)]
    for i, g in enumerate(geoms):
        ud.write_image(root / f"s{i}.tif", g, seed=i)
    ud.write_id_mask(root / "s0_mask.tif", geoms[0])
    ud.write_id_mask(root / "s1_mask.tif", geoms[1], ignore_rows=40)  # every row ignored
    far = [(shapely.box(10.0, 40.0, 10.01, 40.01), "water")]  # in EPSG:4326, far from s1
    ud.write_polygons(root / "far.gpkg", [], extra=far)
    val = ("{images: s1.tif, labels: s1_mask.tif}" if val_labels == "raster"
           else "{images: s1.tif, labels: far.gpkg, label_field: landcover}")  # fmt: skip
    text = f"classes: [water, forest, bare]\ntrain: {{images: s0.tif, labels: s0_mask.tif}}\nval: {val}\n"
    return ud.write_yaml(root / "d.yaml", text)


@pytest.mark.parametrize("val_labels", ["raster", "polygons"])
def test_eval_data_on_a_split_without_a_labelled_pixel_is_one_error_line(
    monkeypatch, capsys, tmp_path, val_labels
):
    from crossearth.data.spec import load_data_spec
    from crossearth.errors import InputError
    from crossearth.evaluate import evaluate_data

    data = _user_data(tmp_path / "data", val_labels)
    model = tmp_path / "m3.safetensors"
    crossearth.save_model(crossearth.create_model("vit-tiny-256", num_classes=3), model)
    out = tmp_path / "out"
    code = run(monkeypatch, "eval", "--data", data, "--split", "val", "--model", model,
               "--out", out, "--device", "cpu", "-q")  # fmt: skip
    output = capsys.readouterr()
    lines = (output.out + output.err).strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error:"), lines
    assert "d.yaml" in lines[0] and "nothing to score in split 'val'" in lines[0]
    assert "no labelled pixel" in lines[0]
    assert not out.exists()  # no half-written report
    net = crossearth.load_model(model)
    calls = []
    monkeypatch.setattr(net, "predict", lambda *a, **k: calls.append(1))
    with pytest.raises(InputError, match="first 1 block"):
        evaluate_data(net, load_data_spec(data), "val", out, limit=1)
    assert calls == []  # a block without a labelled pixel is not even predicted
    # the train split of the same file scores as usual
    assert run(monkeypatch, "eval", "--data", data, "--split", "train", "--model", model,
               "--out", out, "--device", "cpu", "-q") == 0  # fmt: skip
    assert json.loads((out / "eval_d_train.json").read_text())["mIoU"] is not None
