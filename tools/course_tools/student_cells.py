"""The cells ``course release`` adds to every student notebook, and nowhere else.

- ``colab-badge``: an "Open in Colab" badge for the notebook (first cell);
- ``colab-setup``: installs ``course_utils`` from the repository when, and only when, the kernel
  runs in Google Colab (a no-op in JupyterLab, Binder and during grading);
- ``quiz-widget``: the lesson's practice quiz (no points) as a clickable widget
  (:mod:`course_utils.widgets`), placed right after the quiz text. It is built from that text and
  from the solution's ``quiz-answers`` cell, ``quiz_answers = {"q1": ("b", {"a": "why a...", ...}), ...}``
  (the right letter, one sentence per choice), of which it keeps only salted hashes and the
  scrambled sentences. The student release has no ``quiz-answers`` cell: it is removed.

The solutions stay untouched, and the same inputs always give the same cells, so a rebuild of
``notebooks/`` is byte-identical. Importing this module has no side effects.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping

import nbformat
from nbformat import NotebookNode

from course_tools.links import RELEASE_FOLDER, colab_badge_markdown, pip_requirement
from course_utils.widgets import answer_digest, encode_explanations

__all__ = [
    "BADGE_ID", "SETUP_ID", "QUIZ_ID", "ANSWERS_ID", "QuizFormatError", "parse_quiz_markdown", "solution_quiz_answers",
    "badge_cell", "setup_cell", "quiz_cell", "add_student_cells",
]

BADGE_ID = "colab-badge"
SETUP_ID = "colab-setup"
QUIZ_ID = "quiz-widget"
ANSWERS_ID = "quiz-answers"  # the solution's answer cell, left out of the student release
QUIZ_VARIABLE = "quiz_answers"

_QUESTION = re.compile(r"^\*\*(q\d+)\.\*\*\s*", re.M)
_CHOICE = re.compile(r"(?:^|\s)\(([a-z])\)\s+")
_MARKER = re.compile(r"^\s*### (BEGIN|END) (SOLUTION|HIDDEN TESTS)\s*$", re.M)


class QuizFormatError(ValueError):
    """A lesson's quiz text or answers do not have the form the quiz widget is built from."""


def parse_quiz_markdown(text: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """Read ``**q1.** question (a) choice (b) choice ...`` blocks into (key, question, choices).

    Choices may share a line or have one line each; they must be lettered a, b, c, ... in order.
    """
    starts = list(_QUESTION.finditer(text))
    questions = []
    for number, match in enumerate(starts):
        end = starts[number + 1].start() if number + 1 < len(starts) else len(text)
        block = " ".join(text[match.end():end].split())
        choices = list(_CHOICE.finditer(block))
        letters = "".join(c.group(1) for c in choices)
        if len(choices) < 2 or letters != "abcdefghijklmnopqrstuvwxyz"[: len(letters)]:
            raise QuizFormatError(f"{match.group(1)}: expected choices (a), (b), ... in order, found {letters!r}")
        question = block[: choices[0].start()].strip()
        bounds = [c.end() for c in choices] + [len(block)]
        texts = tuple(block[bounds[i]: choices[i + 1].start() if i + 1 < len(choices) else len(block)].strip()
                      for i in range(len(choices)))
        if not question or not all(texts):
            raise QuizFormatError(f"{match.group(1)}: empty question or choice")
        questions.append((match.group(1), question, texts))
    return questions


Answers = dict[str, tuple[str, dict[str, str]]]


def _is_answer(value: object) -> bool:
    return (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], dict)
            and all(isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in value[1].items()))


def solution_quiz_answers(source: str) -> Answers:
    """The literal ``quiz_answers = {"q1": ("b", {"a": "why", ...}), ...}`` of a solution cell (markers removed)."""
    tree = ast.parse(_MARKER.sub("", source))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == QUIZ_VARIABLE):
            try:
                answers = ast.literal_eval(node.value)
            except ValueError:
                break
            if isinstance(answers, dict) and all(isinstance(k, str) and _is_answer(v) for k, v in answers.items()):
                return answers
            break
    example = '{"q1": ("b", {"a": "why a is right or wrong", ...}), ...}'
    raise QuizFormatError(f"no literal `{QUIZ_VARIABLE} = {example}` in the solution cell")


def badge_cell(lesson: str) -> NotebookNode:
    """The "Open in Colab" badge of the lesson's student notebook."""
    path = f"{RELEASE_FOLDER}/{lesson}/{lesson}.ipynb"
    cell = nbformat.v4.new_markdown_cell(
        f"{colab_badge_markdown(path)} · runs as is in JupyterLab and on Binder; in Colab run the next cell first.")
    cell.id = BADGE_ID
    return cell


