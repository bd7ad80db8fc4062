"""`crossearth.show`: the viewer's page in a Jupyter notebook (an iframe holding the same HTML)."""

from __future__ import annotations

import html
import tempfile
from pathlib import Path
from typing import Any

from crossearth.errors import InputError


class MapView:
    """The map of one scene; Jupyter displays it through `_repr_html_` (an iframe `srcdoc`)."""

    def __init__(self, page: str, height: int = 600) -> None:
        self.page = page
        self.height = height

    def _repr_html_(self) -> str:
        return (
            f'<iframe srcdoc="{html.escape(self.page, quote=True)}" '
            f'style="width: 100%; height: {int(self.height)}px; border: 0" '
            'sandbox="allow-scripts allow-popups"></iframe>'
        )

    def save(self, path: str | Path) -> Path:
        """Write the page as a standalone HTML file."""
        path = Path(path)
        path.write_text(self.page, encoding="utf-8")
        return path


def show(
    result: str | Path | dict[str, Any],
    *,
    height: int = 600,
    opacity: float = 0.7,
    max_size: int = 2048,
) -> MapView:
    """The map of a `predict` result, for display in Jupyter.

    `result` is a class map, an output folder of `predict` holding one class map, or the summary
    `predict_raster` returned. The page is self-contained: the scene is embedded, decimated so that
    its long side is at most `max_size` pixels (for the full resolution of a large scene, use
    `crossearth view`, which writes a tile pyramid). Raises InputError for anything `crossearth
    view` refuses, and for a folder with several class maps.
    """
    from crossearth.viewer.build import write_scene_map
    from crossearth.viewer.scene import find_scenes

    if isinstance(result, dict):
        if "class_map" not in result:
            raise InputError("show() needs a class map path or the summary that predict returned")
        result = result["class_map"]
    scenes = find_scenes(result)
    if len(scenes) > 1:
        names = ", ".join(s.classes.name for s in scenes)
        raise InputError(f"{result} holds {len(scenes)} class maps ({names}): show one of them")
    with tempfile.TemporaryDirectory() as tmp:
        page = write_scene_map(
            scenes[0], Path(tmp) / "map.html", tiles=False, opacity=opacity, inline_max=max_size
        )
        return MapView(page.read_text(encoding="utf-8"), height)
