"""Which windows and input pixels one output chunk of a slide inference needs.

The whole array is covered by the official window grid (`crossearth.inference.slide_windows`),
in row-major order, fed to the model in batches of `batch_size` consecutive windows, as
`crossearth.predict.stream.StreamingSegmenter.run` does on a file. A batch's windows are computed
together, and a window's scores depend (in their last bits) on the other windows of its batch, so
an output chunk runs every whole batch that holds a window touching it: the model then sees the
very inputs of the whole run, and every pixel of the chunk gets the same window scores, added in
the same (window) order, as in the whole run.

The input those batches need is read as one rectangle per run of adjacent windows in a window
row (`ChunkPlan.reads`), never as the bounding box of all of them: a batch that wraps from the
end of one window row to the start of the next would make that box as wide as the array.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from crossearth.inference import slide_windows

Window = tuple[int, int, int, int]  # (y1, y2, x1, x2), pixels of the whole array


@dataclass(frozen=True)
class ChunkPlan:
    """The work of one output chunk (rows y0:y1, columns x0:x1 of the whole array).

    `batches`: the whole run's batches that hold a window touching the chunk, in run order, each
    a list of windows in batch order. `reads`: the input rectangles (y1, y2, x1, x2) that hold
    every window of those batches, one per run of adjacent windows of a window row, in
    row-major order.
    """

    y0: int
    y1: int
    x0: int
    x1: int
    batches: tuple[tuple[Window, ...], ...]
    reads: tuple[Window, ...]

    @property
    def windows(self) -> int:
        """Windows this chunk runs (its own and those sharing their batches)."""
        return sum(len(b) for b in self.batches)


class WindowGrid:
    """The slide windows of a `height` x `width` array for `crop`/`stride` (px), batched.

    `crop` is clipped to the array as `StreamingSegmenter.windows` clips it.
    """

    def __init__(
        self,
        height: int,
        width: int,
        crop: tuple[int, int],
        stride: tuple[int, int],
        batch_size: int,
    ) -> None:
        crop = (min(crop[0], height), min(crop[1], width))
        self.windows: list[Window] = slide_windows(height, width, crop, stride)
        self.height, self.width, self.batch_size = height, width, batch_size
        self.cols = len({w[2] for w in self.windows})
        self.rows = len(self.windows) // self.cols
        self.row_spans = [self.windows[i * self.cols][:2] for i in range(self.rows)]
        self.col_spans = [self.windows[j][2:] for j in range(self.cols)]

    def _touching(self, spans: list[tuple[int, int]], a: int, b: int) -> tuple[int, int]:
        """First and last index (inclusive) of the spans (sorted by both ends) meeting [a, b)."""
        first = bisect_right([end for _, end in spans], a)  # the first span ending after a
        last = bisect_left([start for start, _ in spans], b) - 1  # the last starting before b
        return first, last

    def plan(self, y0: int, y1: int, x0: int, x1: int) -> ChunkPlan:
        """The `ChunkPlan` of the output chunk rows y0:y1, columns x0:x1 (non-empty)."""
        i0, i1 = self._touching(self.row_spans, y0, y1)
        j0, j1 = self._touching(self.col_spans, x0, x1)
        size, cols = self.batch_size, self.cols
        wanted: set[int] = set()
        for i in range(i0, i1 + 1):  # per window row, its touching windows' batches
            wanted.update(range((i * cols + j0) // size, (i * cols + j1) // size + 1))
        batches = []
        used: list[int] = []  # window numbers, ascending
        for k in sorted(wanted):
            indices = range(k * size, min((k + 1) * size, len(self.windows)))
            batches.append(tuple(self.windows[n] for n in indices))
            used.extend(indices)
        reads: list[Window] = []
        start = used[0]
        for n, after in zip(used, [*used[1:], -1], strict=True):
            if after != n + 1 or after % cols == 0:  # the run of adjacent windows ends at n
                row, a, b = n // cols, start % cols, n % cols
                reads.append((*self.row_spans[row], self.col_spans[a][0], self.col_spans[b][1]))
                start = after
        return ChunkPlan(y0, y1, x0, x1, tuple(batches), tuple(reads))
