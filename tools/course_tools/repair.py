"""Match a submitted notebook to its release notebook and rebuild it in the release's shape.

Colab and VS Code drop nbgrader's cell metadata, students reorder, add and delete cells, and rename
files; stock nbgrader then scores 0 or finds nothing. Here every cell of the release comes back in
its place and with its metadata; each exercise cell takes the student's answer, found by its grade
id when the metadata survived and otherwise by resemblance to the exercise's starting code; cells
the student added stay after the answer they followed. Every repair is listed for the grades file.

The submission is hostile input, so this runs in time linear in its size: cells are found by
grade id and by exact source through dictionaries, and resemblance is the Dice coefficient of
tokens (names, numbers, punctuation marks) (``2 * shared / total``, as ``difflib``'s ratio but on token bags),
computed only between cells whose sizes allow the threshold. A notebook over :data:`MAX_CELLS`
cells or :data:`MAX_SOURCE_CHARS` characters of source, or with a malformed cell (a source that is
not text, a cell of no known type) raises :class:`InvalidSubmission` with the
reason; odd metadata is dropped (the release's is used anyway); nothing else is raised for a bad file.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.corpus.words import generate_corpus_id as random_cell_id

from course_tools.grade.sanitize import without_surrogates

MIN_RESEMBLANCE = 0.35  # below this a cell is not taken for an exercise's answer
SAME_AS_RELEASE = 0.9   # an added cell this close to a release cell is a copy of it, not the student's own
MAX_CELLS = 2000
MAX_SOURCE_CHARS = 2**20  # a lesson's release holds about 50 k; more is not a plausible answer
MAX_FILE_CHARS = 32 * 2**20  # outputs (plots) may make a notebook large; its source may not be
MAX_COMPARED_CHARS = 64 * 1024  # resemblance looks at a cell's first characters only
CELL_TYPES = ("code", "markdown", "raw")
_TOKEN = re.compile(r"\w+|[^\w\s]")  # names, numbers and single punctuation marks


class InvalidSubmission(ValueError):
    """The file cannot be graded as a notebook (unreadable, malformed, too large); the message says why."""


@dataclass
class Repair:
    """The rebuilt notebook and what had to be done to it."""

    notebook: NotebookNode
    notes: list[str] = field(default_factory=list)


# --- reading -------------------------------------------------------------------------------------

def _source_text(source: Any, where: str) -> str:
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        return "".join(source)
    raise InvalidSubmission(f"{where}: its source is {type(source).__name__}, not text")


def _check_cell(cell: Any, index: int) -> None:
    """Raise :class:`InvalidSubmission` for a cell that cannot be graded; make odd metadata harmless.

    A source that is not text, or a cell of no known type, cannot be graded. Metadata that is not
    what nbgrader writes (``"nbgrader": "x"``, a grade id that is a number, tags that are not a
    list...) is dropped: the cell is then matched like one whose metadata Colab stripped, and the
    repaired notebook takes the release's metadata anyway.
    """
    where = f"cell {index + 1}"
    if not isinstance(cell, dict):
        raise InvalidSubmission(f"{where} is {type(cell).__name__}, not a cell")
    if "source" not in cell or "cell_type" not in cell:
        raise InvalidSubmission(f"{where}: a cell without source or type: not a notebook")
    if cell["cell_type"] not in CELL_TYPES:
        raise InvalidSubmission(f"{where}: unknown cell type {str(cell['cell_type'])[:40]!r}")
    _source_text(cell["source"], where)
    if "id" in cell and not isinstance(cell["id"], str):
        del cell["id"]
    if not isinstance(cell.get("metadata", {}), dict):
        cell["metadata"] = {}
    metadata = cell.setdefault("metadata", {})
    tags = metadata.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        del metadata["tags"]
    if "nbgrader" in metadata and not _plausible_nbgrader(metadata["nbgrader"]):
        del metadata["nbgrader"]
    if cell["cell_type"] == "code" and not isinstance(cell.get("outputs", []), list):
        cell["outputs"] = []


def _plausible_nbgrader(grader: Any) -> bool:
    """Whether a cell's nbgrader metadata has the types nbgrader writes."""
    if not isinstance(grader, dict):
        return False
    if "grade_id" in grader and not isinstance(grader["grade_id"], str):
        return False
    if any(flag in grader and not isinstance(grader[flag], bool) for flag in ("solution", "grade", "locked", "task")):
        return False
    points = grader.get("points", 0)
    return not isinstance(points, bool) and isinstance(points, (int, float)) and 0 <= points < 1e6


def parse_submission(text: str) -> NotebookNode:
    """Read a submitted file's text as a notebook, raising :class:`InvalidSubmission` with the reason."""
    if len(text) > MAX_FILE_CHARS:
        raise InvalidSubmission(f"the file has {len(text)} characters; at most {MAX_FILE_CHARS} are graded")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidSubmission(f"not valid JSON (truncated file?): {error.msg} at line {error.lineno}") from None
    except RecursionError:
        raise InvalidSubmission("JSON nested too deeply: not a notebook") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise InvalidSubmission("JSON without a list of cells: not a notebook")
    data = without_surrogates(data)  # "\\ud800" in the JSON: U+FFFD, or writing the notebook would fail
    cells = data["cells"]
    if len(cells) > MAX_CELLS:
        raise InvalidSubmission(f"the notebook has {len(cells)} cells; at most {MAX_CELLS} are graded")
    for index, cell in enumerate(cells):
        _check_cell(cell, index)
    total = sum(len(_source_text(c["source"], "")) for c in cells)
    if total > MAX_SOURCE_CHARS:
        raise InvalidSubmission(f"the notebook holds {total / 2**20:.1f} M characters of source; "
                                f"at most {MAX_SOURCE_CHARS // 2**20} M are graded")
    if not isinstance(data.get("metadata", {}), dict):
        data["metadata"] = {}
    try:
        notebook = nbformat.reads(json.dumps(data), as_version=4)
    except Exception as error:  # noqa: BLE001 - nbformat raises many kinds for odd files
        raise InvalidSubmission(f"not a readable notebook: {type(error).__name__}: {str(error)[:200]}") from None
    for index, cell in enumerate(notebook.cells):  # what nbformat made of it (an old version, converted)
        _check_cell(cell, index)
        cell.source = _source_text(cell.source, f"cell {index + 1}")
    return notebook


