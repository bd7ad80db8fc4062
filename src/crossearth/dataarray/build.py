"""The graph and the output DataArray of `crossearth.segment` (see the package docstring)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from crossearth.dataarray.chunk import Settings, segment_chunk
from crossearth.dataarray.models import LoadSpec, cached_model, object_fingerprint
from crossearth.dataarray.plan import WindowGrid
from crossearth.dataarray.source import ArrayDataset, ArrayMeta, NeedsSample, sample_indices
from crossearth.errors import InputError
from crossearth.predict.stream import NODATA


def build(xarray: Any, dask_array: Any, data_array: Any, model: Any, **kw: Any) -> Any:
    """`crossearth.segment`'s work, with xarray and dask.array imported."""
    import dask

    from crossearth.imageio import parse_bands
    from crossearth.predict import PredictOptions

    bands = parse_bands(kw["bands"]) if isinstance(kw["bands"], str) else kw["bands"]
    options = PredictOptions(
        bands=None if bands is None else tuple(bands), scale=kw["scale"], nodata=kw["nodata"],
        tile=kw["tile"], stride=kw["stride"], batch_size=kw["batch_size"], blend=kw["blend"],
        tta=kw["tta"], preview=False, overlay=False,
    )  # fmt: skip
    array, band_dim, y_dim, x_dim = _layout(xarray, data_array)
    net, fingerprint, spec = _model(model, kw)
    crop, stride = options.windows_for(net)
    meta = ArrayMeta.of(array, band_dim, _label(data_array))
    chosen, values, scaling = _reading(array, meta, net, options)

    lazy = dask.is_dask_collection(array.data)
    pixels = array.data if lazy else dask_array.from_array(array.data, chunks=-1)
    if not isinstance(scaling, _Sampled):
        scale_node: Any = scaling
    else:
        rows, cols = sample_indices(meta.height, meta.width)
        sample = pixels[:, rows][:, :, cols]
        scale_node = dask.delayed(_percentile_scaling, pure=True)(meta, chosen, options, sample)
    settings = Settings(
        fingerprint=fingerprint, spec=spec, meta=meta, bands=chosen,
        nodata=_override(options.nodata), values=values, crop=crop, stride=stride,
        batch_size=options.batch_size, blend=options.blend, tta=options.tta,
        scores=bool(kw["scores"]),
    )  # fmt: skip
    model_node = None
    if spec is None:  # a model object: one graph key, handed to each worker process once
        model_node = dask.delayed(net, name=f"crossearth-model-{fingerprint}")
    row_chunks, col_chunks = _chunks(kw["chunks"], pixels, crop)
    grid = WindowGrid(meta.height, meta.width, crop, stride, options.batch_size)
    token = dask.base.tokenize(pixels.name, settings, getattr(scale_node, "key", scale_node),
                               row_chunks, col_chunks)  # fmt: skip
    labels, scores = _graph(dask, dask_array, pixels, grid, settings, scale_node, model_node,
                            row_chunks, col_chunks, token, net.num_classes)  # fmt: skip
    result = _wrap(xarray, array, y_dim, x_dim, net, labels, scores)
    return result if lazy else result.compute(scheduler="synchronous")


class _Sampled:
    """Marks a scaling that needs percentiles of the pixels (a decimated read)."""


def _layout(xarray: Any, data_array: Any) -> tuple[Any, str, str, str]:
    """`data_array` as (band, y, x), and the names of those dimensions.

    Raises:
        InputError: not a DataArray, not three dimensions, no spatial dimensions rioxarray
            recognises, or a pixel type that is not a real number.
    """
    if not isinstance(data_array, xarray.DataArray):
        hint = " (pick one variable, or .to_array('band'))" if isinstance(
            data_array, xarray.Dataset) else ""  # fmt: skip
        raise InputError(
            f"segment takes an xarray DataArray of (band, y, x), got {type(data_array).__name__}"
            f"{hint}"
        )
    dims = tuple(str(d) for d in data_array.dims)
    try:
        y_dim, x_dim = str(data_array.rio.y_dim), str(data_array.rio.x_dim)
    except Exception:  # rioxarray's MissingSpatialDimensionError
        raise InputError(
            f"segment takes a (band, y, x) DataArray; this one has dimensions {dims}, none of "
            "which rioxarray takes for y and x (name them y/x or latitude/longitude, or "
            "call .rio.set_spatial_dims)"
        ) from None
    others = [d for d in dims if d not in (y_dim, x_dim)]
    if len(others) != 1:
        what = (
            "no band dimension: add one with .expand_dims('band')"
            if not others
            else f"{len(others)} dimensions besides {y_dim} and {x_dim} ({', '.join(others)}): "
            "select one scene, e.g. .isel(time=0)"
        )
        raise InputError(f"segment takes a (band, y, x) DataArray; this one {dims} has {what}")
    kind = np.dtype(data_array.dtype).kind
    if kind not in "uif":
        raise InputError(
            f"pixel type {np.dtype(data_array.dtype).name} is not supported; the array must "
            "hold real numbers (integer or floating-point bands)"
        )
    if 0 in data_array.shape:
        raise InputError(f"the array is empty (shape {dict(data_array.sizes)})")
    return data_array.transpose(others[0], y_dim, x_dim), others[0], y_dim, x_dim


