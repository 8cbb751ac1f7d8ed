"""A sandbox for one submission's kernel, made with bubblewrap, setpriv and prlimit (Linux).

The kernel runs as an unprivileged user id of its own, with no network, a private ``/tmp``, the
course root hidden (only the Python environment and ``course_utils`` are visible, read-only),
write access to its own scratch folder alone, and limits on memory, CPU time, processes and file
size. The grader talks to it over Unix sockets in a folder both can reach.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import course_utils

REQUIRED_TOOLS = ("bwrap", "setpriv", "prlimit")
FIRST_SANDBOX_UID = 61000  # one uid per parallel job, so jobs cannot see each other's processes


@dataclass(frozen=True)
class Limits:
    """Resource limits of one submission's kernel."""

    memory_bytes: int = 4 * 2**30  # address space; importing torch alone reserves about 0.7 GiB
    cpu_seconds: int = 600
    processes: int = 256  # threads count too
    file_bytes: int = 64 * 2**20
    open_files: int = 1024


def sandbox_problem() -> str | None:
    """Why no sandbox can be made on this machine, or None when it can."""
    if not sys.platform.startswith("linux"):
        return f"the sandbox needs Linux, this is {sys.platform}"
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)} (Debian: apt-get install bubblewrap util-linux)"
    if os.geteuid() != 0:
        return "the sandbox switches to a dedicated user id, which needs root (run course grade as root or in a container)"
    return None


def _visible_read_only(course_root: Path) -> list[Path]:
    """What the kernel must read: the interpreter, its environment and the course_utils package."""
    package = Path(course_utils.__file__).resolve().parent
    paths = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), package}
    return sorted(paths)


def _folders_to_create(paths: list[Path], hidden: list[Path]) -> list[Path]:
    """Folders between a hidden (emptied) folder and a path shown inside it, outermost first."""
    folders = set()
    for path in paths:
        for ancestor in path.parents:
            if any(ancestor != top and ancestor.is_relative_to(top) for top in hidden):
                folders.add(ancestor)
    return sorted(folders, key=lambda p: len(p.parts))


def kernel_argv(scratch: Path, sockets: Path, course_root: Path, *, uid: int, limits: Limits) -> list[str]:
    """The command that starts an IPython kernel inside the sandbox (for a kernelspec's ``argv``)."""
    hidden = sorted({Path("/tmp"), Path.home().resolve(), course_root.resolve()}, key=lambda p: len(p.parts))
    command = [
        "prlimit", f"--as={limits.memory_bytes}", f"--cpu={limits.cpu_seconds}", f"--nproc={limits.processes}",
        f"--fsize={limits.file_bytes}", f"--nofile={limits.open_files}", "--",
        "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
    ]
    for path in hidden:
        command += ["--perms", "1777" if path == Path("/tmp") else "0755", "--tmpfs", str(path)]
    work = scratch.parent
    visible = _visible_read_only(course_root)
    for folder in _folders_to_create(visible + [work], hidden):
        command += ["--perms", "0755", "--dir", str(folder)]  # bwrap would make them 0700: untraversable
    for path in visible:
        command += ["--ro-bind", str(path), str(path)]
    command += [
        "--ro-bind", str(work), str(work), "--bind", str(scratch), str(scratch), "--bind", str(sockets), str(sockets),
        "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent", "--new-session", "--chdir", str(scratch),
        "--setenv", "HOME", str(scratch), "--setenv", "OMP_NUM_THREADS", "1", "--setenv", "MPLBACKEND", "Agg",
        "--unsetenv", "JPY_PARENT_PID",  # the grader's pid is not visible in the sandbox
        "--", "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--",
        sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
    ]
    return command


def unsandboxed_argv() -> list[str]:
    """The plain kernel command, for ``--no-sandbox`` runs."""
    return [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]


def prepare_workspace(work: Path, *, uid: int | None) -> tuple[Path, Path]:
    """Create ``scratch`` (the kernel's working folder) and ``sockets`` under ``work``, owned by ``uid``."""
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o711)  # the sandbox user may pass through, not list
    folders = work / "scratch", work / "sockets"
    for folder in folders:
        folder.mkdir(exist_ok=True)
        if uid is not None:
            os.chown(folder, uid, uid)
    return folders


def write_kernelspec(folder: Path, argv: list[str]) -> str:
    """Write a kernelspec named ``course-sandbox`` under ``folder``; return its name."""
    spec = folder / "course-sandbox"
    spec.mkdir(parents=True, exist_ok=True)
    # Interrupts travel as messages: a signal would reach the sandbox's launcher, not the kernel inside.
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "course sandbox", "language": "python",
                                                  "interrupt_mode": "message"}))
    return spec.name
