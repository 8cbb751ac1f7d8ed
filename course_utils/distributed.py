"""Run a function on several ranks of a process group, from a notebook or a test, without hanging.

Lesson 08 launches data-parallel training two ways:

- :func:`run_distributed` forks one process per rank from the running Python (a notebook's kernel
  included), gives each a gloo (CPU) or nccl (GPU) process group that meets on 127.0.0.1, runs
  ``fn(rank, world_size, *args)`` and returns each rank's result and printed output. Forking lets
  the ranks use functions defined in notebook cells, which a freshly *spawned* interpreter could
  not import. Every wait has a deadline: a rank that crashes stops the others at once, and a run
  that hangs is stopped with a message instead of freezing the kernel.
- :func:`torchrun` runs a script with ``python -m torch.distributed.run --nproc_per_node N``, the
  way real jobs start; :func:`write_script` writes such a script from functions defined in a notebook.

Nothing here uses the network beyond the loopback interface. Importing this module has no side effects.
"""

from __future__ import annotations

import contextlib
import datetime
import inspect
import io
import math
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

ADDRESS = "127.0.0.1"  # loopback only: the ranks of a lesson never leave this machine
DEFAULT_TIMEOUT = 180.0  # seconds for a whole run
# Seconds the ranks may take to start and meet. Forked ranks meet within a second on a quiet machine; under a load
# of about 10 on 2 cores a rank waited more than 30 s for the other (DistStoreError: wait timeout after 30000ms).
# Graded checks pass less and try twice (start_attempts=2): a grading cell has a time limit of its own.
RENDEZVOUS_TIMEOUT = 120.0
COLLECTIVE_TIMEOUT = 60.0  # seconds a collective may wait for the other ranks before it raises


class DistributedRunError(RuntimeError):
    """A distributed run failed: a rank raised, died, or the run did not finish in time."""

    def __init__(self, message: str, results: Sequence[RankResult] = ()) -> None:
        super().__init__(message)
        self.results = list(results)


class DistributedStartError(DistributedRunError):
    """The ranks could not start or meet: a problem of this machine, never of the code they were to run."""

    def _render_traceback_(self) -> list[str]:
        """IPython shows this message alone: the course's frames would only hide it."""
        return [f"{type(self).__name__}: {self}"]


@dataclass
class RankResult:
    """What one rank left behind: its return value, what it printed, and its error if it raised."""

    rank: int
    value: Any = None
    output: str = ""
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # what a ``setup`` hook collected on that rank
    warnings: str = ""  # what the rank wrote to stderr (warnings), kept apart from what it printed
    started: bool = True  # False: the rank failed before ``fn`` ran (it could not start or meet the others)


@dataclass(frozen=True)
class DDPConfig:
    """The settings of one data-parallel training run (every rank receives the same)."""

    epochs: int = 2
    batch_size: int = 50  # per rank: with 2 ranks, one step sees 100 samples
    accumulation_steps: int = 1
    learning_rate: float = 0.1
    momentum: float = 0.9
    seed: int = 0  # DistributedSampler(..., seed=config.seed)
    checkpoint_path: str = "checkpoint.pt"


def loopback_environment() -> dict[str, str]:
    """Environment variables that keep gloo on the loopback interface (no hostname lookup, no other network)."""
    names = {name for _, name in socket.if_nameindex()} if hasattr(socket, "if_nameindex") else set()
    loopback = next((name for name in ("lo", "lo0") if name in names), None)
    return {"GLOO_SOCKET_IFNAME": loopback} if loopback else {}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((ADDRESS, 0))
        return probe.getsockname()[1]


def pick_backend(world_size: int) -> str:
    """``nccl`` when there is one CUDA GPU per rank, else ``gloo`` (CPU)."""
    usable_nccl = torch.cuda.is_available() and torch.cuda.device_count() >= world_size and dist.is_nccl_available()
    return "nccl" if usable_nccl else "gloo"


def rank_device(rank: int, backend: str) -> torch.device:
    """The device rank ``rank`` trains on: its own GPU under nccl, the CPU under gloo."""
    return torch.device("cuda", rank) if backend == "nccl" else torch.device("cpu")


