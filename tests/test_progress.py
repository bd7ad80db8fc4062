"""Progress (issue 22): a time left that does not jump with pauses or noisy steps, plain lines
for logs, and `predict` writing progress lines when its output is a file.

The runs are simulated with a clock of our own: steps of a known duration, validation pauses,
random step times; every expected value comes from the simulated schedule, not from the code.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import rasterio
from cli_runner import run_cli
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rich.progress import Progress

import crossearth
import crossearth.progress
from crossearth.progress import PlainLines, RateMeter, duration, time_left_column


def simulate(step_seconds, pause_every: int, pause_s: float, total: int, every_s: float = 15):
    """Feed a meter a run of `total` steps (`step_seconds[i]` each, a pause of `pause_s` after
    every `pause_every` steps); return (time, true seconds left, estimated seconds left) at a
    progress line every `every_s` seconds."""
    meter = RateMeter()
    now, last_line, rows = 0.0, -math.inf, []
    finish = sum(step_seconds[:total]) + pause_s * ((total - 1) // pause_every)
    meter.update(now, 0)
    for step in range(1, total + 1):
        now += step_seconds[step - 1]
        meter.update(now, step)
        if now - last_line >= every_s and step < total:
            last_line = now
            rows.append((now, finish - now, meter.seconds_left(total)))
        if step % pause_every == 0 and step < total:
            now += pause_s  # validation: time passes, no step is done
    return rows


def jumps(rows) -> float:
    """The largest factor between consecutive estimates of the finishing time."""
    ends = [t + left for t, _, left in rows if left is not None]
    return max(max(a, b) / min(a, b) for a, b in itertools.pairwise(ends))


def test_steady_work_gives_the_exact_rate_and_leaves_out_the_start_up():
    meter = RateMeter()
    meter.update(0.0, 0)
    meter.update(40.0, 1)  # the first step: 40 s of start-up
    assert meter.rate == pytest.approx(1 / 40)
    meter = RateMeter()
    meter.update(40.0, 1)  # counted from here on
    for step in range(2, 200):
        meter.update(40.0 + 0.5 * (step - 1), step)
    assert meter.rate == pytest.approx(2.0)
    assert meter.seconds_left(1000) == pytest.approx((1000 - 199) / 2.0)
    assert RateMeter().rate is None and RateMeter().seconds_left(10) is None


def test_validation_pauses_do_not_make_the_time_left_jump():
    """1 step/s, a 60 s validation every 120 steps, 2400 steps. The rate between two lines
    made such a run announce 7 min, then 1 h 15 min; here the finishing time a line announces
    moves by less than 1.2x from one line to the next once the first pauses are known, and
    stays close to the truth while much is left (pauses still ahead)."""
    rows = simulate([1.0] * 2400, pause_every=120, pause_s=60, total=2400)
    assert jumps(rows) < 2.0  # the very first pause: news of pauses, not noise
    assert jumps([r for r in rows if r[0] > 360]) < 1.2
    late = [(true, est) for t, true, est in rows if t > 600 and true > 600]
    assert late and all(0.85 < est / true < 1.2 for true, est in late)


def test_noisy_steps_give_a_steady_time_left():
    rng = np.random.default_rng(0)
    steps = rng.lognormal(mean=0.0, sigma=1.0, size=3000)  # step times spread 10x and more
    rows = simulate(list(steps), pause_every=10**9, pause_s=0, total=3000)
    assert jumps(rows) < 1.25
    late = [(true, est) for t, true, est in rows if t > 300 and true > 300]
    assert late and all(0.85 < est / true < 1.2 for true, est in late)


def test_plain_lines_are_spaced_and_say_rate_and_time_left():
    lines: list[str] = []
    now = [0.0]
    progress = PlainLines("scene.tif", lines.append, every_seconds=15, clock=lambda: now[0])
    for done in range(0, 101):
        now[0] = 2.0 * done  # 0.5 windows/s
        progress(done, 100)
    # 0.5 windows/s from the first update on; a line every 15 s, i.e. every 8 windows (16 s)
    expected = [
        f"scene.tif {d}/100 windows (0.5 windows/s, {duration((100 - d) * 2.0)} left)"
        for d in range(8, 100, 8)
    ]
    assert lines == expected
    assert lines[0] == "scene.tif 8/100 windows (0.5 windows/s, 3 min 04 s left)"


def test_durations_read_naturally():
    assert [duration(s) for s in (0, 45.4, 185, 7500)] == [
        "0 s",
        "45 s",
        "3 min 05 s",
        "2 h 05 min",
    ]


def test_rich_column_shows_a_steady_time_left():
    now = [0.0]
    column = time_left_column()
    with Progress(column, get_time=lambda: now[0], disable=True) as bar:
        task_id = bar.add_task("x", total=100)
        task = bar.tasks[0]
        assert str(column.render(task)) == ""
        for done in range(1, 51):
            now[0] = float(done)
            bar.update(task_id, completed=done)
            text = str(column.render(bar.tasks[0]))
        assert text == "50 s left"
        now[0] = 110.0  # a minute without progress, then on again
        bar.update(task_id, completed=51)
        # work and time since the first update (t = 0), weighted by exp(-age / 600 s)
        decay = math.exp(-60 / 600)
        past = sum(math.exp(-k / 600) for k in range(50))  # 50 steps of 1 s, before the pause
        rate = (past * decay + 1) / (past * decay + 60)
        assert str(column.render(bar.tasks[0])) == f"{duration(49 / rate)} left"


def test_predict_writes_progress_lines_to_a_log(monkeypatch, capsys, tmp_path, varied_model):
    monkeypatch.setattr(crossearth.progress, "PROGRESS_SECONDS", 0.0)  # a line every update
    model = crossearth.save_model(varied_model, tmp_path / "m.safetensors")
    image = tmp_path / "scene.tif"
    data = np.random.default_rng(1).integers(0, 256, (3, 300, 280), dtype=np.uint8)
    with rasterio.open(image, "w", driver="GTiff", height=300, width=280, count=3, dtype="uint8",
                       crs=CRS.from_epsg(32632), transform=from_origin(5e5, 5.8e6, 1, 1)) as dst:  # fmt: skip
        dst.write(data)
    code = run_cli(monkeypatch, "predict", image, "-m", model, "-o", tmp_path / "out",
                   "--precision", "fp32", "--device", "cpu", "--tile", "128", "--stride", "96",
                   "--batch-size", "1", "--no-overlay")  # fmt: skip
    captured = capsys.readouterr()  # captured: not a terminal
    assert code == 0, captured.err
    lines = [x for x in captured.err.splitlines() if x.startswith("scene.tif ")]
    assert lines, captured.err
    assert all(" windows (" in x and "windows/s" in x for x in lines), lines
    assert any(" left)" in x for x in lines), lines
    assert "\r" not in captured.err and "\x1b[" not in captured.err
