"""Lesson 03, Exercise 3 · Count trainable parameters: its diagnoses, its visible check, and its re-check probe.

The check counts the parameters of seeded models that tell the typical mistakes apart (a frozen layer,
BatchNorm's buffers, a layer used twice, tied weights, a module that is no ``nn.Sequential``); the right
counts and each mistake's counts are stored data (``checks/expected/lesson03-count-parameters.json``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from course_utils.checks import expected as stored
from course_utils.checks.learner import call_learner, error_text
from course_utils.checks.lesson03.common import LESSON, PARAMETERS, sizes_for
from course_utils.diagnoses import Exercise, fail_with

EXERCISE = Exercise(LESSON, "ex3-tests", "Exercise 3 · Count trainable parameters")

DIAGNOSES = EXERCISE.diagnoses(
    ("count-crashed", "count_parameters raised an error on a model",
     "use only what every nn.Module has: model.parameters().", "interface"),
    ("count-hard-coded", "count_parameters returns the lesson's numbers (451, 99, ...) instead of counting",
     "this is not allowed: the check uses models of other sizes. Count them: "
     "sum(p.numel() for p in model.parameters() if p.requires_grad).", "not-allowed"),
    ("count-sequential-only", "count_parameters indexes or loops over the model's layers (model[0], "
     "for layer in model), which works only for an nn.Sequential",
     "loop over model.parameters(): it works for any nn.Module, Sequential or not, whatever its layers.",
     "interface", PARAMETERS),
    ("count-not-int", "count_parameters did not return a Python int",
     "p.numel() is an int and so is a sum of them; do not return a tensor, a float or a NumPy number.", "interface"),
    ("count-includes-frozen", "count_parameters counts frozen parameters (requires_grad=False) too",
     "count only trainable parameters: ... for p in model.parameters() if p.requires_grad.", "gradients"),
    ("count-tensors-not-numbers", "count_parameters counts parameter tensors, not the numbers inside them",
     "each parameter is a tensor of many numbers: add p.numel() for each, not 1.", "shapes", PARAMETERS),
    ("count-weights-only", "count_parameters skips the biases",
     "every parameter counts, weights and biases: iterate over model.parameters().", "shapes", PARAMETERS),
    ("count-not-numel", "count_parameters adds up the sizes of the dimensions instead of multiplying them",
     "a weight of shape (32, 10) holds 32 * 10 = 320 numbers: use p.numel().", "shapes", PARAMETERS),
    ("count-shared-twice", "count_parameters counts a parameter used twice twice (a layer used twice, or a "
     "weight tied between two layers)",
     "model.parameters() lists each parameter once even if its layer is used twice or its weight is shared: "
     "iterate over it, not over the layers or modules.", "shapes", PARAMETERS),
    ("count-buffers", "count_parameters counts buffers (such as BatchNorm's running statistics) as parameters",
     "model.state_dict() also holds buffers, tensors that are saved with the model but not trained: "
     "count model.parameters() only.", "shapes", PARAMETERS),
    ("count-only-linear", "count_parameters counts only the parameters of nn.Linear layers",
     "other layers have parameters too (BatchNorm has a weight and a bias): iterate over model.parameters().",
     "shapes", PARAMETERS),
    ("count-wrong", "count_parameters returned a wrong count",
     "sum(p.numel() for p in model.parameters() if p.requires_grad).", "shapes"),
)
FORBIDDEN_CALLS = ()

# The numbers the lesson prints for its own model: an answer that returns them for another model
# was written into the code, not counted.
LESSON_COUNTS = frozenset({451, 99, 352})


class _Custom(nn.Module):
    """A model that is not an nn.Sequential (it cannot be indexed), with a parameter of its own."""

    def __init__(self, n_in: int, n_hidden: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(n_in, n_hidden), nn.ReLU())
        self.scale = nn.Parameter(torch.ones(n_hidden))
        self.head = nn.Linear(n_hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x) * self.scale)


def _count_models(seed: int) -> dict[str, nn.Module]:
    """Models whose counts tell the typical mistakes apart (sizes drawn from ``seed``)."""
    a, b, c = sizes_for(seed)
    torch.manual_seed(seed)
    plain = nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Linear(b, c))
    frozen = copy.deepcopy(plain)
    frozen[0].requires_grad_(False)
    with_norm = nn.Sequential(nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU(), nn.Linear(b, c))
    with_norm[3].bias.requires_grad_(False)
    shared_layer = nn.Linear(b, b)
    shared = nn.Sequential(nn.Linear(a, b), nn.ReLU(), shared_layer, nn.ReLU(), shared_layer)
    tied = nn.Sequential(nn.Linear(b, b), nn.ReLU(), nn.Linear(b, b))
    tied[2].weight = tied[0].weight  # weight tying: two layers, one weight
    return {
        f"Linear({a}, {b}) -> ReLU -> Linear({b}, {c})": plain,
        f"the same model with its first Linear layer frozen": frozen,
        "a model with BatchNorm (its running statistics are buffers) and one frozen bias": with_norm,
        "a model that uses one Linear layer twice": shared,
        "a model whose two Linear layers share (tie) one weight": tied,
        "an nn.Module subclass (not an nn.Sequential) with an nn.Parameter of its own": _Custom(a, b),
    }


def check_count_parameters(count_parameters: Callable[[nn.Module], Any], *, seed: int) -> None:
    """Count the trainable parameters of several seeded models (frozen layers, BatchNorm, a shared layer, ...).

    The right counts, and the counts of each typical mistake, are stored data (``lesson03-count-parameters``):
    ``{"expected": [...], "mistakes": [[code, [...]], ...]}``, one count per model, the mistakes most specific first.
    """
    models = _count_models(seed)
    want = stored.for_seed("lesson03-count-parameters", seed)
    expected = dict(zip(models, want["expected"]))
    answers: dict[str, Any] = {}
    crash: tuple[str, BaseException] | None = None
    for description, model in models.items():
        answer, error = call_learner(count_parameters, copy.deepcopy(model))
        if error is None:
            answers[description] = answer
        else:
            crash = crash or (description, error)
    wrong = {d: a for d, a in answers.items() if not (type(a) is int and a == expected[d])}
    if wrong and all(type(a) is int and a in LESSON_COUNTS for a in answers.values()):
        description, answer = next(iter(wrong.items()))
        fail_with("count-hard-coded", expected=f"{expected[description]}", found=f"{answer}",
                  subject=f"count_parameters of {description}")
    for description, answer in answers.items():
        if type(answer) is not int:
            fail_with("count-not-int", expected=f"the int {expected[description]}",
                      found=f"{answer!r} (a {type(answer).__name__})", subject=f"count_parameters of {description}")
    if wrong:
        description, answer = next(iter(wrong.items()))
        subject = f"count_parameters of {description}"
        for code, counts in want["mistakes"]:
            by_model = dict(zip(models, counts))
            if all(by_model[d] == a for d, a in answers.items()):
                fail_with(code, expected=f"{expected[description]}", found=f"{answer}", subject=subject)
    if crash:
        description, error = crash
        sequential_only = isinstance(error, (TypeError, IndexError, AttributeError)) \
            and not isinstance(models[description], nn.Sequential)
        fail_with("count-sequential-only" if sequential_only else "count-crashed",
                  expected=f"{expected[description]}", found=error_text(error),
                  subject=f"count_parameters of {description}")
    if wrong:
        fail_with("count-wrong", expected=f"{expected[description]}", found=f"{answer}", subject=subject)


# --- the grader's re-check (course_utils.verdict_probes) ---------------------------------------------

def count_scenario(seed: int) -> dict[str, nn.Module]:
    """Exercise 3's re-check: models whose counts tell the typical mistakes apart."""
    with torch.random.fork_rng(devices=[]):
        return _count_models(seed)


def probe(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    """The values the grader judges for ex3-tests: count_parameters' answer for each model."""
    answers = [ns["count_parameters"](copy.deepcopy(model)) for model in count_scenario(seed).values()]
    # an answer that is no int goes back as the name of its type, which the judge rejects
    return {"counts": [answer if type(answer) is int else f"a {type(answer).__name__}" for answer in answers]}
