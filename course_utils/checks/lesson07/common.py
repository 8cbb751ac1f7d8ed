"""What lesson 07's exercises share: the lesson's name, its scenarios, and how a finding becomes a failure.

Two kinds of scenario live here, built the same wherever they are used:

- :class:`Scenario`, a seeded model, optimiser and loader on which the visible checks run the
  learner's functions (the exercise modules name theirs; the grader's ``course expected`` computes
  the stored results for them);
- :func:`loop_scenario` and :func:`one_sample_scenario`, which the grader's re-check draws from a
  seed chosen at grading time: the kernel's probes and the grader's judges build the same inputs.

A check collects :class:`Finding` objects (a catalogue code and what happened, in words and counts)
and raises the first with :func:`fail`. Importing this module has no side effects.
"""

from __future__ import annotations

import sysconfig
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

import torch
import tqdm
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils.checks.core import CheckFailed
from course_utils.checks.lesson07.instruments import ProbeSGD
from course_utils.data import RAW_MAX, make_course_data
from course_utils.diagnoses import catalogue, raise_diagnosis
from course_utils.recipe import DEFAULT_RECIPE, TrainingRecipe, default_model

LESSON = "07_epoch_loop_gpu"


# --- findings and failures ---------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    """One bug seen in a run: its catalogue code and what happened, in words and counts."""

    code: str
    found: str


def fail(findings: Iterable[Finding], *, function: str, expected: str) -> NoReturn:
    """Raise :class:`CheckFailed` for the first finding, listing the others as ``also:`` lines with what they saw."""
    unique: dict[str, Finding] = {}
    for finding in findings:
        unique.setdefault(finding.code, finding)
    main, *others = unique.values()
    diagnoses = catalogue()
    # each other finding's own counts go beside its diagnosis, so every ``also:`` line says what happened
    also = [replace(diagnoses[other.code], what=f"{diagnoses[other.code].what} ({other.found})") for other in others]
    raise_diagnosis(diagnoses[main.code], expected=expected, found=main.found, subject=function, also=also)


def times(count: int) -> str:
    """'1 time', '3 times'."""
    return f"{count} time" if count == 1 else f"{count} times"


def of(part: int, whole: int, noun: str) -> str:
    """'2 of 3 batches'."""
    return f"{part} of {whole} {noun}"


