"""What lesson 05's exercises share: the lesson's name, the stored results' seeds, watching autograd.

Each check runs the learner's function on seeded inputs the notebook never prints and compares the
result with results stored as data (``expected/lesson05-*.json``), computed on the grader's side
(``course_tools.grade.judges.lesson05``): no reference answer ships here as code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

import torch

from course_utils.checks import expected as stored

LESSON = "05_backward"
CHECK_SEEDS = (0, 3)  # the seeds whose expected results are stored; the notebook's checks use the default, 3

# The library calls an exercise forbids, found by the grader in the submitted source (course_tools.grade.source_scan):
# the gradient is to come from values of f, or from the formula, not from autograd. The names are autograd's
# entry points, not all of torch.autograd: torch.no_grad (torch.autograd.grad_mode) stays allowed.
AUTOGRAD = ("torch.autograd.grad", "torch.autograd.backward", "torch.autograd.functional", "torch.func",
            "torch.Tensor.backward")


def stored_results(name: str, seed: int) -> Any:
    """The stored expected results ``name`` for the check inputs of ``seed``."""
    if seed not in CHECK_SEEDS:
        raise ValueError(f"the lesson 05 checks run with seed in {CHECK_SEEDS}, not {seed!r}: "
                         "their expected results are stored for those inputs only")
    return stored.load(name)[str(seed)]


@contextlib.contextmanager
def autograd_calls() -> Iterator[list[str]]:
    """Count calls of torch.autograd.backward (which Tensor.backward uses) and torch.autograd.grad.

    torch.autograd.functional and torch.func end in these two as well. The originals still run,
    so code under test behaves as usual.
    """
    calls: list[str] = []
    original_backward, original_grad = torch.autograd.backward, torch.autograd.grad

    def backward(*args: Any, **kwargs: Any) -> Any:
        calls.append("backward")
        return original_backward(*args, **kwargs)

    def grad(*args: Any, **kwargs: Any) -> Any:
        calls.append("grad")
        return original_grad(*args, **kwargs)

    with mock.patch.object(torch.autograd, "backward", backward), mock.patch.object(torch.autograd, "grad", grad):
        yield calls


def close(a: torch.Tensor, b: torch.Tensor, rtol: float, atol: float) -> bool:
    """``a`` has ``b``'s shape and is close to it (compared in float64)."""
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), rtol=rtol, atol=atol))


def worst_element(result: torch.Tensor, reference: torch.Tensor) -> str:
    """Where a result is furthest from the stored one, as a failure's ``found:`` line says it."""
    difference = (result.detach().double() - reference.double()).abs()
    index = tuple(int(i) for i in torch.unravel_index(difference.argmax(), difference.shape))
    return (f"at index {list(index)}: {result[index].item():.6g}, expected {reference[index].item():.6g} "
            f"(largest difference {difference.max().item():.3g})")


def probe_value(result: Any) -> torch.Tensor | None:
    """A plain tensor copy of ``result``, or None when it is no tensor (a value the judge rejects)."""
    return result.detach().clone().as_subclass(torch.Tensor) if isinstance(result, torch.Tensor) else None
