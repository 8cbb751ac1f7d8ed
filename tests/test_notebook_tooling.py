"""Notebook cleaning: no outputs, no counts, stable ids, byte-identical rewrites, clear errors."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course_tools.notebooks import (
    NotebookError, dirty_reasons, dumps_clean, normalize, read_notebook, solution_markers, write_clean,
)


def executed_notebook():
    code = new_code_cell("print(1)", execution_count=4, metadata={"scrolled": True, "tags": ["keep"],
                                                                  "execution": {"iopub.status.busy": "x"}})
    code.outputs = [new_output("stream", name="stdout", text="1\n")]
    graded = new_code_cell("assert True", metadata={"nbgrader": {"grade": True, "grade_id": "ex1-tests",
                                                                 "points": 1, "solution": False, "locked": True,
                                                                 "schema_version": 3, "task": False}})
    notebook = new_notebook(cells=[new_markdown_cell("# Title"), code, graded],
                            metadata={"language_info": {"name": "python", "version": "3.11.7"}, "widgets": {}})
    for cell in notebook.cells:
        del cell["id"]
    return notebook


def test_normalize_strips_outputs_counts_and_volatile_metadata():
    notebook = normalize(executed_notebook())
    code = notebook.cells[1]
    assert code.outputs == [] and code.execution_count is None
    assert dict(code.metadata) == {"tags": ["keep"]}
    assert notebook.metadata == {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                                "name": "python3"}, "language_info": {"name": "python"}}


def test_ids_are_stable_unique_and_grade_cells_use_their_grade_id():
    first, second = normalize(executed_notebook()), normalize(executed_notebook())
    ids = [cell.id for cell in first.cells]
    assert ids == [cell.id for cell in second.cells]
    assert len(set(ids)) == 3 and ids[2] == "ex1-tests"


def test_existing_valid_ids_are_kept_and_duplicates_replaced():
    notebook = executed_notebook()
    notebook.cells[0]["id"] = "intro"
    notebook.cells[1]["id"] = "intro"
    ids = [cell.id for cell in normalize(notebook).cells]
    assert ids[0] == "intro" and ids[1] != "intro"


def test_write_clean_is_idempotent_and_byte_identical(tmp_path):
    path = tmp_path / "lesson.ipynb"
    path.write_text(nbformat.writes(executed_notebook()))
    assert write_clean(path) is True
    cleaned = path.read_bytes()
    assert write_clean(path) is False
    assert path.read_bytes() == cleaned and cleaned.endswith(b"\n")
    assert dirty_reasons(path) == []


def test_dirty_reasons_names_outputs(tmp_path):
    path = tmp_path / "lesson.ipynb"
    path.write_text(nbformat.writes(executed_notebook()))
    reasons = dirty_reasons(path)
    assert any("outputs or an execution count" in reason for reason in reasons)


def test_ids_can_be_copied_from_a_source():
    notebook = normalize(executed_notebook(), ids_from=["a", "b", "c"])
    assert [cell.id for cell in notebook.cells] == ["a", "b", "c"]
    with pytest.raises(NotebookError, match="the source has 2 cells"):
        normalize(executed_notebook(), ids_from=["a", "b"])


@pytest.mark.parametrize(("content", "words"), [
    ('{"cells": [', "not valid notebook JSON"),
    ("not json at all", "not valid notebook JSON"),
    ('{"nbformat": 4}', "cannot be read as a notebook"),
])
def test_malformed_notebooks_fail_with_the_file_name_and_are_not_touched(tmp_path, content, words):
    path = tmp_path / "broken.ipynb"
    path.write_text(content)
    with pytest.raises(NotebookError, match=words) as info:
        write_clean(path)
    assert "broken.ipynb" in str(info.value)
    assert path.read_text() == content, "a failed clean must not lose the file"


def test_missing_notebook():
    with pytest.raises(NotebookError, match="no such notebook"):
        read_notebook("/nonexistent/lesson.ipynb")


def test_solution_markers_are_found(tmp_path):
    leaky = tmp_path / "leaky.ipynb"
    leaky.write_text(dumps_clean(normalize(new_notebook(cells=[new_code_cell("### BEGIN SOLUTION\nx = 1")]))))
    assert solution_markers([leaky]) == [f"{leaky}: ### BEGIN SOLUTION"]
