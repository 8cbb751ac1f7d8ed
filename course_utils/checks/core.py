"""Self-checks for exercise cells: each failure says what was checked, expected, found, and a hint.

Test cells call these helpers instead of bare ``assert`` so that a student reads plain words.
Every helper raises :class:`CheckFailed` (an ``AssertionError``) so nbgrader marks the cell as
failed, and prints nothing on success except through :func:`report_passed`.

A failed check shows its message alone, not the course's frames that raised it: IPython renders an
exception through its ``_render_traceback_()`` method when it has one, and nbgrader still records an
error output (``ename`` ``CheckFailed``, ``evalue`` the message). When the failure reports an
exception of the learner's own code, the frames of the learner's code come first, since that is
where the bug is; the course's frames never show.
"""

from __future__ import annotations

import builtins
import math
import os
import sysconfig
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import torch

# The student package's folder: frames in files under it are the course's, never shown to a learner.
_COURSE_DIR = str(Path(__file__).resolve().parents[1]) + os.sep
# Learner exceptions that a check turned into text (course_utils.checks.learner.error_text), newest
# first, with their traceback lines; the CheckFailed whose message quotes that text takes them.
_REPORTED: list[tuple[str, list[str]]] = []
_REPORTED_LIMIT = 8


# Python's and the installed libraries' folders: frames there are shown, but are not the learner's code.
_LIBRARY_DIRS = tuple({os.path.realpath(sysconfig.get_paths()[key]) + os.sep
                       for key in ("stdlib", "platstdlib", "purelib", "platlib")})


def _is_course_file(filename: str) -> bool:
    return os.path.realpath(filename).startswith(_COURSE_DIR) if filename else False


def _is_learner_file(filename: str) -> bool:
    return not _is_course_file(filename) and not os.path.realpath(filename).startswith(_LIBRARY_DIRS)


def _cell_names() -> dict[str, str]:
    """Notebook cells' file names -> "Cell In[n]", read from the running IPython, if any (never imported)."""
    shell = getattr(builtins, "get_ipython", None)
    try:
        numbers = shell().compile._filename_map if shell is not None else {}
        return {name: f"Cell In[{number}]" for name, number in dict(numbers).items()}
    except Exception:  # noqa: BLE001 - another front end: the file names stay as they are
        return {}


def learner_traceback(error: BaseException) -> list[str]:
    """``error``'s traceback as a learner reads it: the frames of the learner's code (the course's dropped,
    the libraries' below the learner's last line counted), then the error line; nothing when no frame is
    the learner's (the message then says all there is)."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if not _is_course_file(frame.filename)]
    mine = [index for index, frame in enumerate(frames) if _is_learner_file(frame.filename)]
    if not mine:
        return []
    inside = len(frames) - mine[-1] - 1  # frames of the libraries the learner's last line called into
    frames = frames[:mine[-1] + 1]
    lines = ["Traceback (most recent call last, your code only):"]
    cells = _cell_names()
    for frame in frames:
        if frame.filename in cells:  # a notebook cell: named as IPython names it, "Cell In[3]"
            frame.filename = cells[frame.filename]
    for entry in traceback.format_list(frames):
        lines.extend(entry.rstrip("\n").splitlines())
    if inside:
        lines.append(f"  ... raised {inside} call{'s' if inside > 1 else ''} deeper, inside the libraries")
    for entry in traceback.format_exception_only(type(error), error):
        lines.extend(entry.rstrip("\n").splitlines())
    return lines


def remember_learner_error(text: str, error: BaseException) -> None:
    """Note that a check reported the learner's ``error`` as ``text``, so its failure can show where it happened."""
    _REPORTED.insert(0, (text, learner_traceback(error)))
    del _REPORTED[_REPORTED_LIMIT:]


def _claim_learner_traceback(message: str) -> list[str]:
    for index, (text, lines) in enumerate(_REPORTED):
        if text and text in message:
            del _REPORTED[index]
            return lines
    return []


class CheckFailed(AssertionError):
    """A self-check that did not pass; the message is written for the student.

    It renders as its message alone (IPython's ``_render_traceback_`` protocol), preceded by the
    learner's own frames when it reports an exception of the learner's code: one raised ``from``
    that exception, or one whose message quotes it as :func:`course_utils.checks.learner.error_text`
    wrote it.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.learner_lines = _claim_learner_traceback(str(args[0])) if args and isinstance(args[0], str) else []

    def _render_traceback_(self) -> list[str]:
        """The lines a notebook shows for this failure: the learner's frames, if any, then the message."""
        cause = self.__cause__
        learner = self.learner_lines or (learner_traceback(cause) if cause is not None else [])
        message = str(self).strip("\n").splitlines()
        return [*learner, *([""] if learner else []), *message]


def _short(value: Any, limit: int = 200) -> str:
    if isinstance(value, torch.Tensor):
        text = f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}"
        if value.numel() <= 8:
            text += f": {value.detach().cpu().tolist()}"
        return text
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(value: Any) -> str:
    """A value as a failure message shows it: text as it is, anything else shortened."""
    return value if isinstance(value, str) else _short(value)


def fail(what: str, *, expected: Any, found: Any, hint: str) -> NoReturn:
    """Raise :class:`CheckFailed` with the course's four-line message."""
    raise CheckFailed(
        f"\n✗ {what}\n"
        f"    expected: {describe(expected)}\n"
        f"    found:    {describe(found)}\n"
        f"    hint:     {hint}"
    )


