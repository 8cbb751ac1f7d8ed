"""The student's own working copy of the notebooks, and the course's JupyterLab settings.

``make lab`` runs ``python -m course_tools.workspace`` before it starts JupyterLab on the copy:

- every file of ``notebooks/`` that is missing from ``my-notebooks/`` (git-ignored) is copied there;
  a file that already exists is never touched. The first run copies everything; after a ``git pull``
  new lessons (and new files of a lesson) appear, and the student's answers stay as they are, so
  course updates never conflict with them. To start a lesson afresh, delete its file and run
  ``make lab`` again.
- JupyterLab's news and update pop-up is switched off for this environment, by a settings override
  in ``<venv>/share/jupyter/lab/settings/overrides.d/`` (a student's own settings still win).
- With ``--lab``, JupyterLab starts on the copy without nbgrader's server extensions: a student has no
  use for formgrader and its siblings, which only slow the start. The same environment keeps them for
  the instructor's own ``jupyter lab`` or ``nbgrader formgrader``.

Importing this module has no side effects.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

__all__ = ["LAB_OVERRIDES", "SOURCE", "TARGET", "copy_missing", "install_lab_settings", "main",
           "nbgrader_server_extensions", "student_lab_command"]

SOURCE = "notebooks"
TARGET = "my-notebooks"
SETTINGS_FILE = "course.json"
# Plugin id and keys as in JupyterLab 4's schema (apputils-extension/notification.json): fetchNews is
# the string "true", "false" or "none" (ask); checkForUpdates only matters when news are fetched.
LAB_OVERRIDES = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}
_SKIPPED = {".ipynb_checkpoints", "__pycache__"}


def copy_missing(source: Path, target: Path) -> list[Path]:
    """Copy every file under ``source`` that ``target`` lacks; return the files copied (paths in ``target``).

    Existing files in ``target`` are never read, changed or removed.
    """
    source, target = Path(source), Path(target)
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is not a folder: run this from the course root")
    copied = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if not path.is_file() or _SKIPPED & set(relative.parts):
            continue
        destination = target / relative
        if destination.exists() or destination.is_symlink():
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
        copied.append(destination)
    return copied


def lab_settings_dir(prefix: Path | str = sys.prefix) -> Path:
    """JupyterLab's application settings folder of the environment at ``prefix``."""
    return Path(prefix) / "share" / "jupyter" / "lab" / "settings"


def install_lab_settings(prefix: Path | str = sys.prefix) -> Path:
    """Write the course's settings overrides for the environment at ``prefix``; return the file written."""
    path = lab_settings_dir(prefix) / "overrides.d" / SETTINGS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(LAB_OVERRIDES, indent=2) + "\n"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


def nbgrader_server_extensions(prefix: Path | str = sys.prefix) -> list[str]:
    """The nbgrader server extensions that the environment at ``prefix`` enables (its jupyter_server_config.d)."""
    found: set[str] = set()
    for path in sorted((Path(prefix) / "etc" / "jupyter" / "jupyter_server_config.d").glob("*.json")):
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        extensions = config.get("ServerApp", {}).get("jpserver_extensions", {}) if isinstance(config, dict) else {}
        found.update(name for name, enabled in extensions.items() if enabled and name.split(".")[0] == "nbgrader")
    return sorted(found)


def student_lab_command(root: Path | str, extra: list[str] | None = None, prefix: Path | str = sys.prefix) -> list[str]:
    """The command that starts a student's JupyterLab on ``root``, with nbgrader's server extensions off."""
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}"]
    for name in nbgrader_server_extensions(prefix):
        command += ["--ServerApp.jpserver_extensions", f"{name}=False"]
    return command + list(extra or [])


def main(argv: list[str] | None = None) -> int:
    """Make or top up the working copy and install the settings; print what was done."""
    parser = argparse.ArgumentParser(prog="python -m course_tools.workspace", description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=SOURCE, help=f"the course's notebooks (default {SOURCE}/)")
    parser.add_argument("--target", default=TARGET, help=f"the student's working copy (default {TARGET}/)")
    parser.add_argument("--lab", nargs=argparse.REMAINDER, metavar="LAB_ARGS",
                        help="then start JupyterLab on the copy, for a student (the arguments after it go to JupyterLab)")
    options = parser.parse_args(argv)
    try:
        copied = copy_missing(Path(options.source), Path(options.target))
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    install_lab_settings()
    if copied:
        print(f"copied {len(copied)} new file(s) into {options.target}/:")
        for path in copied:
            print(f"  {path}")
    print(f"your notebooks are in {options.target}/ (never overwritten by course updates)")
    if options.lab is not None:
        command = student_lab_command(options.target, options.lab)
        sys.stdout.flush()
        os.execv(command[0], command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
