"""`crossearth view`: an offline, interactive map of `predict`'s class maps over the imagery.

`write_map` writes a self-contained HTML page (Leaflet inlined) per class map, with a static tile
pyramid beside it for large scenes; `show` displays the same page in Jupyter; `serve` serves an
output folder on 127.0.0.1.
"""

from crossearth.viewer.build import write_map
from crossearth.viewer.notebook import MapView, show
from crossearth.viewer.serve import serve

__all__ = ["MapView", "serve", "show", "write_map"]
