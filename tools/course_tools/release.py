"""Build the student release: ``solutions/NN_slug`` -> ``notebooks/NN_slug`` through nbgrader.

``solutions/`` is the single source of truth. This module runs the stock
``nbgrader generate_assignment`` from the course root. nbgrader itself is configured
(``nbgrader_config.py``) with :class:`StudentRelease` as its last step, which adds the
student-only cells (Colab badge and set-up, quiz widget: :mod:`course_tools.student_cells`) and
normalises the notebook, so a stock ``nbgrader generate_assignment LESSON --force`` writes the same
notebook as ``make notebooks`` (which then only fixes the file's final newline). The release also
registers the lesson in the course gradebook, so stock ``nbgrader autograde``, ``generate_feedback``,
``export`` and formgrader work on a fresh clone.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from nbconvert.exporters.exporter import ResourcesDict
from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from tqdm.auto import tqdm

from course_tools.notebooks import NotebookError, dumps_clean, normalize, read_notebook, solution_markers, write_clean
from course_tools.student_cells import QuizFormatError, add_student_cells

SOURCE_DIR = "solutions"
RELEASE_DIR = "notebooks"
LESSON_NAME = re.compile(r"^\d{2}_[a-z0-9_]+$")


class ReleaseError(RuntimeError):
    """The release could not be built; the message says which lesson and why."""


def find_lessons(root: Path) -> list[str]:
    """Return the lesson folders under ``solutions/`` (``NN_slug``), in course order."""
    source = root / SOURCE_DIR
    if not source.is_dir():
        raise ReleaseError(f"{root} has no {SOURCE_DIR}/ folder: run this from the course root")
    return sorted(p.name for p in source.iterdir() if p.is_dir() and LESSON_NAME.match(p.name))


def lesson_notebook(root: Path, lesson: str, folder: str = SOURCE_DIR) -> Path:
    """Return the path of a lesson's notebook, ``<folder>/NN_slug/NN_slug.ipynb``."""
    return root / folder / lesson / f"{lesson}.ipynb"


def _check_lesson(root: Path, lesson: str) -> None:
    if not LESSON_NAME.match(lesson):
        raise ReleaseError(f"{lesson!r} is not a lesson name; lessons look like 01_dataloader_batching")
    if not lesson_notebook(root, lesson).is_file():
        raise ReleaseError(f"lesson {lesson!r} has no notebook at {lesson_notebook(root, lesson)}")


def nbgrader_env() -> dict[str, str]:
    """The environment for nbgrader subprocesses: this interpreter's bin/ first (nbgrader calls alembic)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


class StudentRelease(NbGraderPreprocessor):
    """nbgrader's last step of ``generate_assignment``: the student-only cells added, the notebook normalised.

    The lesson's source notebook is read from where nbgrader read it, so cell ids follow the source.
    """

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        lesson = resources["nbgrader"]["assignment"]
        source_path = Path(resources["metadata"]["path"]) / f"{resources['nbgrader']['notebook']}.ipynb"
        if source_path.name != f"{lesson}.ipynb":
            return normalize(nb), resources  # another notebook of the folder: cleaned only
        source = read_notebook(source_path)
        normalize(nb, ids_from=[cell.id for cell in source.cells])
        try:
            student = add_student_cells(nb, source, lesson)
        except (QuizFormatError, SyntaxError, ValueError) as error:
            raise ReleaseError(f"{lesson}: cannot add the student cells: {error}") from None
        return normalize(student), resources


def _generate(root: Path, lesson: str) -> None:
    """Run the stock ``nbgrader generate_assignment`` (configured with :class:`StudentRelease`) into the gradebook."""
    command = [sys.executable, "-m", "nbgrader", "generate_assignment", lesson, "--force"]
    result = subprocess.run(command, cwd=root, env=nbgrader_env(), capture_output=True, text=True)
    if result.returncode != 0 and "because there are submissions associated with it" in result.stdout + result.stderr:
        # The gradebook keeps a graded lesson's notebooks while it has submissions: write the release
        # without touching it (its grade cells are registered again by `course grade`).
        with tempfile.TemporaryDirectory(prefix="course-release-") as scratch:
            result = subprocess.run(command + [f"--CourseDirectory.db_url=sqlite:///{Path(scratch) / 'gradebook.db'}"],
                                    cwd=root, env=nbgrader_env(), capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise ReleaseError(f"nbgrader generate_assignment {lesson} failed:\n{tail}")


def _clean_text(path: Path) -> str:
    return dumps_clean(normalize(read_notebook(path)))


def stale_release(root: Path, lesson: str, generated: Path | None = None) -> str:
    """Why the committed release of ``lesson`` is not what ``make notebooks`` writes ("" when it is).

    Compared by content with ``generated`` (a release nbgrader just built from ``solutions/`` with
    the course's configuration; built here in a scratch folder when not given), whoever wrote the
    committed file: a hand edit, an old release, or a stock ``generate_assignment`` run with
    another configuration are all found.
    """
    committed = lesson_notebook(root, lesson, RELEASE_DIR)
    if not committed.is_file():
        return f"{committed} is missing"
    if generated is None:
        with tempfile.TemporaryDirectory(prefix="course-release-check-") as scratch:
            command = [sys.executable, "-m", "nbgrader", "generate_assignment", lesson, "--force",
                       f"--CourseDirectory.release_directory={scratch}",
                       f"--CourseDirectory.db_url=sqlite:///{Path(scratch) / 'gradebook.db'}"]
            result = subprocess.run(command, cwd=root, env=nbgrader_env(), capture_output=True, text=True)
            if result.returncode != 0:
                raise ReleaseError(f"nbgrader generate_assignment {lesson} failed:\n{(result.stdout + result.stderr)[-2000:]}")
            return stale_release(root, lesson, Path(scratch) / lesson / f"{lesson}.ipynb")
    if _clean_text(committed) != _clean_text(generated):
        return (f"notebooks/{lesson} differs from what solutions/{lesson} releases to (edited by hand, or "
                "released by an older version or another configuration)")
    return ""


def release_lesson(root: Path, lesson: str) -> list[Path]:
    """Clean the lesson's source, generate its student version (registering it in the gradebook); return the files."""
    _check_lesson(root, lesson)
    source = lesson_notebook(root, lesson)
    write_clean(source)
    _generate(root, lesson)
    released = sorted((root / RELEASE_DIR / lesson).glob("*.ipynb"))
    for path in released:
        write_clean(path)  # nbgrader's writer leaves out the final newline the committed files have
    leaks = solution_markers(released)
    if leaks:
        raise ReleaseError("answers leaked into the student release:\n" + "\n".join(leaks))
    return released


def release(root: Path, lessons: list[str] | None = None) -> list[Path]:
    """Release the given lessons (all of them when ``lessons`` is empty)."""
    root = Path(root).resolve()
    if not (root / "nbgrader_config.py").is_file():
        raise ReleaseError(f"{root} has no nbgrader_config.py: run this from the course root")
    chosen = lessons or find_lessons(root)
    if not chosen:
        raise ReleaseError(f"no lessons found under {root / SOURCE_DIR}")
    written: list[Path] = []
    for lesson in tqdm(chosen, desc="course release", unit="lesson", disable=len(chosen) < 2, leave=False):
        try:
            written.extend(release_lesson(root, lesson))
        except NotebookError as error:
            raise ReleaseError(str(error)) from None
    return written