# --- matching, in linear time ------------------------------------------------------------------

def _nbgrader(cell: NotebookNode) -> dict:
    grader = cell.get("metadata", {}).get("nbgrader", {})
    return grader if isinstance(grader, dict) else {}


def _grade_id(cell: NotebookNode) -> str | None:
    grade_id = _nbgrader(cell).get("grade_id")
    return grade_id if isinstance(grade_id, str) else None


def _is_solution(cell: NotebookNode) -> bool:
    return _nbgrader(cell).get("solution") is True


class _Tokens:
    """A cell's source as a bag of tokens (computed once, in linear time)."""

    __slots__ = ("bag", "size")

    def __init__(self, source: str) -> None:
        self.bag = Counter(_TOKEN.findall(source, 0, MAX_COMPARED_CHARS))
        self.size = sum(self.bag.values())

    def resemblance(self, other: _Tokens) -> float:
        """Dice coefficient of the two bags (1: same tokens, 0: none shared)."""
        total = self.size + other.size
        if total == 0:
            return 1.0
        small, large = (self.bag, other.bag) if len(self.bag) <= len(other.bag) else (other.bag, self.bag)
        shared = sum(min(count, large[token]) for token, count in small.items() if token in large)
        return 2 * shared / total

    def could_reach(self, other: _Tokens, threshold: float) -> bool:
        """Whether the sizes alone allow a resemblance of ``threshold`` (2 * min / total bounds it)."""
        total = self.size + other.size
        return total == 0 or 2 * min(self.size, other.size) / total >= threshold


def _match_answers(release: NotebookNode, cells: list[NotebookNode], tokens: list[_Tokens],
                   answers: dict[str, str]) -> tuple[dict[str, int], list[str]]:
    """Map each exercise's grade id to the index of the submitted cell holding its answer.

    ``answers`` (grade id -> the instructor's answer) helps recognise cells whose starting code was
    replaced entirely, such as a quiz's answer dictionary.
    """
    exercises = [cell for cell in release.cells if _is_solution(cell)]
    by_id: dict[str, int] = {}
    for index, cell in enumerate(cells):
        grade_id = _grade_id(cell)
        if grade_id is not None and grade_id not in by_id:  # a copied exercise cell: the first one counts
            by_id[grade_id] = index
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
    pairs = []
    for exercise in unmatched:
        grade_id = _grade_id(exercise)
        references = [_Tokens(exercise.source)] + ([_Tokens(answers[grade_id])] if answers.get(grade_id) else [])
        for index in candidates:
            if cells[index].cell_type != exercise.cell_type:
                continue
            score = max((r.resemblance(tokens[index]) for r in references if r.could_reach(tokens[index], MIN_RESEMBLANCE)),
                        default=0.0)
            if score >= MIN_RESEMBLANCE:
                pairs.append((score, -index, grade_id, index))
    for _, _, grade_id, index in sorted(pairs, reverse=True):
        if grade_id not in matched and index not in taken:
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


def _added_cells(release: NotebookNode, cells: list[NotebookNode], tokens: list[_Tokens],
                 matched: dict[str, int]) -> dict[int, list[NotebookNode]]:
    """Student-added code cells, keyed by the index of the submitted answer cell they followed (-1: before any)."""
    release_sources = {cell.source for cell in release.cells}
    release_tokens = [_Tokens(source) for source in release_sources]
    answer_at = set(matched.values())
    added: dict[int, list[NotebookNode]] = {}
    anchor = -1
    for index, cell in enumerate(cells):
        if index in answer_at:
            anchor = index
        elif cell.cell_type == "code" and cell.source.strip() and cell.source not in release_sources \
                and _grade_id(cell) is None and not any(
                    r.could_reach(tokens[index], SAME_AS_RELEASE) and r.resemblance(tokens[index]) >= SAME_AS_RELEASE
                    for r in release_tokens):
            added.setdefault(anchor, []).append(cell)
    return added


def repair(submitted: NotebookNode, release: NotebookNode, *, submitted_name: str, release_name: str,
           source: NotebookNode | None = None) -> Repair:
    """Rebuild ``submitted`` in the shape of ``release`` (``source``: the instructor's version); see above."""
    cells = [nbformat.from_dict(cell) for cell in submitted.cells]  # checked and normalised below, not in place
    for index, cell in enumerate(cells):  # a notebook built in memory gets the same checks as a parsed one
        _check_cell(cell, index)
        cell.source = _source_text(cell.source, f"cell {index + 1}")
    if len(cells) > MAX_CELLS:
        raise InvalidSubmission(f"the notebook has {len(cells)} cells; at most {MAX_CELLS} are graded")
    tokens = [_Tokens(cell.source) for cell in cells]
    answers = {_grade_id(c): c.source for c in (source.cells if source else []) if _is_solution(c)}
    matched, notes = _match_answers(release, cells, tokens, answers)
    added = _added_cells(release, cells, tokens, matched)
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
    # Built directly: nbformat's new_code_cell validates each cell against the schema, slowly.
    return nbformat.from_dict({"cell_type": "code", "id": random_cell_id(), "metadata": {}, "execution_count": None,
                               "outputs": [], "source": cell.source})
