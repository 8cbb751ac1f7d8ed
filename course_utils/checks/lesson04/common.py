"""What lesson 04's exercises share: the lesson's name, the sections a diagnosis points back to, the checks' seeds.

Importing this module has no side effects.
"""

from __future__ import annotations

from typing import Any

import torch

LESSON = "04_loss"
CROSS_ENTROPY = "1 · `nn.CrossEntropyLoss`: raw logits in, one number out"
DOUBLE_SOFTMAX = "3 · The double-softmax bug"
OTHER_LOSSES = "4 · Other tasks, other losses: `nn.MSELoss` and `nn.BCEWithLogitsLoss`"
REDUCTION = "5 · `reduction`: mean or sum"
WEIGHTS_SMOOTHING = "6 · Class weights and label smoothing"
STABILITY = "7 · Numerical stability: the log-sum-exp trick"

# The seeds whose expected results are stored: the notebook's check cells' and the tests'.
CHECK_SEEDS = {"values": (1, 2, 3, 4011), "stability": (1, 2, 3, 4021), "weights": (1, 2, 3, 4031),
               "choose": (1, 2, 3, 4041)}


def same(found: Any, expected: torch.Tensor, rtol: float = 1e-6, atol: float = 1e-6) -> bool:
    """``found`` is a tensor of ``expected``'s shape, close to it (NaN is never close)."""
    return (isinstance(found, torch.Tensor) and found.shape == expected.shape
            and bool(torch.allclose(found.detach().double(), expected.detach().double(), rtol=rtol, atol=atol,
                                    equal_nan=False)))


def plain(result: Any) -> torch.Tensor | None:
    """A plain tensor copy of ``result``, or None when it is no tensor (a value the judge rejects)."""
    return result.detach().clone().as_subclass(torch.Tensor) if isinstance(result, torch.Tensor) else None
