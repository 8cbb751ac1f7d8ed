"""What lesson 03's exercises share: the lesson's name, the sections a diagnosis points back to, seeded sizes.

Importing this module has no side effects.
"""

from __future__ import annotations

from typing import Any

import torch

LESSON = "03_forward_pass"
LAYERS = "2 · `Linear` and `ReLU`"
LOGITS = "5 · Logits, probabilities, predicted classes"
PARAMETERS = "3 · Parameters: how many, where, what type"

# The seeds of predict's and count_parameters' checks whose expected results are stored
# (``checks/expected/lesson03-*.json``, computed on the grader's side): the notebook's and the tests'.
CHECK_SEEDS = (1, 2, 3, 3041, 3051)


def sizes_for(seed: int) -> tuple[int, int, int]:
    """Three different layer sizes (in, hidden, out) drawn from ``seed``, never the running example's 10, 32, 3."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        n_in, n_hidden, n_out = (int(torch.randint(low, high, (1,), generator=generator))
                                 for low, high in ((4, 13), (5, 41), (2, 7)))
        if len({n_in, n_hidden, n_out}) == 3 and (n_in, n_hidden, n_out) != (10, 32, 3):
            return n_in, n_hidden, n_out


def close(found: Any, expected: torch.Tensor) -> bool:
    """``found`` is a tensor of ``expected``'s shape, equal to it up to rounding."""
    return (isinstance(found, torch.Tensor) and found.shape == expected.shape
            and bool(torch.allclose(found.detach().double(), expected.detach().double(), rtol=1e-5, atol=1e-6)))


def plain(result: Any) -> torch.Tensor | None:
    """A plain tensor copy of ``result``, or None when it is no tensor (a value the judge rejects)."""
    return result.detach().clone().as_subclass(torch.Tensor) if isinstance(result, torch.Tensor) else None
