"""Class sets of the benchmark datasets: names and palettes in the official index order.

Palettes are RGB and come from the official dataset classes (`rs_dataset/`); the LoveDA palette is
mmseg's. For the binary sets (WHU, DeepGlobe, Massachusetts) index 1 is the object (white in the
masks); see `crossearth.data.catalog` for how labels are decoded.
"""

from __future__ import annotations

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
