"""Atomic outputs and signal deferral (`crossearth.fileio`)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from crossearth.cli.signals import Terminated, terminate_on_signals
from crossearth.fileio import atomic_path, publish, recording, signals_deferred, temp_beside

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or not hasattr(signal, "pthread_kill"),
    reason="needs POSIX signals delivered to a thread (signal.pthread_kill), absent on Windows",
)


def _signal_from_another_thread(number: int) -> None:
    """Deliver `number` to a thread that does not block it, as the kernel does with a signal sent
    to the process while a native library's thread runs; waits until it was delivered."""
    helper = threading.Thread(target=lambda: signal.pthread_kill(threading.get_ident(), number))
    helper.start()
    helper.join()


def _started_thread() -> tuple[threading.Thread, threading.Event, threading.Event]:
    """A thread started before any blocking (its signal mask is empty), that on request sends
    SIGUSR1 to itself."""
    go, sent = threading.Event(), threading.Event()

    def body() -> None:
        go.wait(10)
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)
        sent.set()

    thread = threading.Thread(target=body)
    thread.start()
    return thread, go, sent


def test_a_signal_taken_by_another_thread_still_waits_for_the_end_of_the_block():
    thread, go, sent = _started_thread()
    steps = []
    with pytest.raises(Terminated) as caught, terminate_on_signals():
        with signals_deferred():
            go.set()
            assert sent.wait(10)
            for i in range(1000):  # many bytecodes: the handler would have run by now
                steps.append(i)
            time.sleep(0.01)
            steps.append("end")
        steps.append("after")
    thread.join()
    assert caught.value.signum == signal.SIGUSR1
    assert steps[-1] == "end"  # raised on leaving the block, not inside it


def test_a_signal_sent_to_the_process_waits_for_the_end_of_the_block():
    """Native libraries (torch, GDAL) start threads with no signals blocked: any of them may
    take a signal sent to the process; blocking it in the main thread alone is not enough."""
    steps = []
    with pytest.raises(Terminated), terminate_on_signals():
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
            steps.append("end")
        steps.append("after")
    assert steps == ["end"]


def test_no_signal_no_change(tmp_path):
    before = signal.getsignal(signal.SIGUSR1)
    with signals_deferred(), signals_deferred():  # nested blocks
        pass
    assert signal.getsignal(signal.SIGUSR1) is before
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == set()


def test_atomic_path_leaves_no_file_when_a_signal_lands_as_the_temporary_file_is_made(tmp_path):
    thread, go, sent = _started_thread()
    final = tmp_path / "out.json"
    import crossearth.fileio as fileio

    real_mkstemp = fileio.tempfile.mkstemp

    def mkstemp_then_signal(*args, **kwargs):
        made = real_mkstemp(*args, **kwargs)
        go.set()
        assert sent.wait(10)
        return made

    with pytest.raises(Terminated), terminate_on_signals():
        fileio.tempfile.mkstemp = mkstemp_then_signal
        try:
            with atomic_path(final) as tmp:
                tmp.write_text("never")
        finally:
            fileio.tempfile.mkstemp = real_mkstemp
    thread.join()
    assert os.listdir(tmp_path) == []


def test_recording_notes_each_published_file(tmp_path):
    with recording([]) as created:
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("a")
        tmp = temp_beside(tmp_path / "b.tif")
        publish(tmp, tmp_path / "b.tif")
    with atomic_path(tmp_path / "c.txt") as tmp:  # outside: not noted
        tmp.write_text("c")
    assert created == [tmp_path / "a.txt", tmp_path / "b.tif"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.tif", "c.txt"]
    assert all(isinstance(p, Path) for p in created)


def test_nested_blocks_deliver_at_the_end_of_the_outermost():
    before = [signal.getsignal(n) for n in (signal.SIGTERM, signal.SIGUSR1)]
    steps = []
    thread, go, sent = _started_thread()
    with pytest.raises(Terminated), terminate_on_signals():
        with signals_deferred():
            with signals_deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                go.set()  # and SIGUSR1 taken by another thread
                assert sent.wait(10)
                time.sleep(0.01)
            steps.append("inner done")
            time.sleep(0.01)
            steps.append("outer done")
        steps.append("after")
    thread.join()
    assert steps == ["inner done", "outer done"]
    assert [signal.getsignal(n) for n in (signal.SIGTERM, signal.SIGUSR1)] == before
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == set()
