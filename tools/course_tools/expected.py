"""Write the visible checks' expected results from the grader-side references (``course expected``).

Each lesson's judges module may define ``EXPECTED``: a mapping from a file name (unique across the
course, e.g. ``"lesson07-train-one-epoch"``) to a function of no arguments that computes, with the
reference answers that live only on the grader's side, plain JSON data (dicts, lists, numbers,
strings; tensors through ``.tolist()``). The files land in ``course_utils/checks/expected/`` where the
student package's checks read them (:mod:`course_utils.checks.expected`).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import course_utils.checks.expected as stored
from course_utils.diagnoses import lesson_modules

Builder = Callable[[], Any]


def builders(lessons: list[str] | None = None) -> dict[str, Builder]:
    """Every ``EXPECTED`` builder of the given lessons' judges modules (all lessons when None), by file name."""
    found: dict[str, Builder] = {}
    for lesson in lessons or [name.rpartition(".lesson")[2] for name in lesson_modules()]:
        try:
            module = importlib.import_module(f"course_tools.grade.judges.lesson{lesson[:2]}")
        except ModuleNotFoundError as error:
            if not (error.name or "").startswith("course_tools.grade.judges"):
                raise
            continue
        for name, build in getattr(module, "EXPECTED", {}).items():
            if name in found:
                raise ValueError(f"expected results {name!r} are built twice")
            found[name] = build
    return found


def render(data: Any) -> str:
    """The file's text: stable key order, so that a rebuild is byte-identical."""
    return json.dumps(data, sort_keys=True, indent=1, allow_nan=False) + "\n"


def write(lessons: list[str] | None = None, folder: Path = stored.EXPECTED_DIR) -> list[Path]:
    """Build and write the expected results of ``lessons``; return the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in sorted(builders(lessons).items()):
        path = folder / f"{name}.json"
        path.write_text(render(build()), encoding="utf-8")
        written.append(path)
    return written
