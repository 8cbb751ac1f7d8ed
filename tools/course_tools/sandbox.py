"""A sandbox for one submission's kernel, made with bubblewrap, setpriv and prlimit (Linux).

What the kernel sees: a new, empty root with read-only binds of the system folders Python needs
(``/usr``, ``/lib*``, a few files of ``/etc``, the CPU topology under ``/sys``), the Python
environment and the ``course_utils`` package; a size-limited tmpfs for ``/tmp``, ``/dev/shm`` and
its working folder (scratch) (bubblewrap >= 0.8; older ones make them unsized, bounded by the
cgroup alone); and the folder of its Unix sockets. Not ``/home``, ``/root``, the
course root or anything else of the host. Nor the grader's own package, ``course_tools``, which
holds the reference answers: however it was installed (editable from a folder outside the
environment, or into the very environment the kernel uses), every copy the kernel could find and its
distribution's metadata are covered by a folder whose ``__init__.py`` raises ImportError
(:func:`grader_package_paths`). It runs as an unprivileged user id of its own (one per
parallel job), with no network, and with an explicit minimal environment (``--clearenv``).

Limits, and what they bound:

- per submission, when a cgroup can be made (v2, or v1 ``memory`` + ``pids`` hierarchies; see
  :func:`cgroup_problem`): memory of every process together, tmpfs files included, and the
  number of processes and threads. Else only the per-process limits below apply (and the
  tmpfs sizes, which cap files in memory);
- per process (prlimit): address space, CPU seconds, file size, open files;
- per user id (``--nproc``): processes and threads. The uid is the job's own, so this is per
  submission too.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import course_utils

REQUIRED_TOOLS = ("bwrap", "setpriv", "prlimit")
GRADER_PACKAGE, GRADER_DISTRIBUTION = "course_tools", "course_tools"  # import name; dist-info prefix (normalised)
MASK_FOLDER = "grader-package-mask"  # beside scratch and sockets: what covers the grader's package in the sandbox
MASK_INIT = ('raise ImportError("course_tools is the grader\'s package: it holds the reference answers, '
             'and the grading sandbox cannot import it")\n')
FIRST_SANDBOX_UID = 61000  # one uid per parallel job, so jobs cannot see each other's processes
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PREFIX = "course-grade-"
PROC_SELF_CGROUP = Path("/proc/self/cgroup")

# What the kernel needs from the host besides the Python environment: system folders (or the
# links to them on merged-/usr systems), the dynamic loader's and locale's files, and the CPU
# topology that torch reads at import (it warns on stderr without it).
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_ENTRIES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives", "fonts", "mime.types",
               "nsswitch.conf", "host.conf", "gai.conf")
SYS_PATHS = ("/sys/devices/system/cpu", "/sys/devices/system/node")


@dataclass(frozen=True)
class Limits:
    """Resource limits of one submission's kernel (see the module docstring for what each bounds)."""

    memory_bytes: int = 4 * 2**30  # address space per process; importing torch alone reserves about 0.7 GiB
    cpu_seconds: int = 600
    processes: int = 1024  # threads count too; torchrun with 2 ranks and their threads needs a few hundred
    file_bytes: int = 64 * 2**20
    open_files: int = 1024
    total_memory_bytes: int = 3 * 2**30  # every process of the submission together, tmpfs files included
    total_processes: int = 1024
    tmp_bytes: int = 256 * 2**20  # /tmp and /dev/shm, each
    scratch_bytes: int = 256 * 2**20  # the working folder
    sockets_bytes: int = 2**20  # the sockets folder, where the host keeps it on a tmpfs


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


@functools.lru_cache(maxsize=None)
def bwrap_supports_size() -> bool:
    """Whether this bubblewrap can limit a tmpfs's size (``--size``, new in 0.8)."""
    try:
        shown = subprocess.run(["bwrap", "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return "--size" in shown.stdout + shown.stderr


def minimal_kernel_env(home: Path | str = "/tmp") -> dict[str, str]:
    """The whole environment of a grading kernel: nothing of the grader's (no tokens, no paths of its own)."""
    venv_bin = str(Path(sys.executable).parent)
    return {
        "PATH": f"{venv_bin}:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TMPDIR": "/tmp",
    }


# --- what the kernel sees --------------------------------------------------------------------

def _visible_read_only(course_root: Path | None = None) -> list[Path]:
    """The Python environment the kernel needs: the interpreter, its environment and course_utils."""
    package = Path(course_utils.__file__).resolve().parent
    interpreter = Path(sys.executable).resolve().parent.parent  # a venv's python links out to its base
    paths = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), package, interpreter}
    return sorted(_outermost(paths))