def _label(data_array: Any) -> str:
    source = data_array.encoding.get("source")
    return f"the DataArray of {source}" if source else (
        f"the DataArray {data_array.name!r}" if data_array.name else "the DataArray")  # fmt: skip


def _model(model: Any, kw: dict[str, Any]) -> tuple[Any, str, LoadSpec | None]:
    """(the model, its fingerprint, how a worker loads it, or None for a model object).

    Raises:
        InputError: `model` is neither a model nor a name or path; whatever `load_model` raises.
    """
    if isinstance(model, str | Path):
        options = {"precision": kw["precision"] or "auto", "device": kw["device"] or "auto",
                   "config": kw["config"], "backbone": kw["backbone"],
                   "download": kw["download"]}  # fmt: skip
        spec = LoadSpec(str(model), {k: v if not isinstance(v, Path) else str(v)
                                     for k, v in options.items()})  # fmt: skip
        fingerprint = spec.fingerprint()
        return cached_model(fingerprint, spec), fingerprint, spec
    if not (hasattr(model, "config") and hasattr(model, "num_classes")):
        raise InputError(
            f"model must be a crossearth model or a zoo name or checkpoint file, got "
            f"{type(model).__name__}"
        )
    if kw["precision"] is not None or kw["device"] is not None:
        import torch

        from crossearth.weights.loader import to_runtime

        current = "bf16" if getattr(model, "dtype", None) == torch.bfloat16 else "fp32"
        model = to_runtime(copy.deepcopy(model), kw["device"] or model.device,
                           kw["precision"] or current)  # fmt: skip
    return model, object_fingerprint(model), None


def _override(nodata: Any) -> Any:
    from crossearth.geo.scaling import parse_nodata

    return parse_nodata(nodata)


def _reading(array: Any, meta: ArrayMeta, net: Any, options: Any) -> tuple[tuple, Any, Any]:
    """(chosen 1-based bands, their scale/offset, the `Scaling` or `_Sampled`), chosen as
    `predict` chooses them for a file (`crossearth.predict.source.open_for_prediction`).

    Raises:
        InputError: bands missing or ambiguous, a scaling that does not fit the pixel type.
    """
    from crossearth.advice import OPTIONS
    from crossearth.data.bandstats import check_band_names
    from crossearth.geo.bands import choose_bands
    from crossearth.geo.scaling import estimate_scaling, parse_scale, value_transform

    config = net.config
    table = ArrayDataset(meta)
    requested = options.bands
    named = bool(meta.names) and all(meta.names) and array.dims[0] in array.coords and (
        array[array.dims[0]].dtype.kind in "OUS")  # fmt: skip
    if requested is None and config.band_names and named:
        requested = tuple(config.band_names)  # a band coordinate of names: pick them by name
    elif requested is None:
        requested = config.band_indices
    from_model = options.bands is None and bool(config.band_indices)
    choice = choose_bands(table, config.bands, requested, OPTIONS, config.in_chans,
                          from_model=from_model, model_band_names=config.band_names)  # fmt: skip
    if options.bands is None and config.band_names:
        check_band_names(table, choice.bands, config.band_names)
    spec = parse_scale(options.scale if options.scale is not None else config.scale)
    try:
        scaling: Any = estimate_scaling(table, choice.bands, spec, nodata=_override(options.nodata))
    except NeedsSample:
        scaling = _Sampled()
    return choice.bands, value_transform(table, choice.bands), scaling


