"""Thread pools sized from the CPUs a process may use; passive OpenMP waiting."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from crossearth import threads


def test_cgroup_v2_quota(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads.cgroup_cpu_limit(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads.cgroup_cpu_limit(tmp_path) is None


def test_cgroup_v1_quota(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("250000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.cgroup_cpu_limit(tmp_path) == 2.5
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert threads.cgroup_cpu_limit(tmp_path) is None
    assert threads.cgroup_cpu_limit(tmp_path / "absent") is None


def test_available_cpus_follows_affinity_and_quota(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5})
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: None)
    assert threads.available_cpus() == 6
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 2.5)  # a 2.5-CPU container
    assert threads.available_cpus() == 3
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 0.2)
    assert threads.available_cpus() == 1


def test_explicit_choices_win_in_order(monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 7)
    monkeypatch.delenv("CROSSEARTH_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.chosen_threads() == (7, "the CPUs this process may use")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.chosen_threads() == (3, "$OMP_NUM_THREADS")
    monkeypatch.setenv("CROSSEARTH_THREADS", "2")
    assert threads.chosen_threads() == (2, "$CROSSEARTH_THREADS")
    assert threads.chosen_threads(5) == (5, "--threads")
    monkeypatch.setenv("CROSSEARTH_THREADS", "two")
    with pytest.raises(ValueError, match="CROSSEARTH_THREADS"):
        threads.chosen_threads()


def test_configure_threads_sets_torch(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert threads.configure_threads(1) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def _run(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", *env)}
    result = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_asks_for_passive_waiting_unless_chosen():
    code = "import crossearth, os; print(os.environ.get('OMP_WAIT_POLICY'))"
    assert _run(code) == "PASSIVE"
    assert _run(code, OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"


def test_cli_threads_option(monkeypatch, capsys):
    from cli_runner import run_cli_captured

    before = torch.get_num_threads()
    try:
        code, output = run_cli_captured(monkeypatch, capsys, "--threads", "0", "models")
        assert code == 2 and "--threads" in output and "Traceback" not in output
        code, _ = run_cli_captured(monkeypatch, capsys, "--threads", "1", "models")
        assert code == 0 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
