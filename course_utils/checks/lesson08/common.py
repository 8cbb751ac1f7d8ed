"""What lesson 08's exercises share: the lesson's name, the seeded task and re-check scenarios, a crash's message.

:class:`Task` is the seeded network and data set every single-process check runs the learner's
function on; :func:`verdict_case` draws the grader's re-check scenario of a seed, which the
kernel's probes (``probe`` of each exercise module) and the grader's judges
(``course_tools.grade.judges.lesson08``) both build from it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils.checks.core import CheckFailed
from course_utils.data import RAW_MAX, make_course_data
from course_utils.diagnoses import fail_with
from course_utils.recipe import DEFAULT_RECIPE, default_model

LESSON = "08_loop_at_scale"

VERDICT_LR, VERDICT_MOMENTUM, VERDICT_SCALE = 0.1, 0.9, 2.0 ** 10


@dataclass
class Task:
    """A seeded network and data set on which a learner's function runs."""

    seed: int = 0
    n_samples: int = 250
    batch_size: int = 25
    hidden: int = 16
    learning_rate: float = 0.1
    momentum: float = 0.9

    def dataset(self) -> TensorDataset:
        """The running example's samples, scaled to [0, 1]."""
        features, targets = make_course_data(self.n_samples, seed=1000 + self.seed)
        return TensorDataset(features / RAW_MAX, targets)

    def loader(self) -> DataLoader:
        """A shuffled loader whose order depends on the seed only."""
        return DataLoader(self.dataset(), batch_size=self.batch_size, shuffle=True,
                          generator=torch.Generator().manual_seed(self.seed))

    def network(self) -> nn.Module:
        """The lesson's small network, initialised from the seed."""
        return default_model(replace(DEFAULT_RECIPE, hidden=self.hidden, seed=self.seed))


@dataclass(frozen=True)
class VerdictCase:
    """One seeded scenario of the re-check: a task, and the settings the learner's function receives.

    The number of micro-batches always leaves a shorter last accumulation group, and the last batch
    is shorter than the others.
    """

    task: Task
    accumulation_steps: int
    epochs: int
    max_norm: float
    gamma: float  # ExponentialLR's factor
    inf_batch: int  # exercise 3: the batch whose gradients are made infinite
    amp_dtype: torch.dtype = torch.bfloat16  # exercise 3: bfloat16, or float16 (CPU autocast has both)


def picker(seed: int) -> Callable[[tuple | range], Any]:
    """Draws one of the options given, from a generator seeded by ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return lambda options: options[int(torch.randint(0, len(options), (1,), generator=generator))]


def verdict_case(seed: int) -> VerdictCase:
    """The scenario of ``seed`` (the same on the kernel's side and the grader's)."""
    pick = picker(seed)
    k, batch = pick((2, 3, 4)), pick((16, 20, 25, 32))
    n_batches = k * pick((1, 2, 3)) + pick(range(1, k))
    n_samples = (n_batches - 1) * batch + pick(range(1, batch))
    task = Task(seed=seed % 2**31, n_samples=n_samples, batch_size=batch, hidden=12,
                learning_rate=VERDICT_LR, momentum=VERDICT_MOMENTUM)
    case = VerdictCase(task, k, epochs=2, max_norm=pick((0.15, 0.2, 0.25, 0.3)), gamma=pick((0.7, 0.8, 0.9)),
                       inf_batch=pick(range(n_batches)))
    # Drawn last, so that the draws above stay what they were.
    return replace(case, epochs=pick((2, 3)), amp_dtype=pick((torch.bfloat16, torch.float16)))


def verdict_optimizer(model: nn.Module) -> torch.optim.SGD:
    """The optimizer every re-check scenario hands to the learner."""
    return torch.optim.SGD(model.parameters(), lr=VERDICT_LR, momentum=VERDICT_MOMENTUM)


def is_float(value: Any) -> bool:
    """A Python number (not a bool, not a tensor)."""
    return isinstance(value, (int, float)) and not isinstance(value, (bool, torch.Tensor))


def as_float(value: Any) -> float | None:
    """A returned number as the probes send it: a float, or None for anything else."""
    return float(value) if is_float(value) else None


def values_of(parameters: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """Detached copies of ``parameters``, as a probe sends them."""
    return [p.detach().clone() for p in parameters]


def short_error(error: BaseException | str) -> str:
    """An exception, or a rank's traceback text, in one line: its last ``...Error: ...`` line."""
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}"
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    named = [line for line in lines if re.match(r"^[\w.]*(Error|Exception|Interrupt)\b", line)]
    return (named or lines or [error])[-1]


def crashed(name: str, error: BaseException | str, codes: Iterable[str] = (), where: str = "") -> CheckFailed:
    """The failure for a learner's function that raised: named by ``codes`` when what was seen before explains it.

    With no code, the message names no diagnosis: the traceback shown above it is the finding.
    """
    unique = list(dict.fromkeys(codes))
    if unique:
        found = f"{where}; then {short_error(error)}" if where else short_error(error)
        try:
            fail_with(unique[0], expected=f"{name} to run to the end", found=found, subject=name, also=unique[1:])
        except CheckFailed as failure:
            return failure
    return CheckFailed(
        f"\n✗ {name} raised {short_error(error)}\n"
        f"    expected: {name} to run on a model, loader and optimizer like those of the lesson\n"
        f"    found:    an exception (its traceback is shown above this message)\n"
        f"    hint:     the traceback above ends at the line of your function that raised: fix that line.")

