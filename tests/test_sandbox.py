"""The sandbox's command line, environment and cgroups, checked without root; a real launch where it can run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from course_tools import sandbox
from course_tools.sandbox import Limits, kernel_argv, minimal_kernel_env

LIMITS = Limits()
REAL_SIZE_CHECK = sandbox.bwrap_supports_size


@pytest.fixture(autouse=True)
def bwrap_with_size(monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_supports_size", lambda: True)  # the argv as bubblewrap >= 0.8 takes it


def argv_for(tmp_path: Path, cgroups=()) -> list[str]:
    work = tmp_path / "work"
    return kernel_argv(work / "scratch", work / "sockets", Path("/course"), uid=61003, limits=LIMITS, cgroups=cgroups)


def pairs(argv: list[str], option: str) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == option]


def bwrap_part(argv: list[str]) -> list[str]:
    return argv[argv.index("bwrap"):argv.index("setpriv")]


def test_the_host_root_is_never_bound_whole(tmp_path):
    argv = bwrap_part(argv_for(tmp_path))
    binds = pairs(argv, "--ro-bind") + pairs(argv, "--bind")
    assert ("/", "/") not in binds
    sources = [s for s, _ in binds]
    for hidden in ("/home", "/root", "/work/main", "/course", "/etc", "/var", "/opt", "/mnt"):
        assert hidden not in sources, hidden
    assert not any(s.startswith("/course") or s == str(Path.home()) for s in sources)


def test_only_the_runtime_and_the_submission_are_visible(tmp_path):
    argv = bwrap_part(argv_for(tmp_path))
    read_only = {s for s, _ in pairs(argv, "--ro-bind")}
    writable = {s for s, _ in pairs(argv, "--bind")}
    assert str(Path(sys.prefix).resolve()) in read_only or any(
        Path(sys.prefix).resolve().is_relative_to(p) for p in read_only)
    import course_utils
    assert str(Path(course_utils.__file__).resolve().parent) in read_only
    assert writable == {str(tmp_path / "work" / "sockets")}, "only the sockets folder is the host's and writable"
    etc = {s for s in read_only if s.startswith("/etc/")}
    assert etc <= {f"/etc/{e}" for e in sandbox.ETC_ENTRIES}
    assert not {"/etc/shadow", "/etc/passwd", "/etc/ssh", "/etc/ssl/private"} & read_only


def test_tmp_dev_shm_and_scratch_are_size_limited_tmpfs(tmp_path):
    argv = bwrap_part(argv_for(tmp_path))
    sized = {argv[i + 3]: int(argv[i + 1]) for i, a in enumerate(argv) if a == "--size"}
    assert sized == {"/tmp": LIMITS.tmp_bytes, "/dev/shm": LIMITS.tmp_bytes,
                     str(tmp_path / "work" / "scratch"): LIMITS.scratch_bytes}
    assert all(argv[i + 2] == "--tmpfs" for i, a in enumerate(argv) if a == "--size")


def test_an_older_bubblewrap_gets_unsized_tmpfs(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_supports_size", lambda: False)
    argv = bwrap_part(argv_for(tmp_path))
    assert "--size" not in argv and argv.count("--tmpfs") == 3


def test_the_environment_is_cleared_and_minimal(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret_value")
    argv = bwrap_part(argv_for(tmp_path))
    assert "--clearenv" in argv
    assert argv.index("--clearenv") < argv.index("--setenv")
    env = dict(pairs(argv, "--setenv"))
    assert env == minimal_kernel_env(tmp_path / "work" / "scratch")
    assert "ghp_secret_value" not in " ".join(argv_for(tmp_path))


def test_minimal_kernel_env_holds_nothing_of_the_graders(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret")
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    env = minimal_kernel_env(tmp_path)
    assert env["HOME"] == str(tmp_path) and env["LANG"] == env["LC_ALL"] == "C.UTF-8"
    assert env["MPLBACKEND"] == "Agg" and env["OMP_NUM_THREADS"] == "1"
    assert env["PYTHONNOUSERSITE"] == "1" and env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].split(":") == [str(Path(sys.executable).parent), "/usr/bin", "/bin"]
    assert "very-secret" not in str(env) and "PYTHONPATH" not in env
    shown = subprocess.run([sys.executable, "-c", "import os; print(dict(os.environ))"], env=env,
                           capture_output=True, text=True, check=True).stdout
    assert "very-secret" not in shown and "AWS_SECRET" not in shown


def test_isolation_and_dropping_privileges(tmp_path):
    argv = argv_for(tmp_path)
    for flag in ("--unshare-net", "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session"):
        assert flag in argv
    assert argv[argv.index("setpriv"):argv.index("setpriv") + 4] == ["setpriv", "--reuid=61003", "--regid=61003",
                                                                      "--clear-groups"]
    assert argv[-4:] == ["-m", "ipykernel_launcher", "-f", "{connection_file}"]
    assert argv[0] == "prlimit" and f"--as={LIMITS.memory_bytes}" in argv and f"--nproc={LIMITS.processes}" in argv


def test_folders_above_bound_paths_are_traversable(tmp_path):
    argv = bwrap_part(argv_for(tmp_path))
    created = [argv[i + 3] for i, a in enumerate(argv) if a == "--perms" and argv[i + 2] == "--dir"]
    assert str(tmp_path) in created and str(tmp_path / "work") in created
    assert all(argv[argv.index(d) - 2] == "0755" for d in created if argv.index(d) > 2)


def test_the_launcher_enters_the_cgroups_first(tmp_path):
    cgroups = [tmp_path / "memory" / "x", tmp_path / "pids" / "x"]
    argv = argv_for(tmp_path, cgroups)
    assert argv[:2] == ["/bin/sh", "-c"]
    assert argv[3:7] == ["course-cgroup", str(cgroups[0] / "cgroup.procs"), str(cgroups[1] / "cgroup.procs"), "--"]
    assert argv[7] == "prlimit"


def test_the_cgroup_launcher_really_writes_its_pid_then_runs(tmp_path):
    """The launcher's shell part, run for real with files standing in for cgroup.procs."""
    cgroups = [tmp_path / "a", tmp_path / "b"]
    for folder in cgroups:
        folder.mkdir()
    argv = argv_for(tmp_path, cgroups)
    launcher = argv[:argv.index("prlimit")]
    result = subprocess.run(launcher + ["/bin/sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    pid = result.stdout.strip()
    assert (cgroups[0] / "cgroup.procs").read_text().strip() == pid == (cgroups[1] / "cgroup.procs").read_text().strip()
    (cgroups[1] / "cgroup.procs").unlink()
    (cgroups[1] / "cgroup.procs").mkdir()  # cannot be written: the kernel must not start unlimited
    assert subprocess.run(launcher + ["true"], capture_output=True).returncode == 125


def fake_cgroup_tree(tmp_path: Path, monkeypatch, version: str) -> Path:
    root = tmp_path / "cgroup"
    if version == "v2":
        (root).mkdir()
        (root / "cgroup.controllers").write_text("cpu memory pids")
        (root / "cgroup.subtree_control").write_text("memory pids")
        proc = "0::/\n"
    else:
        for controller in ("memory", "pids"):
            (root / controller / "job").mkdir(parents=True)
        proc = "5:pids:/job\n4:memory:/job\n0::/\n"
    (tmp_path / "proc-self-cgroup").write_text(proc)
    control = {"v2": {"": ("memory.max", "pids.max", "memory.swap.max", "cgroup.procs", "cgroup.kill")},
               "v1": {"memory/job": ("memory.limit_in_bytes", "cgroup.procs"), "pids/job": ("pids.max", "cgroup.procs")}}
    for where, names in control[version].items():
        for name in ("s1", "s2"):  # what the kernel would create on mkdir
            folder = root / where / f"course-grade-{name}"
            folder.mkdir(parents=True)
            for file in names:
                (folder / file).write_text("")
    monkeypatch.setattr(sandbox, "CGROUP_ROOT", root)
    monkeypatch.setattr(sandbox, "PROC_SELF_CGROUP", tmp_path / "proc-self-cgroup")
    return root


def test_cgroup_v2_limits_are_written(tmp_path, monkeypatch):
    root = fake_cgroup_tree(tmp_path, monkeypatch, "v2")
    assert sandbox.cgroup_problem() is None
    [folder] = sandbox.create_cgroups("s1", Limits(total_memory_bytes=123, total_processes=7))
    assert folder == root / "course-grade-s1"
    assert (folder / "memory.max").read_text() == "123" and (folder / "pids.max").read_text() == "7"
    assert (folder / "memory.swap.max").read_text() == "0"
    assert (folder / "cgroup.procs").read_text() == ""
    for name in ("memory.max", "pids.max", "memory.swap.max", "cgroup.procs"):
        (folder / name).unlink()
    sandbox.remove_cgroups([folder], timeout=0.1)
    assert (folder / "cgroup.kill").read_text() == "1", "the whole cgroup is killed first"
    (folder / "cgroup.kill").unlink()
    sandbox.remove_cgroups([folder])
    assert not folder.exists()


def test_cgroup_v1_limits_are_written(tmp_path, monkeypatch):
    root = fake_cgroup_tree(tmp_path, monkeypatch, "v1")
    memory, pids = sandbox.create_cgroups("s2", Limits(total_memory_bytes=456, total_processes=9))
    assert memory == root / "memory" / "job" / "course-grade-s2" and pids == root / "pids" / "job" / "course-grade-s2"
    assert (memory / "memory.limit_in_bytes").read_text() == "456" and (pids / "pids.max").read_text() == "9"


def test_no_cgroup_is_said_and_nothing_is_made(tmp_path, monkeypatch):
    root = tmp_path / "cgroup"
    root.mkdir()
    (tmp_path / "proc").write_text("0::/\n")
    monkeypatch.setattr(sandbox, "CGROUP_ROOT", root)
    monkeypatch.setattr(sandbox, "PROC_SELF_CGROUP", tmp_path / "proc")
    assert "only per-process limits apply" in sandbox.cgroup_problem()
    assert sandbox.create_cgroups("s3", LIMITS) == []


def test_a_faked_launch_gets_the_cgroups_and_cleans_up(tmp_path, monkeypatch):
    """submission_workspace with the cgroups and the mount faked: what the kernel would be started with."""
    made, unmounted = [], []
    monkeypatch.setattr(sandbox, "create_cgroups", lambda name, limits: made.append(name) or [tmp_path / "cg"])
    monkeypatch.setattr(sandbox, "remove_cgroups", lambda folders: made.append(("removed", tuple(folders))))
    monkeypatch.setattr(sandbox, "_mount_tmpfs", lambda folder, size, uid: True)
    monkeypatch.setattr(sandbox.subprocess, "run", lambda command, **kw: unmounted.append(command))
    monkeypatch.setattr(sandbox.os, "chown", lambda *a: None)
    with sandbox.submission_workspace(tmp_path / "w", uid=61004) as space:
        argv = kernel_argv(space.scratch, space.sockets, tmp_path, uid=61004, limits=LIMITS, cgroups=space.cgroups)
        assert str(tmp_path / "cg" / "cgroup.procs") in argv
        spec = sandbox.write_kernelspec(tmp_path / "w" / "kernels", argv)
        assert (tmp_path / "w" / "kernels" / spec / "kernel.json").is_file()
    assert made[-1] == ("removed", (tmp_path / "cg",))
    assert unmounted == [["umount", "-l", str(tmp_path / "w" / "sockets")]]


def test_unsandboxed_workspaces_get_no_cgroup(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "create_cgroups", lambda *a: pytest.fail("no cgroup without a sandbox"))
    with sandbox.submission_workspace(tmp_path / "w", uid=None) as space:
        assert space.cgroups == [] and space.scratch.is_dir() and space.sockets.is_dir()


def test_sandbox_problem_names_what_is_missing(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda tool: None if tool == "bwrap" else "/usr/bin/" + tool)
    assert "missing bwrap" in sandbox.sandbox_problem()
    monkeypatch.setattr(sandbox.shutil, "which", lambda tool: "/usr/bin/" + tool)
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000)
    assert "needs root" in sandbox.sandbox_problem()


# --- a real launch, where a sandbox can be made (root, bubblewrap) ----------------------------

PROBLEM = sandbox.sandbox_problem()
# Under CI=true .ci/run installs bubblewrap: the real launches run there (and fail, not skip, without it).
real = pytest.mark.skipif(PROBLEM is not None and os.environ.get("CI", "").lower() != "true",
                          reason=f"no sandbox here: {PROBLEM}")

PROBE = r"""
import os, json
seen = {}
for path in ["/home", "/root", "/etc/shadow", "/etc/passwd", COURSE + "/solutions", COURSE + "/notebooks", "/var", "/opt"]:
    seen[path] = os.path.exists(path)
print(json.dumps({"uid": os.getuid(), "env": dict(os.environ), "seen": seen}))
"""


@real
def test_a_real_sandbox_hides_the_host_and_the_environment(tmp_path, monkeypatch):
    import json

    monkeypatch.setattr(sandbox, "bwrap_supports_size", REAL_SIZE_CHECK)
    monkeypatch.setenv("COURSE_TEST_TOKEN", "secret-token-value")
    course = Path(__file__).resolve().parents[1]
    limits = Limits()
    with sandbox.submission_workspace(tmp_path / "w", uid=61009, limits=limits) as space:
        argv = kernel_argv(space.scratch, space.sockets, course, uid=61009, limits=limits, cgroups=space.cgroups)
        command = argv[:argv.index(sys.executable)] + [sys.executable, "-c", f"COURSE={str(course)!r}\n" + PROBE]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["uid"] == 61009
    assert "secret-token-value" not in result.stdout
    assert set(report["env"]) - {"PWD"} == set(minimal_kernel_env())
    hidden = {path: there for path, there in report["seen"].items() if path != "/root" and there}
    assert hidden == {}, f"visible in the sandbox: {hidden}"
    if not Path(sys.base_prefix).resolve().is_relative_to("/root"):
        assert not report["seen"]["/root"]
    assert os.path.isdir(tmp_path / "w")


# --- the grader's package and its reference answers stay out of the sandbox (issue 18) --------

def grader_references() -> list[str]:
    """The reference answers of the grader's side: every ``reference*`` function of course_tools.grade.judges."""
    import importlib
    import pkgutil

    import course_tools.grade.judges as judges

    names = set()
    for info in pkgutil.iter_modules(judges.__path__):
        module = importlib.import_module(f"{judges.__name__}.{info.name}")
        names |= {name for name in vars(module) if name.lstrip("_").startswith("reference") and callable(vars(module)[name])}
    return sorted(names)


IMPORTS = r"""
import importlib, importlib.metadata, json
seen = {}
for name in MODULES:
    try:
        importlib.import_module(name)
        seen[name] = "imported"
    except ImportError as error:
        seen[name] = "ImportError: " + str(error)
import sys
import course_utils.verdict_probes
from course_utils.diagnoses import lesson_modules
for lesson_module in lesson_modules():  # every lesson's checks, probes and stand-ins
    importlib.import_module(lesson_module)
student = [module for name, module in list(sys.modules.items()) if name.startswith("course_utils")]
seen["probe references"] = sorted({name for name in REFERENCES for module in student if hasattr(module, name)})
try:
    seen["metadata"] = importlib.metadata.distribution("course-tools").read_text("RECORD") or ""
except Exception as error:
    seen["metadata"] = ""
print(json.dumps(seen))
"""


def run_in_sandbox(tmp_path: Path, code: str, uid: int) -> dict:
    import json

    limits = Limits()
    with sandbox.submission_workspace(tmp_path / "w", uid=uid, limits=limits) as space:
        argv = kernel_argv(space.scratch, space.sockets, Path("/nonexistent-course"), uid=uid, limits=limits,
                           cgroups=space.cgroups)
        command = argv[:argv.index(sys.executable)] + [sys.executable, "-c", code]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_grader_out_of_reach(seen: dict, references: list[str]) -> None:
    imported = {name: outcome for name, outcome in seen.items() if name.startswith("course_tools")
                and not outcome.startswith("ImportError")}
    assert not imported, f"the sandboxed kernel imported the grader's package: {imported}"
    assert seen["probe references"] == [], \
        f"the probes' modules hold reference answers: {seen['probe references']}"
    assert seen["metadata"] == "", "the grader's distribution metadata is readable in the sandbox"


def imports_script(references: list[str]) -> str:
    modules = ["course_tools", "course_tools.grade", "course_tools.grade.verdict",
               *(f"course_tools.grade.judges.lesson{n:02d}" for n in range(1, 9))]
    return f"MODULES = {modules!r}\nREFERENCES = {references!r}\n" + IMPORTS


def test_the_references_to_hide_are_found():
    assert {"reference_epoch", "reference_evaluate"} <= set(grader_references())


def test_every_copy_of_the_grader_package_in_view_is_covered(tmp_path, monkeypatch):
    """argv only: a copy installed into a folder the kernel sees is covered by the mask, an outside one is not."""
    inside, outside = tmp_path / "env" / "site-packages", tmp_path / "elsewhere"
    for folder in (inside, outside):
        (folder / "course_tools").mkdir(parents=True)
        (folder / "course_tools-0.1.0.dist-info").mkdir()
    monkeypatch.setattr(sys, "path", [*sys.path, str(inside), str(outside)])
    monkeypatch.setattr(sandbox, "_visible_read_only", lambda course_root=None: [tmp_path / "env"])
    argv = bwrap_part(argv_for(tmp_path))
    masked = {target for source, target in pairs(argv, "--ro-bind") if source.endswith(sandbox.MASK_FOLDER)}
    assert masked == {str(inside / "course_tools"), str(inside / "course_tools-0.1.0.dist-info")}
    binds = [target for _, target in pairs(argv, "--ro-bind")]
    assert binds.index(str(inside / "course_tools")) > binds.index(str(tmp_path / "env")), "the mask goes on top"


@real
def test_the_grader_package_and_its_references_fail_inside_the_sandbox_editable_install(tmp_path, monkeypatch):
    """As `make` installs it: course_tools editable, from a folder the sandbox does not bind."""
    monkeypatch.setattr(sandbox, "bwrap_supports_size", REAL_SIZE_CHECK)
    references = grader_references()
    assert_grader_out_of_reach(run_in_sandbox(tmp_path, imports_script(references), 61010), references)


@real
def test_the_grader_package_and_its_references_fail_inside_the_sandbox_non_editable_install(tmp_path, monkeypatch):
    """course_tools installed as files into a folder on the sandboxed kernel's path, which the sandbox binds."""
    import shutil

    monkeypatch.setattr(sandbox, "bwrap_supports_size", REAL_SIZE_CHECK)
    root = Path(__file__).resolve().parents[1]
    build = tmp_path / "build"
    shutil.copytree(root / "tools", build, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    target = tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-build-isolation",
                    "--target", str(target), str(build)], check=True, capture_output=True, timeout=300)
    assert (target / "course_tools" / "grade" / "judges" / "lesson07.py").is_file()
    visible = sandbox._visible_read_only
    monkeypatch.setattr(sandbox, "_visible_read_only", lambda course_root=None: [*visible(course_root), target])
    kernel_env = sandbox.minimal_kernel_env
    monkeypatch.setattr(sandbox, "minimal_kernel_env", lambda home="/tmp": {**kernel_env(home), "PYTHONPATH": str(target)})
    monkeypatch.setattr(sys, "path", [*sys.path, str(target)])  # as the grader itself would find it
    references = grader_references()
    script = imports_script(references)
    seen = run_in_sandbox(tmp_path, "import sys\nassert sys.path[1] == %r, sys.path\n" % str(target) + script, 61011)
    assert_grader_out_of_reach(seen, references)
    unmasked = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); "
                               "import course_tools.grade.judges.lesson07 as j; print(j.__file__)"],
                              capture_output=True, text=True, timeout=120)
    assert str(target) in unmasked.stdout, "without the sandbox the installed copy is importable: the test tests the mask"
