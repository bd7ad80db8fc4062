import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from crossearth.train.datasets import (
    InMemorySegmentation,
    SegmentationDataset,
    collate,
    domain_dataset,
    sample_seed,
)
from crossearth.train.transforms import TrainPipeline


def small_pipeline() -> TrainPipeline:
    return TrainPipeline(crop=64, scales=(64, 80, 96), max_size=256)


def synthetic(n: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (72 + 4 * i, 90, 3), dtype=np.uint8) for i in range(n)]
    labels = [rng.integers(0, 4, image.shape[:2], dtype=np.uint8) for image in images]
    return images, labels


def same(a: dict, b: dict) -> bool:
    return torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])


def test_augmentation_depends_only_on_seed_epoch_index():
    images, labels = synthetic()
    ds = InMemorySegmentation(images, labels, transform=small_pipeline(), seed=3)
    twin = InMemorySegmentation(images, labels, transform=small_pipeline(), seed=3)
    first = [ds[i] for i in range(len(ds))]
    assert all(same(first[i], twin[i]) for i in reversed(range(len(ds))))  # order does not matter
    assert all(s["index"] == i for i, s in enumerate(first))
    assert first[0]["image"].shape == (3, 64, 64) and first[0]["label"].dtype == torch.uint8
    ds.set_epoch(1)
    second = [ds[i] for i in range(len(ds))]
    assert sum(same(a, b) for a, b in zip(first, second, strict=True)) <= 1
    assert all(same(ds[(0, i)], first[i]) for i in range(len(ds)))  # explicit (epoch, index)
    ds.set_epoch(0)
    assert same(ds[2], first[2])
    other_seed = InMemorySegmentation(images, labels, transform=small_pipeline(), seed=4)
    assert not same(other_seed[2], first[2])
    assert sample_seed(0, 1, 2) != sample_seed(0, 2, 1)
    with pytest.raises(ValueError):
        sample_seed(0, -1, 0)
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_worker_count_does_not_change_samples():
    images, labels = synthetic()
    ds = InMemorySegmentation(images, labels, transform=small_pipeline(), seed=1)
    ds.set_epoch(2)

    def batches(workers: int):
        loader = DataLoader(ds, batch_size=2, num_workers=workers, collate_fn=collate)
        return list(loader)

    for a, b in zip(batches(0), batches(2), strict=True):
        assert a["image"].shape == (2, 3, 64, 64) and a["label"].shape == (2, 64, 64)
        assert a["image"].dtype == torch.uint8 and a["index"].tolist() == b["index"].tolist()
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])


def test_no_transform_and_collate_of_variable_sizes():
    images, labels = synthetic(3)
    ds = InMemorySegmentation(images, labels)
    sample = ds[1]
    assert torch.equal(sample["image"], torch.from_numpy(images[1]).permute(2, 0, 1))
    assert torch.equal(sample["label"], torch.from_numpy(labels[1]))
    batch = collate([ds[0], ds[1]])
    assert isinstance(batch["image"], list) and [t.shape[1] for t in batch["image"]] == [72, 76]
    assert isinstance(batch["label"], list) and batch["index"].tolist() == [0, 1]
    with pytest.raises(ValueError):
        InMemorySegmentation(images, labels[:2])
    with pytest.raises(ValueError):
        InMemorySegmentation(images[:1], [labels[0][:-1]])


def make_vaihingen(root, n=3, size=(60, 80)):
    rng = np.random.default_rng(0)
    img_dir = root / "vaihingen" / "img_dir" / "train"
    ann_dir = root / "vaihingen" / "ann_dir" / "train"
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


def test_domain_dataset_vaihingen_layout(tmp_path):
    raws = make_vaihingen(tmp_path)
    ds = domain_dataset("vaihingen", "train", tmp_path)
    assert isinstance(ds, SegmentationDataset) and len(ds) == 3
    for i, (image, raw) in enumerate(raws):
        sample = ds[i]
        assert torch.equal(sample["image"], torch.from_numpy(image).permute(2, 0, 1))
        expected = np.where(raw == 0, 255, raw.astype(np.int64) - 1).astype(np.uint8)
        assert np.array_equal(sample["label"].numpy(), expected)
        assert set(np.unique(sample["label"].numpy()).tolist()) == {0, 1, 2, 3, 4, 5, 255}
    limited = domain_dataset("vaihingen", "train", tmp_path, transform=small_pipeline(), limit=2)
    assert len(limited) == 2
    batch = collate([limited[0], limited[1]])
    assert batch["image"].shape == (2, 3, 64, 64) and batch["label"].shape == (2, 64, 64)
    assert set(batch["label"].unique().tolist()) <= {0, 1, 2, 3, 4, 5, 255}
    moved = tmp_path / "elsewhere"
    (tmp_path / "vaihingen").rename(moved)
    assert (
        len(domain_dataset("vaihingen", "train", tmp_path / "x", overrides={"vaihingen": moved}))
        == 3
    )


def test_domain_dataset_casid_one_based(tmp_path):
    base = tmp_path / "casid" / "SubMs" / "all_train"
    (base / "image").mkdir(parents=True)
    (base / "label").mkdir(parents=True)
    rng = np.random.default_rng(1)
    raw = rng.integers(1, 6, (32, 32), dtype=np.uint8)  # ids 1..5
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
        base / "image" / "a.png"
    )
    Image.fromarray(raw).save(base / "label" / "a-label.png")
    ds = domain_dataset("casid-subms", "train", tmp_path)
    assert ds.one_based
    assert np.array_equal(ds[0]["label"].numpy(), raw - 1)
