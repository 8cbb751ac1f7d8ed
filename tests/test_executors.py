"""Local processes and a real Dask LocalCluster over loopback TCP: every item comes back, none hangs."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from course_tools.executors import DaskExecutor, LocalExecutor, WorkerLost, current_slot, make_executor


def square(item: int) -> int:
    return item * item


def square_or_die(item: int) -> int:
    if item < 0:
        os._exit(3)  # the worker process dies mid-task
    return item * item


def fails(item: int) -> int:
    raise ValueError(f"bad item {item}")


def slot_and_pid(item: int) -> tuple[int, int]:
    return current_slot(), os.getpid()


def results(pairs) -> dict:
    return {item: outcome for item, outcome in pairs}


def test_local_results_come_back_with_their_items():
    got = results(LocalExecutor(2).map_unordered(square, range(6)))
    assert got == {i: i * i for i in range(6)}


def test_local_exceptions_are_returned_not_raised():
    got = results(LocalExecutor(1).map_unordered(fails, [1, 2]))
    assert all(isinstance(error, ValueError) for error in got.values()) and set(got) == {1, 2}


def test_a_dying_local_worker_loses_only_its_own_item():
    got = results(LocalExecutor(2).map_unordered(square_or_die, [1, 2, -1, 3, 4]))
    assert set(got) == {1, 2, -1, 3, 4}
    assert isinstance(got[-1], WorkerLost)
    assert {k: v for k, v in got.items() if k != -1} == {1: 1, 2: 4, 3: 9, 4: 16}


def test_local_workers_have_distinct_slots():
    got = results(LocalExecutor(2).map_unordered(slot_and_pid, range(8)))
    by_pid: dict[int, set[int]] = {}
    for slot, pid in got.values():
        by_pid.setdefault(pid, set()).add(slot)
    assert all(len(slots) == 1 for slots in by_pid.values()), "a worker keeps its slot"
    slots = [next(iter(s)) for s in by_pid.values()]
    assert len(set(slots)) == len(slots), "two live workers never share a slot"


def test_jobs_must_be_positive():
    with pytest.raises(ValueError):
        LocalExecutor(0)
    assert isinstance(make_executor(3), LocalExecutor)


def test_slots_are_per_thread_and_freed_with_their_process():
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(current_slot())) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 3
    code = "from course_tools.executors import current_slot; print(current_slot())"
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert first == again, "the slot of a process that ended is free again"


@pytest.fixture(scope="module")
def cluster():
    import dask
    from distributed import LocalCluster

    # One retry per task after a worker dies (the default is 3): the test stays fast.
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                          dashboard_address=None, protocol="tcp") as local:
            yield local.scheduler_address


def test_dask_results_come_back_over_tcp(cluster):
    assert cluster.startswith("tcp://127.0.0.1:")
    with DaskExecutor(cluster) as executor:
        got = results(executor.map_unordered(square, [3, 3, 4]))  # pure=False: the twin 3s both run
        assert got == {3: 9, 4: 16}
        assert len(list(executor.map_unordered(slot_and_pid, [1, 1, 1]))) == 3


def test_dask_exceptions_are_returned(cluster):
    with DaskExecutor(cluster) as executor:
        [(item, error)] = list(executor.map_unordered(fails, [7]))
    assert item == 7 and isinstance(error, ValueError)


def test_a_task_that_kills_its_dask_worker_is_reported_and_the_rest_finish(cluster):
    with DaskExecutor(cluster) as executor:
        got = results(executor.map_unordered(square_or_die, [1, 2, -1, 3, 4, 5]))
    assert set(got) == {1, 2, -1, 3, 4, 5}, "nothing is lost"
    assert isinstance(got[-1], BaseException) and "KilledWorker" in type(got[-1]).__name__
    assert {k: v for k, v in got.items() if k != -1} == {1: 1, 2: 4, 3: 9, 4: 16, 5: 25}


def test_dask_workers_have_slots_of_their_own(cluster):
    with DaskExecutor(cluster) as executor:
        executor.client.wait_for_workers(2, timeout=20)
        pairs = [v for _, v in executor.map_unordered(slot_and_pid, range(6))]
    by_pid: dict[int, set[int]] = {}
    for slot, pid in pairs:
        by_pid.setdefault(pid, set()).add(slot)
    assert all(len(s) == 1 for s in by_pid.values())
    assert len({next(iter(s)) for s in by_pid.values()}) == len(by_pid)
