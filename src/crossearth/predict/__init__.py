"""The predict pipeline: image files in, georeferenced class maps and their companions out.

- `options.py`   `PredictOptions`, checked once;
- `plan.py`      output names, planned for every input before any work;
- `source.py`    an input opened for prediction (bands, scaling, GSD resampling, segmenter);
- `stream.py`    streaming slide inference, memory bounded by the tile;
- `writer.py`    tiled GeoTIFF/COG class maps, written under temporary names;
- `resample.py`  `--match-gsd`: the model's GSD and back;
- `raster.py`    `predict_raster`: one scene, all its outputs or none;
- `split.py`     one scene in parts (bands of rows) assembled bit for bit;
- `manifest.py`  the run manifest: resume after a killed job;
- `store.py`     the output folder: local, or on object storage (s3://, gs://, az://);
- `tasks.py`     the units of work (a scene, a part, an assembly), the same in every engine;
- `engines/`     who runs the tasks: this process, or a Dask cluster.

`PredictOptions` and `predict_raster` are imported on first use (they need GDAL and torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crossearth.predict.options import PredictOptions
    from crossearth.predict.raster import predict_raster

__all__ = ["PredictOptions", "predict_raster"]


def __getattr__(name: str):
    if name == "PredictOptions":
        from crossearth.predict.options import PredictOptions

        return PredictOptions
    if name == "predict_raster":
        from crossearth.predict.raster import predict_raster

        return predict_raster
    raise AttributeError(f"module 'crossearth.predict' has no attribute {name!r}")
