"""A labelled grid of image panels with a class legend (the demo's `figure.png`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def labelled_grid(
    panels: Sequence[Sequence[np.ndarray]],
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    class_names: Sequence[str],
    palette: Sequence[Sequence[int]],
    *,
    gap: int = 4,
    font_size: int = 13,
) -> np.ndarray:
    """Panels (each H x W x 3 uint8, all the same size) in rows and columns, with a label left of
    every row, one above every column and a legend of the classes' colours underneath.

    Returns the figure as an H' x W' x 3 uint8 array (white background).

    Raises:
        ValueError: label counts that differ from the panel grid, or panels of different shapes.
    """
    from PIL import Image, ImageDraw, ImageFont

    if len(row_labels) != len(panels) or any(len(r) != len(column_labels) for r in panels):
        raise ValueError("one row label per row and one column label per column are needed")
    shapes = {p.shape for row in panels for p in row}
    if len(shapes) != 1:
        raise ValueError(f"panels differ in shape: {sorted(shapes)}")
    h, w = next(iter(shapes))[:2]
    font = ImageFont.load_default(size=font_size)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_width(text: str) -> int:
        return int(measure.textlength(text, font=font))

    line = font_size + 6
    left = max(text_width(s) for s in row_labels) + 2 * gap
    top = line + gap
    swatch = font_size
    entries = [text_width(n) + swatch + 3 * gap for n in class_names]
    width = left + len(column_labels) * (w + gap)
    legend_rows, x = 1, left
    for e in entries:
        if x + e > width and x > left:
            legend_rows, x = legend_rows + 1, left
        x += e
    height = top + len(row_labels) * (h + gap) + legend_rows * line + gap
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for j, label in enumerate(column_labels):
        x0 = left + j * (w + gap)
        draw.text((x0 + (w - text_width(label)) // 2, gap // 2), label, fill="black", font=font)
    for i, (label, row) in enumerate(zip(row_labels, panels, strict=True)):
        y0 = top + i * (h + gap)
        draw.text((gap, y0 + (h - font_size) // 2), label, fill="black", font=font)
        for j, panel in enumerate(row):
            canvas.paste(Image.fromarray(np.ascontiguousarray(panel)), (left + j * (w + gap), y0))
    x, y = left, top + len(row_labels) * (h + gap)
    for name, colour, e in zip(class_names, palette, entries, strict=True):
        if x + e > width and x > left:
            x, y = left, y + line
        rgb = tuple(int(c) for c in colour)
        draw.rectangle([x, y + 3, x + swatch, y + 3 + swatch], fill=rgb, outline="black")
        draw.text((x + swatch + gap, y + 2), name, fill="black", font=font)
        x += e
    return np.asarray(canvas)