def _outermost(paths: set[Path]) -> set[Path]:
    return {p for p in paths if not any(p != q and p.is_relative_to(q) for q in paths)}


def _search_folders(visible: list[Path]) -> list[Path]:
    """Folders where the kernel's Python looks for modules: this environment's and any visible ``sys.path`` entry."""
    folders = {Path(sysconfig.get_paths()[key]) for key in ("purelib", "platlib")}
    folders |= {Path(entry) for entry in sys.path if entry and Path(entry).is_absolute()}
    return sorted(f.resolve() for f in folders
                  if f.is_dir() and any(f.resolve().is_relative_to(v) for v in visible))


def grader_package_paths(visible: list[Path]) -> list[Path]:
    """Every copy of the grader's package, and its distribution metadata, that the kernel could see.

    A copy is visible when it lies under a folder the sandbox binds (``visible``): an install into
    the environment the kernel runs (``pip install ./tools``), a ``--target`` folder on its path, or
    the folder an editable install points at, should it ever be bound.
    """
    found: set[Path] = set()
    spec = importlib.util.find_spec(GRADER_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        found.add(Path(location).resolve())
    for folder in _search_folders(visible):
        found |= {p.resolve() for p in folder.glob(GRADER_PACKAGE) if p.is_dir()}
        found |= {p.resolve() for p in folder.glob(f"{GRADER_DISTRIBUTION}-*.dist-info") if p.is_dir()}
        found |= {p.resolve() for p in folder.glob(f"{GRADER_DISTRIBUTION}*.egg-info") if p.is_dir()}
    return sorted(p for p in found if any(p.is_relative_to(v) for v in visible))


def write_mask(folder: Path) -> Path:
    """The folder that covers the grader's package in the sandbox: an ``__init__.py`` that raises ImportError."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o755)
    (folder / "__init__.py").write_text(MASK_INIT)
    os.chmod(folder / "__init__.py", 0o644)
    return folder


def _system_binds() -> list[str]:
    """bwrap arguments for the host's system folders (links kept as links) and the few /etc and /sys entries."""
    args: list[str] = []
    for name in SYSTEM_PATHS:
        path = Path(name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), name]
        elif path.is_dir():
            args += ["--ro-bind", name, name]
    args += ["--dir", "/etc"]
    for entry in ETC_ENTRIES:
        path = Path("/etc") / entry
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.exists():
            args += ["--ro-bind", str(path), str(path)]
    # bwrap would make /sys and the folders on the way 0700 root: the sandbox user could not enter
    # them, and gloo (lesson 08's distributed exercise) fails on EACCES from /sys.
    args += ["--perms", "0755", "--dir", "/sys", "--perms", "0755", "--dir", "/sys/devices",
             "--perms", "0755", "--dir", "/sys/devices/system"]
    for name in SYS_PATHS:
        if Path(name).is_dir():
            args += ["--ro-bind", name, name]
    return args


def _folders_to_create(paths: list[Path]) -> list[Path]:
    """Folders above the bound paths that the new root lacks, outermost first (made 0755, traversable)."""
    system = {Path(p) for p in SYSTEM_PATHS} | {Path("/etc"), Path("/sys"), Path("/dev"), Path("/proc")}
    folders = set()
    for path in paths:
        for ancestor in path.parents:
            if ancestor not in (Path("/"), Path("/tmp")) and not any(ancestor == s or ancestor.is_relative_to(s) for s in system):
                folders.add(ancestor)
    return sorted(folders, key=lambda p: (len(p.parts), str(p)))