_NOT_LEARNER_CODE = tuple({str(Path(module.__file__).parent) for module in (torch, tqdm)}
                          | {str(Path(__file__).parents[2])}  # course_utils
                          | {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")})
_CRASH_CODES = {"train_one_epoch": "train-crashed", "evaluate": "eval-crashed", "fit": "fit-crashed"}


def where_it_raised(error: BaseException) -> str:
    """'at line 4 of evaluate: total += batch["x"]': the last place in the learner's own code the error passed."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if not frame.filename.startswith(_NOT_LEARNER_CODE)]
    if not frames:
        return "inside a library call"
    frame = frames[-1]
    line = (frame.line or "").strip()
    return f"at line {frame.lineno} of {frame.name}" + (f": {line[:120]}" if line else "")


def crashed(name: str, error: Exception, *,
            on: str = "a model, loader, criterion and device like the lesson's") -> CheckFailed:
    """The message for a learner's function that raised instead of returning: which error, where, how to see it.

    Raise it ``from error``: the failure then shows the learner's frames above the message.
    """
    bug = catalogue()[_CRASH_CODES[name]]
    lines = f"{type(error).__name__}: {error}".strip().splitlines() or [type(error).__name__]
    summary = lines[0][:200]
    return CheckFailed(
        f"\n✗ {bug.what}: {summary} [{bug.code}]\n"
        f"    expected: {name} to return a result on {on}\n"
        f"    found:    {type(error).__name__} raised {where_it_raised(error)}\n"
        f"    hint:     {bug.hint}"
    )


# --- the visible checks' scenarios ---------------------------------------------------------------

@dataclass(frozen=True)
class Scenario:
    """A seeded model, optimiser settings and data on which a learner's function is run.

    The visible checks run their scenarios (``TRAIN_SCENARIOS`` of ex1, ``EVALUATE_SCENARIOS`` of
    ex2) and compare with results stored as data (``course_utils/checks/expected/lesson07-*.json``),
    which the grader's side computes with its reference loop (``course expected 07_epoch_loop_gpu``).
    """

    name: str  # the key of its results in the stored file
    seed: int
    n_samples: int
    batch_size: int
    recipe: TrainingRecipe = field(default_factory=lambda: replace(DEFAULT_RECIPE, hidden=16))

    def describe(self) -> str:
        """The scenario's loader in words, as a failure's ``expected:`` line names it."""
        if self.n_samples == 1:
            return "a loader of 1 sample"
        return f"a loader of {self.n_samples} samples in batches of {self.batch_size}"

    def data(self) -> TensorDataset:
        """The scenario's samples, scaled as the course scales them."""
        features, targets = make_course_data(self.n_samples, seed=1000 + self.seed)
        return TensorDataset(features / RAW_MAX, targets)

    def loader(self, shuffle: bool) -> DataLoader:
        """A loader over :meth:`data`, shuffled (when asked) in the same order every time."""
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.data(), batch_size=self.batch_size, shuffle=shuffle, generator=generator)

    def network(self) -> nn.Module:
        """The scenario's model, freshly seeded."""
        return default_model(replace(self.recipe, seed=self.seed))

    def optimizer(self, parameters: Any) -> torch.optim.SGD:
        """SGD with the recipe's settings that inspects every step (see :class:`ProbeSGD`)."""
        return ProbeSGD(parameters, lr=self.recipe.learning_rate, momentum=self.recipe.momentum)


# --- the re-check's scenarios, built the same in the kernel and in the grader ------------------------

LoopScenario = tuple[nn.Module, DataLoader, DataLoader, torch.optim.Optimizer]


def loop_scenario(seed: int) -> LoopScenario:
    """A seeded small model, a shuffled training loader, a validation loader and an SGD optimiser."""
    generator = torch.Generator().manual_seed(seed)
    n_train = 120 + int(torch.randint(0, 160, (1,), generator=generator))
    batch = (32, 50, 64)[int(torch.randint(0, 3, (1,), generator=generator))]
    features, targets = make_course_data(n_train, seed=5000 + seed)
    val_features, val_targets = make_course_data(90, seed=6000 + seed)
    model = default_model(replace(DEFAULT_RECIPE, seed=seed, hidden=12))
    train = DataLoader(TensorDataset(features / RAW_MAX, targets), batch_size=batch, shuffle=True,
                       generator=torch.Generator().manual_seed(seed))
    val = DataLoader(TensorDataset(val_features / RAW_MAX, val_targets), batch_size=batch)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return model, train, val, optimizer


def one_sample_scenario(seed: int) -> LoopScenario:
    """loop_scenario's smallest case: one training sample and one validation sample, a model seeded by ``seed``."""
    features, targets = make_course_data(1, seed=7000 + seed)
    val_features, val_targets = make_course_data(1, seed=8000 + seed)
    model = default_model(replace(DEFAULT_RECIPE, seed=seed + 1, hidden=12))
    train = DataLoader(TensorDataset(features / RAW_MAX, targets), batch_size=32, shuffle=True,
                       generator=torch.Generator().manual_seed(seed))
    val = DataLoader(TensorDataset(val_features / RAW_MAX, val_targets), batch_size=32)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return model, train, val, optimizer


# (prefix of the values' keys, builder): the probes of exercises 1 and 2 send back one set of values per case
LOOP_CASES: tuple[tuple[str, Callable[[int], LoopScenario]], ...] = (
    ("", loop_scenario), ("one_sample_", one_sample_scenario))


def parameters(model: nn.Module) -> list[torch.Tensor]:
    """Copies of ``model``'s parameters, as a probe sends them back."""
    return [p.detach().clone() for p in model.parameters()]


def number(value: Any) -> float | None:
    """``value`` as a float when it is a Python int or float; None otherwise (a value the judges reject)."""
    return float(value) if type(value) in (int, float) else None
