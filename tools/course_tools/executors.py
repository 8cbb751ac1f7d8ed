"""Where ``course grade`` runs its jobs: local worker processes, or a Dask distributed cluster.

Both give one interface, :class:`Executor`: ``map_unordered(function, items, on_start)`` yields
``(item, result)`` as each finishes, and ``(item, exception)`` for an item that failed or whose
worker died; ``on_start(item)`` is called when an item is handed to a worker (local) or to the
cluster's scheduler (Dask), so a progress display can show what is running. Nothing is lost and
nothing hangs:

- :class:`LocalExecutor`: ``jobs`` spawned processes (no fork: workers start clean). A worker
  that dies breaks Python's process pool and every item in flight with it, so those items run
  again, each alone in a fresh process; the one that kills its worker again comes back as
  :class:`WorkerLost`, the others with their results.
- :class:`DaskExecutor`: tasks on the cluster at a scheduler address as Dask takes it
  (``tcp://host:8786``, or a ``dask-jobqueue``/Kubernetes cluster's ``scheduler_address``).
  The function is sent by reference, so workers need this package installed. When a worker
  dies mid-task the scheduler runs the task again elsewhere, up to its
  ``distributed.scheduler.allowed-failures`` (default 3). Items that still come back as
  ``KilledWorker`` (the killer, and bystanders queued on the same workers) run again, each
  alone; only one that kills its worker again is reported, as ``KilledWorker``.

:func:`current_slot` gives each concurrently running worker on a host a small number of its own
(the grader picks a sandbox uid from it), through a lock file held for the worker's lifetime.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Protocol, TypeVar

Item = TypeVar("Item")
MAX_SLOTS = 4096


class WorkerLost(RuntimeError):
    """The process running an item died (not an exception of the item's own)."""


class Executor(Protocol):
    """Runs ``function(item)`` for every item somewhere; yields each item with its result or exception."""

    def map_unordered(self, function: Callable[[Any], Any], items: Iterable[Any],
                      on_start: Callable[[Any], None] | None = None) -> Iterator[tuple[Any, Any | BaseException]]: ...

    def close(self) -> None: ...


# --- slots: a small number per running worker, unique on its host -----------------------------

_local = threading.local()


def _slot_folder() -> Path:
    folder = Path(tempfile.gettempdir()) / f"course-grade-slots-{os.geteuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.is_symlink() or folder.stat().st_uid != os.geteuid():
        raise RuntimeError(f"{folder} is not this user's own folder")
    return folder


def _claim_slot() -> int:
    folder = _slot_folder()
    for slot in range(MAX_SLOTS):
        descriptor = os.open(folder / f"{slot}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(descriptor)
            continue
        _local.descriptor = descriptor  # held (and the lock with it) until this thread's process ends
        return slot
    raise RuntimeError(f"more than {MAX_SLOTS} workers on this host")


def current_slot() -> int:
    """A small number unique among the workers running now on this host (claimed on first use, kept).

    Each worker thread claims its own, so a Dask worker with several threads gives each its own.
    A slot is free again as soon as the process holding it ends, however it ends.
    """
    slot = getattr(_local, "slot", None)
    if slot is None:
        slot = _local.slot = _claim_slot()
    return slot


def release_slot() -> None:
    """Give this thread's slot back (workers need not call it: a slot dies with its process)."""
    descriptor = getattr(_local, "descriptor", None)
    if descriptor is not None:
        os.close(descriptor)
    _local.slot = _local.descriptor = None


def _start_worker() -> None:
    current_slot()


# --- local processes -----------------------------------------------------------------------------

class LocalExecutor:
    """``jobs`` worker processes on this machine (see the module docstring)."""

    def __init__(self, jobs: int = 1) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {jobs}")
        self.jobs = jobs

    def _pool(self, workers: int) -> ProcessPoolExecutor:
        import multiprocessing

        return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start_worker)

    def map_unordered(self, function: Callable[[Item], Any], items: Iterable[Item],
                      on_start: Callable[[Item], None] | None = None) -> Iterator[tuple[Item, Any | BaseException]]:
        items = list(items)
        started = on_start or (lambda item: None)
        pending = deque(range(len(items)))
        suspects: list[int] = []
        pool = self._pool(self.jobs)
        running: dict[Future, int] = {}
        try:
            while pending or running:
                # Never more in flight than workers: when one dies, only what was really running is suspect.
                while pending and len(running) < self.jobs:
                    index = pending.popleft()
                    running[pool.submit(function, items[index])] = index
                    started(items[index])
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    index = running.pop(future)
                    error = future.exception()
                    if isinstance(error, BrokenProcessPool):
                        suspects.append(index)
                        broken = True
                    else:
                        yield items[index], error if error is not None else future.result()
                if broken:
                    for future in list(running):
                        index = running.pop(future)
                        error = future.exception()
                        if isinstance(error, BrokenProcessPool):
                            suspects.append(index)
                        else:
                            yield items[index], error if error is not None else future.result()
                    pool.shutdown(wait=True, cancel_futures=True)
                    yield from self._isolated(function, items, suspects, started)
                    suspects = []
                    pool = self._pool(self.jobs)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _isolated(self, function: Callable[[Item], Any], items: list[Item], indexes: list[int],
                  started: Callable[[Item], None]) -> Iterator[tuple[Item, Any | BaseException]]:
        """Run each suspect alone in a fresh process, so a worker's death is pinned on the right item."""
        pool = None
        try:
            for index in indexes:
                pool = pool or self._pool(1)
                future = pool.submit(function, items[index])
                started(items[index])
                error = future.exception()
                if isinstance(error, BrokenProcessPool):
                    pool.shutdown(wait=True)
                    pool = None
                    yield items[index], WorkerLost("the worker process running it died (twice: not by chance)")
                else:
                    yield items[index], error if error is not None else future.result()
        finally:
            if pool is not None:
                pool.shutdown(wait=True)

    def close(self) -> None:
        """Nothing to release: each map has its own pool."""

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- a Dask cluster --------------------------------------------------------------------------------

class DaskExecutor:
    """Tasks on a Dask distributed cluster, reached at ``address`` (see the module docstring)."""

    def __init__(self, address: str, *, timeout: float | None = None, connect_timeout: float = 30) -> None:
        from distributed import Client

        self.address = address
        self.timeout = timeout  # seconds for a whole map; None: wait as long as the cluster works
        self.client = Client(address, set_as_default=False, timeout=connect_timeout)

    def map_unordered(self, function: Callable[[Item], Any], items: Iterable[Item],
                      on_start: Callable[[Item], None] | None = None) -> Iterator[tuple[Item, Any | BaseException]]:
        from distributed import as_completed

        from distributed import KilledWorker

        items = list(items)
        started = on_start or (lambda item: None)
        futures = {self._submit(function, item, index): index for index, item in enumerate(items)}
        for item in items:
            started(item)
        finished: set[int] = set()
        suspects: list[int] = []  # on a worker that died: the killer, or an innocent bystander queued there
        try:
            for future in as_completed(futures, loop=self.client.loop, timeout=self.timeout):
                index = futures[future]
                finished.add(index)
                try:
                    yield items[index], future.result()
                except KilledWorker:
                    suspects.append(index)
                except BaseException as error:  # noqa: BLE001 - a failed task is reported with its item
                    yield items[index], error
            for index in suspects:  # each alone now: only the one that kills its worker again is reported
                retry = self._submit(function, items[index], index)
                futures[retry] = index
                started(items[index])
                try:
                    yield items[index], retry.result(timeout=self.timeout)
                except BaseException as error:  # noqa: BLE001 - reported with its item, as above
                    yield items[index], error
        except TimeoutError as error:
            for future, index in futures.items():
                if index not in finished:
                    future.cancel()
                    yield items[index], WorkerLost(f"no result within {self.timeout} s ({error})")
        finally:
            for future in futures:
                future.release()

    def _submit(self, function: Callable[[Item], Any], item: Item, index: int) -> Any:
        # pure=False: two identical submissions are two tasks, never one cached result.
        return self.client.submit(function, item, pure=False, key=f"course-grade-{index}-{os.urandom(4).hex()}")

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_executor(jobs: int = 1, cluster: str | None = None) -> LocalExecutor | DaskExecutor:
    """The executor ``course grade`` uses: a Dask cluster at ``cluster``, else ``jobs`` local processes."""
    return DaskExecutor(cluster) if cluster else LocalExecutor(jobs)
