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
import os
import queue
import re
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
from course_tools.grade.sanitize import keep_colours, strip_control, strip_escapes, without_surrogates
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
    printed: dict[str, str] = field(default_factory=dict)  # grade id -> the text its probe evaluated to


def error_output(name: str, message: str) -> NotebookNode:
    return new_output("error", ename=name, evalue=message, traceback=[f"{name}: {message}"])


ENAME_CHARS, EVALUE_CHARS, TRACEBACK_LINES, TRACEBACK_LINE_CHARS = 200, 8192, 20, 2048


def _short_error(content: dict, *, full: bool) -> dict:
    """An error's fields cut to budget, the name and value printable; ``full=False``: name and a line only."""
    name = strip_control(str(content.get("ename", ""))[: ENAME_CHARS * 2])[:ENAME_CHARS] or "Error"
    value = strip_escapes(str(content.get("evalue", ""))[: EVALUE_CHARS * 2])[: EVALUE_CHARS if full else 300]
    traceback = content.get("traceback", [])
    lines = [keep_colours(str(line)[:TRACEBACK_LINE_CHARS])
             for line in (traceback if isinstance(traceback, list) else [])[-TRACEBACK_LINES:]]
    return {"ename": name, "evalue": value,
            "traceback": lines if full else [f"{name}: {value} [further error output cut: too much output]"]}


def _message_size(msg: dict) -> int:
    buffers = msg.get("buffers") or []
    return len(str(msg.get("content", ""))) + sum(len(b) for b in buffers)


class _CappedClient(NotebookClient):
    """A notebook client that stops recording what a kernel sends past fixed budgets.

    Outputs have a budget per cell and per notebook; widget comm messages have one of their own, so
    a widget flood cannot crowd out the check cells' results, nor make the grader buffer more than
    the budgets. The running test cell's token is noticed even in output that is cut.

    Error outputs are shortened before they are kept (``ename`` to a name's length, ``evalue`` and
    the traceback to fixed sizes; control and escape characters out of the name and the value) and
    count against the same budgets. A cell keeps at most :attr:`errors_per_cell` of them; past a
    budget or that number, a cell that has no error yet still gets one, short, so a cell that
    raised never looks as if it passed. Lone surrogates in anything a kernel sends become U+FFFD.
    """

    output_budget = 256 * 1024
    notebook_budget = 4 * 2**20
    comm_budget = 4 * 2**20
    token: str | None = None  # the running test cell's token
    token_seen = False
    _used = 0        # characters of output the running cell has sent so far
    _used_total = 0  # characters of output the whole notebook has sent so far
    _comm_used = 0   # characters of widget messages the whole notebook has sent so far
    errors_per_cell = 5
    _errors = 0      # error outputs the running cell has sent so far

    def start_cell(self, token: str | None = None) -> None:
        self._used, self.token, self.token_seen, self._errors = 0, token, False, 0

    def _keep_error(self, content: dict, outs: list) -> bool:
        """Shorten an error output in place; whether it is kept (see the class docstring)."""
        self._errors += 1
        content.update(_short_error(content, full=True))
        if self._errors <= self.errors_per_cell and self._within_budget(_message_size({"content": content})):
            return True
        if any(o.get("output_type") == "error" for o in outs):
            return False
        content.update(_short_error(content, full=False))
        return True

    def _within_budget(self, size: int) -> bool:
        self._used += size
        self._used_total += size
        return self._used <= self.output_budget and self._used_total <= self.notebook_budget

    def output(self, outs, msg, display_id, cell_index):  # noqa: ANN001, ANN201 - nbclient's signature
        content = msg.get("content", {})
        if self.token and msg.get("msg_type") == "stream" and self.token in str(content.get("text", "")):
            self.token_seen = self.token_seen or content.get("name") == "stdout"
        if isinstance(content, dict):
            msg["content"] = content = without_surrogates(content)
        if msg.get("msg_type") == "error":
            return super().output(outs, msg, display_id, cell_index) if self._keep_error(content, outs) else None
        if not self._within_budget(_message_size(msg)):
            if not any(o.get("name") == "stdout" and "[output cut" in o.get("text", "") for o in outs):
                outs.append(nbformat.from_dict({"output_type": "stream", "name": "stdout",
                                                "text": "\n[output cut: this cell or notebook printed too much]\n"}))
            return None
        return super().output(outs, msg, display_id, cell_index)

    def handle_comm_msg(self, outs, msg, cell_index):  # noqa: ANN001, ANN201 - nbclient's signature
        self._comm_used += _message_size(msg)
        if self._comm_used > self.comm_budget:
            return None
        return super().handle_comm_msg(outs, msg, cell_index)