def setup_cell() -> NotebookNode:
    """Installs ``course_utils`` in Google Colab only; does nothing anywhere else."""
    source = (
        "# Google Colab only: install the course helpers (course_utils). Elsewhere this cell does nothing.\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        "if \"google.colab\" in sys.modules:\n"
        f"    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"--quiet\", {pip_requirement()!r}], check=True)"
    )
    cell = nbformat.v4.new_code_cell(source)
    cell.id = SETUP_ID
    return cell


def quiz_cell(lesson: str, questions: list[tuple[str, str, tuple[str, ...]]],
              answers: Mapping[str, tuple[str, Mapping[str, str]]]) -> NotebookNode:
    """The quiz widget cell: the questions and choices, a salted hash of each right choice and the
    scrambled explanation of every choice."""
    missing = [key for key, _, _ in questions if key not in answers]
    if missing:
        raise QuizFormatError(f"the solution's {QUIZ_VARIABLE} has no answer for {missing}")
    extra = sorted(set(answers) - {key for key, _, _ in questions})
    if extra:
        raise QuizFormatError(f"the solution's {QUIZ_VARIABLE} answers {extra}, which the quiz text does not ask")
    lines = [
        "# Practice quiz, no points: click a choice to see whether it is right and why.",
        "from course_utils.widgets import QuizQuestion, quiz",
        "",
        "quiz([",
    ]
    for key, text, choices in questions:
        letters = "abcdefghijklmnopqrstuvwxyz"[: len(choices)]
        right, explanations = answers[key]
        if right not in letters or len(right) != 1:
            raise QuizFormatError(f"{key}: the answer {right!r} is not one of the choices")
        if sorted(explanations) != list(letters):
            raise QuizFormatError(f"{key}: explain every choice {list(letters)} once, found {sorted(explanations)}")
        lines.append(f"    QuizQuestion({key!r}, {text!r},")
        if len(repr(choices)) <= 80:
            lines.append(f"                 {choices!r},")
        else:
            lines.append("                 (" + ",\n                  ".join(repr(c) for c in choices) + "),")
        lines.append(f"                 digest={answer_digest(lesson, key, right)!r},")
        scrambled = encode_explanations(lesson, key, [explanations[letter] for letter in letters])
        lines.append(f"                 explanations={scrambled!r}),")
    lines.append(f"], salt={lesson!r})")
    cell = nbformat.v4.new_code_cell("\n".join(lines))
    cell.id = QUIZ_ID
    return cell


def _quiz_parts(source: NotebookNode) -> tuple[int, list, Answers, int] | None:
    """(index of the quiz text cell, its questions, the solution's answers, the answer cell's index), or None."""
    text_index = next((i for i, c in enumerate(source.cells)
                       if c.cell_type == "markdown" and _QUESTION.search(c.source)), None)
    answer_index = next((i for i, c in enumerate(source.cells)
                         if c.cell_type == "code" and re.search(rf"^\s*{QUIZ_VARIABLE}\s*=", c.source, re.M)), None)
    if text_index is None and answer_index is None:
        return None
    if text_index is None or answer_index is None:
        raise QuizFormatError("a quiz needs both its text (**q1.** ...) and a quiz_answers cell")
    return (text_index, parse_quiz_markdown(source.cells[text_index].source),
            solution_quiz_answers(source.cells[answer_index].source), answer_index)


def add_student_cells(student: NotebookNode, source: NotebookNode, lesson: str) -> NotebookNode:
    """Add the badge, the Colab set-up and (when the lesson has a quiz) the quiz widget, and drop the
    quiz's answer cell, in place.

    ``student`` is the generated notebook, cell for cell like ``source`` (the solution).
    """
    if any(cell.get("id") in (BADGE_ID, SETUP_ID, QUIZ_ID) for cell in student.cells):
        raise QuizFormatError(f"{lesson}: the student notebook already holds the added cells")
    quiz = _quiz_parts(source)
    if quiz is not None:
        text_index, questions, answers, answer_index = quiz
        if len(student.cells) != len(source.cells) or \
                student.cells[answer_index].get("id") != source.cells[answer_index].get("id"):
            raise QuizFormatError(f"{lesson}: the student notebook's cells do not match the solution's")
        del student.cells[answer_index]  # its answers live on only in the widget's hashes
        student.cells.insert(text_index + 1 - (answer_index < text_index), quiz_cell(lesson, questions, answers))
    title = 1 if student.cells and student.cells[0].cell_type == "markdown" else 0
    student.cells.insert(title, setup_cell())
    student.cells.insert(0, badge_cell(lesson))
    return student
