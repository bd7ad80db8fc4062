"""Class sets of the benchmark datasets: names and palettes in the official index order.

Palettes are RGB and come from the official dataset classes (`rs_dataset/`); the LoveDA palette is
mmseg's. For the binary sets (WHU, DeepGlobe, Massachusetts) index 1 is the object (white in the
masks); see `crossearth.data.catalog` for how labels are decoded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ClassSet:
    names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.palette):
            raise ValueError("a class set needs one colour per class")

    def __len__(self) -> int:
        return len(self.names)


ISPRS = ClassSet(
    ("impervious_surface", "building", "low_vegetation", "tree", "car", "clutter"),
    ((255, 255, 255), (0, 0, 255), (0, 255, 255), (0, 255, 0), (255, 255, 0), (255, 0, 0)),
)
RESCUE = ClassSet(
    ("impervious_surface", "building", "vegetation", "car", "clutter"),
    ((255, 255, 255), (0, 0, 255), (0, 255, 0), (255, 255, 0), (255, 0, 0)),
)
CASID = ClassSet(
    ("background", "building", "forest", "road", "water"),
    ((0, 0, 0), (255, 255, 0), (85, 255, 0), (255, 0, 0), (0, 112, 255)),
)
LOVEDA = ClassSet(
    ("background", "building", "road", "water", "barren", "forest", "agricultural"),
    (
        (255, 255, 255),
        (255, 0, 0),
        (255, 255, 0),
        (0, 0, 255),
        (159, 129, 183),
        (0, 255, 0),
        (255, 195, 128),
    ),
)
# Binary sets: index = mask value after dividing by 255 (black background 0, white object 1). The
# official configs name index 0 "Building"/"Road"; with masks divided by 255 that name is swapped.
BUILDING = ClassSet(("background", "building"), ((0, 0, 0), (255, 255, 255)))
ROAD = ClassSet(("background", "road"), ((0, 0, 0), (255, 255, 255)))


def default_palette(num_classes: int) -> tuple[tuple[int, int, int], ...]:
    """A deterministic, well-separated palette for models without one (golden-ratio hues)."""
    import colorsys

    colours = []
    for i in range(num_classes):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.75, 0.95)
        colours.append((round(r * 255), round(g * 255), round(b * 255)))
    return tuple(colours)


def placeholder_names(count: int) -> tuple[str, ...]:
    """The names a model without class names is shown with: class_0, class_1, ..."""
    return tuple(f"class_{i}" for i in range(count))


def class_key(name: str) -> str:
    """A class name as compared: case, surrounding spaces and the separators ` `, `_`, `-`
    ignored (`Low Vegetation`, `low_vegetation` and `low-vegetation` are one class)."""
    return "".join(ch for ch in str(name).strip().casefold() if ch not in " _-\t")


def differing_class_names(
    model_names: Sequence[str] | None, data_names: Sequence[str] | None
) -> list[str]:
    """Where a model's class names and a data set's differ, class id by class id (compared by
    `class_key`), as "id: model's name / data's name"; [] when they agree or either side
    records no names (nothing to compare). Both name the same number of classes (counts are
    checked first, with their own message). Placeholder names (`placeholder_names`: a model
    saved without names) are no names."""
    if not model_names or not data_names:
        return []
    if tuple(model_names) == placeholder_names(len(model_names)):
        return []
    return [
        f"{i}: {m} / {d}"
        for i, (m, d) in enumerate(zip(model_names, data_names, strict=False))
        if class_key(m) != class_key(d)
    ]


def class_names_problem(differences: Sequence[str], data: str, override: str | None) -> str:
    """The message for a model whose classes are not the data's: every differing class id,
    whether the same classes are merely in another order, and `override` (an option that
    proceeds anyway) if there is one."""
    fix = f"; {override} to score it anyway" if override else ""
    return (
        f"the model's classes are not {data}'s (class id: model / data): "
        f"{'; '.join(differences)}: a model of other classes{fix}"
    )
