"""Repairing submissions: stripped metadata, reordered, added, deleted and renamed cells; bad files."""

import zipfile

import nbformat
import pytest

from course_tools.grade.collect import find_students, unpack_zip
from course_tools.notebooks import read_notebook
from course_tools.repair import InvalidSubmission, parse_submission, repair
from tests.helpers import ROOT, fill_answers

LESSON = "01_dataloader_batching"


@pytest.fixture(scope="module")
def lesson():
    release = read_notebook(ROOT / "notebooks" / LESSON / f"{LESSON}.ipynb")
    source = read_notebook(ROOT / "solutions" / LESSON / f"{LESSON}.ipynb")
    return release, source, fill_answers(release, source)


def answers_of(notebook):
    return {c.metadata.nbgrader.grade_id: c.source for c in notebook.cells
            if c.get("metadata", {}).get("nbgrader", {}).get("solution")}


def fixed(submitted, release, source, name=f"{LESSON}.ipynb"):
    return repair(submitted, release, submitted_name=name, release_name=f"{LESSON}.ipynb", source=source)


def test_an_intact_notebook_needs_no_repair(lesson):
    release, source, answered = lesson
    result = fixed(answered, release, source)
    assert result.notes == [] and answers_of(result.notebook) == answers_of(answered)


def test_stripped_metadata_is_restored_with_the_answers(lesson):
    release, source, answered = lesson
    stripped = nbformat.from_dict(answered)
    for cell in stripped.cells:
        cell.metadata = {}
    result = fixed(stripped, release, source)
    assert answers_of(result.notebook) == answers_of(answered)
    assert [c.metadata for c in result.notebook.cells] == [c.metadata for c in release.cells]
    assert any("metadata restored" in note for note in result.notes)


def test_reordered_added_and_deleted_cells(lesson):
    release, source, answered = lesson
    shuffled = nbformat.from_dict(answered)
    cells = shuffled.cells
    first = next(i for i, c in enumerate(cells) if c.get("id") == "ex1-dataset")
    third = next(i for i, c in enumerate(cells) if c.get("id") == "ex3-batch-sizes")
    cells[first], cells[third] = cells[third], cells[first]
    cells.insert(first + 1, nbformat.v4.new_code_cell("def helper():\n    return 42"))
    shuffled.cells = [c for c in cells if c.get("id") not in ("ex2-tests", "summary")]
    result = fixed(shuffled, release, source)
    assert answers_of(result.notebook) == answers_of(answered)
    assert "def helper():\n    return 42" in [c.source for c in result.notebook.cells]
    assert {"ex2-tests", "summary"} <= {c.get("id") for c in result.notebook.cells}
    notes = " ".join(result.notes)
    assert "reordered" in notes and "1 added code cell(s) kept" in notes and "restored from the release" in notes


def test_renamed_notebooks_are_noted(lesson):
    release, source, answered = lesson
    assert fixed(answered, release, source, name="Copy of lesson.ipynb").notes == ["renamed from Copy of lesson.ipynb"]


@pytest.mark.parametrize(("text", "words"), [
    ('{"cells": [', "not valid JSON"),
    ("[1, 2, 3]", "not a notebook"),
    ('{"cells": "none"}', "not a notebook"),
    ('{"cells": [{"cell_type": "code"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', "without source"),
])
def test_unreadable_files_are_named(text, words):
    with pytest.raises(InvalidSubmission, match=words):
        parse_submission(text)


def test_zip_collect_file_names(tmp_path, lesson):
    _, _, answered = lesson
    archive = tmp_path / "downloads.zip"
    text = nbformat.writes(answered)
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr(f"alice_{LESSON}.ipynb", text)
        bundle.writestr("bob/homework.ipynb", text)
        bundle.writestr("readme.txt", "not a notebook")
        bundle.writestr("__MACOSX/._alice.ipynb", "junk")
    assert unpack_zip(tmp_path, LESSON, archive) == ["alice", "bob"]
    assert find_students(tmp_path, LESSON) == ["alice", "bob"]
    assert (tmp_path / "submitted" / "alice" / LESSON / f"alice_{LESSON}.ipynb").read_text() == text
    assert unpack_zip(tmp_path, LESSON, archive) == [], "the same upload twice changes nothing"
