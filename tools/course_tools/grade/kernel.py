"""Execute one submission in a sandboxed kernel and record its outputs (the execute stage's worker).

Before each test cell the tamper guard (course_utils.integrity) runs as an execution of its own,
so the test cell's line numbers are the ones the student sees; after the test cell's code, a line
prints a token made fresh for that cell, and a cell whose token never arrives cannot pass. These
make naive tampering visible; they do not make the kernel trustworthy: what the kernel reports is
the student's to forge, and the grader's own re-check (:mod:`course_tools.grade.verdict`) decides.

A kernel that dies, hangs while ignoring interrupts, or floods any output channel (streams,
displays, widget comm messages) is stopped; the cells it did not run get an error that names the
reason, so nbgrader scores them 0.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode
from nbformat.v4 import new_output

from course_tools import sandbox
from course_tools.nbgrader_hooks import is_test_cell

GUARD = "import course_utils.integrity as __course_integrity__; __course_integrity__.guard(); del __course_integrity__"


@dataclass(frozen=True)
class RunSettings:
    """How long and how loudly a submission may run."""

    cell_timeout: int = 60
    notebook_timeout: int = 600
    output_bytes_per_cell: int = 256 * 1024
    output_bytes_per_notebook: int = 4 * 2**20  # every channel together, widget comm messages included
    limits: sandbox.Limits = sandbox.Limits()


@dataclass
class RunResult:
    """The executed notebook and what happened, in words for the grades file."""

    notebook: NotebookNode
    status: str  # a course_tools.grade.results.Status value: "ok", "tampered", "kernel-died", ...
    reason: str = ""
    seconds: float = 0.0
    printed: dict[str, str] = field(default_factory=dict)  # probe name -> what the probe printed to stdout


def error_output(name: str, message: str) -> NotebookNode:
    return new_output("error", ename=name, evalue=message, traceback=[f"{name}: {message}"])


def _message_size(msg: dict) -> int:
    buffers = msg.get("buffers") or []
    return len(str(msg.get("content", ""))) + sum(len(b) for b in buffers)


class _CappedClient(NotebookClient):
    """A notebook client that stops recording output past a budget per cell and per notebook.

    Outputs and widget comm messages draw on the same budgets, so no channel can make the grader
    buffer more than the budget allows.
    """

    output_budget = 256 * 1024
    notebook_budget = 4 * 2**20
    _used = 0        # characters the running cell has sent so far
    _used_total = 0  # characters the whole notebook has sent so far

    def start_cell(self) -> None:
        self._used = 0

    def _within_budget(self, size: int) -> bool:
        self._used += size
        self._used_total += size
        return self._used <= self.output_budget and self._used_total <= self.notebook_budget

    def output(self, outs, msg, display_id, cell_index):  # noqa: ANN001, ANN201 - nbclient's signature
        size = _message_size(msg)
        if not self._within_budget(size):
            if not any(o.get("name") == "stdout" and "[output cut" in o.get("text", "") for o in outs):
                outs.append(nbformat.from_dict({"output_type": "stream", "name": "stdout",
                                                "text": "\n[output cut: this cell or notebook printed too much]\n"}))
            return None
        return super().output(outs, msg, display_id, cell_index)

    def handle_comm_msg(self, outs, msg, cell_index):  # noqa: ANN001, ANN201 - nbclient's signature
        if not self._within_budget(_message_size(msg)):
            return None
        return super().handle_comm_msg(outs, msg, cell_index)


def _kernel_manager(work: Path, course_root: Path, uid: int | None, settings: RunSettings) -> AsyncKernelManager:
    scratch, sockets = sandbox.prepare_workspace(work, uid=uid)
    argv = (sandbox.kernel_argv(scratch, sockets, course_root, uid=uid, limits=settings.limits)
            if uid is not None else sandbox.unsandboxed_argv())
    specs = work / "kernels"
    name = sandbox.write_kernelspec(specs, argv)
    manager = AsyncKernelManager(kernel_name=name, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(specs)]),
                                 transport="ipc", ip=str(sockets / "kernel"),
                                 connection_file=str(sockets / "connection.json"))
    manager.write_connection_file()
    if uid is not None:
        import os

        os.chown(manager.connection_file, uid, uid)
    return manager


def _with_token(cell: NotebookNode) -> tuple[NotebookNode, str]:
    """The test cell as it runs: its own lines first (line numbers unchanged), then the token."""
    token = secrets.token_hex(16)
    wrapped = nbformat.from_dict(cell)
    wrapped.source = cell.source + f"\nprint({token!r}, end='')\n"
    return wrapped, token


async def _guard_fails(client: NotebookClient) -> list[NotebookNode]:
    """Run the tamper guard as an execution of its own; return its error outputs (none when it passed)."""
    probe = nbformat.v4.new_code_cell(GUARD)
    client.nb.cells.append(probe)  # nbclient stores an executed cell at its index in the notebook
    try:
        await client.async_execute_cell(probe, len(client.nb.cells) - 1)
    finally:
        client.nb.cells.pop()
    return [o for o in probe.outputs if o.get("output_type") == "error"]


def _strip_token(cell: NotebookNode, token: str) -> bool:
    """Remove the token from the cell's output; return whether it was there."""
    seen = False
    for output in cell.outputs:
        if output.get("output_type") == "stream" and token in output.get("text", ""):
            output["text"] = output["text"].replace(token, "")
            seen = seen or output.get("name") == "stdout"
    cell.outputs = [o for o in cell.outputs if not (o.get("output_type") == "stream" and o.get("text") == "")]
    return seen