def _meet(rank: int, world_size: int, backend: str, port: int, rendezvous_timeout: float,
          collective_timeout: float) -> None:
    """Join the process group: first wait, with the rendezvous deadline, until every rank has arrived."""
    if backend == "nccl":
        torch.cuda.set_device(rank)
    store = dist.TCPStore(ADDRESS, port, world_size, is_master=False,
                          timeout=datetime.timedelta(seconds=rendezvous_timeout))
    store.set(f"arrived/{rank}", "1")
    # Every rank is alive and connected once this returns: init_process_group then only waits for the others'
    # gloo connections, not for a rank that a busy machine has not scheduled yet.
    store.wait([f"arrived/{other}" for other in range(world_size)], datetime.timedelta(seconds=rendezvous_timeout))
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=max(collective_timeout, 1.0)))


def _child(rank: int, world_size: int, backend: str, port: int, folder: str, fn: Callable[..., Any],
           args: tuple, setup: Callable[[int], Callable[[], dict]] | None, collective_timeout: float,
           rendezvous_timeout: float) -> None:
    """One rank's life: join the group, run ``fn`` with its output captured, write the result, leave."""
    torch.set_num_threads(1)  # two ranks on a small machine: more threads would only compete
    for name, value in loopback_environment().items():
        os.environ.setdefault(name, value)
    # A forked child must not write through the parent's streams (a notebook kernel's streams talk to
    # threads the child does not have): everything it prints or warns is captured and returned.
    output, errors = io.StringIO(), io.StringIO()
    sys.stdout, sys.stderr = output, errors
    result: dict[str, Any] = {"rank": rank, "value": None, "error": None, "extra": {}, "started": False}
    try:
        _meet(rank, world_size, backend, port, rendezvous_timeout, collective_timeout)
        result["started"] = True
        collect = setup(rank) if setup is not None else None
        result["value"] = fn(rank, world_size, *args)
        if collect is not None:
            result["extra"] = collect()
    except BaseException:  # noqa: BLE001 - every failure is reported to the parent, which decides
        result["error"] = traceback.format_exc()
    finally:
        result["output"], result["warnings"] = output.getvalue(), errors.getvalue()
        with contextlib.suppress(Exception):
            if dist.is_initialized():
                dist.destroy_process_group()
        try:
            torch.save(result, Path(folder) / f"rank{rank}.pt")
        except Exception:  # noqa: BLE001 - e.g. a return value that cannot be saved
            result["value"] = None
            result["error"] = (result["error"] or "") + "the return value could not be saved:\n" + traceback.format_exc()
            torch.save(result, Path(folder) / f"rank{rank}.pt")
    os._exit(1 if result["error"] else 0)


def run_distributed(fn: Callable[..., Any], world_size: int = 2, args: Sequence[Any] = (), *,
                    backend: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                    collective_timeout: float = COLLECTIVE_TIMEOUT,
                    rendezvous_timeout: float = RENDEZVOUS_TIMEOUT,
                    setup: Callable[[int], Callable[[], dict]] | None = None,
                    check: bool = True, start_attempts: int = 1) -> list[RankResult]:
    """Run ``fn(rank, world_size, *args)`` on ``world_size`` forked ranks; return their results.

    The process group is ready when ``fn`` starts and is destroyed after it returns. What a rank
    prints is returned in its :class:`RankResult` (``output``), not shown. ``setup(rank)``, if given,
    runs on each rank before ``fn`` and returns a function whose dict is stored in ``extra``.
    With ``check`` (the default) a rank that raised, died or hung raises :class:`DistributedRunError`.
    Ranks that cannot start or meet raise :class:`DistributedStartError` (whatever ``check`` says: ``fn``
    never ran), after ``start_attempts`` tries; ``timeout`` counts from the moment they have met.
    """
    if sys.platform.startswith("win"):
        raise RuntimeError("run_distributed forks its ranks, which Windows cannot do; use torchrun with a script")
    backend = backend or pick_backend(world_size)
    for attempt in range(1, start_attempts + 1):
        try:
            return _run_once(fn, world_size, tuple(args), backend, timeout, collective_timeout, rendezvous_timeout,
                             setup, check)
        except DistributedStartError as error:
            if attempt == start_attempts:
                tries = f" (tried {attempt} times)" if attempt > 1 else ""
                raise DistributedStartError(f"{error}{tries}", error.results) from None
    raise AssertionError("unreachable")


