"""``course publish DIR`` (issue 18, item 7): the students' repository holds the release and nothing secret.

The tree is built for real from this course, then every file is read back (notebooks with their
JSON unescaped) for every answer line and every hidden-test line of ``solutions/``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from course_tools import links
from course_tools.cli import main
from course_tools.publish import PublishError, find_leaks, publish, readable_text, secret_lines
from tests.helpers import copy_course

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "course_utils"


@pytest.fixture(scope="module")
def secrets() -> dict[str, set[str]]:
    return secret_lines(ROOT)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("students") / "repository"
    publish(ROOT, target, check=False)  # read back by the tests below, file by file
    return target


def package_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in (root / PACKAGE).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".json"))


def test_the_tree_holds_the_release_and_the_student_package_only(tree):
    top = sorted(p.name for p in tree.iterdir())
    assert top == sorted([".gitignore", "README.md", "constraints.txt", "course_utils", "environment.yml", "notebooks",
                          "postBuild", "pyproject.toml"])
    released = sorted(p.relative_to(ROOT / "notebooks") for p in (ROOT / "notebooks").rglob("*.ipynb"))
    assert sorted(p.relative_to(tree / "notebooks") for p in (tree / "notebooks").rglob("*.ipynb")) == released
    names = {p.name for p in tree.rglob("*")}
    assert not names & {"solutions", "tools", "course_tools", "tests", "nbgrader_config.py", "gradebook.db"}
    assert not list(tree.rglob("__pycache__"))
    assert package_files(tree) == package_files(ROOT), "the student package whole, stored expected results included"


def test_there_are_secrets_to_look_for(secrets):
    assert sum(len(lines) for lines in secrets.values()) > 100, "answer lines of every lesson"
    assert all(secrets.values()), {lesson: len(lines) for lesson, lines in secrets.items()}


def test_no_answer_or_hidden_test_line_outside_the_student_package(tree, secrets):
    leaks = [(path, line) for path, line in find_leaks(tree, secrets) if not path.startswith(PACKAGE + "/")]
    assert not leaks, f"expected no answer or hidden-test line in the student tree, found {leaks[:10]}"


# Lines of the student package that equal a line of some answer without giving that answer away, each with why.
# Everything else the package holds must differ from every answer line (hints inside strings are not code).
NOT_ANSWERS = {
    ("course_utils/_validate.py", "if not isinstance(value, torch.Tensor):"):
        "the course's own argument checking, the pattern lesson 01 teaches in its text",
    ("course_utils/_validate.py", 'raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")'):
        "the course's own argument checking, the pattern lesson 01 teaches in its text",
    ("course_utils/checks/lesson02/ex2.py", "return (x - self.shift.to(x.dtype)) / self.scale.to(x.dtype)"):
        "StandIn: a Scaler whose fit is wrong on purpose; the formula itself is in the lesson's text",
    ("course_utils/checks/lesson02/ex2.py", "return x * self.scale.to(x.dtype) + self.shift.to(x.dtype)"):
        "StandIn: a Scaler whose fit is wrong on purpose; the formula itself is in the lesson's text",
    ("course_utils/checks/lesson02/ex2.py", "self.method = method"): "StandIn stores its argument",
    ("course_utils/checks/lesson03/ex2.py", "n, n_classes = logits.shape"): "a check unpacking a shape",
    ("course_utils/checks/lesson04/ex2.py", 'if task == "multiclass":'): "the check's input generator, per task",
    ("course_utils/checks/lesson04/ex2.py", 'if task == "regression":'): "the check's input generator, per task",
    ("course_utils/checks/lesson08/instruments.py", "return len(self.targets)"):
        "IndexedDataset, lesson 08's instrument that records the indices each rank loads",
    ("course_utils/checks/lesson08/instruments.py", "return self.features[index], self.targets[index]"):
        "IndexedDataset, lesson 08's instrument that records the indices each rank loads",
}


def test_no_answer_or_hidden_test_line_in_the_student_package(tree, secrets):
    leaks = [(path, line) for path, line in find_leaks(tree, secrets)
             if path.startswith(PACKAGE + "/") and (path, line) not in NOT_ANSWERS]
    assert not leaks, "expected no answer line in course_utils, found:\n" + "\n".join(f"{p}: {l}" for p, l in leaks)


def test_the_leak_scan_finds_a_planted_answer_in_a_notebook_and_in_a_file(tree, secrets, tmp_path):
    line = sorted(secrets["01_dataloader_batching"])[0]
    notebook = {"cells": [{"cell_type": "code", "source": ["x = 1\n", f"    {line}\n"]}]}
    (tmp_path / "copy.ipynb").write_text(json.dumps(notebook))
    (tmp_path / "helper.py").write_text(f"def f():\n    {line}\n")
    assert line in readable_text(tmp_path / "copy.ipynb")
    assert sorted(path for path, _ in find_leaks(tmp_path, secrets)) == ["copy.ipynb", "helper.py"]


def small_course(folder: Path) -> Path:
    """Lesson 01 with the course's packaging files and a student package that holds nothing of its own."""
    course = copy_course(folder, ["01_dataloader_batching"])
    for name in ("pyproject.toml", "environment.yml", "constraints.txt"):
        (course / name).write_text((ROOT / name).read_text())
    (course / PACKAGE).mkdir()
    (course / PACKAGE / "__init__.py").write_text('"""A stand-in student package."""\n')
    return course


