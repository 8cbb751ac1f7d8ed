"""Self-checks for exercise cells: each failure says what was checked, expected, found, and a hint.

Test cells call these helpers instead of bare ``assert`` so that a student reads plain words.
Every helper raises :class:`CheckFailed` (an ``AssertionError``) so nbgrader marks the cell as
failed, and prints nothing on success except through :func:`report_passed`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NoReturn

import torch


class CheckFailed(AssertionError):
    """A self-check that did not pass; the message is written for the student."""


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
