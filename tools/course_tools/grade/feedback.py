"""Feedback that teaches without leaking: what a student's HTML shows, and what it never shows.

nbgrader's feedback puts every grade cell's full source, hidden tests included, into the student's
HTML (upstream issues #917, #1156, #1363), with tracebacks into the course's own modules. Here the
feedback notebook is rewritten before it is rendered; the instructor's ``autograded/`` copy keeps
everything:

- a table first: one row per exercise, its points and the one-line diagnosis;
- each test cell shows only what the student's own notebook shows (no hidden tests);
- a failed check shows its message (expected, found, fix); any other error shows the student's own
  frames only, never frames inside ``course_utils``, ``course_tools`` or installed packages;
- student output is sanitised (no scripts, event handlers or other active content);
- the page opens offline and calls nothing: images only as ``data:`` URIs, no MathJax from a CDN
  (``templates/course_feedback/mathjax.html.j2``: math stays as its text), no web fonts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup
from nbconvert.exporters.exporter import ResourcesDict
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbformat import NotebookNode
from nbgrader.preprocessors import GetGrades, NbGraderPreprocessor
from traitlets.config import Config

from course_tools.nbgrader_hooks import hidden_test_lines, is_test_cell, without_hidden_tests
from course_utils.diagnoses import catalogue, codes_in

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_COURSE_FRAMES = ("course_utils", "course_tools", "site-packages", "dist-packages", "/lib/python3")


@dataclass(frozen=True)
class Row:
    """One line of the feedback table."""

    grade_id: str
    title: str
    score: float
    points: float
    diagnosis: str  # "passed", or the one-line diagnosis of what went wrong


def failure_message(cell: NotebookNode) -> str:
    """The error a test cell raised, as the student should read it ("" when it raised none)."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            name, value = output.get("ename", "Error"), str(output.get("evalue", ""))
            return value.strip() if name == "CheckFailed" else f"{name}: {value}".strip()
    return ""


def diagnosis_line(message: str) -> str:
    """The first line of a failure message, without its mark: what went wrong, with the code."""
    for line in message.splitlines():
        if line.strip():
            return line.strip().lstrip("✗").strip()
    return ""


def diagnosis_codes(message: str) -> tuple[str, ...]:
    """The codes a failure message names, main one first (at most 8, each at most 64 characters: kernel text)."""
    return tuple(code for code in codes_in(message[:20_000]) if len(code) <= 64)[:8]


def exercise_titles(notebook: NotebookNode) -> dict[str, str]:
    """Each test cell's exercise: the nearest markdown heading above it, without marks and points."""
    titles, heading = {}, ""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in str(cell.source).splitlines():
                if line.startswith("#"):
                    heading = line.lstrip("#").replace("`", "").split("(")[0].strip()
        elif is_test_cell(cell):
            grade_id = cell.metadata.nbgrader.grade_id
            titles[grade_id] = heading or grade_id
    return titles


def _student_frames(traceback: list[str]) -> list[str]:
    """Traceback entries from the student's own cells, and the final error line."""
    kept = [entry for entry in traceback[:-1]
            if not any(marker in _ANSI.sub("", entry) for marker in _COURSE_FRAMES)]
    return kept + traceback[-1:]


def _hidden_lines(test_source: str) -> set[str]:
    """The lines of a test cell that only its hidden-test block holds (what no traceback may show)."""
    visible = {line.strip() for line in without_hidden_tests(test_source).splitlines()}
    return {line.strip() for line in test_source.splitlines() if line.strip() and line.strip() not in visible}


def _without_hidden(traceback: list[str], hidden: set[str]) -> list[str]:
    """Traceback entries that show no hidden-test line (a timeout or crash inside a hidden call shows them)."""
    def shows_hidden(entry: str) -> bool:
        text = _ANSI.sub("", entry)
        return any(line in text for line in hidden)

    return [entry for entry in traceback if not shows_hidden(entry)]