def kernel_argv(scratch: Path, sockets: Path, course_root: Path, *, uid: int, limits: Limits,
                cgroups: list[Path] | tuple[Path, ...] = ()) -> list[str]:
    """The command that starts an IPython kernel inside the sandbox (for a kernelspec's ``argv``).

    ``cgroups``: folders of the submission's cgroup(s) (from :func:`submission_workspace`); the
    launcher puts itself in them before anything else starts, so every process counts.
    """
    visible = _visible_read_only(course_root)
    command: list[str] = []
    if cgroups:
        command += ["/bin/sh", "-c", 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"',
                    "course-cgroup", *(str(Path(c) / "cgroup.procs") for c in cgroups), "--"]
    command += [
        "prlimit", f"--as={limits.memory_bytes}", f"--cpu={limits.cpu_seconds}", f"--nproc={limits.processes}",
        f"--fsize={limits.file_bytes}", f"--nofile={limits.open_files}", "--",
        "bwrap", "--new-session", "--dev", "/dev", "--proc", "/proc",
    ]
    command += _system_binds()
    def sized(size: int) -> list[str]:
        return ["--size", str(size)] if bwrap_supports_size() else []  # else only the cgroup bounds them

    command += ["--perms", "1777", *sized(limits.tmp_bytes), "--tmpfs", "/tmp",
                "--perms", "1777", *sized(limits.tmp_bytes), "--tmpfs", "/dev/shm"]
    for folder in _folders_to_create(visible + [scratch, sockets]):
        command += ["--perms", "0755", "--dir", str(folder)]  # bwrap would make them 0700: untraversable
    for path in visible:
        command += ["--ro-bind", str(path), str(path)]
    for path in grader_package_paths(visible):  # after the binds it covers; the mask is the host's, read-only
        command += ["--ro-bind", str(scratch.parent / MASK_FOLDER), str(path)]
    command += [
        "--perms", "1777", *sized(limits.scratch_bytes), "--tmpfs", str(scratch),
        "--bind", str(sockets), str(sockets),
        "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent", "--chdir", str(scratch), "--clearenv",
    ]
    for name, value in minimal_kernel_env(scratch).items():
        command += ["--setenv", name, value]
    command += [
        "--", "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--",
        sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
    ]
    return command


def unsandboxed_argv() -> list[str]:
    """The plain kernel command, for ``--no-sandbox`` runs (start it with ``env=minimal_kernel_env(...)``)."""
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
    write_mask(work / MASK_FOLDER)  # owned by the grader: the sandbox may read it, never change it
    return folders


def write_kernelspec(folder: Path, argv: list[str]) -> str:
    """Write a kernelspec named ``course-sandbox`` under ``folder``; return its name."""
    spec = folder / "course-sandbox"
    spec.mkdir(parents=True, exist_ok=True)
    # Interrupts travel as messages: a signal would reach the sandbox's launcher, not the kernel inside.
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "course sandbox", "language": "python",
                                                  "interrupt_mode": "message"}))
    return spec.name


# --- limits for the submission as a whole: cgroups -------------------------------------------

def _own_cgroups(proc_self: str) -> dict[str, str]:
    """Controller (or "" for v2) -> this process's cgroup path, from ``/proc/self/cgroup``'s text."""
    own: dict[str, str] = {}
    for line in proc_self.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for controller in controllers.split(",") if controllers else [""]:
            own[controller] = path
    return own


def _cgroup_bases() -> tuple[str, list[Path]] | str:
    """("v1" or "v2", parent folders to create a submission's cgroups in), or why there are none."""
    root = CGROUP_ROOT
    try:
        proc_self = PROC_SELF_CGROUP.read_text()
    except OSError as error:
        return f"cannot read {PROC_SELF_CGROUP} ({error})"
    own = _own_cgroups(proc_self)
    unified = root if (root / "cgroup.controllers").is_file() else root / "unified"
    if (unified / "cgroup.controllers").is_file() and "" in own:
        base = unified / own[""].lstrip("/")
        enabled = (base / "cgroup.subtree_control").read_text().split() if (base / "cgroup.subtree_control").is_file() else []
        if {"memory", "pids"} <= set(enabled) and os.access(base, os.W_OK):
            return "v2", [base]
    v1 = [root / c / own[c].lstrip("/") for c in ("memory", "pids") if c in own]
    if len(v1) == 2 and all(p.is_dir() and os.access(p, os.W_OK) for p in v1):
        return "v1", v1
    return ("no writable cgroup with the memory and pids controllers (cgroup v2 with them delegated, "
            "or v1 memory and pids hierarchies): only per-process limits apply")


