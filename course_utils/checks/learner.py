"""Calling a learner's code from a check: an exception is a finding to report, not a crash of the check."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from unittest import mock

from course_utils.checks.core import CheckFailed, remember_learner_error
from course_utils.diagnoses import fail_with


def call_learner(function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, BaseException | None]:
    """``function(*args, **kwargs)`` and no error, or None and the exception it raised.

    A :class:`CheckFailed` raised inside (a check the learner's code called) is passed on.
    """
    try:
        return function(*args, **kwargs), None
    except CheckFailed:
        raise
    except Exception as error:  # noqa: BLE001 - whatever the learner's code raises is reported
        return None, error


def error_text(error: BaseException) -> str:
    """An exception in one line, as a failure message's ``found:`` shows it.

    The check failure that quotes this line shows the learner's frames of ``error`` above its
    message (see :class:`course_utils.checks.core.CheckFailed`).
    """
    lines = str(error).splitlines()
    text = f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]
    remember_learner_error(text, error)
    return text


def call_or_fail(code: str, function: Callable[..., Any], *args: Any, subject: str = "",
                 expected: Any = "the call finishes without an error", **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``'s result; when the learner's code raises, fail naming the diagnosis ``code``.

    The failure says what the call should have given (``expected``), quotes the error in one line, and
    shows the learner's own frames above the message.
    """
    result, error = call_learner(function, *args, **kwargs)
    if error is not None:
        fail_with(code, expected=expected, found=error_text(error), subject=subject)
    return result


@contextlib.contextmanager
def counting_calls(classes: Iterable[type], names: Iterable[str]) -> Iterator[list[str]]:
    """Record each call of the ``names`` methods of ``classes`` while the block runs (``"Class.method"``).

    A check uses it to see whether the learner's code handed the work to a library class (a
    ``TensorDataset``, a ``DataLoader``, scikit-learn's scalers) that the exercise asks them to
    write; the calls still happen. A name a class lacks is left alone.
    """
    calls: list[str] = []
    names = tuple(names)
    with contextlib.ExitStack() as stack:
        for cls in classes:
            for name in names:
                original = getattr(cls, name, None)
                if not callable(original):
                    continue

                def wrapper(*args: Any, _original: Callable[..., Any] = original,
                            _name: str = f"{cls.__name__}.{name}", **kwargs: Any) -> Any:
                    calls.append(_name)
                    return _original(*args, **kwargs)

                stack.enter_context(mock.patch.object(cls, name, wrapper))
        yield calls