def check(condition: bool, what: str, *, expected: Any, found: Any, hint: str) -> None:
    """Fail with the given description unless ``condition`` is true."""
    if not (type(condition) in (bool, int) and condition):  # an object that merely claims truth is not enough
        fail(what, expected=expected, found=found, hint=hint)


def strictly_equal(found: Any, expected: Any) -> bool:
    """Equality that a submitted object cannot fake: exact types all the way down, then ``==``.

    An object whose ``__eq__`` always answers True is not a list of ints, so it never matches.
    """
    if type(found) is not type(expected):
        return False
    if isinstance(expected, (list, tuple)):
        return len(found) == len(expected) and all(strictly_equal(a, b) for a, b in zip(found, expected))
    if isinstance(expected, dict):
        return (len(found) == len(expected) and all(strictly_equal(k, k2) for k, k2 in zip(found, expected))
                and all(strictly_equal(found[k], expected[k]) for k in expected))
    if isinstance(expected, torch.Tensor):
        return found.dtype == expected.dtype and found.shape == expected.shape and bool(torch.equal(found, expected))
    if isinstance(expected, (bool, int, float, complex, str, bytes, type(None), torch.dtype, torch.device)):
        return bool(found == expected)
    if isinstance(expected, type):
        return found is expected
    raise TypeError(f"strictly_equal compares plain values and tensors, not {type(expected).__name__}")


def check_equal(found: Any, expected: Any, what: str, *, hint: str) -> None:
    """Fail unless ``found`` equals ``expected`` with the same types (ints, strings, lists, dicts, tensors).

    An int and a float of the same value count as equal; a bool never counts as a number.
    """
    same = strictly_equal(found, expected)
    if not same and type(found) in (int, float) and type(expected) in (int, float):
        same = found == expected
    check(same, what, expected=expected, found=found, hint=hint)


def check_type(found: Any, expected_type: type | tuple[type, ...], what: str, *, hint: str) -> None:
    """Fail unless ``found`` is an instance of ``expected_type``."""
    names = (
        " or ".join(t.__name__ for t in expected_type)
        if isinstance(expected_type, tuple)
        else expected_type.__name__
    )
    check(isinstance(found, expected_type), what, expected=f"a {names}", found=f"a {type(found).__name__}", hint=hint)


def check_shape(tensor: Any, expected: tuple[int, ...], what: str, *, hint: str) -> None:
    """Fail unless ``tensor`` is a tensor whose shape is ``expected``."""
    check_type(tensor, torch.Tensor, what, hint=hint)
    check(tuple(tensor.shape) == tuple(expected), what, expected=f"shape {tuple(expected)}",
          found=f"shape {tuple(tensor.shape)}", hint=hint)


def check_close(found: Any, expected: torch.Tensor | float, what: str, *, hint: str,
                rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Fail unless ``found`` matches ``expected`` within tolerances (tensors or numbers)."""
    if isinstance(expected, (int, float)):
        check(isinstance(found, (int, float)) and not isinstance(found, bool)
              and math.isclose(found, expected, rel_tol=rtol, abs_tol=atol),
              what, expected=expected, found=found, hint=hint)
        return
    check_shape(found, tuple(expected.shape), what, hint=hint)
    difference = (found.detach().double().cpu() - expected.detach().double().cpu()).abs()
    limit = atol + rtol * expected.detach().double().cpu().abs()
    worst = float((difference - limit).max()) if difference.numel() else 0.0
    check(worst <= 0, what, expected=f"values within {atol:g} + {rtol:g}·|expected| of the reference",
          found=f"largest difference {float(difference.max()):.3g}", hint=hint)


def check_raises(call: Callable[[], Any], errors: type[BaseException] | tuple[type[BaseException], ...],
                 what: str, *, hint: str) -> BaseException:
    """Fail unless ``call()`` raises one of ``errors``; return the error for further checks."""
    names = errors.__name__ if isinstance(errors, type) else " or ".join(e.__name__ for e in errors)
    try:
        result = call()
    except errors as error:
        return error
    except Exception as error:  # the wrong kind of error is a finding, not a crash of the check
        fail(what, expected=f"{names}", found=f"{type(error).__name__}: {error}", hint=hint)
    fail(what, expected=f"{names}", found=f"no error (returned {_short(result, 80)})", hint=hint)


def report_passed(exercise: str) -> None:
    """Print the line students look for once every visible check of an exercise has passed."""
    print(f"✓ {exercise}: all visible checks passed.")


def check_choice(answers: Any, question: str, *, choices: str) -> None:
    """Check the form of one quiz answer: ``answers[question]`` is one letter out of ``choices``."""
    example = "{" + ", ".join(f'"q{i}": "{choices[0]}"' for i in (1, 2, 3)) + "}"
    check_type(answers, dict, "quiz_answers", hint=f"write quiz_answers = {example} with your letters.")
    check(question in answers, f"the answer to {question}", expected=f'a key "{question}" in quiz_answers',
          found=f"keys {sorted(map(str, answers))}", hint=f'add "{question}": "<letter>" to quiz_answers.')
    letter = answers[question]
    check(isinstance(letter, str) and len(letter) == 1 and letter in choices, f"the answer to {question}",
          expected=f"one of {', '.join(repr(c) for c in choices)}", found=repr(letter),
          hint="answer with a single lowercase letter.")
