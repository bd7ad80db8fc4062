"""`crossearth data prepare DATASET RAW_DIR --out DATA_ROOT`: one converter module per raw archive.

Each converter takes (raw folder, data root, PrepareOptions) and returns one PrepareReport per
domain it wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from crossearth.data.prepare.casid import prepare_casid
from crossearth.data.prepare.common import PrepareOptions, PrepareReport
from crossearth.data.prepare.deepglobe import prepare_deepglobe
from crossearth.data.prepare.loveda import prepare_loveda
from crossearth.data.prepare.massachusetts import prepare_massachusetts
from crossearth.data.prepare.potsdam import prepare_potsdam, prepare_potsdam_rescue
from crossearth.data.prepare.rescuenet import prepare_rescuenet
from crossearth.data.prepare.vaihingen import prepare_vaihingen
from crossearth.data.prepare.whu import prepare_whu_aerial, prepare_whu_satellite

Converter = Callable[[Path, Path, PrepareOptions], "PrepareReport | list[PrepareReport]"]

CONVERTERS: dict[str, Converter] = {
    "potsdam": prepare_potsdam,
    "vaihingen": prepare_vaihingen,
    "potsdam-rescue": prepare_potsdam_rescue,
    "loveda": prepare_loveda,
    "whu-aerial": prepare_whu_aerial,
    "whu-satellite": prepare_whu_satellite,
    "deepglobe": prepare_deepglobe,
    "massachusetts": prepare_massachusetts,
    "rescuenet": prepare_rescuenet,
    "casid": prepare_casid,
}
