"""The training stream is a pure function of (seed, position); domain sources decode labels."""

from __future__ import annotations

import itertools

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from crossearth.train.data import ArraySource, StreamDataset, StreamSampler, collate_train
from crossearth.train.datasets import domain_source
from crossearth.train.transforms import TrainPipeline


def small_pipeline() -> TrainPipeline:
    return TrainPipeline(crop=64, scales=(64, 80, 96), max_size=256)


def synthetic(n: int = 6, seed: int = 0) -> ArraySource:
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (72 + 4 * i, 90, 3), dtype=np.uint8) for i in range(n)]
    labels = [rng.integers(0, 4, image.shape[:2], dtype=np.uint8) for image in images]
    return ArraySource(images, labels)


def same(a: dict, b: dict) -> bool:
    return torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])


def test_samples_depend_only_on_seed_and_position():
    ds = StreamDataset(synthetic(), small_pipeline(), seed=3)
    twin = StreamDataset(synthetic(), small_pipeline(), seed=3)
    first = [ds[p] for p in range(12)]
    assert all(same(first[p], twin[p]) for p in reversed(range(12)))  # order does not matter
    assert first[0]["image"].shape == (3, 64, 64) and first[0]["label"].dtype == torch.uint8
    # each pass over the data is a permutation of it
    assert sorted(ds.index_of(p) for p in range(6)) == list(range(6))
    assert sorted(ds.index_of(p) for p in range(6, 12)) == list(range(6))
    assert [ds.index_of(p) for p in range(6)] != [ds.index_of(p) for p in range(6, 12)]
    other = StreamDataset(synthetic(), small_pipeline(), seed=4)
    assert not all(same(other[p], first[p]) for p in range(3))


def test_ranks_split_the_global_batch():
    one = StreamSampler(batch_size=4, rank=0, world=1, start_step=5)
    ranks = [StreamSampler(batch_size=2, rank=r, world=2, start_step=5) for r in range(2)]
    single = list(itertools.islice(iter(one), 12))
    split = [list(itertools.islice(iter(s), 6)) for s in ranks]
    for step in range(3):  # every step, the two ranks together take the single run's positions
        together = split[0][2 * step : 2 * step + 2] + split[1][2 * step : 2 * step + 2]
        assert sorted(together) == single[4 * step : 4 * step + 4]
    assert single[0] == 20  # resumed at step 5 with batch 4


def test_worker_count_does_not_change_batches():
    ds = StreamDataset(synthetic(), small_pipeline(), seed=1)

    def batches(workers: int):
        loader = DataLoader(ds, batch_size=2, sampler=StreamSampler(2), num_workers=workers,
                            collate_fn=collate_train)  # fmt: skip
        return list(itertools.islice(iter(loader), 3))

    for a, b in zip(batches(0), batches(2), strict=True):
        assert (
            a["image"].shape == (2, 3, 64, 64) and a["position"].tolist() == b["position"].tolist()
        )
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])


def make_vaihingen(root, n=3, size=(60, 80)):
    rng = np.random.default_rng(0)
    img_dir, ann_dir = root / "vaihingen/img_dir/train", root / "vaihingen/ann_dir/train"
    img_dir.mkdir(parents=True)
    ann_dir.mkdir(parents=True)
    raws = []
    for i in range(n):
        image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        raw = rng.integers(0, 7, size, dtype=np.uint8)  # 0 = ignore, 1..6 = classes
        Image.fromarray(image).save(img_dir / f"tile_{i}.png")
        Image.fromarray(raw).save(ann_dir / f"tile_{i}.png")
        raws.append((image, raw))
    return raws


def test_domain_source_decodes_vaihingen_labels(tmp_path):
    raws = make_vaihingen(tmp_path)
    source = domain_source("vaihingen", "train", tmp_path)
    assert len(source) == 3
    for i, (image, raw) in enumerate(raws):
        pixels, label = source.load(i)
        assert torch.equal(pixels, torch.from_numpy(image).permute(2, 0, 1))
        expected = np.where(raw == 0, 255, raw.astype(np.int64) - 1).astype(np.uint8)
        assert np.array_equal(label.numpy(), expected)
    assert len(domain_source("vaihingen", "train", tmp_path, limit=2)) == 2


def test_domain_source_casid_one_based(tmp_path):
    base = tmp_path / "casid/SubMs/all_train"
    (base / "image").mkdir(parents=True)
    (base / "label").mkdir(parents=True)
    rng = np.random.default_rng(1)
    raw = rng.integers(1, 6, (32, 32), dtype=np.uint8)  # ids 1..5
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(base / "image/a.png")
    Image.fromarray(raw).save(base / "label/a-label.png")
    source = domain_source("casid-subms", "train", tmp_path)
    assert source.one_based
    assert np.array_equal(source.load(0)[1].numpy(), raw - 1)
