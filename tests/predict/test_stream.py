"""Streaming slide inference equals the in-memory official protocol and bounds its memory."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

from crossearth.predict.stream import StreamingSegmenter, blend_weights


class ArrayReader:
    """A WindowReader over an in-memory array, recording which windows were read."""

    def __init__(self, pixels: np.ndarray, valid: np.ndarray | None = None) -> None:
        self.pixels = pixels
        self.valid = np.ones(pixels.shape[:2], bool) if valid is None else valid
        self.height, self.width = pixels.shape[:2]
        self.reads = []

    def read(self, y1, y2, x1, x2):
        self.reads.append((y1, y2, x1, x2))
        return self.pixels[y1:y2, x1:x2], self.valid[y1:y2, x1:x2]


class RowCollector:
    def __init__(self, height: int, width: int) -> None:
        self.labels = np.full((height, width), 254, np.uint8)
        self.conf = np.full((height, width), 254, np.uint8)
        self.next_row = 0
        self.calls = 0

    def write_rows(self, y0, labels, confidence):
        assert y0 == self.next_row, "rows must arrive in order, without gaps"
        self.labels[y0 : y0 + labels.shape[0]] = labels
        if confidence is not None:
            self.conf[y0 : y0 + labels.shape[0]] = confidence
        self.next_row = y0 + labels.shape[0]
        self.calls += 1


@pytest.fixture(scope="module")
def model(varied_model):
    return varied_model


def test_model_fixture_predicts_several_classes(model):
    assert len(np.unique(model.predict(scene(256, 256)).labels)) >= 2


def scene(h, w, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3)).astype(np.uint8)
    return np.ascontiguousarray(np.kron(base, np.ones((16, 16, 1), np.uint8))[:h, :w])


@pytest.mark.parametrize("size,batch", [((300, 530), 4), ((100, 90), 2), ((256, 256), 1)])
def test_stream_equals_model_predict(model, size, batch):
    """Same windows, same batches, same input layout, same summation order: the same numbers.

    Exact equality is the claim (README), on every CPU kind: an H x W x 3 window stack permuted to
    NCHW is channels-last, which AVX2-only CPUs convolve in another order than the contiguous
    batch `model.predict` builds, so the model must see one layout in both paths.
    """
    pixels = scene(*size)
    expected = model.predict(pixels, batch_size=batch)
    sink = RowCollector(*size)
    scores = np.full_like(expected.scores, np.nan)

    def keep_scores(y0, rows):
        scores[:, y0 : y0 + rows.shape[1]] = rows

    stats = StreamingSegmenter(model, batch_size=batch, confidence=True).run(
        ArrayReader(pixels), sink, on_scores=keep_scores
    )
    assert sink.next_row == size[0]
    assert np.array_equal(scores, expected.scores)
    assert np.array_equal(sink.labels, expected.labels)
    assert stats.skipped_windows == 0
    # per-row class counts add up to the histogram of the labels
    assert np.array_equal(
        stats.pixel_counts.sum(0), np.bincount(expected.labels.ravel(), minlength=5)
    )
    # confidence is the winner's share of the summed scores, in percent
    total = expected.scores.sum(0)
    share = np.divide(expected.scores.max(0), total, out=np.zeros_like(total), where=total > 0)
    assert np.abs(sink.conf.astype(float) - share * 100).max() <= 0.5 + 1e-3


def test_rows_are_released_early(model):
    pixels = scene(1500, 300)
    sink = RowCollector(1500, 300)
    stats = StreamingSegmenter(model, batch_size=2).run(ArrayReader(pixels), sink)
    assert sink.calls > 4  # finished rows leave before the end of the scene
    crop, stride = 256, model.config.inference.stride[0]
    assert (
        stats.peak_band_rows <= crop + 2 * stride
    )  # band height bounded by the tile, not the scene


class FailingSink(RowCollector):
    """Fails on the second write, as a full disk would; records the thread of each write."""

    def __init__(self, height, width):
        super().__init__(height, width)
        self.threads = []

    def write_rows(self, y0, labels, confidence):
        self.threads.append(threading.get_ident())
        if self.calls == 1:
            self.calls += 1
            raise OSError(28, "No space left on device")
        super().write_rows(y0, labels, confidence)


@pytest.mark.parametrize("background_io", [True, False])
def test_write_errors_surface_and_stop_the_run(model, background_io):
    pixels = scene(1500, 300)
    sink = FailingSink(1500, 300)
    segmenter = StreamingSegmenter(model, batch_size=2, background_io=background_io)
    with pytest.raises(OSError, match="No space"):
        segmenter.run(ArrayReader(pixels), sink)
    assert sink.calls == 2  # nothing written after the failure
    main = threading.get_ident()
    assert all((t != main) == background_io for t in sink.threads)


def test_background_io_changes_nothing_in_the_output(model):
    pixels = scene(700, 300)
    outputs = []
    for background_io in (True, False):
        sink = RowCollector(700, 300)
        StreamingSegmenter(model, batch_size=2, background_io=background_io).run(
            ArrayReader(pixels), sink
        )
        outputs.append(sink.labels)
    assert np.array_equal(*outputs)


def test_nodata_windows_are_skipped_and_masked(model):
    pixels = scene(600, 600)
    valid = np.zeros((600, 600), bool)
    valid[300:, 300:] = True  # only the bottom-right quarter holds data
    reader = ArrayReader(pixels, valid)
    sink = RowCollector(600, 600)
    stats = StreamingSegmenter(model, batch_size=3).run(reader, sink)
    assert (sink.labels[~valid] == 255).all()
    assert (sink.labels[valid] < 5).all()
    assert stats.skipped_windows > 0
    assert stats.nodata_pixels == (~valid).sum()
    assert stats.pixel_counts.sum() == valid.sum()


def test_all_nodata_runs_no_model(model, monkeypatch):
    pixels = scene(300, 300)
    calls = []
    monkeypatch.setattr(model, "forward", lambda x: calls.append(x) or None)
    sink = RowCollector(300, 300)
    stats = StreamingSegmenter(model).run(ArrayReader(pixels, np.zeros((300, 300), bool)), sink)
    assert not calls
    assert stats.skipped_windows == stats.windows
    assert (sink.labels == 255).all()


@pytest.mark.parametrize("blend", ["cosine", "gaussian"])
def test_smooth_blending_changes_only_overlaps(model, blend):
    pixels = scene(256, 600)
    plain = RowCollector(256, 600)
    smooth = RowCollector(256, 600)
    StreamingSegmenter(model).run(ArrayReader(pixels), plain)
    StreamingSegmenter(model, blend=blend).run(ArrayReader(pixels), smooth)
    # columns covered by a single window are identical whatever the weights
    assert np.array_equal(plain.labels[:, :150], smooth.labels[:, :150])
    weights = blend_weights(256, 256, blend)
    assert weights.min() > 0 and weights[128, 128] > weights[0, 0]


def test_flip_tta_averages_flipped_views(model):
    pixels = scene(256, 256)
    tta, plain = RowCollector(256, 256), RowCollector(256, 256)
    StreamingSegmenter(model, tta="flip").run(ArrayReader(pixels), tta)
    StreamingSegmenter(model).run(ArrayReader(pixels), plain)
    assert not np.array_equal(tta.labels, plain.labels)
    assert tta.labels.max() < 5


def test_d4_tta_is_rotation_invariant(model):
    pixels = scene(256, 256, seed=3)
    a, b = RowCollector(256, 256), RowCollector(256, 256)
    StreamingSegmenter(model, tta="d4").run(ArrayReader(pixels), a)
    StreamingSegmenter(model, tta="d4").run(ArrayReader(np.ascontiguousarray(np.rot90(pixels))), b)
    # the 8 dihedral transforms form a group: rotating the input permutes them
    agree = (np.rot90(a.labels) == b.labels).mean()
    assert agree > 0.99


class PartCollector(RowCollector):
    """Collects the rows a:b of a part run (global row numbers), which must come in order."""

    def __init__(self, height: int, width: int, start: int) -> None:
        super().__init__(height, width)
        self.next_row = start


def _run_part(model, reader, rows, **kwargs):
    sink = PartCollector(reader.height, reader.width, rows[0])
    scores = {}
    stats = StreamingSegmenter(model, **kwargs).run(
        reader, sink, on_scores=lambda y0, s: scores.update({y0 + i: s[:, i] for i in range(len(s[0]))}),
        rows=rows,
    )  # fmt: skip
    assert sink.next_row == rows[1], "the part must deliver exactly its rows"
    return sink, scores, stats


@pytest.mark.parametrize(
    "size,batch,tile,stride,cuts",
    [
        ((400, 150), 4, 128, 85, [200]),  # 2 parts
        ((400, 100), 3, 128, 85, [1, 120, 121, 399]),  # 1-row parts, a cut inside a window row
        pytest.param((333, 210), 2, 96, 64, [96, 200, 201], marks=pytest.mark.slow),  # odd sizes
        ((400, 100), 5, 128, 128, [128, 256]),  # stride = tile: cuts on window edges
    ],
)
def test_parts_reassemble_into_the_whole_run_bit_for_bit(model, size, batch, tile, stride, cuts):
    """Rows split at any cut points and run separately give the whole run's labels, confidence
    and mean scores exactly (equal bits, not a tolerance), and the parts' window counts add up."""
    pixels = scene(*size, seed=3)
    valid = np.ones(size, bool)
    valid[: size[0] // 2] = False  # a nodata top half: skipped windows too
    valid[size[0] - 40 :, : size[1] // 3] = False
    kwargs = dict(crop=(tile, tile), stride=(stride, stride), batch_size=batch, confidence=True)
    whole, whole_scores, whole_stats = _run_part(
        model, ArrayReader(pixels, valid), (0, size[0]), **kwargs
    )
    edges = [0, *cuts, size[0]]
    labels = np.full(size, 254, np.uint8)
    conf = np.full(size, 254, np.uint8)
    windows = skipped = 0
    counts = np.zeros_like(whole_stats.pixel_counts)
    for a, b in itertools.pairwise(edges):
        reader = ArrayReader(pixels, valid)
        part, scores, stats = _run_part(model, reader, (a, b), **kwargs)
        labels[a:b], conf[a:b] = part.labels[a:b], part.conf[a:b]
        for y in range(a, b):
            assert np.array_equal(scores[y], whole_scores[y]), f"row {y} of part {a}:{b}"
        assert set(scores) == set(range(a, b))
        # a part reads only windows near its rows (those of batches that touch them)
        reach = batch * stride
        assert all(y1 < b + reach and y2 > a - reach for y1, y2, _, _ in reader.reads)
        windows, skipped = windows + stats.windows, skipped + stats.skipped_windows
        counts += stats.pixel_counts
        assert not stats.pixel_counts[:a].any() and not stats.pixel_counts[b:].any()
    assert np.array_equal(labels, whole.labels)
    assert np.array_equal(conf, whole.conf)
    assert (windows, skipped) == (whole_stats.windows, whole_stats.skipped_windows)
    assert whole_stats.skipped_windows > 0
    assert np.array_equal(counts, whole_stats.pixel_counts)


def test_part_rows_outside_the_image_are_refused(model):
    reader = ArrayReader(scene(100, 100))
    for rows in [(0, 0), (50, 40), (-1, 10), (90, 101)]:
        with pytest.raises(ValueError, match="non-empty range"):
            StreamingSegmenter(model).run(reader, RowCollector(100, 100), rows=rows)
