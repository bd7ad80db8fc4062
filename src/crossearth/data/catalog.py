"""The benchmark's domains: where their prepared files live, how labels are encoded, what to expect.

A *domain* is one evaluable collection (a dataset, or one domain of it: LoveDA Urban, CASID TroRf).
Paths are relative to a data root (`--data-root`). Converters (`crossearth data prepare`) write
exactly these layouts, which are those of the official configs and mmseg converters, so folders
prepared by the official tools work as they are.

Label conventions (`LabelSpec`), applied when labels are read for evaluation or training:
- `reduce_zero_label`: 0 is ignore (ISPRS eroded boundaries, LoveDA no-data, RescueNet unlabelled);
  k becomes k - 1; 255 stays ignore.
- `binary`: building/road masks; any non-zero value (1 or 255) is the object (class 1), 0 is
  background (class 0). Class names follow the masks (black = background, white = object); the
  official configs list them the other way round, which changes per-class names, not mIoU.
- `detect_one_based`: CASID labels may be 0..4 or 1..5 (the benchmark README says 1-5, the configs
  need 0..4); the first label files are read and, if they hold 5 and no 0, 1 is subtracted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crossearth.data.classes import BUILDING, CASID, ISPRS, LOVEDA, RESCUE, ROAD, ClassSet


@dataclass(frozen=True)
class LabelSpec:
    reduce_zero_label: bool = False
    binary: bool = False
    detect_one_based: bool = False


@dataclass(frozen=True)
class SplitLayout:
    """Image and label folders of one split, relative to the domain folder, and file suffixes."""

    images: str
    labels: str
    image_suffix: str
    label_suffix: str
    label_dirs_fallback: tuple[str, ...] = ()  # other label folder names the official repacks use


@dataclass(frozen=True)
class Domain:
    key: str
    title: str
    folder: str  # relative to the data root
    classes: ClassSet
    labels: LabelSpec
    splits: dict[str, SplitLayout]
    expected: dict[str, int]  # images per split in the full benchmark
    bands: str = "RGB"
    gsd_m: float | None = None
    test_resize: int = 512  # official test Resize(scale=(S, S))
    keep_ratio: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)


def _isprs_splits() -> dict[str, SplitLayout]:
    return {
        split: SplitLayout(f"img_dir/{split}", f"ann_dir/{split}", ".png", ".png")
        for split in ("train", "val")
    }


def _loveda_splits(domain: str) -> dict[str, SplitLayout]:
    return {
        split.lower(): SplitLayout(
            f"{split}/{domain}/images_png", f"{split}/{domain}/masks_png", ".png", ".png"
        )
        for split in ("Train", "Val")
    }


def _casid(
    key: str, name: str, title: str, train: int, test: int, test_labels: str = "label"
) -> Domain:
    return Domain(
        key=key,
        title=f"CASID {title}",
        folder=f"casid/{name}",
        classes=CASID,
        labels=LabelSpec(detect_one_based=True),
        splits={
            "train": SplitLayout("all_train/image", "all_train/label", ".png", "-label.png"),
            "test": SplitLayout(
                "all_test/image",
                f"all_test/{test_labels}",
                ".png",
                "-label.png",
                ("label_id", "label"),
            ),
        },
        expected={"train": train, "test": test},
        gsd_m=1.0,
        test_resize=1024,
        keep_ratio=name
        != "TemMs",  # the official TemMs test pipeline resizes without keeping ratio
    )


DOMAINS: dict[str, Domain] = {
    d.key: d
    for d in (
        Domain("potsdam-irrg", "ISPRS Potsdam IRRG", "potsdam/IRRG", ISPRS, LabelSpec(reduce_zero_label=True),
               _isprs_splits(), {"train": 3456, "val": 2016}, "IRRG", 0.05),
        Domain("potsdam-rgb", "ISPRS Potsdam RGB", "potsdam/RGB", ISPRS, LabelSpec(reduce_zero_label=True),
               _isprs_splits(), {"train": 3456, "val": 2016}, "RGB", 0.05),
        Domain("vaihingen", "ISPRS Vaihingen", "vaihingen", ISPRS, LabelSpec(reduce_zero_label=True),
               _isprs_splits(), {"train": 344, "val": 398}, "IRRG", 0.09),
        Domain("potsdam-rescue-irrg", "Potsdam IRRG, RescueNet classes", "potsdam_rescue/IRRG", RESCUE,
               LabelSpec(reduce_zero_label=True), _isprs_splits(), {"train": 3456, "val": 2016}, "IRRG", 0.05),
        Domain("potsdam-rescue-rgb", "Potsdam RGB, RescueNet classes", "potsdam_rescue/RGB", RESCUE,
               LabelSpec(reduce_zero_label=True), _isprs_splits(), {"train": 3456, "val": 2016}, "RGB", 0.05),
        Domain("rescuenet", "RescueNet (5 classes)", "rescuenet", RESCUE, LabelSpec(reduce_zero_label=True),
               {"test": SplitLayout("test-org-img", "test-label-img", ".jpg", "_lab.png")},
               {"test": 449}, "RGB", None),
        Domain("loveda-urban", "LoveDA Urban", "loveda", LOVEDA, LabelSpec(reduce_zero_label=True),
               _loveda_splits("Urban"), {"train": 1156, "val": 677}, "RGB", 0.3, 1024),
        Domain("loveda-rural", "LoveDA Rural", "loveda", LOVEDA, LabelSpec(reduce_zero_label=True),
               _loveda_splits("Rural"), {"train": 1366, "val": 992}, "RGB", 0.3, 1024),
        Domain("whu-aerial", "WHU Building aerial", "whu/aerial", BUILDING, LabelSpec(binary=True),
               {split: SplitLayout(f"{split}/image", f"{split}/label2", ".tif", ".tif", ("label",))
                for split in ("train", "val", "test")},
               {"train": 4736, "val": 1036, "test": 2416}, "RGB", 0.3),
        Domain("whu-satellite", "WHU Building satellite II", "whu/satellite", BUILDING, LabelSpec(binary=True),
               {split: SplitLayout(f"{split}_all/image", f"{split}_all/label", ".tif", ".tif")
                for split in ("train", "test")},
               {"train": 13662, "test": 3726}, "RGB", None),
        Domain("deepglobe", "DeepGlobe roads", "deepglobe", ROAD, LabelSpec(binary=True),
               {"train": SplitLayout("train", "train", "_sat.jpg", "_mask.png")}, {"train": 6226}, "RGB", 0.5, 1024),
        Domain("massachusetts", "Massachusetts roads", "massachusetts", ROAD, LabelSpec(binary=True),
               {split: SplitLayout(split, f"{split}_labels_new", ".tiff", ".tif", (f"{split}_labels",))
                for split in ("train", "test")},
               {"train": 1108, "test": 49}, "RGB", 1.0, 1500),
        _casid("casid-subms", "SubMs", "subtropical monsoon", 4900, 2200),
        _casid("casid-temms", "TemMs", "temperate monsoon", 5025, 2075),
        _casid("casid-troms", "TroMs", "tropical monsoon", 3400, 1650, "label_id"),
        _casid("casid-trorf", "TroRf", "tropical rainforest", 3700, 1550),
    )
}  # fmt: skip


def _synthearth_domains() -> dict[str, Domain]:
    """SynthEarth domains (`crossearth synth`), laid out like a prepared ISPRS dataset."""
    from crossearth.data.synthetic import DOMAINS as SPECS

    return {
        f"synthearth-{name}": Domain(
            f"synthearth-{name}", f"SynthEarth {name}", f"synthearth/{name}", ISPRS,
            LabelSpec(reduce_zero_label=True),
            {s: SplitLayout(f"img_dir/{s}", f"ann_dir/{s}", ".tif", ".png") for s in ("train", "val")},
            {}, spec.bands, spec.gsd_m, test_resize=0,
        )
        for name, spec in SPECS.items()
    }  # fmt: skip


DOMAINS.update(_synthearth_domains())


def get_domain(key: str) -> Domain:
    try:
        return DOMAINS[key]
    except KeyError:
        raise KeyError(f"unknown domain {key!r}; known: {', '.join(DOMAINS)}") from None