def _kernel_manager(work: Path, space: sandbox.Workspace, course_root: Path, uid: int | None,
                    settings: RunSettings) -> AsyncKernelManager:
    argv = (sandbox.kernel_argv(space.scratch, space.sockets, course_root, uid=uid, limits=settings.limits,
                                cgroups=space.cgroups)
            if uid is not None else sandbox.unsandboxed_argv())
    specs = work / "kernels"
    name = sandbox.write_kernelspec(specs, argv)
    manager = AsyncKernelManager(kernel_name=name, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(specs)]),
                                 transport="ipc", ip=str(space.sockets / "kernel"),
                                 connection_file=str(space.sockets / "connection.json"))
    manager.write_connection_file()
    if uid is not None:
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


def _strip_token(cell: NotebookNode, token: str) -> None:
    """Remove the token from the cell's output (the client noticed it as it arrived)."""
    for output in cell.outputs:
        if output.get("output_type") == "stream" and token in output.get("text", ""):
            output["text"] = output["text"].replace(token, "")
    cell.outputs = [o for o in cell.outputs if not (o.get("output_type") == "stream" and o.get("text") == "")]


def _has_error(cell: NotebookNode) -> bool:
    return any(o.get("output_type") == "error" for o in cell.outputs)


async def _execute(notebook: NotebookNode, client: _CappedClient, settings: RunSettings,
                   probes: dict[str, str]) -> tuple[str, str, dict[str, str]]:
    """Run every cell; right after each test cell that has a probe, evaluate the probe (see run_submission)."""
    deadline = time.monotonic() + settings.notebook_timeout
    status, reason = "ok", ""
    tampering: list[str] = []
    printed: dict[str, str] = {}
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
        grade_id = cell.metadata.nbgrader.grade_id if token is not None else None
        client.start_cell(token)
        started = time.monotonic()
        try:
            guard_errors = await _guard_fails(client) if token is not None else []
            if guard_errors:
                runnable.outputs = guard_errors
                tampering.append(f"{grade_id}: {guard_errors[0].get('evalue', '').strip()[:200]}")
            else:
                client.start_cell(token)
                await client.async_execute_cell(runnable, index)
        except DeadKernelError:
            if time.monotonic() - started >= settings.cell_timeout:
                # stopped at the time limit (an interrupt a worker could not deliver ends the kernel): a timeout
                status, reason = "timed-out", (f"a cell ({grade_id or cell.get('id') or index}) ran past "
                                               f"{settings.cell_timeout} s and its kernel was stopped; "
                                               "the cells after it were not run")
                runnable.outputs.append(error_output("CellTimeoutError", f"the cell ran past {settings.cell_timeout} s"))
            else:
                status, reason = "kernel-died", "the kernel died (os._exit, a crash, or memory exhausted)"
                runnable.outputs.append(error_output("KernelDied", reason))
        cell.outputs = runnable.outputs
        notebook.cells[index] = cell  # nbclient stores the cell it ran, with the token, in the notebook
        if token is not None:
            _strip_token(cell, token)
            if status == "ok" and not client.token_seen and not _has_error(cell):
                # an exception that left no error behind: the kernel's error reporting was altered
                tampering.append(f"{grade_id}: the check stopped without reporting an error")
                cell.outputs.append(error_output("CheckNotFinished", "the check cell did not run to its end"))
            elif status == "ok" and not client.token_seen:
                cell.outputs.append(error_output("CheckNotFinished", "the check cell did not run to its end"))
        if status == "ok" and time.monotonic() - started >= settings.cell_timeout:
            # One story on every executor: the submission is timed-out, the cells before keep their points,
            # and nothing after runs (a kernel that was interrupted may be in any state).
            if not any(o.get("ename") == "CellTimeoutError" for o in cell.outputs):
                cell.outputs.append(error_output("CellTimeoutError", f"the cell ran past {settings.cell_timeout} s"))
            ignored = not await _kernel_answers(client)
            status, reason = "timed-out", (f"a cell ({grade_id or cell.get('id') or index}) ran past "
                                           f"{settings.cell_timeout} s" + (" and ignored interrupts" if ignored else "")
                                           + "; the cells after it were not run")
        if status == "ok" and grade_id in probes:
            printed[grade_id] = await _run_probe(client, probes[grade_id], settings.cell_timeout)
    if status == "ok" and tampering:
        status, reason = "tampered", "the notebook interfered with the checks (" + "; ".join(tampering) + ")"
    return status, reason, printed


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


