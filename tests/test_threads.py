"""The thread count follows the CPUs really available (fake cgroup files, affinity, load), once per process."""

import os

import pytest
import torch

from course_utils import threads


@pytest.fixture
def fresh(monkeypatch):
    """No count chosen yet, four CPUs of affinity, no /proc/self/cgroup paths, no OMP_NUM_THREADS."""
    monkeypatch.setattr(threads, "_chosen", None)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(threads, "_read", _reader_without_proc(threads._read))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0), raising=False)
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(n))
    monkeypatch.setattr(torch, "get_num_threads", lambda: 16)
    return calls


def _reader_without_proc(read):
    return lambda path: None if str(path).startswith("/proc/") else read(path)


def write(folder, name, text):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


@pytest.mark.parametrize(("cpu_max", "expected"),
                         [("200000 100000", 2.0), ("150000 100000", 1.5), ("max 100000", None)])
def test_cgroup_v2_quota(tmp_path, fresh, cpu_max, expected):
    write(tmp_path, "cpu.max", cpu_max)
    assert threads.cgroup_cpu_limit(tmp_path) == expected


def test_cgroup_v1_quota_and_no_quota(tmp_path, fresh):
    write(tmp_path, "cpu/cpu.cfs_quota_us", "50000")
    write(tmp_path, "cpu/cpu.cfs_period_us", "100000")
    assert threads.cgroup_cpu_limit(tmp_path) == 0.5
    write(tmp_path, "cpu/cpu.cfs_quota_us", "-1")
    assert threads.cgroup_cpu_limit(tmp_path) is None
    assert threads.cgroup_cpu_limit(tmp_path / "missing") is None


def test_a_quota_in_a_parent_group_counts(tmp_path, fresh):
    write(tmp_path, "user.slice/cpu.max", "100000 100000")
    write(tmp_path, "user.slice/session/cpu.max", "max 100000")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("0::/user.slice/session\n")
    assert threads.cgroup_cpu_limit(tmp_path, proc) == 1.0


@pytest.mark.parametrize(("cpu_max", "expected"), [("150000 100000", 1), ("300000 100000", 3), ("800000 100000", 4),
                                                   ("max 100000", 4), ("10000 100000", 1)])
def test_available_cpus_is_the_smaller_of_quota_and_affinity(tmp_path, fresh, cpu_max, expected):
    write(tmp_path, "cpu.max", cpu_max)
    assert threads.available_cpus(tmp_path) == expected


@pytest.mark.parametrize(("load", "expected"), [(0.3, 4), (1.6, 2), (3.0, 1), (9.0, 1)])
def test_the_machine_s_other_work_leaves_fewer_cpus(tmp_path, fresh, monkeypatch, load, expected):
    monkeypatch.setattr(os, "getloadavg", lambda: (load, 0.0, 0.0))
    assert threads.available_cpus(tmp_path) == expected


def test_threads_are_set_once(tmp_path, fresh):
    write(tmp_path, "cpu.max", "200000 100000")
    assert threads.use_available_cpus(tmp_path) == 2
    write(tmp_path, "cpu.max", "100000 100000")
    assert threads.use_available_cpus(tmp_path) == 2, "later calls keep the first choice"
    assert fresh == [2]


def test_an_explicit_omp_num_threads_wins(tmp_path, fresh, monkeypatch):
    write(tmp_path, "cpu.max", "200000 100000")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.use_available_cpus(tmp_path) == 3
    assert fresh == [3]


def test_a_bad_omp_num_threads_is_ignored(tmp_path, fresh, monkeypatch):
    write(tmp_path, "cpu.max", "100000 100000")
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")
    assert threads.use_available_cpus(tmp_path) == 1


def test_the_real_machine_gives_a_positive_count():
    assert threads.available_cpus() >= 1
