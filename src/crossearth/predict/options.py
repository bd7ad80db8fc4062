"""`PredictOptions`: everything a prediction can be asked to do besides the model itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crossearth.errors import InputError
from crossearth.predict.plan import VECTOR_FORMATS


@dataclass
class PredictOptions:
    """Everything `predict_raster` can be asked to do besides the model itself.

    Every value is checked here, once, when the options are made (the CLI makes them before
    loading the model); window sizes that depend on the model are checked by `windows_for`.

    Raises:
        InputError: (a `ValueError`) a value is out of range or unknown; the message names the
            CLI option.
    """

    bands: tuple[int, ...] | None = None
    scale: str | None = None
    nodata: str | float | None = None  # override the file's nodata value: a number, or "none"
    tile: int | None = None  # window side in px (default: the model's crop)
    stride: int | None = None  # window step in px (default: the tile x the model's stride/crop)
    batch_size: int = 4
    blend: str = "mean"
    tta: str = "none"
    confidence: bool = False
    preview: bool = True
    overlay: bool = True
    vector: str | None = None  # "gpkg", "geojson" or an explicit path
    cog: bool = False
    match_gsd: bool = False
    png: bool | None = None  # class map as palette PNG (default: for inputs without georeferencing)
    extra_tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from crossearth.geo.scaling import parse_scale
        from crossearth.predict.stream import BLENDS, TTAS

        for name, flag in (("tile", "--tile"), ("stride", "--stride")):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                raise InputError(f"{flag} must be a whole number of pixels >= 1, got {value!r}")
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise InputError(f"--batch-size must be a whole number >= 1, got {self.batch_size!r}")
        if self.tile is not None and self.stride is not None and self.stride > self.tile:
            raise InputError(
                f"--stride {self.stride} is larger than --tile {self.tile}: pixels between "
                "windows would get no prediction"
            )
        if self.blend not in BLENDS:
            raise InputError(f"--blend must be one of {', '.join(BLENDS)}, got {self.blend!r}")
        if self.tta not in TTAS:
            raise InputError(f"--tta must be one of {', '.join(TTAS)}, got {self.tta!r}")
        if self.vector is not None and (
            self.vector.lower() not in VECTOR_FORMATS
            and Path(self.vector).suffix.lower() not in {".gpkg", ".geojson", ".json"}
        ):
            raise InputError(
                f"--vector must be gpkg, geojson, or a .gpkg/.geojson path, got {self.vector!r}"
            )
        if self.match_gsd and self.confidence:
            raise InputError("--confidence cannot be combined with --match-gsd yet")
        parse_scale(self.scale)  # raises InputError naming --scale
        from crossearth.geo.scaling import parse_nodata

        parse_nodata(self.nodata)  # raises InputError naming --nodata

    def windows_for(self, model: Any) -> tuple[tuple[int, int], tuple[int, int]]:
        """(crop, stride) in px for `model`: `tile`/`stride` where given; without `stride`, the
        stride follows the tile by the model's own (official) stride/crop ratio, 341/512.

        Raises:
            InputError: `tile` is below the smallest window the model takes, or the stride
                given is larger than the model's default crop (when no tile is given).
        """
        cfg = model.config.inference
        smallest = int(getattr(model, "min_input_size", 1) or 1)
        if self.tile is None:
            crop = tuple(cfg.crop_size)
            stride = (self.stride,) * 2 if self.stride else tuple(cfg.stride)
        else:
            if self.tile < smallest:
                raise InputError(
                    f"--tile {self.tile} is smaller than the smallest window this model takes "
                    f"({smallest} px); smaller images are padded to it automatically"
                )
            crop = (self.tile, self.tile)
            stride = (self.stride,) * 2 if self.stride else tuple(
                max(1, self.tile * s // c) for s, c in zip(cfg.stride, cfg.crop_size, strict=True)
            )  # fmt: skip
        if stride[0] > crop[0] or stride[1] > crop[1]:
            raise InputError(
                f"--stride {stride[0]} is larger than the window ({crop[0]} px): pixels between "
                "windows would get no prediction; lower --stride or raise --tile"
            )
        return (int(crop[0]), int(crop[1])), (int(stride[0]), int(stride[1]))


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)