def _percentile_scaling(meta: ArrayMeta, bands: tuple, options: Any, sample: np.ndarray) -> Any:
    """The percentile `Scaling` from the decimated pixels (a task of the graph)."""
    from crossearth.geo.scaling import estimate_scaling, parse_scale

    table = ArrayDataset(meta, sample=np.asarray(sample))
    return estimate_scaling(table, bands, parse_scale(options.scale),
                            nodata=_override(options.nodata))  # fmt: skip


def _chunks(wanted: Any, pixels: Any, crop: tuple[int, int]) -> tuple[tuple, tuple]:
    """Output chunk sizes along y and x (see `segment`'s `chunks`). By default, runs of
    `WINDOWS_PER_CHUNK` x crop or more of the input's chunks, so that output chunks keep the
    input's chunk edges and the windows run again at chunk edges stay few."""
    height, width = pixels.shape[1:]
    if wanted is None:
        return _merged(pixels.chunks[1], crop[0]), _merged(pixels.chunks[2], crop[1])
    rows, cols = (wanted, wanted) if isinstance(wanted, int) else tuple(wanted)
    for n in (rows, cols):
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise InputError(f"chunks must be whole numbers of pixels >= 1, got {wanted!r}")
    return _split(height, int(rows)), _split(width, int(cols))


WINDOWS_PER_CHUNK = 4  # default output chunks span at least this many windows a side


def _merged(sizes: tuple[int, ...], crop: int) -> tuple[int, ...]:
    """Input chunk sizes grouped k at a time (k: enough for `WINDOWS_PER_CHUNK` x crop px)."""
    k = max(1, -(-WINDOWS_PER_CHUNK * crop // max(sizes[0], 1)))
    return tuple(sum(sizes[i : i + k]) for i in range(0, len(sizes), k))


def _split(total: int, size: int) -> tuple[int, ...]:
    return tuple(min(size, total - a) for a in range(0, total, size))


def _graph(dask, dask_array, pixels, grid, settings, scale_node, model_node, row_chunks,
           col_chunks, token, num_classes) -> tuple[Any, Any]:  # fmt: skip
    """One task per output chunk; (labels, scores or None) as Dask arrays."""
    task = dask.delayed(segment_chunk, pure=True, nout=2 if settings.scores else None)
    label_rows, score_rows = [], []
    y0 = 0
    for i, h in enumerate(row_chunks):
        label_row, score_row = [], []
        x0 = 0
        for j, w in enumerate(col_chunks):
            plan = grid.plan(y0, y0 + h, x0, x0 + w)
            pieces = [pixels[:, a:b, c:d] for a, b, c, d in plan.reads]
            out = task(settings, plan, scale_node, model_node, *pieces,
                       dask_key_name=(f"crossearth-segment-{token}", i, j))  # fmt: skip
            labels = out[0] if settings.scores else out
            label_row.append(dask_array.from_delayed(labels, (h, w), np.uint8))
            if settings.scores:
                score_row.append(dask_array.from_delayed(out[1], (num_classes, h, w), np.float32))
            x0 += w
        label_rows.append(label_row)
        score_rows.append(score_row)
        y0 += h
    labels = dask_array.block(label_rows)
    scores = dask_array.block([score_rows]) if settings.scores else None  # one class block
    return labels, scores


def _wrap(xarray, array, y_dim, x_dim, net, labels, scores) -> Any:
    """The output DataArray (or Dataset with scores) on the input's grid."""
    config = net.config.with_display_defaults()
    names = [str(n) for n in config.class_names]
    coords = {k: c for k, c in array.coords.items() if set(c.dims) <= {y_dim, x_dim}}
    classes = xarray.DataArray(labels, dims=(y_dim, x_dim), coords=coords, name="classes")
    classes.attrs.update(
        class_names=names,
        palette=[list(map(int, rgb)) for rgb in config.palette],
        flag_values=list(range(len(names))),
        flag_meanings=" ".join("_".join(n.split()) for n in names),
        long_name="class",
    )
    crs = array.rio.crs
    if crs is not None:
        classes = classes.rio.write_crs(crs)
        classes = classes.rio.write_transform(array.rio.transform())
    classes = classes.rio.write_nodata(NODATA, encoded=False)
    if scores is None:
        return classes
    out = xarray.DataArray(scores, dims=("class", y_dim, x_dim),
                           coords={**coords, "class": names}, name="scores")  # fmt: skip
    out.attrs["long_name"] = "mean class score"
    dataset = xarray.Dataset({"classes": classes, "scores": out})
    return dataset.rio.write_crs(crs) if crs is not None else dataset
