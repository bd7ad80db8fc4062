"""Choosing the model's three input bands from a raster (crossearth.geo.bands)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import rasterio
from geotiff import write_geotiff
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin

from crossearth.errors import CrossEarthError, InputError
from crossearth.geo.bands import BandChoice, choose_bands

CI = ColorInterp


def write_tif(
    path: Path,
    count: int,
    *,
    dtype: str = "uint16",
    colorinterp: Sequence[ColorInterp] | None = None,
    descriptions: Sequence[str | None] | None = None,
    photometric: str | None = None,
    crs: str = "EPSG:32632",
) -> Path:
    """A small georeferenced GeoTIFF whose band b holds the value 10 * b."""
    data = np.stack([np.full((6, 8), 10 * b, dtype) for b in range(1, count + 1)])
    return write_geotiff(
        path, data, crs=CRS.from_user_input(crs),
        transform=from_origin(500000.0, 5000000.0, 10.0, 10.0), colorinterp=colorinterp,
        descriptions=descriptions, photometric=photometric,
    )  # fmt: skip


def choose(path: Path, model: str, requested: tuple[int, ...] | None = None) -> BandChoice:
    with rasterio.open(path) as ds:
        return choose_bands(ds, model, requested)


def test_three_band_rgb_file(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "rgb.tif", 3, dtype="uint8", photometric="RGB")
    choice = choose(path, "RGB")
    assert choice.bands == (1, 2, 3)
    assert "R = band 1 by colour interpretation" in choice.reason


def test_three_band_file_without_roles_is_used_in_file_order(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "plain.tif", 3)  # uint16, no photometric: no roles recorded
    choice = choose(path, "RGB")
    assert choice.bands == (1, 2, 3)
    assert "file order" in choice.reason and "no band roles" in choice.reason


@pytest.mark.parametrize("by", ["description", "colorinterp", "both"])
def test_three_band_bgr_file_is_reordered(tmp_path: Path, by: str) -> None:
    """The same rule as for 4+ bands: a file recorded as blue, green, red feeds bands 3,2,1."""
    path = write_tif(
        tmp_path / "bgr.tif",
        3,
        colorinterp=[CI.blue, CI.green, CI.red] if by != "description" else None,
        descriptions=["blue", "green", "red"] if by != "colorinterp" else None,
    )
    choice = choose(path, "RGB")
    assert choice.bands == (3, 2, 1)
    assert "R = band 3" in choice.reason


def test_three_band_bgr_file_for_irrg_model_is_refused(tmp_path: Path) -> None:
    path = write_tif(
        tmp_path / "bgr.tif", 3, descriptions=["blue", "green", "red"]
    )  # no NIR, and the recorded roles contradict the model's order
    with pytest.raises(InputError, match=r"near infrared.*--bands"):
        choose(path, "IRRG")


def test_five_band_rgbn_alpha_uses_alpha_as_mask_not_data(tmp_path: Path) -> None:
    path = write_tif(
        tmp_path / "rgbna.tif",
        5,
        colorinterp=[CI.red, CI.green, CI.blue, CI.undefined, CI.alpha],
        descriptions=[None, None, None, "nir", None],
    )
    rgb = choose(path, "RGB")
    assert rgb.bands == (1, 2, 3)
    assert "alpha band 5 used as the validity mask" in rgb.reason
    assert choose(path, "IRRG").bands == (4, 1, 2)


def test_three_band_file_for_irrg_model_keeps_order_and_says_what_is_expected(
    tmp_path: Path,
) -> None:
    path = write_tif(tmp_path / "irrg.tif", 3, crs="EPSG:4326")
    choice = choose(path, "IRRG")
    assert choice.bands == (1, 2, 3)
    assert "NIR,R,G" in choice.reason
    assert "--bands" in choice.reason


def test_rgbn_by_colorinterp_and_nir_description(tmp_path: Path) -> None:
    path = write_tif(
        tmp_path / "rgbn.tif",
        4,
        colorinterp=[CI.red, CI.green, CI.blue, CI.undefined],
        descriptions=[None, None, None, "nir"],
    )
    assert choose(path, "RGB").bands == (1, 2, 3)
    irrg = choose(path, "IRRG")
    assert irrg.bands == (4, 1, 2)
    assert "band 4" in irrg.reason


def test_nir_from_colorinterp(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "bgrn.tif", 4, colorinterp=[CI.blue, CI.green, CI.red, CI.nir])
    assert choose(path, "RGB").bands == (3, 2, 1)
    assert choose(path, "IRRG").bands == (4, 3, 2)


def test_sentinel2_like_descriptions(tmp_path: Path) -> None:
    names = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B11"]
    path = write_tif(tmp_path / "s2.tif", 8, descriptions=names)
    assert choose(path, "RGB").bands == (3, 2, 1)
    assert choose(path, "IRRG").bands == (7, 3, 2)


def test_descriptions_are_case_and_separator_insensitive(tmp_path: Path) -> None:
    names = ["Coastal", "BLUE", "Green", "Red", "Near-Infrared", "SWIR_1"]
    path = write_tif(tmp_path / "six.tif", 6, descriptions=names)
    assert choose(path, "RGB").bands == (4, 3, 2)
    assert choose(path, "IRRG").bands == (5, 4, 3)


def test_description_outranks_default_colorinterp(tmp_path: Path) -> None:
    # bands 1-3 carry GDAL's default R,G,B interpretation, but the descriptions say B,G,R
    path = write_tif(
        tmp_path / "bgrn.tif",
        4,
        colorinterp=[CI.red, CI.green, CI.blue, CI.undefined],
        descriptions=["blue", "green", "red", "nir"],
    )
    assert choose(path, "RGB").bands == (3, 2, 1)


def test_rgba_alpha_is_not_data(tmp_path: Path) -> None:
    path = write_tif(
        tmp_path / "rgba.tif",
        4,
        dtype="uint8",
        photometric="RGB",
        colorinterp=[CI.red, CI.green, CI.blue, CI.alpha],
    )
    choice = choose(path, "RGB")
    assert choice.bands == (1, 2, 3)
    assert "alpha band 4 used as the validity mask" in choice.reason


@pytest.mark.parametrize("count", [1, 2])
def test_one_or_two_bands_need_explicit_bands(tmp_path: Path, count: int) -> None:
    path = write_tif(tmp_path / "few.tif", count)
    with pytest.raises(InputError, match=rf"has {count} data band.*--bands 1,1,1"):
        choose(path, "RGB")


def test_gray_alpha_counts_one_data_band(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "la.tif", 2, colorinterp=[CI.gray, CI.alpha])
    with pytest.raises(InputError, match="has 1 data band"):
        choose(path, "RGB")


def test_requested_bands_are_used_and_may_repeat(tmp_path: Path) -> None:
    pan = write_tif(tmp_path / "pan.tif", 1)
    assert choose(pan, "RGB", (1, 1, 1)).bands == (1, 1, 1)
    multi = write_tif(tmp_path / "multi.tif", 5)
    choice = choose(multi, "IRRG", (5, 3, 2))
    assert choice.bands == (5, 3, 2)
    assert "--bands" in choice.reason


def test_requested_out_of_range_names_band_and_count(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "rgb.tif", 3)
    with pytest.raises(InputError, match=r"band 4 .*has 3 band"):
        choose(path, "RGB", (1, 2, 4))
    with pytest.raises(InputError, match=r"band 0 "):
        choose(path, "RGB", (0, 1, 2))


def test_requested_needs_three_bands(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "rgb.tif", 3)
    with pytest.raises(InputError, match="three"):
        choose(path, "RGB", (1, 2))
    with pytest.raises(InputError, match="three"):
        choose(path, "RGB", (1, 2, 3, 3))


def test_unidentifiable_four_band_file(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "mystery.tif", 4, descriptions=["a", "b2x", None, "band4"])
    with pytest.raises(InputError) as err:
        choose(path, "RGB")
    message = str(err.value)
    assert "--bands" in message
    assert "red" in message  # the first role it could not find
    assert "band 2: colorinterp undefined, description 'b2x'" in message
    assert "band 3: colorinterp undefined, no description" in message


def test_irrg_model_without_nir_band(tmp_path: Path) -> None:
    path = write_tif(
        tmp_path / "rgbx.tif", 4, colorinterp=[CI.red, CI.green, CI.blue, CI.undefined]
    )
    assert choose(path, "RGB").bands == (1, 2, 3)
    with pytest.raises(InputError, match=r"near infrared.*--bands"):
        choose(path, "IRRG")


def test_ambiguous_roles_are_refused(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "two-reds.tif", 4, descriptions=["red", "green", "blue", "Red"])
    with pytest.raises(InputError, match=r"bands 1,4 .*red.*--bands"):
        choose(path, "RGB")


def test_unknown_model_layout(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "rgb.tif", 3)
    with pytest.raises(CrossEarthError, match="RGBN"):
        choose(path, "RGBN")
    assert choose(path, "rgb").bands == (1, 2, 3)
