"""Argument checks shared by the public helpers, so every error names the argument and the fix."""

from __future__ import annotations

import numbers

import torch


def require_int(value: object, name: str, *, minimum: int) -> int:
    """Return ``value`` as an ``int`` if it is an integer of at least ``minimum``, else raise.

    Booleans are rejected on purpose: ``True`` as a batch size is always a mistake.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        qualifier = "positive" if minimum == 1 else f"at least {minimum}"
        raise ValueError(f"{name} must be {qualifier}, got {value}")
    return int(value)


def require_tensor(
    value: object,
    name: str,
    *,
    ndim: int | None = None,
    floating: bool | None = None,
) -> torch.Tensor:
    """Return ``value`` if it is a tensor of the requested rank and kind, else raise.

    ``floating=True`` asks for a floating-point dtype, ``False`` for an integer dtype.
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(
            f"{name} must be {ndim}-D, got shape {tuple(value.shape)} ({value.ndim}-D)"
        )
    if floating is True and not value.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {value.dtype}")
    if floating is False and (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool):
        raise TypeError(f"{name} must have an integer dtype (for example torch.long), got {value.dtype}")
    return value