def test_publish_refuses_a_tree_with_an_answer_and_leaves_no_release(tmp_path):
    course = small_course(tmp_path / "course")
    assert publish(course, tmp_path / "clean")  # nothing planted: published
    line = sorted(secret_lines(course)["01_dataloader_batching"])[0]
    release = course / "notebooks" / "01_dataloader_batching" / "01_dataloader_batching.ipynb"
    data = json.loads(release.read_text())
    data["cells"][0]["source"] = [data["cells"][0]["source"][0] if data["cells"][0]["source"] else "", f"\n{line}\n"]
    release.write_text(json.dumps(data))
    target = tmp_path / "students"
    with pytest.raises(PublishError, match="answer or hidden-test line"):
        publish(course, target)
    assert not (target / "notebooks").exists() and not (target / PACKAGE).exists()


def test_publish_refuses_the_course_itself_and_a_stale_release(tmp_path):
    with pytest.raises(PublishError, match="inside it"):
        publish(ROOT, ROOT / "build" / "students")
    course = small_course(tmp_path / "course")
    release = course / "notebooks" / "01_dataloader_batching" / "01_dataloader_batching.ipynb"
    data = json.loads(release.read_text())
    for cell in data["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade") and not cell["metadata"]["nbgrader"].get("solution"):
            cell["source"] = "pass"
            break
    release.write_text(json.dumps(data))
    with pytest.raises(PublishError, match="make notebooks"):
        publish(course, tmp_path / "students")


def test_badges_and_installs_point_at_the_students_repository(tree):
    readme = (tree / "README.md").read_text()
    assert links.binder_badge_markdown() in readme
    for notebook in (tree / "notebooks").rglob("*.ipynb"):
        path = notebook.relative_to(tree).as_posix()
        assert links.colab_badge_markdown(path) in readme, path
        assert links.pip_requirement() in notebook.read_text(), f"{path}: Colab installs from the students' repository"
    project = tomllib.loads((tree / "pyproject.toml").read_text())["project"]
    assert project["name"] == "course-utils" and project["urls"]["Repository"] == links.REPOSITORY_URL
    assert "nbgrader" not in (tree / "environment.yml").read_text() + (tree / "constraints.txt").read_text()
    environment = (tree / "environment.yml").read_text()
    assert "channels:\n  - conda-forge\n" in environment and "pytorch-cpu=" in environment and "torch==" in (tree / "constraints.txt").read_text()
    assert "course_tools" not in (tree / "postBuild").read_text() and (tree / "postBuild").stat().st_mode & 0o111


def test_the_student_package_installs_from_the_tree_alone(tree, tmp_path):
    """The students' pyproject.toml builds course_utils with its stored expected results (what Colab installs)."""
    wheel_dir = tmp_path / "wheel"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                            str(wheel_dir), str(tree)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    import zipfile

    [wheel] = wheel_dir.glob("course_utils-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert set(package_files(tree)) <= set(names), set(package_files(tree)) - set(names)
    assert not any(n.startswith(("course_tools/", "solutions/")) for n in names)


def test_course_publish_is_a_verb(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    code = main(["publish", str(ROOT / "notebooks")])
    assert code == 1 and "inside it" in capsys.readouterr().err
