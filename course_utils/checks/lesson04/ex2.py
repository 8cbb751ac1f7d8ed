"""Lesson 04, Exercise 2 · Choose the loss: its diagnoses, its visible check, and its re-check probe.

``choose_loss`` is recognised by what its loss module computes on seeded model outputs: the right
module's value and each look-alike's (``nn.NLLLoss``, ``nn.BCELoss``, ``reduction='sum'``, ...) are
stored data (``checks/expected/lesson04-choose-loss.json``, computed on the grader's side).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from course_utils.checks import expected as stored
from course_utils.checks.learner import call_learner, error_text
from course_utils.checks.lesson04.common import CROSS_ENTROPY, LESSON, OTHER_LOSSES, REDUCTION, plain, same
from course_utils.diagnoses import Exercise, fail_with

EXERCISE = Exercise(LESSON, "ex2-tests", "Exercise 2 · Choose the loss")

DIAGNOSES = EXERCISE.diagnoses(
    ("loss-crashed", "choose_loss raised an error for a valid task",
     "run choose_loss(\"multiclass\") in a cell of your own to see the full traceback.", "interface"),
    ("loss-not-pair", "choose_loss must return a pair (loss module, target dtype)",
     "return nn.CrossEntropyLoss(), torch.int64 (and so on for the other tasks).", "interface"),
    ("loss-not-module", "choose_loss returned something that is not a loss module object",
     "return an instance such as nn.CrossEntropyLoss(), with the brackets: not the class, not F.cross_entropy.",
     "interface"),
    ("loss-float-targets", "choose_loss(\"multiclass\") asks for float targets",
     "cross-entropy's targets are class indices: torch.int64. Float targets would be read as probabilities "
     "per class (or fail), not as labels.", "dtypes", CROSS_ENTROPY),
    ("loss-integer-targets", "choose_loss asks for integer targets where the loss needs floats",
     "MSELoss and BCEWithLogitsLoss compare numbers: their targets are float32 (0.0 / 1.0 for yes / no).",
     "dtypes", OTHER_LOSSES),
    ("loss-target-dtype", "choose_loss returned the wrong target dtype",
     "multiclass: torch.int64; regression and binary: torch.float32.", "dtypes"),
    ("loss-bce-on-logits", "choose_loss(\"binary\") returns nn.BCELoss, which expects probabilities, not logits",
     "use nn.BCEWithLogitsLoss: it takes the raw logit and applies the sigmoid itself, stably.",
     "loss", OTHER_LOSSES),
    ("loss-nll-on-logits", "choose_loss(\"multiclass\") returns nn.NLLLoss, which expects log-probabilities, "
     "not logits", "use nn.CrossEntropyLoss: it applies log-softmax to the raw logits itself.",
     "loss", CROSS_ENTROPY),
    ("loss-reduction-sum", "choose_loss returns a loss with reduction='sum'",
     "keep the default reduction='mean', so the gradient's scale does not depend on the batch size.",
     "loss", REDUCTION),
    ("loss-ce-on-one-logit", "choose_loss(\"binary\") returns nn.CrossEntropyLoss, whose loss on a single "
     "logit is always 0: with one class, the softmax is always 1",
     "a yes/no task with one logit needs nn.BCEWithLogitsLoss (float 0.0 / 1.0 targets); nn.CrossEntropyLoss "
     "needs one logit per class, at least two.", "loss", OTHER_LOSSES),
    ("loss-wrong-for-task", "choose_loss returns a loss meant for another task",
     "multiclass: nn.CrossEntropyLoss; regression: nn.MSELoss; binary: nn.BCEWithLogitsLoss.", "loss"),
    ("loss-shared-instance", "choose_loss returns the same loss object at every call",
     "create the module inside the function (return nn.CrossEntropyLoss(), ...), so each caller gets its own.",
     "interface"),
)
FORBIDDEN_CALLS = ()

TASKS = ("multiclass", "regression", "binary")


def task_outputs(task: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded model outputs and targets of ``task``'s shape and kind (class indices, numbers, 0.0 / 1.0)."""
    generator = torch.Generator().manual_seed(seed)
    n = 17 + seed % 11
    if task == "multiclass":
        return torch.randn(n, 5, generator=generator) * 3, torch.randint(0, 5, (n,), generator=generator)
    if task == "regression":
        return torch.randn(n, 1, generator=generator) * 10, torch.randn(n, 1, generator=generator) * 10
    return torch.randn(n, 1, generator=generator) * 4, torch.randint(0, 2, (n, 1), generator=generator).float()