async def _execute(notebook: NotebookNode, client: _CappedClient, settings: RunSettings) -> tuple[str, str]:
    deadline = time.monotonic() + settings.notebook_timeout
    status, reason = "ok", ""
    tampering: list[str] = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        if status != "ok":
            cell.outputs = [error_output("NotRun", f"not run: {reason}")]
            continue
        if time.monotonic() > deadline:
            status, reason = "timed-out", f"the notebook ran past {settings.notebook_timeout} s"
            cell.outputs = [error_output("NotRun", f"not run: {reason}")]
            continue
        runnable, token = _with_token(cell) if is_test_cell(cell) else (cell, None)
        client.start_cell()
        started = time.monotonic()
        try:
            guard_errors = await _guard_fails(client) if token is not None else []
            if guard_errors:
                runnable.outputs = guard_errors
                tampering.append(f"{cell.metadata.nbgrader.grade_id}: {guard_errors[0].get('evalue', '').strip()[:200]}")
            else:
                await client.async_execute_cell(runnable, index)
        except DeadKernelError:
            status, reason = "kernel-died", "the kernel died (os._exit, a crash, or memory exhausted)"
            runnable.outputs.append(error_output("KernelDied", reason))
        cell.outputs = runnable.outputs
        notebook.cells[index] = cell  # nbclient stores the cell it ran, with the guard and token, in the notebook
        if token is not None and status == "ok" and not _strip_token(cell, token):
            if not any(o.get("output_type") == "error" for o in cell.outputs):
                cell.outputs.append(error_output("CheckNotFinished", "the check cell did not run to its end"))
        if status == "ok" and time.monotonic() - started >= settings.cell_timeout:
            cell.outputs.append(error_output("CellTimeoutError", f"the cell ran past {settings.cell_timeout} s"))
            if not await _kernel_answers(client):
                status, reason = "timed-out", f"a cell ran past {settings.cell_timeout} s and ignored interrupts"
    if status == "ok" and tampering:
        status, reason = "tampered", "the notebook replaced what the checks rely on (" + "; ".join(tampering) + ")"
    return status, reason