def _start_problem(results: list[RankResult], world_size: int, arrived: bool, problem: str) -> str:
    """Why the ranks could not start or meet (before ``fn`` ran on any of them), or ''.

    Not every rank arrived: nobody can have started. Every rank arrived: it is a start problem only if
    a rank failed while joining the group and none went on to run ``fn``.
    """
    failed = [r for r in results if r.error and not r.started]
    if arrived and (not failed or any(r.started for r in results)):
        return ""
    reason = _last_error_line(failed[0].error) if failed else (problem or "not every rank arrived")
    reason = reason.removeprefix(f"the {world_size} processes could not start: ")
    return (f"the {world_size} processes could not start: {reason}. This is a problem of this machine (very busy, "
            f"or connections on 127.0.0.1 blocked), not of the code they were to run: run the cell again")


def _last_error_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text


def _run_once(fn: Callable[..., Any], world_size: int, args: tuple, backend: str, timeout: float,
              collective_timeout: float, rendezvous_timeout: float,
              setup: Callable[[int], Callable[[], dict]] | None, check: bool) -> list[RankResult]:
    context = multiprocessing.get_context("fork")
    # The parent hosts the rendezvous store on a port the system picks: no race for a "free" port.
    store = dist.TCPStore(ADDRESS, 0, world_size, is_master=True, wait_for_workers=False,
                          timeout=datetime.timedelta(seconds=rendezvous_timeout))
    arrivals = [f"arrived/{rank}" for rank in range(world_size)]
    with tempfile.TemporaryDirectory() as folder:
        processes = []
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
            try:
                for rank in range(world_size):
                    process = context.Process(target=_child, daemon=True, args=(
                        rank, world_size, backend, store.port, folder, fn, args, setup, collective_timeout,
                        rendezvous_timeout))
                    process.start()
                    processes.append(process)
            except OSError as error:  # no process could be forked: out of processes or memory
                for process in processes:
                    process.kill()
                raise DistributedStartError(f"the {world_size} processes could not start: {error}") from None
        problem = _wait(processes, timeout, rendezvous_timeout, met=lambda: store.check(arrivals))
        results = [_read(Path(folder) / f"rank{rank}.pt", rank, processes[rank], problem) for rank in range(world_size)]
    start_problem = _start_problem(results, world_size, store.check(arrivals), problem)
    del store
    if start_problem:
        raise DistributedStartError(start_problem, results)
    failed = [r for r in results if r.error]
    if check and (problem or failed):
        # The rank that failed first is the cause; the others' "connection closed" errors are its consequence.
        causes = [r for r in failed if not any(word in r.error for word in _CONSEQUENCES)]
        first = (causes or failed or [None])[0]
        _raise_if_not_implemented(first.error if first else "")
        detail = f"rank {first.rank} raised:\n{textwrap.indent(first.error.rstrip(), '    ')}" if first else ""
        raise DistributedRunError("\n".join(part for part in (problem, detail) if part), results)
    return results


_CONSEQUENCES = ("Connection closed", "Connection reset", "timed out", "ended without a result")


def _raise_if_not_implemented(text: str) -> None:
    """An exercise not written yet fails the same way in a rank as in the notebook: NotImplementedError."""
    if "NotImplementedError" in text:
        raise NotImplementedError("a rank raised NotImplementedError: write the exercise's function first")