def _choose(choose_loss: Callable[[str], Any], task: str) -> Any:
    chosen, error = call_learner(choose_loss, task)
    if error is not None:
        fail_with("loss-crashed", expected="(loss module, target dtype)", found=error_text(error),
                  subject=f'choose_loss("{task}")')
    return chosen


def check_choose_loss(choose_loss: Callable[[str], Any], *, seed: int) -> None:
    """Each task's loss module and target dtype, recognised by what the module computes on seeded outputs.

    The lesson's table (loss and target dtype per task), and what the right module and each look-alike
    compute on the check's outputs, are stored data (``lesson04-choose-loss``).
    """
    wants = stored.for_seed("lesson04-choose-loss", seed)
    for task in TASKS:
        want = wants[task]
        dtype = getattr(torch, want["dtype"])
        subject = f'choose_loss("{task}")'
        expected = f"(nn.{want['loss']}(), torch.{want['dtype']})"
        chosen = _choose(choose_loss, task)
        if not (isinstance(chosen, tuple) and len(chosen) == 2):
            fail_with("loss-not-pair", expected=expected, found=f"{chosen!r}"[:120], subject=subject)
        module, target_dtype = chosen
        if not isinstance(module, nn.Module):
            fail_with("loss-not-module", expected=expected, found=f"{module!r}"[:120], subject=subject)
        if target_dtype != dtype:
            floating = isinstance(target_dtype, torch.dtype) and target_dtype.is_floating_point
            code = ("loss-float-targets" if task == "multiclass" and floating else
                    "loss-integer-targets" if task != "multiclass" and isinstance(target_dtype, torch.dtype)
                    and not floating else "loss-target-dtype")
            fail_with(code, expected=expected, found=f"target dtype {target_dtype}", subject=subject)
        outputs, targets = task_outputs(task, seed + TASKS.index(task))
        reference = torch.tensor(want["value"], dtype=torch.float64)
        try:
            value = module(outputs, targets.to(dtype))
        except Exception as error:  # noqa: BLE001 - the module the learner chose cannot take the task's values
            code = "loss-bce-on-logits" if isinstance(module, nn.BCELoss) or "between 0 and 1" in str(error) \
                else "loss-wrong-for-task"
            fail_with(code, expected=f"{expected}: {reference.item():.5f} on raw outputs",
                      found=f"{type(module).__name__}, which raised {error_text(error)}", subject=subject)
        if not same(value, reference, rtol=1e-5, atol=1e-5):
            for code, name, lookalike in want["lookalikes"]:
                if same(value, torch.tensor(lookalike, dtype=torch.float64), rtol=1e-5, atol=1e-5):
                    fail_with(code, expected=f"{expected}: {reference.item():.5f}",
                              found=f"{value.item():.5f}, what {name} gives", subject=subject)
            fail_with("loss-wrong-for-task", expected=f"{expected}: {reference.item():.5f}",
                      found=f"{type(module).__name__}: "
                            f"{value.item() if isinstance(value, torch.Tensor) else value!r}",
                      subject=subject)
        again = _choose(choose_loss, task)
        if isinstance(again, tuple) and again and again[0] is module:
            fail_with("loss-shared-instance", expected="a new module at every call", found="the same object twice",
                      subject=subject)


# --- the grader's re-check (course_utils.verdict_probes) ---------------------------------------------

def task_scenario(seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Exercise 2: seeded model outputs and targets for each task."""
    return {task: task_outputs(task, seed + index) for index, task in enumerate(TASKS)}


def probe(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    """The values the grader judges for ex2-tests: per task, what choose_loss returned and its module's loss."""
    choose_loss = ns["choose_loss"]
    values: dict[str, Any] = {}
    for task, (outputs, targets) in task_scenario(seed).items():
        chosen = choose_loss(task)
        pair = isinstance(chosen, tuple) and len(chosen) == 2
        module, dtype = chosen if pair else (None, None)
        is_module = isinstance(module, nn.Module)
        loss = module(outputs.clone(), targets.to(dtype)) if is_module and isinstance(dtype, torch.dtype) else None
        again = choose_loss(task)
        values[task] = {"pair": pair, "module": is_module,
                        "dtype": str(dtype) if isinstance(dtype, torch.dtype) else None, "loss": plain(loss),
                        "fresh": not (isinstance(again, tuple) and again and again[0] is module)}
    return values