async def _kernel_answers(client: NotebookClient, seconds: int = 5) -> bool:
    """After an interrupt, does the kernel run a trivial cell promptly again?"""
    probe = nbformat.v4.new_code_cell("pass")
    saved = client.timeout
    client.timeout = seconds
    client.nb.cells.append(probe)  # nbclient stores an executed cell at its index in the notebook
    started = time.monotonic()
    try:
        await client.async_execute_cell(probe, len(client.nb.cells) - 1)
        return time.monotonic() - started < seconds
    except Exception:  # noqa: BLE001 - a kernel that cannot answer is the finding
        return False
    finally:
        client.nb.cells.pop()
        client.timeout = saved


async def _run_probes(client: _CappedClient, probes: dict[str, str]) -> dict[str, str]:
    """After the notebook, run each probe as an execution of its own; return what each printed."""
    printed = {}
    client._used_total = 0  # probes have a budget of their own: a chatty notebook must not starve them
    for name, source in probes.items():
        probe = nbformat.v4.new_code_cell(source)
        client.nb.cells.append(probe)
        client.start_cell()
        try:
            await client.async_execute_cell(probe, len(client.nb.cells) - 1)
        except Exception:  # noqa: BLE001 - a probe that cannot run leaves nothing to judge: the check fails
            pass
        finally:
            client.nb.cells.pop()
        printed[name] = "".join(o.get("text", "") for o in probe.outputs
                                if o.get("output_type") == "stream" and o.get("name") == "stdout")
    return printed


async def _run(notebook: NotebookNode, course_root: Path, uid: int | None, settings: RunSettings,
               probes: dict[str, str]) -> RunResult:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="course-grade-") as folder:
        manager = _kernel_manager(Path(folder), course_root, uid, settings)
        client = _CappedClient(notebook, km=manager, timeout=settings.cell_timeout, allow_errors=True,
                               interrupt_on_timeout=True, shutdown_kernel="immediate",
                               error_on_timeout={"ename": "CellTimeoutError", "evalue": f"the cell ran past {settings.cell_timeout} s",
                                                 "traceback": [f"CellTimeoutError: the cell ran past {settings.cell_timeout} s"]})
        client.output_budget = settings.output_bytes_per_cell
        client.notebook_budget = settings.output_bytes_per_notebook
        log = Path(folder) / "kernel.log"
        printed: dict[str, str] = {}
        try:
            with open(log, "wb") as kernel_log:
                async with client.async_setup_kernel(stdout=subprocess.DEVNULL, stderr=kernel_log):
                    status, reason = await _execute(notebook, client, settings)
                    printed = await _run_probes(client, probes) if status in ("ok", "tampered") and probes else {}
        except Exception as error:  # noqa: BLE001 - a kernel that never started is reported, not raised
            detail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:]) if log.exists() else ""
            for cell in notebook.cells:
                if cell.cell_type == "code" and not cell.outputs:
                    cell.outputs = [error_output("SandboxFailed", f"the kernel could not run: {error}")]
            status, reason = "sandbox-failed", f"{type(error).__name__}: {error} {detail}".strip()
        finally:
            await _stop(manager)
    return RunResult(notebook, status, reason, time.perf_counter() - start, printed)


async def _stop(manager: AsyncKernelManager) -> None:
    try:
        if await manager.is_alive():
            await manager.shutdown_kernel(now=True)
    except Exception:  # noqa: BLE001 - best effort: the process group dies with the sandbox anyway
        pass


def run_submission(notebook: NotebookNode, course_root: Path, *, uid: int | None,
                   settings: RunSettings = RunSettings(), probes: dict[str, str] | None = None) -> RunResult:
    """Execute ``notebook`` (already sanitised) in a sandbox as ``uid`` (None: no sandbox), then ``probes``.

    ``probes`` maps a name to code run after the notebook, each as an execution of its own; what
    each printed comes back in :attr:`RunResult.printed` (see course_tools.grade.verdict).
    """
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return asyncio.run(_run(notebook, Path(course_root), uid, settings, dict(probes or {})))
