"""Notebook hygiene: committed notebooks carry no outputs, no execution counts and stable cell ids.

A notebook written by :func:`write_clean` is byte-identical however often it is rewritten, so
regenerating ``notebooks/`` from ``solutions/`` gives no diff when nothing changed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import nbformat
from nbformat import NotebookNode

# Cell metadata worth keeping: nbgrader's, tags, and the lock flags nbgrader sets.
KEPT_CELL_METADATA = ("nbgrader", "tags", "editable", "deletable")
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
_VALID_ID = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")


class NotebookError(ValueError):
    """A notebook file that cannot be read or does not have the structure we need."""


def read_notebook(path: Path) -> NotebookNode:
    """Read ``path`` as an nbformat-4 notebook, raising :class:`NotebookError` that names the file."""
    try:
        notebook = nbformat.read(str(path), as_version=4)
    except FileNotFoundError:
        raise NotebookError(f"{path}: no such notebook") from None
    except (json.JSONDecodeError, nbformat.reader.NotJSONError) as error:
        raise NotebookError(f"{path}: not valid notebook JSON ({error})") from None
    except Exception as error:  # nbformat raises several kinds for malformed files
        raise NotebookError(f"{path}: cannot be read as a notebook ({type(error).__name__}: {error})") from None
    return notebook


def _id_from_text(text: str, taken: set[str]) -> str:
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()
    for start in range(0, len(digest) - 8):
        candidate = digest[start:start + 8]
        if candidate not in taken:
            return candidate
    raise NotebookError("could not derive a unique cell id")  # 30+ collisions: practically impossible


def _stable_id(cell: NotebookNode, index: int, taken: set[str]) -> str:
    """Keep a valid unique id; otherwise name grade cells after their grade id, others by content."""
    current = cell.get("id")
    if isinstance(current, str) and _VALID_ID.match(current) and current not in taken:
        return current
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    if isinstance(grade_id, str) and _VALID_ID.match(grade_id) and grade_id not in taken:
        return grade_id
    return _id_from_text(f"{cell.cell_type}\n{cell.source}\n{index}", taken)


def normalize(notebook: NotebookNode, ids_from: Sequence[str] | None = None) -> NotebookNode:
    """Strip outputs, execution counts and volatile metadata in place; give every cell a stable id.

    ``ids_from`` (one id per cell) makes a generated notebook reuse the ids of its source.
    """
    if ids_from is not None and len(ids_from) != len(notebook.cells):
        raise NotebookError(
            f"cannot copy cell ids: the source has {len(ids_from)} cells, this notebook {len(notebook.cells)}"
        )
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    notebook.metadata = nbformat.from_dict({
        "kernelspec": dict(KERNELSPEC),
        "language_info": {"name": "python"},
    })
    taken: set[str] = set()
    for index, cell in enumerate(notebook.cells):
        cell.metadata = nbformat.from_dict(
            {key: cell.metadata[key] for key in KEPT_CELL_METADATA if key in cell.get("metadata", {})}
        )
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        if "attachments" in cell and not cell.attachments:
            del cell["attachments"]
        cell.id = ids_from[index] if ids_from is not None else _stable_id(cell, index, taken)
        taken.add(cell.id)
    return notebook


def dumps_clean(notebook: NotebookNode) -> str:
    """Serialise a normalised notebook exactly as it is committed."""
    text = nbformat.writes(notebook, version=4)
    return text if text.endswith("\n") else text + "\n"


def write_clean(path: Path, ids_from: Sequence[str] | None = None) -> bool:
    """Normalise the notebook at ``path`` in place; return True if the file changed."""
    before = path.read_text(encoding="utf-8") if path.exists() else None
    notebook = normalize(read_notebook(path), ids_from=ids_from)
    try:
        nbformat.validate(notebook)
    except nbformat.ValidationError as error:
        raise NotebookError(f"{path}: not a valid notebook after cleaning ({error.message})") from None
    after = dumps_clean(notebook)
    if after != before:
        path.write_text(after, encoding="utf-8")
    return after != before


def dirty_reasons(path: Path) -> list[str]:
    """Say why the committed notebook at ``path`` is not clean (an empty list when it is)."""
    text = path.read_text(encoding="utf-8")
    notebook = read_notebook(path)
    reasons = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
            reasons.append(f"cell {index} has outputs or an execution count")
    if dumps_clean(normalize(notebook)) != text:
        reasons.append("the file differs from its cleaned form (run `make notebooks`)")
    return reasons


def solution_markers(paths: Iterable[Path]) -> list[str]:
    """List every answer marker found in ``paths`` (for student notebooks, which must have none)."""
    found = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        found.extend(f"{path}: {marker}" for marker in SOLUTION_MARKERS if marker in text)
    return found
