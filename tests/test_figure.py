"""The demo figure: panels where they belong, labels beside them, a legend of every class."""

from __future__ import annotations

import numpy as np
import pytest

from crossearth.figure import labelled_grid


def _panel(colour):
    return np.full((40, 50, 3), colour, np.uint8)


def test_grid_places_panels_and_adds_labels_and_legend():
    colours = [[(200, 0, 0), (0, 200, 0)], [(0, 0, 200), (200, 200, 0)]]
    panels = [[_panel(c) for c in row] for row in colours]
    palette = [(255, 0, 255), (0, 255, 255), (10, 20, 30)]
    fig = labelled_grid(panels, ["row a", "a longer row b"], ["col 1", "col 2"],
                        ["alpha", "beta", "gamma"], palette)  # fmt: skip
    assert fig.dtype == np.uint8 and fig.ndim == 3
    h, w = fig.shape[:2]
    assert w > 2 * 50 and h > 2 * 40  # room for the labels and the legend
    for row in colours:  # every panel appears as a 40 x 50 block of its colour
        for c in row:
            mask = np.all(fig == c, axis=-1)
            assert mask.sum() == 40 * 50, c
            ys, xs = np.nonzero(mask)
            assert np.ptp(ys) == 39 and np.ptp(xs) == 49
    # labels: dark pixels left of the first panel column and above the first panel row
    ys, xs = np.nonzero(np.all(fig == colours[0][0], axis=-1))
    dark = fig.sum(-1) < 200
    assert dark[:, : xs.min()].any() and dark[: ys.min(), :].any()
    # legend: each class colour below the panels
    bottom = np.nonzero(np.all(fig == colours[1][0], axis=-1))[0].max()
    for c in palette:
        assert np.all(fig[bottom + 1 :] == c, axis=-1).sum() > 20, c


def test_grid_refuses_mismatched_labels():
    panels = [[_panel(0), _panel(1)]]
    with pytest.raises(ValueError, match="label"):
        labelled_grid(panels, ["a", "b"], ["x", "y"], ["c"], [(0, 0, 0)])
    with pytest.raises(ValueError, match="shape"):
        labelled_grid([[_panel(0), np.zeros((8, 8, 3), np.uint8)]], ["a"], ["x", "y"], [], [])