class StudentFeedbackView(NbGraderPreprocessor):
    """Rewrite an autograded notebook into what the student's feedback may show (see the module docstring)."""

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        redact_hidden_tests(nb)
        titles = exercise_titles(nb)
        rows = []
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            if is_test_cell(cell):
                hidden = _hidden_lines(cell.source)
                cell.source = without_hidden_tests(cell.source)
                message = failure_message(cell)
                for output in cell.outputs:
                    if output.get("output_type") == "error":
                        output["traceback"] = (message.splitlines() if output.get("ename") == "CheckFailed"
                                               else _without_hidden(_student_frames(list(output.get("traceback", []))),
                                                                    hidden))
                grading = cell.metadata.get("nbgrader", {})
                rows.append(Row(grading.get("grade_id", ""), titles.get(grading.get("grade_id", ""), ""),
                                float(grading.get("score", 0) or 0), float(grading.get("points", 0) or 0),
                                _explained(message) if message else "passed"))
            else:
                for output in cell.get("outputs", []):
                    if output.get("output_type") == "error":
                        output["traceback"] = _student_frames(list(output.get("traceback", [])))
        resources["course_feedback"] = {"rows": rows}
        return nb, resources


# --- hidden tests never reach the feedback, even inside student output ----------------------------

REDACTED = "[hidden test redacted]"
_MIN_REDACTED = 6  # shorter lines ("pass", ")") are no secret, and cutting them would maim ordinary output
_OUTPUT_TEXT_KEYS = ("text", "ename", "evalue", "traceback", "data")


def _disguises(line: str) -> set[str]:
    """A hidden-test line as student code could print it: plainly, reversed, hex, repr- and JSON-escaped, HTML."""
    import html
    import json

    hexed = line.encode("utf-8", "surrogatepass").hex()
    return {line, line[::-1], hexed, hexed.upper(), repr(line)[1:-1], json.dumps(line)[1:-1], html.escape(line)}


def redact_hidden_tests(nb: NotebookNode) -> NotebookNode:
    """Cut every hidden-test line of the notebook's test cells out of every cell's outputs (in place).

    An instructor's own hidden tests run in the student's kernel, where the student's code can read
    their source (hooks, ``_ih``, ``linecache``, ``sys.settrace``) and print it; the test cells'
    sources are shown without them, and this removes them from what any cell printed.
    """
    lines = {line.strip() for cell in nb.cells if is_test_cell(cell) for line in hidden_test_lines(cell.source)}
    forms = {form for line in lines if len(line) >= _MIN_REDACTED for form in _disguises(line)}
    if not forms:
        return nb
    pattern = re.compile("|".join(map(re.escape, sorted(forms, key=len, reverse=True))))

    def redact(value: object) -> object:  # in place for containers: nbconvert reads outputs as NotebookNodes
        if isinstance(value, str):
            return pattern.sub(REDACTED, value)
        if isinstance(value, list):
            value[:] = [redact(item) for item in value]
        elif isinstance(value, dict):
            for key, item in value.items():
                if not str(key).startswith("image/"):
                    value[key] = redact(item)
        return value

    for cell in nb.cells:
        for output in cell.get("outputs", []):
            for key in _OUTPUT_TEXT_KEYS:
                if key in output:
                    output[key] = redact(output[key])
    return nb


def _explained(message: str) -> str:
    """The one-line diagnosis; for a catalogued code, the catalogue's words (never written twice)."""
    codes = diagnosis_codes(message)
    known = catalogue().get(codes[0]) if codes else None
    return f"{known.what} [{known.code}]" if known else diagnosis_line(message)


_FONT_FACE = re.compile(r"@font-face\s*\{[^}]*\}")


def _without_web_fonts(include_css: Callable[[str], str]) -> Callable[[str], Markup]:
    """The exporter's CSS inliner, minus ``@font-face`` rules: the page fetches no font file from anywhere."""
    return lambda name: Markup(_FONT_FACE.sub("", str(include_css(name))))  # noqa: S704 - CSS from nbgrader's files


class SanitizeOutputs(NbGraderPreprocessor):
    """Remove active content from student output before it reaches anyone's browser (nh3, not regexes)."""

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        from course_tools.grade.sanitize import sanitize_notebook_outputs

        if callable(resources.get("include_css")):  # set by nbconvert's HTMLExporter before preprocessors run
            resources["include_css"] = _without_web_fonts(resources["include_css"])
        return sanitize_notebook_outputs(nb), resources


TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def configure_feedback(config: Config) -> None:
    """Set nbgrader's feedback up as this module describes (called from the course's nbgrader_config.py)."""
    import nbgrader

    config.GenerateFeedback.preprocessors = [GetGrades, StudentFeedbackView, SanitizeOutputs,
                                             CSSHTMLHeaderPreprocessor]
    config.HTMLExporter.template_name = "course_feedback"
    config.HTMLExporter.template_file = "course_feedback.html.j2"
    config.HTMLExporter.extra_template_basedirs = [
        str(TEMPLATES), str(Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates")]