def cgroup_problem() -> str | None:
    """Why the submission as a whole cannot be limited here (None when it can)."""
    found = _cgroup_bases()
    return found if isinstance(found, str) else None


def _write(path: Path, value: str) -> bool:
    """Write a cgroup control file (which the kernel provides: never create one)."""
    try:
        descriptor = os.open(path, os.O_WRONLY)
    except OSError:
        return False
    try:
        os.write(descriptor, value.encode())
        return True
    except OSError:
        return False
    finally:
        os.close(descriptor)


def create_cgroups(name: str, limits: Limits) -> list[Path]:
    """Make the submission's cgroup(s) with its limits; [] where none can be made (see :func:`cgroup_problem`)."""
    found = _cgroup_bases()
    if isinstance(found, str):
        return []
    version, bases = found
    made: list[Path] = []
    try:
        for base in bases:
            folder = base / f"{CGROUP_PREFIX}{name}"
            folder.mkdir(exist_ok=True)
            made.append(folder)
        if version == "v2":
            [folder] = made
            ok = _write(folder / "memory.max", str(limits.total_memory_bytes)) and \
                _write(folder / "pids.max", str(limits.total_processes))
            _write(folder / "memory.swap.max", "0")
        else:
            memory, pids = made
            ok = _write(memory / "memory.limit_in_bytes", str(limits.total_memory_bytes)) and \
                _write(pids / "pids.max", str(limits.total_processes))
            _write(memory / "memory.memsw.limit_in_bytes", str(limits.total_memory_bytes))  # where swap is accounted
        if not ok:
            raise OSError("the limits could not be written")
    except OSError:
        remove_cgroups(made)
        return []
    return made


def remove_cgroups(folders: list[Path], timeout: float = 5.0) -> None:
    """Kill whatever still runs in the submission's cgroup(s), then remove them (best effort)."""
    for folder in folders:
        if not _write(folder / "cgroup.kill", "1"):
            try:
                pids = [int(p) for p in (folder / "cgroup.procs").read_text().split()]
            except OSError:
                pids = []
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        deadline = time.monotonic() + timeout
        while True:
            try:
                folder.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)


# --- a workspace with its limits -------------------------------------------------------------

@dataclass
class Workspace:
    """A submission's folders and cgroups (see :func:`submission_workspace`)."""

    scratch: Path
    sockets: Path
    cgroups: list[Path] = field(default_factory=list)
    mounted: list[Path] = field(default_factory=list)


def _mount_tmpfs(folder: Path, size: int, uid: int) -> bool:
    """Put a size-limited tmpfs on ``folder`` (host side, needs root): a full sockets folder fills no disk."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    options = f"size={size},nr_inodes=256,mode=0700,uid={uid},gid={uid},nosuid,nodev,noexec"
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "course-sockets", str(folder)],
                          capture_output=True).returncode == 0


@contextmanager
def submission_workspace(work: Path, *, uid: int | None, limits: Limits = Limits()) -> Iterator[Workspace]:
    """:func:`prepare_workspace`, plus (when sandboxed) the cgroups and a tmpfs for the sockets; undone on exit.

    Pass ``workspace.cgroups`` to :func:`kernel_argv`. On exit every process still in the cgroups
    is killed, and the cgroups and the tmpfs are removed, so ``work`` can be deleted.
    """
    scratch, sockets = prepare_workspace(work, uid=uid)
    space = Workspace(scratch, sockets)
    try:
        if uid is not None:
            space.cgroups = create_cgroups(f"{work.name}-{os.getpid()}-{secrets.token_hex(4)}", limits)
            if _mount_tmpfs(sockets, limits.sockets_bytes, uid):
                space.mounted.append(sockets)
        yield space
    finally:
        remove_cgroups(space.cgroups)
        for folder in space.mounted:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
