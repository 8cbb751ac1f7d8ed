"""Tamper checks run before every test cell when a class is graded (``course grade``).

A submission runs in the same Python process as the test cells that grade it, so it could replace
``torch.allclose``, ``torch.testing.assert_close`` or a ``course_utils`` check with one that always
passes. :func:`guard` undoes replaced ``course_utils`` functions by re-running the modules' code,
and fails the cell when PyTorch's comparison functions are not the genuine ones.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

import torch

from course_utils.checks.core import CheckFailed

# Each comparison function as the notebook sees it, and the genuine one where PyTorch defines it.
_CHECKED: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
    "torch.allclose": (lambda: torch.allclose, lambda: torch._C._VariableFunctions.allclose),
    "torch.isclose": (lambda: torch.isclose, lambda: torch._C._VariableFunctions.isclose),
    "torch.equal": (lambda: torch.equal, lambda: torch._C._VariableFunctions.equal),
    "torch.testing.assert_close": (lambda: torch.testing.assert_close,
                                   lambda: importlib.import_module("torch.testing._comparison").assert_close),
}
_TENSOR_METHODS = ("allclose", "isclose", "equal", "__eq__", "__ne__", "__bool__", "item", "tolist")


def replaced_torch_functions() -> list[str]:
    """Names of PyTorch comparison functions that are no longer the genuine ones."""
    replaced = [name for name, (current, genuine) in _CHECKED.items() if current() is not genuine()]
    for method in _TENSOR_METHODS:
        attribute = torch.Tensor.__dict__.get(method)
        genuine = torch._C.TensorBase.__dict__.get(method)
        if attribute is not None and genuine is not None and attribute is not genuine:
            replaced.append(f"torch.Tensor.{method}")
    return replaced


def restore_course_utils() -> None:
    """Re-run the code of every loaded ``course_utils`` module, so patched functions are the real ones again."""
    for name in sorted(n for n in list(sys.modules) if n == "course_utils" or n.startswith("course_utils.")):
        module = sys.modules[name]
        if getattr(module, "__spec__", None) is not None and name != __name__:
            importlib.reload(module)


def guard() -> None:
    """Restore ``course_utils``; fail if the submission replaced PyTorch's comparison functions."""
    restore_course_utils()
    replaced = replaced_torch_functions()
    if replaced:
        raise CheckFailed(
            "\n✗ the notebook replaced functions the checks rely on\n"
            f"    expected: the genuine {', '.join(sorted(_CHECKED))}\n"
            f"    found:    replaced {', '.join(replaced)}\n"
            "    hint:     remove the code that reassigns PyTorch functions; answers are checked, not the checks."
        )