async def _reply_to(client: NotebookClient, msg_id: str, seconds: float) -> dict | None:
    """The kernel's ``execute_reply`` to ``msg_id`` (replies to other requests are skipped), or None."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            msg = await client.kc.shell_channel.get_msg(timeout=min(remaining, 1.0))
        except queue.Empty:
            if not await client.km.is_alive():
                return None
            continue
        if msg.get("parent_header", {}).get("msg_id") == msg_id:
            return msg
    return None


async def _drain_iopub(client: NotebookClient, msg_id: str, seconds: float = 5.0) -> None:
    """Read and drop what the kernel published while answering ``msg_id``, up to its ``idle`` status."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            msg = await client.kc.iopub_channel.get_msg(timeout=remaining)
        except queue.Empty:
            return
        if (msg.get("parent_header", {}).get("msg_id") == msg_id and msg.get("msg_type") == "status"
                and msg.get("content", {}).get("execution_state") == "idle"):
            return


_QUOTED = re.compile(r"'([^'\\\n]*)'")  # the repr of the probe's one-line answer: nothing to unescape


async def _run_probe(client: NotebookClient, expression: str, seconds: float) -> str:
    """Evaluate one probe expression in the kernel; return the text it evaluated to ("" when none came back).

    The probe is not a cell: it travels in the ``user_expressions`` of a silent ``execute_request``
    whose code is ``pass``. ipykernel evaluates user expressions after ``run_cell`` has returned, so
    ``pre_run_cell``/``post_run_cell`` hooks (not even triggered: the request is silent), input
    transformers and a replaced ``run_code`` never see the expression, which holds the seed; it is
    in no cell source, no ``In``/``_ih`` and no ``linecache`` entry. The grader reads only the value
    in the reply to its own request: nothing the kernel prints, displays or sends elsewhere is read.
    """
    msg_id = client.kc.execute("pass", silent=True, store_history=False, allow_stdin=False, stop_on_error=False,
                               user_expressions={"values": expression})
    reply = await _reply_to(client, msg_id, seconds)
    if reply is None:
        try:
            await client.km.interrupt_kernel()
            reply = await _reply_to(client, msg_id, 5)
        except Exception:  # noqa: BLE001 - a kernel that cannot be interrupted is found by the next cell
            return ""
    if reply is None:
        return ""
    await _drain_iopub(client, msg_id)
    value = reply.get("content", {}).get("user_expressions", {}).get("values", {})
    text = value.get("data", {}).get("text/plain", "") if isinstance(value, dict) and value.get("status") == "ok" else ""
    quoted = _QUOTED.fullmatch(text) if isinstance(text, str) else None
    return quoted.group(1) if quoted else ""


async def _run(notebook: NotebookNode, course_root: Path, uid: int | None, settings: RunSettings,
               probes: dict[str, str]) -> RunResult:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="course-grade-") as folder, \
            sandbox.submission_workspace(Path(folder) / "work", uid=uid, limits=settings.limits) as space:
        manager = _kernel_manager(Path(folder), space, course_root, uid, settings)
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
                async with client.async_setup_kernel(stdout=subprocess.DEVNULL, stderr=kernel_log,
                                                     env=sandbox.minimal_kernel_env(space.scratch)):
                    status, reason, printed = await _execute(notebook, client, settings, probes)
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
    """Execute ``notebook`` (already sanitised) in a sandbox as ``uid`` (None: no sandbox).

    ``probes`` maps a test cell's grade id to a Python expression evaluated right after that cell,
    through a request of its own (so a kernel that dies later loses none of it; see :func:`_run_probe`);
    the text each evaluated to comes back in :attr:`RunResult.printed` (see course_tools.grade.verdict).
    """
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return asyncio.run(_run(notebook, Path(course_root), uid, settings, dict(probes or {})))
