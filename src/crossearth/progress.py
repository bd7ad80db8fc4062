"""Progress for people: a steady rate and time left, and plain progress lines for logs.

**The rate** (`RateMeter`) is the work done divided by the time it took, both weighted by
`exp(-age / TAU_S)` (an exponential moving average of the throughput, time constant
`TAU_S` = 10 min), counted from the first update: the first unit of work, which carries the
start-up (loading, first-call compilation), is left out. While a run is younger than `TAU_S`
this is close to the plain average since that first update; later it follows a machine that
slows down or speeds up within minutes. A pause (a validation pass, another process busy) moves
it a little, not by an order of magnitude: the time left from the rate between two progress
lines jumped between 7 min and 1 h 15 min in a trial; with this rate, a 1-minute pause in a
long run lowers the rate by about a tenth, and it recovers as work goes on (simulated in
tests/test_progress.py: a 60 s validation every 2 min of steps moves the announced finishing
time by at most 17 % from one line to the next after the first pauses).

**Plain lines** (`PlainLines`) are for output that is not a terminal (a log file, a pipe, CI),
where a redrawn bar shows nothing or garbage: at most one line every `PROGRESS_SECONDS`, e.g.
`scene.tif 1200/4800 windows (9.6 windows/s, 6 min 15 s left)`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

#: Time constant of the rate's exponential moving average, seconds.
TAU_S = 600.0
#: Plain progress lines at most this often, seconds.
PROGRESS_SECONDS = 15.0


def duration(seconds: float) -> str:
    """A time span for people: '45 s', '3 min 05 s', '2 h 10 min'."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def format_rate(rate: float, unit: str) -> str:
    """'0.19 steps/s', '2.4 steps/s', '38 windows/s' (two significant digits below 10)."""
    return f"{rate:.2g} {unit}/s" if rate < 10 else f"{rate:.0f} {unit}/s"


class RateMeter:
    """A steady estimate of the rate of progress (units per second) and of the time left.

    Call `update(now, done)` with a monotonic time in seconds and the units done so far (never
    decreasing); the first call sets the origin. `rate` is None until some work is done after
    the origin. See the module docstring for the formula; `tau_s` is its time constant.
    """

    def __init__(self, tau_s: float = TAU_S) -> None:
        if tau_s <= 0:
            raise ValueError(f"tau_s must be > 0, got {tau_s}")
        self.tau_s = float(tau_s)
        self._last: tuple[float, float] | None = None  # (time, done) of the previous update
        self._work = 0.0  # units done since the origin, exponentially weighted by age
        self._time = 0.0  # seconds since the origin, weighted the same way

    def update(self, now: float, done: float) -> None:
        """Record that `done` units are complete at time `now` (seconds, monotonic)."""
        if self._last is None:
            self._last = (now, done)
            return
        then, before = self._last
        elapsed = now - then
        if elapsed < 0 or done < before:
            return  # a clock or counter that went back: ignore the sample
        decay = math.exp(-elapsed / self.tau_s)
        self._work = self._work * decay + (done - before)
        self._time = self._time * decay + elapsed
        self._last = (now, done)

    @property
    def rate(self) -> float | None:
        """Units per second, or None before any work after the origin."""
        if self._work <= 0 or self._time <= 0:
            return None
        return self._work / self._time

    def seconds_left(self, total: float | None) -> float | None:
        """Seconds until `total` units are done at the current rate (None when unknown)."""
        rate = self.rate
        if rate is None or total is None or self._last is None:
            return None
        return max(total - self._last[1], 0.0) / rate


class PlainLines:
    """Progress of one job as plain lines, at most one every `every_seconds` (default
    `PROGRESS_SECONDS`); none at the start and none at the end (the caller's result line says
    that). Each line: `<label> <done>/<total> <unit> (<rate>, <time> left)`.

    `write` gets each line (e.g. a console's print); `clock` (seconds, monotonic) is for tests.
    Call the object as the job's `progress(done, total)` callback.
    """

    def __init__(
        self,
        label: str,
        write: Callable[[str], None],
        unit: str = "windows",
        every_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.write = write
        self.unit = unit
        self.every_seconds = PROGRESS_SECONDS if every_seconds is None else every_seconds
        self.clock = clock
        self.meter = RateMeter()
        self._last_line: float | None = None

    def __call__(self, done: int, total: int | None) -> None:
        now = self.clock()
        self.meter.update(now, done)
        if self._last_line is None:
            self._last_line = now  # the start: the first line comes `every_seconds` later
            return
        if now - self._last_line < self.every_seconds or (total is not None and done >= total):
            return
        self._last_line = now
        self.write(self.line(done, total))

    def line(self, done: int, total: int | None) -> str:
        """The text of one line with `done` of `total` units complete."""
        text = f"{self.label} {done}/{total} {self.unit}" if total else f"{self.label} {done}"
        rate = self.meter.rate
        if rate is not None:
            text += f" ({format_rate(rate, self.unit)}"
            left = self.meter.seconds_left(total)
            if left is not None and total and done < total:
                text += f", {duration(left)} left"
            text += ")"
        return text


def time_left_column(show_elapsed: bool = False, style: Any = "") -> Any:
    """A rich progress column with a task's steady time left ('3 min 05 s left'), from a
    `RateMeter` per task fed with the task's progress each time the column is drawn; with
    `show_elapsed`, 'elapsed • left' (as Lightning's bar shows them). Rich's own
    `TimeRemainingColumn` divides by the speed of the last 30 s, which jumps with pauses."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class TimeLeftColumn(ProgressColumn):
        max_refresh = 0.5  # redraw twice a second at most: no jitter

        def __init__(self) -> None:
            super().__init__()
            self.meters: dict[Any, tuple[RateMeter, float]] = {}

        def render(self, task: Any) -> Text:
            meter, last = self.meters.get(task.id, (None, -1.0))
            if meter is None or task.completed < last:  # a new task, or one started again
                meter = RateMeter()
            meter.update(task.get_time(), task.completed)
            self.meters[task.id] = (meter, task.completed)
            total = task.total if task.total not in (None, float("inf")) else None
            left = None if task.finished else meter.seconds_left(total)
            text = "" if left is None else f"{duration(left)} left"
            if show_elapsed:
                elapsed = task.finished_time if task.finished else task.elapsed
                text = f"{duration(elapsed or 0)} • {text or '-'}"
            return Text(text, style=style)

    return TimeLeftColumn()
