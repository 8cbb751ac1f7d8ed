"""Execute one submission in a sandboxed kernel and record trustworthy outputs.

The grader, not the kernel, decides whether a test cell passed: before each test cell runs, the
tamper guard (course_utils.integrity) is prepended, and after it a line that prints a token made
fresh for that cell. A cell passes only if the token arrives, so a submission that hides its
errors (by patching IPython's traceback display, say) gains nothing. A kernel that dies, hangs
while ignoring interrupts, or floods its output is stopped; the cells it did not run get an error
that names the reason, so nbgrader scores them 0.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import tempfile
import time
from dataclasses import dataclass
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

GUARD = "import course_utils.integrity as __course_integrity__; __course_integrity__.guard(); del __course_integrity__\n"


@dataclass(frozen=True)
class RunSettings:
    """How long and how loudly a submission may run."""

    cell_timeout: int = 60
    notebook_timeout: int = 600
    output_bytes_per_cell: int = 256 * 1024
    limits: sandbox.Limits = sandbox.Limits()


@dataclass
class RunResult:
    """The executed notebook and what happened, in words for the grades file."""

    notebook: NotebookNode
    status: str  # "ok", "kernel-died", "timed-out", "sandbox-failed"
    reason: str = ""
    seconds: float = 0.0


def error_output(name: str, message: str) -> NotebookNode:
    return new_output("error", ename=name, evalue=message, traceback=[f"{name}: {message}"])


class _CappedClient(NotebookClient):
    """A notebook client that stops recording a cell's output after a budget of characters."""

    output_budget = 256 * 1024
    _used = 0  # characters of output the running cell has sent so far

    def start_cell(self) -> None:
        self._used = 0

    def output(self, outs, msg, display_id, cell_index):  # noqa: ANN001, ANN201 - nbclient's signature
        size = len(str(msg.get("content", "")))
        self._used += size
        if self._used > self.output_budget:
            if self._used - size <= self.output_budget:  # say once that the rest was cut
                outs.append(nbformat.from_dict({"output_type": "stream", "name": "stdout",
                                                "text": f"\n[output cut after {self.output_budget} characters]\n"}))
            return None
        return super().output(outs, msg, display_id, cell_index)


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
    token = secrets.token_hex(16)
    wrapped = nbformat.from_dict(cell)
    wrapped.source = GUARD + cell.source + f"\nprint({token!r}, end='')\n"
    return wrapped, token


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


async def _run(notebook: NotebookNode, course_root: Path, uid: int | None, settings: RunSettings) -> RunResult:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="course-grade-") as folder:
        manager = _kernel_manager(Path(folder), course_root, uid, settings)
        client = _CappedClient(notebook, km=manager, timeout=settings.cell_timeout, allow_errors=True,
                               interrupt_on_timeout=True, shutdown_kernel="immediate",
                               error_on_timeout={"ename": "CellTimeoutError", "evalue": f"the cell ran past {settings.cell_timeout} s",
                                                 "traceback": [f"CellTimeoutError: the cell ran past {settings.cell_timeout} s"]})
        client.output_budget = settings.output_bytes_per_cell
        log = Path(folder) / "kernel.log"
        try:
            with open(log, "wb") as kernel_log:
                async with client.async_setup_kernel(stdout=subprocess.DEVNULL, stderr=kernel_log):
                    status, reason = await _execute(notebook, client, settings)
        except Exception as error:  # noqa: BLE001 - a kernel that never started is reported, not raised
            detail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:]) if log.exists() else ""
            for cell in notebook.cells:
                if cell.cell_type == "code" and not cell.outputs:
                    cell.outputs = [error_output("SandboxFailed", f"the kernel could not run: {error}")]
            status, reason = "sandbox-failed", f"{type(error).__name__}: {error} {detail}".strip()
        finally:
            await _stop(manager)
    return RunResult(notebook, status, reason, time.perf_counter() - start)


async def _stop(manager: AsyncKernelManager) -> None:
    try:
        if await manager.is_alive():
            await manager.shutdown_kernel(now=True)
    except Exception:  # noqa: BLE001 - best effort: the process group dies with the sandbox anyway
        pass


def run_submission(notebook: NotebookNode, course_root: Path, *, uid: int | None,
                   settings: RunSettings = RunSettings()) -> RunResult:
    """Execute ``notebook`` (already sanitised) in a sandbox as ``uid`` (None: no sandbox)."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return asyncio.run(_run(notebook, Path(course_root), uid, settings))
