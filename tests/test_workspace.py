"""`make lab`'s working copy is made once and only topped up; the news pop-up is off."""

import json
import sys
from pathlib import Path

import pytest

from course_tools import workspace


def make_course_notebooks(root: Path, lessons: list[str]) -> Path:
    for lesson in lessons:
        folder = root / "notebooks" / lesson
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{lesson}.ipynb").write_text(f'{{"lesson": "{lesson}"}}')
    return root / "notebooks"


def test_the_first_run_copies_everything_and_later_runs_only_what_is_new(tmp_path):
    source = make_course_notebooks(tmp_path, ["01_a", "02_b"])
    (source / "01_a" / ".ipynb_checkpoints").mkdir()
    (source / "01_a" / ".ipynb_checkpoints" / "01_a-checkpoint.ipynb").write_text("{}")
    target = tmp_path / "my-notebooks"
    copied = workspace.copy_missing(source, target)
    assert sorted(p.relative_to(target).as_posix() for p in copied) == ["01_a/01_a.ipynb", "02_b/02_b.ipynb"]

    mine = target / "01_a" / "01_a.ipynb"
    mine.write_text('{"my": "answers"}')
    (source / "01_a" / "01_a.ipynb").write_text('{"lesson": "01_a, updated by the course"}')
    make_course_notebooks(tmp_path, ["03_c"])
    copied = workspace.copy_missing(source, target)
    assert [p.relative_to(target).as_posix() for p in copied] == ["03_c/03_c.ipynb"]
    assert mine.read_text() == '{"my": "answers"}', "a student's file is never overwritten"
    assert workspace.copy_missing(source, target) == []


def test_a_deleted_lesson_file_comes_back_fresh(tmp_path):
    source = make_course_notebooks(tmp_path, ["01_a"])
    target = tmp_path / "mine"
    workspace.copy_missing(source, target)
    (target / "01_a" / "01_a.ipynb").unlink()
    assert [p.name for p in workspace.copy_missing(source, target)] == ["01_a.ipynb"]


def test_the_news_pop_up_is_off_for_the_environment(tmp_path):
    from jupyterlab_server.settings_utils import _get_overrides

    path = workspace.install_lab_settings(tmp_path)
    assert path == tmp_path / "share/jupyter/lab/settings/overrides.d/course.json"
    overrides, error = _get_overrides(str(workspace.lab_settings_dir(tmp_path)))
    assert error == "" and overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    assert workspace.install_lab_settings(tmp_path).read_text() == path.read_text(), "idempotent"


def test_the_settings_match_the_installed_jupyterlab_schema():
    schemas = Path(sys.prefix) / "share/jupyter/lab/schemas"
    for plugin, values in workspace.LAB_OVERRIDES.items():
        package, name = plugin.split(":")
        schema = json.loads((schemas / package / f"{name}.json").read_text())
        for key, value in values.items():
            spec = schema["properties"][key]
            allowed = [choice["const"] for choice in spec.get("oneOf", [])] or None
            assert allowed is None or value in allowed, (key, value, allowed)
            assert isinstance(value, {"string": str, "boolean": bool}[spec["type"]])


def test_main_copies_installs_and_reports(tmp_path, monkeypatch, capsys):
    make_course_notebooks(tmp_path, ["01_a"])
    monkeypatch.chdir(tmp_path)
    installed = []
    monkeypatch.setattr(workspace, "install_lab_settings", lambda: installed.append(True))
    assert workspace.main([]) == 0
    assert (tmp_path / "my-notebooks" / "01_a" / "01_a.ipynb").is_file() and installed == [True]
    assert "copied 1 new file" in capsys.readouterr().out
    assert workspace.main(["--source", "missing"]) == 1


@pytest.mark.parametrize("line", ["my-notebooks/"])
def test_the_working_copy_is_git_ignored(line):
    root = Path(__file__).resolve().parents[1]
    assert line in (root / ".gitignore").read_text().splitlines()


def test_the_students_lab_turns_off_every_nbgrader_server_extension(tmp_path):
    config = tmp_path / "etc" / "jupyter" / "jupyter_server_config.d"
    config.mkdir(parents=True)
    (config / "nbgrader.json").write_text(json.dumps({"ServerApp": {"jpserver_extensions": {
        "nbgrader.server_extensions.formgrader": True, "nbgrader.server_extensions.course_list": True,
        "nbgrader.server_extensions.off_already": False}}}))
    (config / "jupyterlab.json").write_text(json.dumps({"ServerApp": {"jpserver_extensions": {"jupyterlab": True}}}))
    (config / "broken.json").write_text("{not json")
    command = workspace.student_lab_command("my-notebooks", ["--allow-root"], prefix=tmp_path)
    assert command[:4] == [sys.executable, "-m", "jupyterlab", "--ServerApp.root_dir=my-notebooks"]
    assert command[4:] == ["--ServerApp.jpserver_extensions", "nbgrader.server_extensions.course_list=False",
                           "--ServerApp.jpserver_extensions", "nbgrader.server_extensions.formgrader=False",
                           "--allow-root"]


def test_this_environment_has_nbgrader_server_extensions_for_the_instructor_and_make_lab_passes_through_them():
    # The instructor's server keeps formgrader: the environment enables it, only the student's command turns it off.
    assert "nbgrader.server_extensions.formgrader" in workspace.nbgrader_server_extensions()
    import subprocess

    import os

    # Under `make test` this runs inside make: without its variables, the dry run prints just the commands.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    dry_run = subprocess.run(["make", "--no-print-directory", "-n", "lab"], cwd=Path(__file__).parents[1],
                             capture_output=True, text=True, check=True, env=env).stdout
    (start,) = [line for line in dry_run.splitlines() if "-m course_tools.workspace" in line]
    assert " --lab" in start and "jupyter lab " not in dry_run, start
