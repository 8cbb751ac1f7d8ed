"""Comparisons the judges share: received values against PyTorch's answer, with the re-check's tolerances."""

from __future__ import annotations

import math
from typing import Any

import torch

TOLERANCE = dict(rtol=1e-4, atol=1e-5)


def tensors_close(found: Any, expected: list[torch.Tensor], **tolerance: float) -> bool:
    """``found`` is a list of float tensors of the expected shapes, each close to its expected tensor.

    ``tolerance``: ``torch.allclose``'s ``rtol`` and ``atol`` (:data:`TOLERANCE` when none is given).
    """
    return tensors_like(found, expected) and all(
        bool(torch.allclose(f.double(), e.double(), **(tolerance or TOLERANCE))) for f, e in zip(found, expected))


def close(found: Any, expected: float, *, rel_tol: float = 1e-4, abs_tol: float = 1e-5) -> bool:
    """``found`` is a float close to ``expected``."""
    return type(found) is float and math.isclose(found, expected, rel_tol=rel_tol, abs_tol=abs_tol)


def tensors_like(found: Any, expected: list[torch.Tensor]) -> bool:
    """``found`` is a list of float tensors of the expected shapes (whatever their values)."""
    return (isinstance(found, list) and len(found) == len(expected)
            and all(type(f) is torch.Tensor and f.shape == e.shape and f.is_floating_point()
                    for f, e in zip(found, expected)))


def tensor_close(found: Any, expected: torch.Tensor, *, rtol: float = TOLERANCE["rtol"],
                 atol: float = TOLERANCE["atol"], same_dtype: bool = False) -> bool:
    """``found`` is one float tensor of ``expected``'s shape (and, if asked, dtype), close to it (the re-check's
    tolerances unless given)."""
    return (type(found) is torch.Tensor and found.shape == expected.shape and found.is_floating_point()
            and (not same_dtype or found.dtype == expected.dtype)
            and bool(torch.allclose(found.double(), expected.double(), rtol=rtol, atol=atol)))
