"""``course publish DIR``: the students' repository, written from the instructor's, with nothing secret in it.

The instructor's repository (private) holds ``solutions/`` (answers and hidden tests), the grader
(``tools/``) and the tests. Students need only the release: ``notebooks/``, the student package
``course_utils/`` (with its ``pyproject.toml``, so Colab can ``pip install`` it from the students'
repository), a README with the Binder and Colab badges of that repository
(:mod:`course_tools.links`), ``environment.yml`` and ``postBuild`` for Binder, ``constraints.txt``
and a ``.gitignore``. Nothing else is copied: no ``solutions/``, no hidden tests, no grader.

Before anything is written, every lesson's committed release must match its source (a stale one is
an error that says to run ``make notebooks``). After writing, the tree is read back for every answer
line and every hidden-test line of ``solutions/`` (:func:`find_leaks`); any found is an error and
the tree is removed. Publishing again replaces what an earlier publish wrote and keeps the rest of
``DIR`` (its ``.git``, for example).
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path
from string import Template

from course_tools import links
from course_tools.notebooks import read_notebook
from course_tools.release import RELEASE_DIR, find_lessons, lesson_notebook
from course_tools.workspace import LAB_OVERRIDES

STUDENT_PACKAGE = "course_utils"
TEMPLATES = Path(__file__).resolve().parent / "templates" / "student"
MANAGED = (RELEASE_DIR, STUDENT_PACKAGE)  # folders a publish replaces whole
CONDA_NAMES = {"torch": "pytorch-cpu"}  # pip name -> conda-forge name, where they differ
ALWAYS_IN_ENVIRONMENT = ("python", "pip")

_BEGIN = re.compile(r"^\s*#+\s*BEGIN (SOLUTION|HIDDEN TESTS)\s*$")
_END = re.compile(r"^\s*#+\s*END (SOLUTION|HIDDEN TESTS)\s*$")
_TRIVIAL = re.compile(r"^[\s\])}({\[,:;.]*$|^(pass|return|else:|try:|finally:|break|continue|\.\.\.|raise)$")
MIN_SECRET_CHARS = 20  # shorter lines ("x = 1", "return grad", "if rank == 0:") say nothing about an answer


class PublishError(RuntimeError):
    """The student tree could not be written safely; the message says why and what to do."""


# --- what must never be published ------------------------------------------------------------

def _secret_blocks(source: str) -> Iterator[str]:
    """The lines between ``BEGIN SOLUTION``/``END SOLUTION`` and ``BEGIN HIDDEN TESTS``/``END HIDDEN TESTS``."""
    inside = False
    for line in source.splitlines():
        if _BEGIN.match(line):
            inside = True
        elif _END.match(line):
            inside = False
        elif inside:
            yield line


def _public_lines(source: str) -> Iterator[str]:
    inside = False
    for line in source.splitlines():
        if _BEGIN.match(line):
            inside = True
        elif _END.match(line):
            inside = False
        elif not inside:
            yield line.strip()


def _meaningful(line: str) -> bool:
    stripped = line.strip()
    return len(stripped) >= MIN_SECRET_CHARS and not _TRIVIAL.match(stripped) and not stripped.startswith("#")


def secret_lines(root: Path) -> dict[str, set[str]]:
    """Every answer line and hidden-test line of ``solutions/``, by lesson.

    Lines any lesson also shows in public (its text and code outside the marked blocks, also
    inside a longer line) are no secret, and neither are trivial lines (blank, ``pass``, lone brackets, shorter than
    :data:`MIN_SECRET_CHARS`).
    """
    sources = {lesson: [str(c.source) for c in read_notebook(lesson_notebook(root, lesson)).cells]
               for lesson in find_lessons(root)}
    # what any lesson shows in the open, in code or in prose: a line found there is no secret
    public = "\n".join(line for cells in sources.values() for source in cells for line in _public_lines(source))
    return {lesson: {line.strip() for source in cells for line in _secret_blocks(source)
                     if _meaningful(line) and line.strip() not in public}
            for lesson, cells in sources.items()}


def _strings(value: object) -> Iterator[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def readable_text(path: Path) -> str:
    """A file's text as a reader sees it: a notebook's strings unescaped (its JSON escapes quotes and breaks)."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    if path.suffix == ".ipynb":
        try:
            data = json.loads(text)
        except ValueError:
            return text
        return text + "\n" + "\n".join(_strings(data))
    return text


def find_leaks(tree: Path, secrets: dict[str, set[str]]) -> list[tuple[str, str]]:
    """``(file, line)`` for every secret line found in any file under ``tree``."""
    lines = {line for lesson in secrets.values() for line in lesson}
    leaks = []
    for path in sorted(p for p in Path(tree).rglob("*") if p.is_file() and ".git" not in p.relative_to(tree).parts):
        text = readable_text(path)
        if path.suffix == ".py":
            # whole lines of code: a hint string that quotes part of an answer (shown to every student whose
            # check fails) is teaching; a line of code equal to an answer's line is a leak
            code = {candidate.strip() for candidate in text.splitlines()}
            leaks += [(str(path.relative_to(tree)), line) for line in sorted(lines) if line in code]
        else:
            leaks += [(str(path.relative_to(tree)), line) for line in sorted(lines) if line in text]
    return leaks


# --- what is published -----------------------------------------------------------------------

