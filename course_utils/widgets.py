"""A practice quiz (no points) that says, after each click, whether the choice is right and why.

``course release`` adds one quiz cell to every student notebook, built from the lesson's quiz text
and the solution's ``quiz_answers`` (right letter and one sentence per choice)::

    from course_utils.widgets import QuizQuestion, quiz

    quiz([QuizQuestion("q1", "How many batches?", ("1", "10", "100"), digest="3b8f0c1e2a4d5f60",
                       explanations="Jd2x...")],
         salt="01_dataloader_batching")

The right letter is never written down: each question carries the salted hash
(:func:`answer_digest`) of its right choice, and a click is right when its own hash matches. The
explanations would give the answer away too, so they travel scrambled with the same salt
(:func:`encode_explanations`) and appear one at a time, for the choice clicked. This keeps the key
from a reader of the notebook at a glance; it is no secret (the quiz earns no points).

In a front end each choice is a letter button next to its text, rendered as HTML so that `code`
in the lesson's Markdown shows as code (a Button's own label is plain text). Outside a live front
end (nbconvert, CI, a terminal) the quiz shows as plain text.
Importing this module has no side effects (ipywidgets is imported when a quiz is built).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "WidgetWithText", "QuizQuestion", "Quiz", "answer_digest", "encode_explanations", "decode_explanations", "quiz",
    "FEEDBACK_CLASS", "QUIZ_CLASS", "QUESTION_CLASS", "CHOICE_CLASS",
]

DIGEST_LENGTH = 16
FEEDBACK_CLASS = "course-quiz-feedback"  # CSS class of each feedback line (the browser test reads it)
QUIZ_CLASS = "course-quiz"
QUESTION_CLASS = "course-quiz-question"  # one question: its text, its choices, its feedback line
CHOICE_CLASS = "course-quiz-choice"  # one choice: a letter button and the choice's text
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
_LETTERS = string.ascii_lowercase
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def answer_digest(salt: str, key: str, letter: str) -> str:
    """The salted hash that stands for "``letter`` is the right choice of question ``key``"."""
    text = f"course-quiz\n{salt}\n{key}\n{letter.strip().lower()}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:DIGEST_LENGTH]


def _keystream(salt: str, key: str, length: int) -> bytes:
    seed = f"course-quiz-explanations\n{salt}\n{key}".encode("utf-8")
    blocks = (hashlib.sha256(seed + counter.to_bytes(4, "big")).digest() for counter in range(length // 32 + 1))
    return b"".join(blocks)[:length]


def encode_explanations(salt: str, key: str, explanations: Sequence[str]) -> str:
    """Scramble one sentence per choice (a, b, ... in order) so that the cell does not spoil the quiz."""
    data = json.dumps(list(explanations), ensure_ascii=False).encode("utf-8")
    mixed = bytes(a ^ b for a, b in zip(data, _keystream(salt, key, len(data))))
    return base64.b64encode(mixed).decode("ascii")


def decode_explanations(salt: str, key: str, encoded: str) -> tuple[str, ...]:
    """The sentences :func:`encode_explanations` scrambled, or ``()`` for an empty string."""
    if not encoded:
        return ()
    try:
        mixed = base64.b64decode(encoded.encode("ascii"), validate=True)
        data = bytes(a ^ b for a, b in zip(mixed, _keystream(salt, key, len(mixed))))
        explanations = json.loads(data.decode("utf-8"))
    except ValueError:  # binascii.Error, UnicodeDecodeError and JSONDecodeError are all ValueErrors
        explanations = None
    if not isinstance(explanations, list) or not all(isinstance(e, str) for e in explanations):
        raise ValueError(f"{key}: the explanations do not decode with the salt {salt!r}")
    return tuple(explanations)


@dataclass(frozen=True)
class QuizQuestion:
    """One question: its key (``"q1"``), its text, its choices (a, b, c, ... in order), the
    :func:`answer_digest` of the right choice and, optionally, one explanation per choice scrambled
    by :func:`encode_explanations`."""

    key: str
    text: str
    choices: tuple[str, ...]
    digest: str
    explanations: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ValueError(f"a question needs a key such as 'q1', got {self.key!r}")
        if not 2 <= len(self.choices) <= len(_LETTERS):
            raise ValueError(f"{self.key}: a question needs 2 to 26 choices, got {len(self.choices)}")
        if not re.fullmatch(rf"[0-9a-f]{{{DIGEST_LENGTH}}}", self.digest or ""):
            raise ValueError(f"{self.key}: digest must be {DIGEST_LENGTH} hex digits from answer_digest()")

    @property
    def letters(self) -> str:
        """The letters of the choices, ``"abcd"`` for four."""
        return _LETTERS[: len(self.choices)]

    def is_right(self, salt: str, letter: str) -> bool:
        """Whether ``letter`` is the right choice (compared through its salted hash)."""
        return answer_digest(salt, self.key, letter) == self.digest

    def explanation(self, salt: str, letter: str) -> str:
        """The sentence that explains choice ``letter`` ("" when the question has none)."""
        explanations = decode_explanations(salt, self.key, self.explanations)
        if not explanations:
            return ""
        if len(explanations) != len(self.choices):
            raise ValueError(f"{self.key}: {len(explanations)} explanations for {len(self.choices)} choices")
        return explanations[self.letters.index(letter)]

    def feedback(self, salt: str, letter: str) -> tuple[bool, str]:
        """Whether ``letter`` is right, and the feedback for it: right or wrong, then why."""
        right = self.is_right(salt, letter)
        why = self.explanation(salt, letter)
        if right:
            return True, " ".join(part for part in (f"✓ ({letter}) is right.", why) if part)
        return False, " ".join(part for part in (f"✗ ({letter}) is not right.", why, "Try another choice.") if part)

    def as_text(self) -> str:
        """The question and its choices as plain text."""
        choices = "\n".join(f"  ({letter}) {choice}" for letter, choice in zip(self.letters, self.choices))
        return f"{self.key}. {self.text}\n{choices}"


def _inline_markdown(text: str) -> str:
    """Escape ``text`` for HTML, keeping `code` and **bold** from the lesson's Markdown."""
    escaped = html.escape(text)
    return _BOLD.sub(r"<b>\1</b>", _CODE.sub(r"<code>\1</code>", escaped))