def join_with_deadline(context: Any, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Join the ranks of ``torch.multiprocessing.start_processes(..., join=False)``; stop them all after ``timeout`` s."""
    import torch.multiprocessing as torch_mp

    deadline = time.monotonic() + timeout
    try:
        while not context.join(timeout=0.2):
            if time.monotonic() > deadline:
                for process in context.processes:
                    process.kill()
                raise DistributedRunError(f"the ranks did not finish within {timeout:g} s")
    except torch_mp.ProcessRaisedException as error:
        _raise_if_not_implemented(str(error))
        raise


def _wait(processes: list[Any], timeout: float, rendezvous_timeout: float = math.inf,
          met: Callable[[], bool] = lambda: True) -> str:
    """Wait for every rank; stop them all when one fails or time runs out. Return what went wrong, or ''.

    ``timeout`` counts from the moment ``met()`` is first true (every rank has arrived); before that the
    ranks have ``rendezvous_timeout`` seconds to arrive.
    """
    started = time.monotonic()
    deadline = None
    problem = ""
    while any(p.is_alive() for p in processes):
        now = time.monotonic()
        if deadline is None and met():
            deadline = now + timeout
        if deadline is not None and now > deadline:
            problem = (f"the ranks did not finish within {timeout:g} s (a rank waiting for a collective that another "
                       f"rank never calls, such as an all_reduce inside `if rank == 0:`, waits forever)")
            break
        if deadline is None and now > started + rendezvous_timeout + 5:  # the ranks' own deadline, and some slack
            problem = f"the {len(processes)} processes could not start: they did not meet within {rendezvous_timeout:g} s"
            break
        if any(p.exitcode not in (None, 0) for p in processes):
            time.sleep(0.5)  # let the others write what they saw before they are stopped
            break
        time.sleep(0.02)
    for process in processes:
        if process.is_alive():
            process.kill()
        process.join(timeout=5)
    return problem


def _read(path: Path, rank: int, process: Any, problem: str) -> RankResult:
    if not path.exists():
        return RankResult(rank, error=problem or f"rank {rank} ended without a result (exit code {process.exitcode})",
                          started="could not start" not in problem)
    saved = torch.load(path, weights_only=False)
    return RankResult(rank, saved["value"], saved["output"], saved["error"], saved["extra"], saved.get("warnings", ""),
                      saved.get("started", True))


# --- torchrun ------------------------------------------------------------------------------

def write_script(path: str | Path, functions: Sequence[Callable[..., Any]], main: str,
                 imports: str = "") -> Path:
    """Write a script for torchrun: ``imports``, the source of ``functions``, then ``main`` under ``__main__``.

    The functions' source is read with :func:`inspect.getsource`, which works for functions defined
    in notebook cells too; they must not rely on other names of the notebook.
    """
    path = Path(path)
    parts = [textwrap.dedent(imports).strip(), *(textwrap.dedent(inspect.getsource(f)).strip() for f in functions)]
    body = textwrap.indent(textwrap.dedent(main).strip() + "\n" + _LEAVE_AT_ONCE, "    ")
    path.write_text("\n\n\n".join(parts) + f"\n\n\nif __name__ == \"__main__\":\n{body}\n")
    return path


# After main succeeded: gloo's threads may still be winding down at interpreter exit, and a C++
# destructor then aborts the rank ("terminate called without an active exception") on a busy
# machine. The rank leaves at once instead, as run_distributed's ranks do.
_LEAVE_AT_ONCE = """import os as _os, sys as _sys
_sys.stdout.flush()
_sys.stderr.flush()
_os._exit(0)"""


def torchrun(script: str | Path, *script_args: str, nproc_per_node: int = 2, timeout: float = DEFAULT_TIMEOUT,
             cwd: str | Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``script`` as ``torchrun --nproc_per_node N`` on 127.0.0.1; raise with its output if it fails."""
    environment = {**loopback_environment(), **os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    for attempt in range(2):  # a port found free can be taken by another program before torchrun binds it
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node",
                   str(nproc_per_node), "--master_addr", ADDRESS, "--master_port", str(free_port()), str(script),
                   *script_args]
        try:
            completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=environment)
        except subprocess.TimeoutExpired as error:
            raise DistributedRunError(f"torchrun did not finish within {timeout:g} s:\n{error.stdout or ''}"
                                      f"{error.stderr or ''}") from None
        if completed.returncode == 0 or "address already in use" not in completed.stderr.lower():
            break
    if completed.returncode != 0:
        _raise_if_not_implemented(completed.stderr)
        raise DistributedRunError(f"torchrun failed (exit code {completed.returncode}):\n"
                                  f"{completed.stdout}\n{completed.stderr[-4000:]}")
    return completed