def _render(name: str, **values: str) -> str:
    return Template((TEMPLATES / name).read_text(encoding="utf-8")).substitute(values)


def _lesson_rows(root: Path, lessons: Iterable[str]) -> str:
    rows = []
    for lesson in lessons:
        path = f"{RELEASE_DIR}/{lesson}/{lesson}.ipynb"
        title = next((line.lstrip("#").strip() for cell in read_notebook(root / path).cells
                      if cell.cell_type == "markdown" for line in str(cell.source).splitlines()
                      if line.startswith("# ")), lesson)
        rows.append(f"| [`{lesson}`]({path}) {title} | {links.colab_badge_markdown(path)} |")
    return "\n".join(rows)


def _quoted(names: Iterable[str]) -> str:
    return "\n".join(f'    "{name}",' for name in names)


def _student_project(root: Path) -> dict:
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {"project": project, "dependencies": list(project["dependencies"]),
            "lab": list(project.get("optional-dependencies", {}).get("lab", []))}


def _pip_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;@]", requirement, maxsplit=1)[0].lower()


def _student_environment(root: Path, packages: set[str]) -> str:
    """``environment.yml`` with the student's packages only, pins as in the instructor's."""
    wanted = {CONDA_NAMES.get(name, name) for name in packages} | set(ALWAYS_IN_ENVIRONMENT)
    lines, in_dependencies = [], False
    for line in (root / "environment.yml").read_text(encoding="utf-8").splitlines():
        entry = line.strip()
        if not line.startswith(" ") and entry:
            in_dependencies = entry == "dependencies:"
        if entry.startswith("#") or (in_dependencies and entry.startswith("- ")
                                     and re.split(r"[=<>\s]", entry[2:], maxsplit=1)[0].lower() not in wanted):
            continue
        lines.append(line)
    header = ("# Binder / conda environment (conda-forge), the same versions as constraints.txt.\n"
              "# The course helpers (course_utils) are installed by postBuild.\n")
    return header + "\n".join(lines) + "\n"


def _student_constraints(root: Path, packages: set[str]) -> str:
    kept = [line for line in (root / "constraints.txt").read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#") and _pip_name(line) in packages]
    return "# The tested versions (pip install --constraint constraints.txt ...).\n" + "\n".join(kept) + "\n"


def _check_release(root: Path, lessons: list[str]) -> None:
    from course_tools.grade.prepare import InvalidLesson, load_lesson

    for lesson in lessons:
        try:
            load_lesson(root, lesson)
        except InvalidLesson as error:
            raise PublishError(str(error)) from None


def _check_target(root: Path, target: Path) -> None:
    if target == root or root in target.parents or target in root.parents:
        raise PublishError(f"{target} is the course repository or inside it (or holds it): publish into a folder "
                           "of its own, the students' repository")
    if target.exists() and not target.is_dir():
        raise PublishError(f"{target} exists and is not a folder")


def publish(root: Path, target: Path, *, check: bool = True) -> list[Path]:
    """Write the student tree of the course at ``root`` into ``target``; return the files written.

    ``check=False`` skips the final read-back for secret lines (for tests that read the tree themselves);
    ``course publish`` always checks.
    """
    root, target = Path(root).resolve(), Path(target).resolve()
    _check_target(root, target)
    lessons = find_lessons(root)
    _check_release(root, lessons)
    target.mkdir(parents=True, exist_ok=True)
    for folder in MANAGED:
        shutil.rmtree(target / folder, ignore_errors=True)
    shutil.copytree(root / RELEASE_DIR, target / RELEASE_DIR,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    shutil.copytree(root / STUDENT_PACKAGE, target / STUDENT_PACKAGE,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    student = _student_project(root)
    packages = {_pip_name(r) for r in student["dependencies"] + student["lab"]}
    project = student["project"]
    files = {
        "README.md": _render("README.md", binder_badge=links.binder_badge_markdown(),
                             lesson_rows=_lesson_rows(root, lessons)),
        "pyproject.toml": _render("pyproject.toml", version=project["version"], description=project["description"],
                                  requires_python=project["requires-python"],
                                  license=project.get("license", {}).get("text", ""),
                                  dependencies=_quoted(student["dependencies"]), lab=_quoted(student["lab"]),
                                  repository=links.REPOSITORY_URL),
        "postBuild": _render("postBuild", lab_overrides=json.dumps(LAB_OVERRIDES, indent=2)),
        "environment.yml": _student_environment(root, packages),
        "constraints.txt": _student_constraints(root, packages),
        ".gitignore": (TEMPLATES / "gitignore").read_text(encoding="utf-8"),
    }
    for name, text in files.items():
        (target / name).write_text(text, encoding="utf-8")
    (target / "postBuild").chmod(0o755)
    leaks = find_leaks(target, secret_lines(root)) if check else []
    if leaks:
        for folder in MANAGED:
            shutil.rmtree(target / folder, ignore_errors=True)
        shown = "; ".join(f"{path}: {line[:60]!r}" for path, line in leaks[:3])
        raise PublishError(f"the student tree would hold {len(leaks)} answer or hidden-test line(s) ({shown}); "
                           "nothing was published: fix the release (make notebooks) or course_utils")
    return sorted(p for p in target.rglob("*") if p.is_file() and ".git" not in p.relative_to(target).parts)