class WidgetWithText:
    """Shows as an ipywidgets view in a live front end and as :meth:`as_text` everywhere else.

    Subclasses set ``self._widget = None`` and define ``as_text()`` and ``_build()`` (which imports
    ipywidgets and returns the view). The view is built on first display, and its display data
    carries the text as ``text/plain``, so nbconvert, CI logs and terminals show words, not a model id.
    A subclass that draws also returns its current picture from ``_image_png()``: an executed
    notebook, its HTML and nbgrader feedback then show the image (a live front end shows the widget).
    """

    _widget: Any = None

    def as_text(self) -> str:
        """The plain-text form; subclasses override it."""
        raise NotImplementedError

    def _build(self) -> Any:
        raise NotImplementedError

    @property
    def widget(self) -> Any:
        """The ipywidgets view (built on first use)."""
        if self._widget is None:
            self._widget = self._build()
        return self._widget

    def _image_png(self) -> bytes | None:
        """The widget's current picture as PNG bytes, for front ends without the widget; None if it draws nothing."""
        return None

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        # Written out rather than asked of the widget: ipywidgets 7 (still Colab's default) has no
        # _repr_mimebundle_, and both versions render this same widget-view reference.
        bundle: dict[str, Any] = {"text/plain": self.as_text()}
        png = self._image_png()
        if png:
            bundle["image/png"] = base64.b64encode(png).decode("ascii")
        model_id = getattr(self.widget, "model_id", None)
        if model_id:
            bundle[WIDGET_VIEW_MIME] = {"version_major": 2, "version_minor": 0, "model_id": model_id}
        return bundle

    def __repr__(self) -> str:
        return self.as_text()


class Quiz(WidgetWithText):
    """The quiz of one lesson; displays as a widget in a live front end, as text everywhere else."""

    def __init__(self, questions: Sequence[QuizQuestion], *, salt: str) -> None:
        if not questions:
            raise ValueError("a quiz needs at least one question")
        keys = [q.key for q in questions]
        if len(set(keys)) != len(keys):
            raise ValueError(f"question keys must be unique, got {keys}")
        self.questions = tuple(questions)
        self.salt = salt
        for question in self.questions:  # a wrong salt or a missing sentence fails here, not at a click
            question.explanation(salt, question.letters[0])
        self.chosen: dict[str, str] = {}
        self._widget: Any = None
        self._feedback: dict[str, Any] = {}
        self._buttons: dict[str, dict[str, Any]] = {}

    def answer(self, key: str, letter: str) -> str:
        """Record a click on ``letter`` for question ``key`` and return the feedback sentence."""
        question = next((q for q in self.questions if q.key == key), None)
        if question is None:
            raise KeyError(f"no question {key!r}; the quiz has {[q.key for q in self.questions]}")
        if letter not in question.letters:
            raise ValueError(f"{key}: choose one of {list(question.letters)}, got {letter!r}")
        self.chosen[key] = letter
        right, sentence = question.feedback(self.salt, letter)
        label = self._feedback.get(key)
        if label is not None:
            colour = "#1a7f37" if right else "#b35900"
            label.value = f'<span style="color:{colour}">{_inline_markdown(sentence)}</span>'
        for choice, button in self._buttons.get(key, {}).items():
            button.button_style = ("success" if right else "warning") if choice == letter else ""
        return sentence

    def as_text(self) -> str:
        """The whole quiz as plain text, for nbconvert, CI logs and terminals."""
        body = "\n\n".join(q.as_text() for q in self.questions)
        return ("Quiz (practice, no points): in JupyterLab, Colab or Binder, click a choice to see whether it "
                f"is right and why.\n\n{body}")

    def _build(self) -> Any:
        import ipywidgets as widgets

        rows = [widgets.HTML("<b>Practice quiz, no points:</b> click a choice to see whether it is right and why.")]
        for question in self.questions:
            feedback = widgets.HTML("")
            feedback.add_class(FEEDBACK_CLASS)
            self._feedback[question.key] = feedback
            self._buttons[question.key] = {}
            choices = []
            for letter, choice in zip(question.letters, question.choices):
                button = widgets.Button(description=f"({letter})", tooltip=f"choose ({letter})",
                                        layout=widgets.Layout(width="3.5em", flex="0 0 auto"))
                button.on_click(lambda _button, key=question.key, letter=letter: self.answer(key, letter))
                self._buttons[question.key][letter] = button
                row = widgets.HBox([button, widgets.HTML(_inline_markdown(choice))],
                                   layout=widgets.Layout(align_items="center"))
                row.add_class(CHOICE_CLASS)
                choices.append(row)
            block = widgets.VBox([widgets.HTML(f"<b>{question.key}.</b> {_inline_markdown(question.text)}"),
                                  *choices, feedback])
            block.add_class(QUESTION_CLASS)
            rows.append(block)
        box = widgets.VBox(rows)
        box.add_class(QUIZ_CLASS)
        return box


def quiz(questions: Sequence[QuizQuestion], *, salt: str) -> Quiz:
    """Build the :class:`Quiz`; leave it as the last expression of a cell to show it."""
    return Quiz(questions, salt=salt)
