"""Scaling pixels of any type to the model's 0..255 input (crossearth.geo.scaling)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from geotiff import write_geotiff
from rasterio.crs import CRS
from rasterio.transform import from_origin

from crossearth.errors import InputError
from crossearth.geo.scaling import (
    ScaleSpec,
    Scaling,
    check_spec_for_dtype,
    estimate_scaling,
    parse_scale,
    sample_valid_values,
)


def write_tif(
    path: Path,
    data: np.ndarray,
    *,
    nodata: float | None = None,
    mask: np.ndarray | None = None,
    crs: str = "EPSG:32632",
) -> Path:
    """A B x H x W array as a georeferenced GeoTIFF (optionally with an internal mask)."""
    transform = from_origin(500000.0, 5000000.0, 0.5, 0.5)
    if crs == "EPSG:4326":
        transform = from_origin(9.0, 45.0, 1e-5, 1e-5)
    photometric = "RGB" if data.shape[0] == 3 and data.dtype == np.uint8 else None
    return write_geotiff(
        path, data, crs=CRS.from_user_input(crs), transform=transform, nodata=nodata,
        internal_mask=mask, photometric=photometric,
    )  # fmt: skip


def estimate(path: Path, spec: str | None, bands: tuple[int, ...] = (1, 2, 3), **kw) -> Scaling:
    with rasterio.open(path) as ds:
        return estimate_scaling(ds, bands, parse_scale(spec), **kw)


# ---------------------------------------------------------------- Scaling.apply


def test_identity_on_uint8_is_exact_and_skips_float_math() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(37, 41, 3), dtype=np.uint8)
    out = Scaling.identity(3).apply(pixels)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, pixels)
    assert out is pixels  # fast path: no copy, no arithmetic


def test_identity_estimated_for_uint8_file_with_auto(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, size=(3, 50, 60), dtype=np.uint8)
    path = write_tif(tmp_path / "rgb.tif", data, crs="EPSG:4326")
    for spec in (None, "auto", "none"):
        scaling = estimate(path, spec)
        assert scaling == Scaling.identity(3)
        hwc = np.moveaxis(data, 0, -1)
        np.testing.assert_array_equal(scaling.apply(hwc), hwc)


def test_identity_on_wider_types_clips_above_255() -> None:
    pixels = np.array([[[0, 100, 255], [256, 1000, 65535]]], dtype=np.uint16)
    out = Scaling.identity(3).apply(pixels)
    np.testing.assert_array_equal(out, [[[0, 100, 255], [255, 255, 255]]])


def test_explicit_range_maps_known_values() -> None:
    scaling = Scaling((0.0,) * 3, (10000.0,) * 3)
    pixels = np.array([[[0, 2000, 4000], [10000, 20000, -5]]], dtype=np.int32)
    # 2000/10000*255 = 51, 4000 -> 102, above MAX -> 255, below MIN -> 0
    np.testing.assert_array_equal(scaling.apply(pixels), [[[0, 51, 102], [255, 255, 0]]])


def test_rounds_to_nearest() -> None:
    scaling = Scaling((0.0,), (1000.0,))
    # 0.255 -> 0 (0.255), 2 -> 0.51 -> 1, 5 -> 1.275 -> 1, 6 -> 1.53 -> 2
    pixels = np.array([[[1], [2], [5], [6]]], dtype=np.uint16)
    np.testing.assert_array_equal(scaling.apply(pixels)[..., 0], [[0, 1, 1, 2]])


def test_constant_band_maps_to_zero_without_division_warnings() -> None:
    scaling = Scaling((5.0, 7.0, 0.0), (5.0, 3.0, 10.0))  # equal, inverted, normal
    pixels = np.full((4, 4, 3), 5.0, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = scaling.apply(pixels)
    np.testing.assert_array_equal(out[..., 0], 0)
    np.testing.assert_array_equal(out[..., 1], 0)
    np.testing.assert_array_equal(out[..., 2], 128)  # 0.5 * 255 = 127.5 -> 128


def test_nan_and_infinities_in_pixels() -> None:
    scaling = Scaling((0.0,), (1.0,))
    pixels = np.array([[[np.nan], [np.inf], [-np.inf], [0.5]]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = scaling.apply(pixels)
    np.testing.assert_array_equal(out[..., 0], [[0, 255, 0, 128]])


def test_apply_rejects_wrong_band_count() -> None:
    with pytest.raises(ValueError, match="H x W x 3"):
        Scaling.identity(3).apply(np.zeros((4, 4, 4), np.uint8))


# ---------------------------------------------------------------- clipping report


def test_clipped_fraction_counts_valid_values_outside_range() -> None:
    scaling = Scaling((0.0, 0.0), (100.0, 100.0))
    pixels = np.array(
        [[[-5, 50], [0, 100], [150, 101]], [[50, 50], [np.nan, 200], [1000, 1000]]],
        dtype=np.float64,
    )
    valid = np.array([[True, True, True], [True, True, False]])
    # valid values: -5,50, 0,100, 150,101, 50,50, 200 (NaN left out) = 9; outside: -5,150,101,200
    assert scaling.clipped_count(pixels, valid) == (4, 9)
    assert scaling.clipped_fraction(pixels, valid) == pytest.approx(4 / 9)
    assert scaling.clipped_fraction(pixels, np.zeros((2, 3), bool)) == 0.0
    # without a mask every non-NaN value counts: also the two 1000s
    assert scaling.clipped_count(pixels) == (6, 11)


def test_identity_never_clips_uint8() -> None:
    pixels = np.full((3, 3, 3), 255, np.uint8)
    mask = np.ones((3, 3), np.uint8) * 255
    mask[0, 0] = 0
    assert Scaling.identity(3).clipped_count(pixels, mask) == (0, 24)


# ---------------------------------------------------------------- parse_scale


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, ScaleSpec("auto", percentiles=(2.0, 98.0))),
        ("auto", ScaleSpec("auto", percentiles=(2.0, 98.0))),
        (" AUTO ", ScaleSpec("auto", percentiles=(2.0, 98.0))),
        ("none", ScaleSpec("none")),
        ("p1,p99", ScaleSpec("percentile", percentiles=(1.0, 99.0))),
        ("p0, p100", ScaleSpec("percentile", percentiles=(0.0, 100.0))),
        ("p2.5,p97.5", ScaleSpec("percentile", percentiles=(2.5, 97.5))),
        ("0,10000", ScaleSpec("range", ranges=((0.0, 10000.0),))),
        ("-1,1", ScaleSpec("range", ranges=((-1.0, 1.0),))),
        ("0,1e4", ScaleSpec("range", ranges=((0.0, 10000.0),))),
        (
            "0,3000;0,3000;0,2500",
            ScaleSpec("range", ranges=((0.0, 3000.0), (0.0, 3000.0), (0.0, 2500.0))),
        ),
    ],
)
def test_parse_scale_accepted_forms(text: str | None, expected: ScaleSpec) -> None:
    assert parse_scale(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "p1",
        "p99,p1",
        "p5,p5",
        "p-1,p50",
        "p0,p101",
        "5,5",
        "10,0",
        "0,3000;",
        "nan,1",
        "0,inf",
        "1,2,3",
        "p1,99",
        "0;10000",
    ],
)
def test_parse_scale_rejects_bad_text(text: str) -> None:
    with pytest.raises(InputError, match="--scale"):
        parse_scale(text)


@pytest.mark.parametrize(("ranges", "nbands", "ok"), [(2, 3, False), (4, 3, False), (4, 4, True),
                                                      (2, 2, True), (1, 5, True)])  # fmt: skip
def test_range_count_must_match_the_selected_bands(tmp_path, ranges, nbands, ok) -> None:
    """Models of any band count: one range for all bands or one per selected band, checked
    when the bands are known."""
    path = tmp_path / "img.tif"
    data = np.arange(5 * 8 * 8, dtype=np.uint16).reshape(5, 8, 8)
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=5,
                       dtype="uint16") as dst:  # fmt: skip
        dst.write(data)
    spec = parse_scale(";".join(["0,1000"] * ranges))
    with rasterio.open(path) as ds:
        bands = tuple(range(1, nbands + 1))
        if ok:
            scaling = estimate_scaling(ds, bands, spec)
            assert scaling.low == (0.0,) * nbands and scaling.high == (1000.0,) * nbands
        else:
            with pytest.raises(InputError, match=f"{ranges} ranges but {nbands} bands"):
                estimate_scaling(ds, bands, spec)


def test_parse_scale_error_lists_accepted_forms() -> None:
    with pytest.raises(InputError) as err:
        parse_scale("bright")
    message = str(err.value)
    for form in ("auto", "none", "p1,p99", "0,10000", "0,3000;0,3000;0,2500"):
        assert form in message


# ---------------------------------------------------------------- dtype checks


def test_none_refuses_non_uint8_data(tmp_path: Path) -> None:
    check_spec_for_dtype(parse_scale("none"), "uint8")
    check_spec_for_dtype(parse_scale("none"), np.dtype(np.uint8))
    with pytest.raises(InputError, match=r"uint16.*--scale auto"):
        check_spec_for_dtype(parse_scale("none"), "uint16")
    check_spec_for_dtype(parse_scale("auto"), "uint16")  # fine: auto stretches

    data = np.full((3, 8, 8), 1000, np.uint16)
    path = write_tif(tmp_path / "u16.tif", data)
    with pytest.raises(InputError, match="--scale none"):
        estimate(path, "none")


def test_complex_data_is_refused() -> None:
    with pytest.raises(InputError, match="complex64"):
        check_spec_for_dtype(parse_scale("auto"), "complex64")


# ---------------------------------------------------------------- estimate_scaling


def test_uint16_percentiles_match_numpy_on_full_array(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    data = np.stack(
        [
            rng.normal(1500, 300, size=(200, 300)).clip(0, 65535),
            rng.uniform(100, 9000, size=(200, 300)),
            rng.gamma(2.0, 800.0, size=(200, 300)).clip(0, 65535),
        ]
    ).astype(np.uint16)
    path = write_tif(tmp_path / "u16.tif", data)
    for spec, (plo, phi) in ((None, (2, 98)), ("auto", (2, 98)), ("p1,p99", (1, 99))):
        scaling = estimate(path, spec)
        for b in range(3):
            lo, hi = np.percentile(data[b].astype(np.float64), [plo, phi])
            assert scaling.low[b] == pytest.approx(lo, rel=1e-12)
            assert scaling.high[b] == pytest.approx(hi, rel=1e-12)
    # the stretched output spans 0..255 with about 2% clipped at each end
    scaling = estimate(path, "auto")
    out = scaling.apply(np.moveaxis(data, 0, -1))
    assert out.min() == 0 and out.max() == 255
    assert np.mean(out[..., 1] == 0) == pytest.approx(0.02, abs=0.005)
    assert scaling.clipped_fraction(np.moveaxis(data, 0, -1), None) == pytest.approx(0.04, abs=0.01)


def test_band_selection_and_order_are_respected(tmp_path: Path) -> None:
    data = np.stack([np.full((20, 20), v, np.uint16) for v in (100, 200, 300, 400)])
    data[:, :10] += 50  # each band spans [v, v+50]
    path = write_tif(tmp_path / "four.tif", data)
    scaling = estimate(path, "p0,p100", bands=(4, 1, 1))
    assert scaling.low == (400.0, 100.0, 100.0)
    assert scaling.high == (450.0, 150.0, 150.0)


def test_nodata_border_is_excluded(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    data = np.zeros((3, 120, 100), np.uint16)
    inside = rng.integers(1000, 2001, size=(3, 80, 60)).astype(np.uint16)
    data[:, 20:100, 20:80] = inside
    path = write_tif(tmp_path / "nodata.tif", data, nodata=0)
    scaling = estimate(path, "auto")
    for b in range(3):
        lo, hi = np.percentile(inside[b].astype(np.float64), [2, 98])
        assert scaling.low[b] == pytest.approx(lo)
        assert scaling.high[b] == pytest.approx(hi)
        assert 1000 <= scaling.low[b] < 1050
        assert 1950 < scaling.high[b] <= 2000


def test_internal_mask_is_excluded(tmp_path: Path) -> None:
    data = np.full((3, 60, 60), 60000, np.uint16)  # masked-out area holds junk
    rng = np.random.default_rng(4)
    data[:, 10:50, 10:50] = rng.integers(200, 400, size=(3, 40, 40))
    mask = np.zeros((60, 60), bool)
    mask[10:50, 10:50] = True
    path = write_tif(tmp_path / "masked.tif", data, mask=mask)
    scaling = estimate(path, "p0,p100")
    for b in range(3):
        assert scaling.low[b] == data[b, 10:50, 10:50].min()
        assert scaling.high[b] == data[b, 10:50, 10:50].max()


def test_explicit_ranges_are_used_as_given(tmp_path: Path) -> None:
    data = np.full((3, 8, 8), 1500, np.uint16)
    path = write_tif(tmp_path / "u16.tif", data)
    scaling = estimate(path, "0,10000")
    assert scaling == Scaling((0.0,) * 3, (10000.0,) * 3)
    per_band = estimate(path, "0,3000;0,3000;0,2500")
    assert per_band.low == (0.0, 0.0, 0.0)
    assert per_band.high == (3000.0, 3000.0, 2500.0)
    out = per_band.apply(np.moveaxis(data, 0, -1))
    # 1500/3000*255 = 127.5 -> 128; 1500/2500*255 = 153
    np.testing.assert_array_equal(out[0, 0], [128, 128, 153])


def test_per_band_ranges_must_match_selected_bands(tmp_path: Path) -> None:
    data = np.full((4, 8, 8), 1500, np.uint16)
    path = write_tif(tmp_path / "u16.tif", data)
    with rasterio.open(path) as ds, pytest.raises(InputError, match="4 bands"):
        estimate_scaling(ds, (1, 2, 3, 4), parse_scale("0,1;0,1;0,1"))


def test_float_reflectance(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    data = rng.uniform(0.0, 1.0, size=(3, 100, 100)).astype(np.float32)
    path = write_tif(tmp_path / "refl.tif", data)
    scaling = estimate(path, None)
    for b in range(3):
        assert scaling.low[b] == pytest.approx(0.02, abs=0.01)
        assert scaling.high[b] == pytest.approx(0.98, abs=0.01)
    explicit = estimate(path, "0,1")
    pixels = np.array([[[0.0, 0.5, 1.0], [-0.1, 1.3, 0.2]]], np.float32)
    # 0.2 * 255 = 51.000000745 (float32 0.2) -> 51
    np.testing.assert_array_equal(explicit.apply(pixels), [[[0, 128, 255], [0, 255, 51]]])


def test_nan_is_ignored(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    data = rng.uniform(100.0, 200.0, size=(3, 80, 90)).astype(np.float32)
    data[:, :30, :] = np.nan
    data[1, 50:, 70:] = -np.inf
    path = write_tif(tmp_path / "nan.tif", data)  # no nodata value: NaN is just a value
    scaling = estimate(path, "p2,p98")
    for b in range(3):
        band = data[b].astype(np.float64)
        expected = np.percentile(band[np.isfinite(band)], [2, 98])
        assert (scaling.low[b], scaling.high[b]) == pytest.approx(tuple(expected))
        assert 100 <= scaling.low[b] < scaling.high[b] <= 200


def test_all_invalid_file_maps_to_zero(tmp_path: Path) -> None:
    data = np.zeros((3, 16, 16), np.uint16)
    path = write_tif(tmp_path / "empty.tif", data, nodata=0)
    scaling = estimate(path, "auto")
    assert scaling.low == scaling.high
    out = scaling.apply(np.full((4, 4, 3), 1234, np.uint16))
    np.testing.assert_array_equal(out, 0)

    nan = np.full((3, 16, 16), np.nan, np.float32)
    scaling = estimate(write_tif(tmp_path / "nan.tif", nan), "auto")
    np.testing.assert_array_equal(scaling.apply(np.ones((2, 2, 3), np.float32)), 0)


def test_constant_band_gets_no_stretch(tmp_path: Path) -> None:
    data = np.full((3, 16, 16), 700, np.uint16)
    data[0] = np.arange(256).reshape(16, 16)
    path = write_tif(tmp_path / "const.tif", data)
    scaling = estimate(path, "auto")
    assert scaling.low[1] == scaling.high[1] == 700
    out = scaling.apply(np.moveaxis(data, 0, -1))
    np.testing.assert_array_equal(out[..., 1:], 0)
    assert out[..., 0].max() == 255


def test_same_file_gives_same_scaling(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    data = rng.integers(0, 4096, size=(3, 300, 400)).astype(np.uint16)
    path = write_tif(tmp_path / "det.tif", data, nodata=0)
    first = estimate(path, "auto", sample_size=128)  # decimated read
    for _ in range(3):
        assert estimate(path, "auto", sample_size=128) == first
    assert estimate(path, "auto") == estimate(path, "auto")


def test_decimated_percentiles_stay_close_to_full_resolution(tmp_path: Path) -> None:
    size = 3000
    rng = np.random.default_rng(8)
    yy, xx = np.mgrid[0:size, 0:size]
    band = 2000.0 + 1500.0 * np.sin(xx / 300.0) * np.cos(yy / 450.0)
    band += rng.normal(0, 200, size=band.shape)
    data = band.clip(0, 65535).astype(np.uint16)[None]
    path = write_tif(tmp_path / "big.tif", data)

    with rasterio.open(path) as ds:
        (sample,) = sample_valid_values(ds, (1,), sample_size=1024)
        assert 0 < sample.size <= 1024 * 1024  # really decimated
        scaling = estimate_scaling(ds, (1, 1, 1), parse_scale("auto"))
    lo, hi = np.percentile(data[0], [2, 98])
    tolerance = 0.01 * (hi - lo)
    assert scaling.low == pytest.approx((lo,) * 3, abs=tolerance)
    assert scaling.high == pytest.approx((hi,) * 3, abs=tolerance)
