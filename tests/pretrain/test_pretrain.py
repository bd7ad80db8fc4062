"""`crossearth pretrain`: the loss falls, the file is a backbone `train` takes, resume is exact,
bad input is one error line and no run folder."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from cli_runner import run_cli_captured
from rasterio.transform import from_origin

from crossearth.config import IMAGENET_MEAN, IMAGENET_STD
from crossearth.data.synthetic import DOMAINS, render_scene
from crossearth.errors import CheckpointError, ConfigError, InputError
from crossearth.inference import normalize
from crossearth.pretrain.config import PretrainConfig
from crossearth.pretrain.run import PretrainStream, build_pretrainer, prepare, pretrain
from crossearth.weights.backbone_file import read_backbone_record
from crossearth.weights.checkpoint_io import read_checkpoint


def write_tif(path: Path, image: np.ndarray) -> Path:
    profile = dict(driver="GTiff", height=image.shape[0], width=image.shape[1], count=image.shape[2],
                   dtype="uint8", crs="EPSG:32632", transform=from_origin(500000, 5800000, 0.25, 0.25))  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.moveaxis(image, -1, 0))
    return path


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    """Six unlabelled scenes of two sizes (one not square) in a folder, one in a sub-folder."""
    root = tmp_path_factory.mktemp("scenes")
    (root / "sub").mkdir()
    for i in range(6):
        image, _ = render_scene(DOMAINS["urban-aerial-rgb"], i, 96 if i % 2 else 64)
        if i == 5:
            image = image[:, :80]
        write_tif(root / ("sub" if i == 0 else ".") / f"scene_{i}.tif", image)
    return root


def cfg_for(tmp_path: Path, **changes) -> PretrainConfig:
    base = PretrainConfig(
        preset="vit-tiny-256", objective="mim", out_dir=str(tmp_path / "run"), max_steps=4,
        batch_size=2, crop=32, lr=2e-3, warmup_steps=1, precision="32-true", accelerator="cpu",
        num_workers=0, checkpoint_every=2, log_every=1,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def losses(out: Path) -> list[float]:
    import csv

    values = []
    for metrics in sorted((out / "csv").glob("version_*/metrics.csv")):  # a resume adds one
        rows = list(csv.DictReader(metrics.open()))
        values += [float(r["pretrain/loss"]) for r in rows if r.get("pretrain/loss")]
    return values


def backbone_state(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path).state_dict


@pytest.mark.parametrize("objective", ["mim", "both"])
def test_loss_falls_and_the_file_records_what_it_is(scenes, tmp_path, objective):
    cfg = cfg_for(tmp_path, objective=objective, max_steps=30, batch_size=4)
    plan = prepare(cfg, [str(scenes)])
    stream = PretrainStream(plan.windows, seed=123, views=objective != "mim")
    batch = torch.utils.data.default_collate([stream[i] for i in range(16)])

    def held_out_loss(net) -> float:  # the same 16 windows, views and masks before and after
        a = normalize(batch["view_a"], IMAGENET_MEAN, IMAGENET_STD)
        b = normalize(batch["view_b"], IMAGENET_MEAN, IMAGENET_STD)
        with torch.no_grad():
            return float(net.eval().losses(a, b, torch.Generator().manual_seed(0))["loss"])

    before = held_out_loss(build_pretrainer(plan))
    result = pretrain(plan, command="crossearth pretrain X", enable_progress_bar=False,
                      progress_lines=False)  # fmt: skip
    after = held_out_loss(result["module"].net)
    assert after < 0.8 * before, (before, after)
    assert len(losses(Path(cfg.out_dir))) == 30
    record = read_backbone_record(result["backbone"])
    assert record.preset == "vit-tiny-256" and record.config.embed_dim == 128
    assert record.record["steps"] == 30 and record.record["objective"] == objective
    assert record.record["trained_on"].startswith("6 images")
    assert record.record["command"] == "crossearth pretrain X"
    keys = set(backbone_state(Path(result["backbone"])))
    assert "blocks.5.mlp.fc2.weight" in keys and not any(k.startswith("reins.") for k in keys)


def test_the_file_is_a_backbone_for_train(scenes, tmp_path):
    from crossearth.train.config import TrainConfig
    from crossearth.train.run import build_model

    result = pretrain(prepare(cfg_for(tmp_path), [str(scenes)]), enable_progress_bar=False,
                      progress_lines=False)  # fmt: skip
    notes = []
    # --data runs default to vitl-512: the preset comes from the backbone file
    model = build_model(TrainConfig(preset="vitl-512", backbone=result["backbone"]), 6,
                        report=notes.append)  # fmt: skip
    assert model.config.backbone.embed_dim == 128 and model.config.backbone.depth == 6
    assert any("vit-tiny-256" in n for n in notes)
    state = model.backbone.state_dict()
    for key, value in backbone_state(Path(result["backbone"])).items():
        assert torch.equal(state[key], value), key


def test_resume_is_exact(scenes, tmp_path):
    straight = cfg_for(tmp_path / "a", objective="both", max_steps=4, schedule_steps=10)
    pretrain(prepare(straight, [str(scenes)]), enable_progress_bar=False, progress_lines=False)
    first = cfg_for(tmp_path / "b", objective="both", max_steps=2, schedule_steps=10)
    pretrain(prepare(first, [str(scenes)]), enable_progress_bar=False, progress_lines=False)
    resumed = dataclasses.replace(first, max_steps=4)
    pretrain(prepare(resumed, [str(scenes)]), resume=Path(first.out_dir) / "checkpoints/last.ckpt",
             enable_progress_bar=False, progress_lines=False)  # fmt: skip
    a = backbone_state(Path(straight.out_dir) / "backbone.safetensors")
    b = backbone_state(Path(resumed.out_dir) / "backbone.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert losses(Path(straight.out_dir))[2:] == losses(Path(resumed.out_dir))[-2:]


def test_init_continues_a_backbone_and_refuses_another_preset(scenes, tmp_path):
    result = pretrain(prepare(cfg_for(tmp_path), [str(scenes)]), enable_progress_bar=False,
                      progress_lines=False)  # fmt: skip
    plan = prepare(cfg_for(tmp_path, preset=None, init=result["backbone"]), [str(scenes)])
    assert plan.cfg.preset == "vit-tiny-256"  # from the file
    start = backbone_state(Path(result["backbone"]))
    assert all(torch.equal(plan.start[k], v) for k, v in start.items())
    with pytest.raises(ConfigError, match="is a vit-tiny-256 backbone, not vits-512"):
        prepare(cfg_for(tmp_path, preset="vits-512", init=result["backbone"]), [str(scenes)])
    other = tmp_path / "other.safetensors"
    from safetensors.torch import save_file

    save_file({k: torch.zeros(3) for k in start}, str(other))  # no record, wrong shapes
    with pytest.raises(CheckpointError, match="is not a vit-tiny-256 backbone"):
        prepare(cfg_for(tmp_path, init=str(other)), [str(scenes)])


def test_inputs_folders_globs_lists_and_small_images(scenes, tmp_path):
    listing = tmp_path / "scenes.txt"
    listing.write_text(f"# two scenes\n{scenes / 'scene_1.tif'}\n{scenes / 'sub'}\n")
    plan = prepare(cfg_for(tmp_path), [str(listing), str(scenes / "scene_[34].tif")])
    assert [Path(f.path).name for f in plan.windows.files] == [
        "scene_1.tif", "scene_0.tif", "scene_3.tif", "scene_4.tif"
    ]  # fmt: skip
    window = plan.windows.sample(0, torch.Generator().manual_seed(0))
    assert window.shape == (3, 32, 32) and window.dtype == torch.uint8
    with pytest.raises(InputError, match="smaller than the crop of 80 px"):
        prepare(cfg_for(tmp_path, crop=80), [str(scenes)])


def cli(monkeypatch, capsys, *args):
    code, out = run_cli_captured(monkeypatch, capsys, "pretrain", *args, "--max-steps", "2",
                                 "--batch-size", "2", "--crop", "32", "--workers", "0",
                                 "--precision", "32-true", "--accelerator", "cpu")  # fmt: skip
    return code, [line for line in out.splitlines() if line.strip()]


def test_cli_writes_the_backbone(monkeypatch, capsys, scenes, tmp_path):
    monkeypatch.chdir(tmp_path)
    code, lines = cli(monkeypatch, capsys, str(scenes), "-o", "run", "--objective", "mim")
    assert code == 0, lines
    assert lines[-1] == "done at step 2; backbone: run/backbone.safetensors"
    record = read_backbone_record(tmp_path / "run" / "backbone.safetensors").record
    assert (
        record["command"].startswith("crossearth pretrain ")
        and "--objective mim" in record["command"]
    )


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda d: (d / "notes.md").write_text("x"), "no images in"),
        (lambda d: (d / "broken.tif").write_bytes(b"not a tiff"), "no readable image"),
        (lambda d: write_tif(d / "tiny.tif", np.zeros((16, 16, 3), np.uint8)), "smaller than the crop"),
    ],
)  # fmt: skip
def test_bad_input_is_one_error_line_and_no_run_folder(
    monkeypatch, capsys, tmp_path, make, expected
):
    folder = tmp_path / "images"
    folder.mkdir()
    make(folder)
    code, lines = cli(monkeypatch, capsys, str(folder), "-o", str(tmp_path / "run"))
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert not (tmp_path / "run").exists()


def test_init_of_another_preset_is_one_error_line(monkeypatch, capsys, scenes, tmp_path):
    result = pretrain(prepare(cfg_for(tmp_path), [str(scenes)]), enable_progress_bar=False,
                      progress_lines=False)  # fmt: skip
    code, lines = cli(monkeypatch, capsys, str(scenes), "--init", result["backbone"],
                      "--preset", "vits-512", "-o", str(tmp_path / "run2"))  # fmt: skip
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "vit-tiny-256 backbone, not vits-512" in lines[0]
    assert not (tmp_path / "run2").exists()
    assert json.loads(json.dumps(read_backbone_record(result["backbone"]).record))
