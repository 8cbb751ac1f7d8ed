"""Match a submitted notebook to its release notebook and rebuild it in the release's shape.

Colab and VS Code drop nbgrader's cell metadata, students reorder, add and delete cells, and rename
files; stock nbgrader then scores 0 or finds nothing. Here every cell of the release comes back in
its place and with its metadata; each exercise cell takes the student's answer, found by its grade
id when the metadata survived and otherwise by resemblance to the exercise's starting code; cells
the student added stay after the answer they followed. Every repair is listed for the grades file.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field

import nbformat
from nbformat import NotebookNode
from nbgrader.utils import is_solution as _is_solution

MIN_RESEMBLANCE = 0.35  # below this a cell is not taken for an exercise's answer


class InvalidSubmission(ValueError):
    """The file cannot be read as a notebook at all (truncated, not JSON, not a notebook)."""


@dataclass
class Repair:
    """The rebuilt notebook and what had to be done to it."""

    notebook: NotebookNode
    notes: list[str] = field(default_factory=list)


def parse_submission(text: str) -> NotebookNode:
    """Read a submitted file's text as a notebook, raising :class:`InvalidSubmission` with the reason."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidSubmission(f"not valid JSON (truncated file?): {error.msg} at line {error.lineno}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise InvalidSubmission("JSON without a list of cells: not a notebook")
    if not all(isinstance(cell, dict) and "source" in cell and "cell_type" in cell for cell in data["cells"]):
        raise InvalidSubmission("a cell without source or type: not a notebook")
    try:
        notebook = nbformat.reads(text, as_version=4)
    except Exception as error:  # noqa: BLE001 - nbformat raises many kinds for odd files
        raise InvalidSubmission(f"not a readable notebook: {type(error).__name__}: {error}") from None
    return notebook


def _grade_id(cell: NotebookNode) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _resemblance(first: str, second: str) -> float:
    return difflib.SequenceMatcher(None, first, second, autojunk=False).ratio()


def _match_answers(release: NotebookNode, cells: list[NotebookNode],
                   answers: dict[str, str]) -> tuple[dict[str, int], list[str]]:
    """Map each exercise's grade id to the index of the submitted cell holding its answer.

    ``answers`` (grade id -> the instructor's answer) helps recognise cells whose starting code was
    replaced entirely, such as a quiz's answer dictionary.
    """
    exercises = [cell for cell in release.cells if _is_solution(cell)]
    by_id = {_grade_id(cell): index for index, cell in enumerate(cells) if _grade_id(cell)}
    matched: dict[str, int] = {}
    notes: list[str] = []
    for exercise in exercises:
        grade_id = _grade_id(exercise)
        if grade_id in by_id and cells[by_id[grade_id]].cell_type == exercise.cell_type:
            matched[grade_id] = by_id[grade_id]
    unmatched = [e for e in exercises if _grade_id(e) not in matched]
    taken = set(matched.values())
    release_sources = {c.source for c in release.cells if not _is_solution(c)}
    candidates = [i for i, c in enumerate(cells) if i not in taken and c.source not in release_sources]
    pairs = sorted(((max(_resemblance(e.source, cells[i].source), _resemblance(answers.get(_grade_id(e), ""), cells[i].source)),
                     _grade_id(e), i)
                    for e in unmatched for i in candidates if cells[i].cell_type == e.cell_type), reverse=True)
    for score, grade_id, index in pairs:
        if score >= MIN_RESEMBLANCE and grade_id not in matched and index not in taken:
            matched[grade_id] = index
            taken.add(index)
    if unmatched:
        found = [_grade_id(e) for e in unmatched if _grade_id(e) in matched]
        if found:
            notes.append(f"metadata restored for {len(found)} exercise cell(s)")
    missing = [_grade_id(e) for e in exercises if _grade_id(e) not in matched]
    if missing:
        notes.append(f"no answer found for {', '.join(missing)} (starting code used)")
    order = [matched[_grade_id(e)] for e in exercises if _grade_id(e) in matched]
    if order != sorted(order):
        notes.append("exercise cells were reordered")
    return matched, notes


def _added_cells(release: NotebookNode, cells: list[NotebookNode], matched: dict[str, int]) -> dict[int, list[NotebookNode]]:
    """Student-added code cells, keyed by the index of the submitted answer cell they followed (-1: before any)."""
    release_sources = {cell.source for cell in release.cells}
    answer_at = set(matched.values())
    added: dict[int, list[NotebookNode]] = {}
    anchor = -1
    for index, cell in enumerate(cells):
        if index in answer_at:
            anchor = index
        elif cell.cell_type == "code" and cell.source.strip() and cell.source not in release_sources \
                and _grade_id(cell) is None and max((_resemblance(cell.source, r) for r in release_sources), default=0) < 0.9:
            added.setdefault(anchor, []).append(cell)
    return added


def repair(submitted: NotebookNode, release: NotebookNode, *, submitted_name: str, release_name: str,
           source: NotebookNode | None = None) -> Repair:
    """Rebuild ``submitted`` in the shape of ``release`` (``source``: the instructor's version); see above."""
    cells = list(submitted.cells)
    answers = {_grade_id(c): c.source for c in (source.cells if source else []) if _is_solution(c)}
    matched, notes = _match_answers(release, cells, answers)
    added = _added_cells(release, cells, matched)
    rebuilt = nbformat.from_dict(release)
    rebuilt.cells = []
    for cell in added.get(-1, []):
        rebuilt.cells.append(_plain_code(cell))
    for cell in release.cells:
        copy = nbformat.from_dict(cell)
        grade_id = _grade_id(cell)
        if _is_solution(cell) and grade_id in matched:
            copy.source = cells[matched[grade_id]].source
        rebuilt.cells.append(copy)
        if _is_solution(cell) and grade_id in matched:
            rebuilt.cells.extend(_plain_code(extra) for extra in added.get(matched[grade_id], []))
    kept = sum(len(v) for v in added.values())
    if kept:
        notes.append(f"{kept} added code cell(s) kept")
    present = {c.source for c in cells}
    restored = sum(1 for c in release.cells if not _is_solution(c) and c.source not in present)
    if restored:
        notes.append(f"{restored} deleted or edited cell(s) restored from the release")
    if submitted_name != release_name:
        notes.append(f"renamed from {submitted_name}")
    return Repair(rebuilt, notes)


def _plain_code(cell: NotebookNode) -> NotebookNode:
    code = nbformat.v4.new_code_cell(cell.source)
    code.metadata = {}
    return code
