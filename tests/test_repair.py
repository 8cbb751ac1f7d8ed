"""Repairing submissions: stripped metadata, reordered, added, deleted and renamed cells; bad files."""

import json
import zipfile

import nbformat
import pytest

import course_tools.repair as repair_module
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
    assert unpack_zip(tmp_path, LESSON, archive).students == ["alice", "bob"]
    assert find_students(tmp_path, LESSON) == ["alice", "bob"]
    assert (tmp_path / "submitted" / "alice" / LESSON / f"alice_{LESSON}.ipynb").read_text() == text
    assert unpack_zip(tmp_path, LESSON, archive).students == [], "the same upload twice changes nothing"


# --- hostile and malformed files: a reason, never a crash ------------------------------------------

def raw_with(notebook, grade_id, key, value) -> str:
    data = json.loads(nbformat.writes(notebook))
    for cell in data["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            cell[key] = value
    return json.dumps(data)


@pytest.mark.parametrize(("value", "words"), [(42, "source is int"), ({"a": 1}, "source is dict"),
                                              ([1, 2], "source is list"), (None, "source is NoneType")])
def test_a_source_that_is_not_text_is_invalid(lesson, value, words):
    _, _, answered = lesson
    with pytest.raises(InvalidSubmission, match=words):
        parse_submission(raw_with(answered, "ex1-dataset", "source", value))


@pytest.mark.parametrize("cell", [42, "text", [], {"cell_type": "weird", "source": ""}])
def test_cells_that_are_not_cells_are_invalid(lesson, cell):
    _, _, answered = lesson
    data = json.loads(nbformat.writes(answered))
    data["cells"].insert(3, cell)
    with pytest.raises(InvalidSubmission, match="cell 4"):
        parse_submission(json.dumps(data))


@pytest.mark.parametrize("metadata", [{"nbgrader": "x"}, {"nbgrader": {"grade_id": 7, "solution": True}},
                                      {"nbgrader": {"solution": "yes"}}, {"nbgrader": {"points": "1e9"}},
                                      {"nbgrader": {"points": 1e12}}, "not a dict", {"tags": "skip-execution"}])
def test_odd_metadata_is_dropped_and_the_release_metadata_used(lesson, metadata):
    release, source, answered = lesson
    for grade_id in ("ex1-tests", "ex1-dataset"):
        notebook = parse_submission(raw_with(answered, grade_id, "metadata", metadata))
        result = fixed(notebook, release, source)
        assert answers_of(result.notebook) == answers_of(answered)
        assert [c.metadata for c in result.notebook.cells] == [c.metadata for c in release.cells]


def test_repair_checks_cells_built_in_memory_and_leaves_them_alone(lesson):
    release, source, answered = lesson
    broken = nbformat.from_dict(answered)
    broken.cells[2]["source"] = 3.5
    with pytest.raises(InvalidSubmission, match="cell 3"):
        fixed(broken, release, source)
    odd = nbformat.from_dict(answered)
    odd.cells[2].metadata = {"nbgrader": "x"}
    fixed(odd, release, source)
    assert odd.cells[2].metadata == {"nbgrader": "x"}, "the submitted notebook is not changed in place"


def test_an_8_mb_notebook_of_added_code_is_refused_with_a_reason(lesson):
    release, source, answered = lesson
    notebook = nbformat.from_dict(answered)
    notebook.cells.insert(5, nbformat.v4.new_code_cell("x = 1  # padding\n" * (8 * 2**20 // 17)))
    with pytest.raises(InvalidSubmission, match="M characters of source; at most 1 M"):
        parse_submission(nbformat.writes(notebook))
    many = nbformat.from_dict(answered)
    many.cells[5:5] = [nbformat.v4.new_code_cell(f"y{n} = {n}\n" * 600) for n in range(1000)]
    with pytest.raises(InvalidSubmission, match="of source"):
        parse_submission(nbformat.writes(many))


def test_too_many_cells_are_refused(lesson):
    _, _, answered = lesson
    data = json.loads(nbformat.writes(answered))
    data["cells"] += [{"cell_type": "code", "source": "", "metadata": {}, "outputs": [], "execution_count": None}] * 2100
    with pytest.raises(InvalidSubmission, match="cells; at most 2000"):
        parse_submission(json.dumps(data))


def test_large_outputs_are_not_source(lesson):
    release, source, answered = lesson
    notebook = nbformat.from_dict(answered)
    notebook.cells[-1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * (6 * 2**20))] \
        if notebook.cells[-1].cell_type == "code" else []
    notebook.cells.append(nbformat.v4.new_code_cell("plot()", outputs=[
        nbformat.v4.new_output("display_data", data={"image/png": "A" * (6 * 2**20)})]))
    result = fixed(parse_submission(nbformat.writes(notebook)), release, source)
    assert answers_of(result.notebook) == answers_of(answered)


def test_matching_work_grows_linearly_with_the_cells(lesson, monkeypatch):
    """Resemblance is computed a bounded number of times per submitted cell, not per pair of them."""
    release, source, answered = lesson
    calls = []
    original = repair_module._Tokens.resemblance
    monkeypatch.setattr(repair_module._Tokens, "resemblance", lambda self, other: calls.append(1) or original(self, other))
    answers = [c.source for c in source.cells if c.get("metadata", {}).get("nbgrader", {}).get("solution")]
    counts = {}
    for copies in (100, 400):
        notebook = nbformat.from_dict(answered)
        for cell in notebook.cells:
            cell.metadata = {}
        notebook.cells[5:5] = [nbformat.v4.new_code_cell(answers[n % len(answers)] + f"\n# copy {n}") for n in range(copies)]
        calls.clear()
        result = fixed(parse_submission(nbformat.writes(notebook)), release, source)
        assert answers_of(result.notebook).keys() == answers_of(answered).keys()
        counts[copies] = len(calls)
    per_cell_bound = 2 * len(answers) + len(release.cells)
    assert counts[400] <= 400 * per_cell_bound + 200
    assert counts[400] <= 4.5 * counts[100], "work grows with the cells, not with their square"
