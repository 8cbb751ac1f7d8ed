"""A multiple-choice quiz widget with immediate feedback that keeps the answer key out of the notebook.

``course release`` adds one quiz cell to every student notebook, built from the lesson's quiz text::

    from course_utils.widgets import QuizQuestion, quiz

    quiz([QuizQuestion("q1", "How many batches?", ("1", "10", "100"), digest="3b8f0c1e2a4d5f60")],
         salt="01_dataloader_batching")

The right letter is never written down: each question carries the salted hash
(:func:`answer_digest`) of its right choice, and a click is right when its own hash matches. A
salt per lesson and question means equal answers do not give equal digests. This hides the key from
a reader of the notebook, not from a student who tries every choice: the quiz is practice with
immediate feedback, and the graded answer is always the one written in ``quiz_answers``.

Outside a live front end (nbconvert, CI, a terminal) the quiz shows as plain text.
Importing this module has no side effects (ipywidgets is imported when a quiz is built).
"""

from __future__ import annotations

import hashlib
import html
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["WidgetWithText", "QuizQuestion", "Quiz", "answer_digest", "quiz", "FEEDBACK_CLASS", "QUIZ_CLASS"]

DIGEST_LENGTH = 16
FEEDBACK_CLASS = "course-quiz-feedback"  # CSS class of each feedback line (the browser test reads it)
QUIZ_CLASS = "course-quiz"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
_LETTERS = string.ascii_lowercase
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def answer_digest(salt: str, key: str, letter: str) -> str:
    """The salted hash that stands for "``letter`` is the right choice of question ``key``"."""
    text = f"course-quiz\n{salt}\n{key}\n{letter.strip().lower()}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:DIGEST_LENGTH]


@dataclass(frozen=True)
class QuizQuestion:
    """One question: its key in ``quiz_answers`` (``"q1"``), its text, its choices (a, b, c, ... in
    order) and the :func:`answer_digest` of the right choice."""

    key: str
    text: str
    choices: tuple[str, ...]
    digest: str

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

    def feedback(self, salt: str, letter: str) -> tuple[bool, str]:
        """Whether ``letter`` is right, and the feedback sentence for it."""
        if self.is_right(salt, letter):
            return True, f'✓ Right. Write "{letter}" for {self.key} in quiz_answers below.'
        return False, f"✗ Not ({letter}). Read the question again and try another choice."

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

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        # Written out rather than asked of the widget: ipywidgets 7 (still Colab's default) has no
        # _repr_mimebundle_, and both versions render this same widget-view reference.
        bundle: dict[str, Any] = {"text/plain": self.as_text()}
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
        self.chosen: dict[str, str] = {}
        self._widget: Any = None
        self._feedback: dict[str, Any] = {}

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
            label.value = f'<span style="color:{colour}">{html.escape(sentence)}</span>'
        return sentence

    def as_text(self) -> str:
        """The whole quiz as plain text, for nbconvert, CI logs and terminals."""
        body = "\n\n".join(q.as_text() for q in self.questions)
        return ("Quiz: in JupyterLab, Colab or Binder click a choice for immediate feedback.\n\n"
                f"{body}\n\nYour graded answers are the ones you write in quiz_answers below.")

    def _build(self) -> Any:
        import ipywidgets as widgets

        rows = [widgets.HTML("<b>Try the quiz:</b> click a choice for immediate feedback. "
                             "Your graded answers are the ones you write in <code>quiz_answers</code> below.")]
        for question in self.questions:
            buttons = widgets.RadioButtons(
                options=[(f"({letter}) {choice}", letter) for letter, choice in zip(question.letters, question.choices)],
                value=None, layout=widgets.Layout(width="max-content"),
            )
            feedback = widgets.HTML("")
            feedback.add_class(FEEDBACK_CLASS)
            self._feedback[question.key] = feedback

            def on_change(change: dict[str, Any], key: str = question.key) -> None:
                if change["new"] is not None:
                    self.answer(key, change["new"])

            buttons.observe(on_change, names="value")
            rows.append(widgets.VBox([widgets.HTML(f"<b>{question.key}.</b> {_inline_markdown(question.text)}"),
                                      buttons, feedback]))
        box = widgets.VBox(rows)
        box.add_class(QUIZ_CLASS)
        return box


def quiz(questions: Sequence[QuizQuestion], *, salt: str) -> Quiz:
    """Build the :class:`Quiz`; leave it as the last expression of a cell to show it."""
    return Quiz(questions, salt=salt)
