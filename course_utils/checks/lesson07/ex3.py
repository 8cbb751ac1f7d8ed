"""Lesson 07, Exercise 3: ``fit``, judged on its own, on a CPU-only machine; and the convergence verdict.

``fit`` is run on the course's recipe with the learner's ``train_one_epoch`` and ``evaluate``
replaced, for the length of the run, by stand-ins (``fit`` finds them by their global names). The
stand-ins train nothing: they record how they were called (how often per epoch, in which order,
with which arguments) and return fixed, made-up numbers, different in every call, so the history
must hold exactly what they returned, epoch by epoch. So ``fit`` earns or loses its points by what
``fit`` itself does, whatever the state of exercises 1 and 2, and this module holds no correct
loop. The model records its moves to a device (``.to``, ``.cuda``) and every tqdm bar the run
creates counts its steps, so the device move and the progress bar over the epochs are checked
without a GPU and without reading printed output. The grader's re-check gives ``fit`` other
stand-ins (:class:`FitStandIns`). Importing this module has no side effects.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections import Counter
from collections.abc import Callable, Iterator, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.std import tqdm as _StdBar

from course_utils.checks.core import CheckFailed
from course_utils.checks.learner import call_learner
from course_utils.checks.lesson07.common import (
    LESSON, Finding, crashed, fail, loop_scenario, number, parameters, times,
)
from course_utils.checks.lesson07.ex1 import check_train_one_epoch
from course_utils.checks.lesson07.ex2 import check_evaluate
from course_utils.diagnoses import Exercise, ForbiddenCall
from course_utils.recipe import DEFAULT_RECIPE, TrainingRecipe, default_loaders, default_model, default_optimizer

EXERCISE = Exercise(LESSON, "ex3-tests", "Exercise 3 · fit")
DIAGNOSES = EXERCISE.diagnoses(
    ("fit-history", "fit must return one record per epoch with epoch, loss, val_loss and accuracy",
     "append {'epoch': e, 'loss': train_loss, 'val_loss': val_loss, 'accuracy': accuracy} for e = 1..epochs.",
     "interface"),
    ("fit-values", "the history of fit does not match train_one_epoch and evaluate run epoch by epoch",
     "in every epoch call train_one_epoch, then evaluate on the validation loader, and record both.", "metrics"),
    ("fit-calls-per-epoch", "fit did not call train_one_epoch and evaluate exactly once per epoch",
     "in every epoch call train_one_epoch once, then evaluate once: for epoch in trange(1, epochs + 1).",
     "interface"),
    ("fit-order", "fit evaluated before training in an epoch",
     "in every epoch train first, then evaluate: the record holds the accuracy after that epoch's training.",
     "interface"),
    ("fit-val-loader", "fit evaluated on the training loader, not the validation loader",
     "call evaluate(model, val_loader, criterion, device): accuracy on training data flatters the model.", "data"),
    ("fit-arguments", "fit did not pass its own model, loaders, criterion, optimizer and device on",
     "call train_one_epoch(model, train_loader, criterion, optimizer, device) with fit's own arguments; a "
     "new optimizer inside fit loses the one you were given (and its momentum).", "interface"),
    ("fit-model-not-moved", "fit did not move the model to the device before training",
     "call model.to(device) once at the start of fit, before the first epoch.", "device"),
    ("fit-no-progress-bar", "fit showed no progress bar over the epochs",
     "loop with for epoch in trange(1, epochs + 1) (from tqdm.auto import trange): one step per epoch.", "interface"),
    ("fit-earlier-train", "Exercise 1 (train_one_epoch) still fails, and fit's result depends on it",
     "fix train_one_epoch first (its check above names the bug); then run this check again.", "earlier-exercise"),
    ("fit-earlier-evaluate", "Exercise 2 (evaluate) still fails, and fit's result depends on it",
     "fix evaluate first (its check above names the bug); then run this check again.", "earlier-exercise"),
    ("no-convergence", "the loop did not learn the course task in five epochs",
     "with a correct loop the default recipe reaches loss < 0.6 and accuracy > 0.8 by epoch 5.", "metrics"),
    ("fit-model-moved-every-epoch", "fit moved the model to the device again inside the loop over epochs",
     "call model.to(device) once, before the loop over epochs: moving it again every epoch only adds work.",
     "device"),
    ("fit-crashed", "fit raised an error",
     "the found line shows where. To see it on the lesson's own data, run fit(model, train_loader, "
     "val_loader, nn.CrossEntropyLoss(), default_optimizer(model), device, 1) in a new cell: section 1 "
     "defines model, the loaders and device.", "interface"),
    ("fit-own-optimizer", "fit builds an optimizer of its own",
     "pass fit's `optimizer` argument on to train_one_epoch; a new one loses the caller's settings and "
     "momentum.", "not-allowed"),
)

# What the grader's source scan forbids: fit passes its own optimizer on.
FORBIDDEN_CALLS = (ForbiddenCall("ex3-tests", "fit", ("torch.optim",), "fit-own-optimizer"),)

# Thresholds of the convergence check, from measurement: with the default recipe the worst of
# 50 seeds ends epoch 5 at loss 0.44 and accuracy 0.84 (tests/test_reference_trace.py).
CONVERGED_LOSS = 0.6
CONVERGED_ACCURACY = 0.8

_KEYS = ("epoch", "loss", "val_loss", "accuracy")
_TQDM_MODULES = ("tqdm", "tqdm.std", "tqdm.auto", "tqdm.autonotebook", "tqdm.notebook", "tqdm.asyncio", "tqdm.rich")


def fake_train_loss(call: int) -> float:
    """What the stand-in train_one_epoch returns at its ``call``-th call (1, 2, ...): made up, never repeated."""
    return round(1.0 / (call + 1) + 0.0123 * call, 6)


def fake_evaluation(trained: int, call: int) -> tuple[float, float]:
    """What the stand-in evaluate returns at its ``call``-th call, after ``trained`` training calls: made up."""
    return round(0.9 / (trained + 1) + 0.0071 * call + 0.05, 6), round(0.3 + 0.11 * trained + 0.001 * call, 6)


@dataclass
class _FitLog:
    """What one run of the learner's fit did, as the stand-ins, the model and the bars saw it."""

    model: nn.Module
    train_loader: Any
    val_loader: Any
    criterion: Any
    optimizer: Any
    device: torch.device
    calls: list[str] = field(default_factory=list)  # "train" and "evaluate", in the order they ran
    train_returns: list[float] = field(default_factory=list)
    evaluate_returns: list[tuple[float, float]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    moves: list[tuple[int, torch.device]] = field(default_factory=list)  # (train calls before it, target)
    bars: list[_CountingBar] = field(default_factory=list)

    def check_arguments(self, function: str, model: Any, loader: Any, criterion: Any, device: Any,
                        optimizer: Any = None) -> None:
        wrong = []
        if model is not self.model:
            wrong.append("a model other than fit's `model`")
        expected_loader = self.train_loader if function == "train_one_epoch" else self.val_loader
        if function == "evaluate" and loader is self.train_loader:
            self.findings.append(Finding("fit-val-loader", "evaluate received train_loader"))
        elif loader is not expected_loader:
            name = "val_loader" if loader is self.val_loader else "a loader other than fit's loaders"
            wrong.append(name)
        if criterion is not self.criterion:
            wrong.append("a criterion other than fit's `criterion`")
        if function == "train_one_epoch" and optimizer is not self.optimizer:
            wrong.append("an optimizer other than fit's `optimizer`")
        if not _same_device(device, self.device):
            wrong.append(f"device {device!r} instead of fit's `device`")
        if wrong:
            self.findings.append(Finding("fit-arguments", f"{function} received " + ", ".join(wrong)))


_LOG: ContextVar[_FitLog | None] = ContextVar("lesson07_fit_log", default=None)


def _same_device(found: Any, expected: torch.device) -> bool:
    try:
        return torch.device(found) == expected
    except (TypeError, RuntimeError):
        return False


def _stand_in_train_one_epoch(model: nn.Module, loader: Any, criterion: Any, optimizer: Any, device: Any) -> float:
    """Records the call and returns a made-up loss (see :func:`fake_train_loss`); trains nothing."""
    log = _LOG.get()
    if log is None:
        return fake_train_loss(1)
    log.calls.append("train")
    log.check_arguments("train_one_epoch", model, loader, criterion, device, optimizer)
    result = fake_train_loss(log.calls.count("train"))
    log.train_returns.append(result)
    return result


def _stand_in_evaluate(model: nn.Module, loader: Any, criterion: Any, device: Any) -> tuple[float, float]:
    """Records the call and returns a made-up (loss, accuracy) (see :func:`fake_evaluation`); measures nothing."""
    log = _LOG.get()
    if log is None:
        return fake_evaluation(0, 1)
    log.calls.append("evaluate")
    log.check_arguments("evaluate", model, loader, criterion, device)
    result = fake_evaluation(log.calls.count("train"), log.calls.count("evaluate"))
    log.evaluate_returns.append(result)
    return result


class _MoveRecordingSequential(nn.Sequential):
    """The course model, recording every move to a device (a no-op on the CPU, so it is recorded)."""

    def to(self, *args: Any, **kwargs: Any) -> nn.Module:  # noqa: D102
        device = torch._C._nn._parse_to(*args, **kwargs)[0]
        log = _LOG.get()
        if log is not None and device is not None:
            log.moves.append((log.calls.count("train"), device))
        return super().to(*args, **kwargs)

    def cuda(self, device: Any = None) -> nn.Module:  # noqa: D102
        log = _LOG.get()
        if log is not None:
            log.moves.append((log.calls.count("train"), torch.device("cuda")))
        return super().cuda(device)


class _CountingBar(_StdBar):
    """A tqdm bar that shows nothing while grading and counts its steps (iterations and updates)."""

    def __init__(self, iterable: Any = None, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        super().__init__(iterable, *args, **kwargs)
        self.steps = 0
        log = _LOG.get()
        if log is not None:
            log.bars.append(self)

    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            self.steps += 1
            yield item

    def update(self, n: float | None = 1) -> bool | None:  # noqa: D102
        self.steps += n or 0
        return super().update(n)


def _counting_trange(*args: Any, **kwargs: Any) -> _CountingBar:
    return _CountingBar(range(*args), **kwargs)


@contextlib.contextmanager
def _patched(replacements: list[tuple[MutableMapping[str, Any], str, Any]]) -> Iterator[None]:
    missing = object()
    saved = [(mapping, key, mapping.get(key, missing)) for mapping, key, _ in replacements]
    for mapping, key, value in replacements:
        mapping[key] = value
    try:
        yield
    finally:
        for mapping, key, value in reversed(saved):
            if value is missing:
                mapping.pop(key, None)
            else:
                mapping[key] = value


def _replacements(fit: Callable[..., Any]) -> list[tuple[MutableMapping[str, Any], str, Any]]:
    """Stand-ins for fit's building blocks, and counting bars wherever fit can find tqdm."""
    modules = [sys.modules[name] for name in _TQDM_MODULES if name in sys.modules]
    tranges = [module.trange for module in modules if hasattr(module, "trange")]
    replacements = [(vars(module), name, bar) for module in modules
                    for name, bar in (("tqdm", _CountingBar), ("trange", _counting_trange)) if hasattr(module, name)]
    namespace = getattr(inspect.unwrap(fit), "__globals__", None)
    if namespace is not None:
        replacements += [(namespace, "train_one_epoch", _stand_in_train_one_epoch),
                         (namespace, "evaluate", _stand_in_evaluate)]
        for name, value in list(namespace.items()):
            if isinstance(value, type) and issubclass(value, _StdBar):
                replacements.append((namespace, name, _CountingBar))
            elif any(value is function for function in tranges):
                replacements.append((namespace, name, _counting_trange))
    return replacements


def _probed_fit(fit: Callable[..., Any]) -> tuple[Any, Exception | None, _FitLog]:
    recipe = DEFAULT_RECIPE
    model = default_model(recipe)
    model.__class__ = _MoveRecordingSequential
    train_loader, val_loader = default_loaders(recipe)
    log = _FitLog(model, train_loader, val_loader, nn.CrossEntropyLoss(), default_optimizer(model, recipe),
                  torch.device("cpu"))
    token = _LOG.set(log)
    try:
        with _patched(_replacements(fit)):
            history, error = call_learner(fit, model, train_loader, val_loader, log.criterion, log.optimizer,
                                         log.device, recipe.epochs)
    finally:
        _LOG.reset(token)
    return history, error, log


def _history_problem(history: Any, epochs: int) -> str | None:
    """What is wrong with the shape of a history, in words; None if nothing."""
    if not isinstance(history, list):
        return f"fit returned {type(history).__name__} {history!r}"[:300]
    if len(history) != epochs:
        return f"{len(history)} records for {epochs} epochs"
    for index, record in enumerate(history, 1):
        if not isinstance(record, dict) or not set(_KEYS) <= set(record):
            keys = sorted(record) if isinstance(record, dict) else type(record).__name__
            return f"record {index} is {keys}, not a dict with keys {', '.join(_KEYS)}"
        bad = [k for k in _KEYS[1:]
               if not isinstance(record[k], (int, float)) or isinstance(record[k], (bool, torch.Tensor))]
        if bad:
            return f"record {index}: {bad[0]} is {record[bad[0]]!r} ({type(record[bad[0]]).__name__}), not a float"
    numbers = [record["epoch"] for record in history]
    if numbers != list(range(1, epochs + 1)):
        return f"the epochs are numbered {numbers}, not 1 to {epochs}"
    return None


def _close(first: tuple[float, ...], second: tuple[float, ...]) -> bool:
    return all(a == b for a, b in zip(first, second))  # the stand-ins' numbers pass through fit unchanged


def _recorded(record: dict[str, Any]) -> tuple[float, float, float]:
    return record["loss"], record["val_loss"], record["accuracy"]


def _shown(values: tuple[float, ...]) -> str:
    return ", ".join(f"{name}={value:.4f}" for name, value in zip(_KEYS[1:], values))


def _call_findings(log: _FitLog, epochs: int) -> list[Finding]:
    trains, evaluations = log.calls.count("train"), log.calls.count("evaluate")
    if trains != epochs or evaluations != epochs:
        by_name = " (fit must call them by these names)" if not (trains and evaluations) else ""
        return [Finding("fit-calls-per-epoch", f"train_one_epoch ran {times(trains)} and evaluate "
                                               f"{times(evaluations)} for {epochs} epochs{by_name}")]
    pairs = [tuple(log.calls[i:i + 2]) for i in range(0, len(log.calls), 2)]
    if early := sum(pair != ("train", "evaluate") for pair in pairs):
        return [Finding("fit-order", f"evaluate ran before train_one_epoch in {early} of {epochs} epochs")]
    return []


def _value_findings(history: list[dict[str, Any]], log: _FitLog) -> list[Finding]:
    """Each record against what the stand-ins returned in that epoch."""
    for record, loss, (val_loss, accuracy) in zip(history, log.train_returns, log.evaluate_returns):
        found, returned = _recorded(record), (loss, val_loss, accuracy)
        if not _close(found, returned):
            swapped = " (loss and val_loss swapped)" if _close(found, (val_loss, loss, accuracy)) else ""
            return [Finding("fit-values", f"epoch {record['epoch']} recorded {_shown(found)}{swapped}, but that epoch "
                                          f"train_one_epoch returned {loss:.4f} and evaluate returned "
                                          f"({val_loss:.4f}, {accuracy:.4f}) (the check's stand-ins: made-up "
                                          "numbers, passed on as they are)")]
    return []


def _fails(check: Callable[[Callable[..., Any]], None], function: Callable[..., Any] | None) -> bool:
    if function is None:
        return False
    try:
        check(function)
    except CheckFailed:
        return True
    return False


def _device_finding(log: _FitLog) -> list[Finding]:
    if any(before == 0 and target == log.device for before, target in log.moves):
        if later := [before for before, target in log.moves if before > 0]:
            return [Finding("fit-model-moved-every-epoch", f"model.to(device) ran {times(len(log.moves))}, "
                                                           f"{len(later)} of them after train_one_epoch had run")]
        return []
    if not log.moves:
        found = "model.to(device) ran 0 times"
    elif all(target != log.device for _, target in log.moves):
        found = f"the model was moved to {log.moves[0][1]}, not to fit's `device` ({log.device})"
    else:
        found = f"the model was moved only after train_one_epoch had run {times(log.moves[0][0])}"
    return [Finding("fit-model-not-moved", found)]


def _progress_finding(log: _FitLog, epochs: int) -> list[Finding]:
    if any(bar.steps == epochs for bar in log.bars):
        return []
    if not log.bars:
        return [Finding("fit-no-progress-bar", "no tqdm progress bar was created")]
    counted = ", ".join(f"{bar.steps:g}" for bar in log.bars)
    return [Finding("fit-no-progress-bar", f"the tqdm bars counted {counted} steps for {epochs} epochs")]


def check_fit(fit: Callable[..., Any], train_one_epoch: Callable[..., Any] | None = None,
              evaluate: Callable[..., Any] | None = None) -> None:
    """Judge ``fit`` on its own with recording stand-ins; raise :class:`CheckFailed` on any bug.

    Returns nothing, so a grade cell that ends with this call shows no value (nbgrader would read a
    cell's value as a score).

    ``train_one_epoch`` and ``evaluate`` are the learner's own: they are never used to judge
    ``fit``, only to say that an earlier exercise still fails (first, when ``fit`` reached them
    some other way than by their global names).
    """
    epochs = DEFAULT_RECIPE.epochs
    history, error, log = _probed_fit(fit)
    expected = (f"{epochs} records {{'epoch': e, 'loss': ..., 'val_loss': ..., 'accuracy': ...}}, "
                f"e = 1..{epochs}, from train_one_epoch then evaluate in every epoch")
    trains, evaluations = log.calls.count("train"), log.calls.count("evaluate")
    by_other_names = not (trains and evaluations)  # fit reached the learner's own functions some other way
    if error is not None:
        earlier = _earlier_findings(train_one_epoch, evaluate) if by_other_names else []
        if earlier:
            fail(earlier, function="fit", expected=expected)
        raise crashed("fit", error, on="the course's model, loaders, criterion, optimizer and device") from error
    problem = _history_problem(history, epochs)
    if problem is not None:
        fail([Finding("fit-history", problem)], function="fit", expected=expected)
    repeated = Counter(log.findings)
    findings = _call_findings(log, epochs) + [Finding(f.code, f"{f.found} ({times(n)})") for f, n in repeated.items()]
    if findings and by_other_names:
        findings = _earlier_findings(train_one_epoch, evaluate) or findings
    if not findings:
        findings += _value_findings(history, log)
    findings += _device_finding(log) + _progress_finding(log, epochs)
    if findings:
        fail(findings, function="fit", expected=expected)
    _note_earlier_exercises(train_one_epoch, evaluate)


def _earlier_findings(train_one_epoch: Callable[..., Any] | None,
                      evaluate: Callable[..., Any] | None) -> list[Finding]:
    """Exercises 1 and 2 that still fail, for a fit that reached them other than by their global names."""
    earlier = []
    if _fails(check_train_one_epoch, train_one_epoch):
        earlier.append(Finding("fit-earlier-train", "fit did not call train_one_epoch by its name, so it used your "
                                                    "own, and your train_one_epoch fails Exercise 1's check"))
    if _fails(check_evaluate, evaluate):
        earlier.append(Finding("fit-earlier-evaluate", "fit did not call evaluate by its name, so it used your "
                                                       "own, and your evaluate fails Exercise 2's check"))
    return earlier


def _note_earlier_exercises(train_one_epoch: Callable[..., Any] | None, evaluate: Callable[..., Any] | None) -> None:
    exercises = (("Exercise 1 (train_one_epoch)", check_train_one_epoch, train_one_epoch),
                 ("Exercise 2 (evaluate)", check_evaluate, evaluate))
    failing = [name for name, check, function in exercises if _fails(check, function)]
    if failing:
        print(f"note: fit itself is correct: it was checked with stand-ins in place of your train_one_epoch and "
              f"evaluate. {' and '.join(failing)} still {'fails' if len(failing) == 1 else 'fail'}: fix "
              f"{'it' if len(failing) == 1 else 'them'} before you train with fit below.")


# --- the lesson's own run -----------------------------------------------------------------------

def run_course_fit(fit: Callable[..., Any], recipe: TrainingRecipe = DEFAULT_RECIPE,
                   device: torch.device | str = "cpu") -> list[dict[str, float]]:
    """Run the learner's ``fit`` with the course's default model, data and optimiser; return its history."""
    device = torch.device(device)
    model = default_model(recipe).to(device)
    train_loader, val_loader = default_loaders(recipe)
    return fit(model, train_loader, val_loader, nn.CrossEntropyLoss(), default_optimizer(model, recipe),
               device, recipe.epochs)


def converged(history: list[dict[str, float]]) -> bool:
    """The convergence verdict: after the last epoch, loss below 0.6 and accuracy above 0.8."""
    last = history[-1]
    return last["loss"] < CONVERGED_LOSS and last["accuracy"] > CONVERGED_ACCURACY


def check_convergence(history: list[dict[str, float]]) -> None:
    """Fail unless the history ends converged (see :func:`converged`)."""
    if not converged(history):
        last = history[-1]
        found = f"epoch {last['epoch']}: loss {last['loss']:.3f}, accuracy {last['accuracy']:.3f}"
        fail([Finding("no-convergence", found)], function="fit",
             expected=f"loss < {CONVERGED_LOSS} and accuracy > {CONVERGED_ACCURACY} after the last epoch")


# --- the grader's re-check -----------------------------------------------------------------------

class FitStandIns:
    """Stand-ins for ``train_one_epoch`` and ``evaluate``, given to ``fit`` so that fit is judged on its own.

    They are not answers: they never train nor evaluate. Each call nudges the parameters by a known
    amount (training) and returns numbers made from its arguments and the call count, so the history
    that ``fit`` records shows which function it called, in which order, how often and with which
    arguments (the validation loader has 90 samples, the training loader more; the optimiser must be
    the one ``fit`` was given). The grader runs the same stand-ins under a correct ``fit``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer, self.calls = optimizer, 0

    def _number(self, model: nn.Module, loader: DataLoader, criterion: nn.Module, device: torch.device) -> float:
        self.calls += 1
        weights = sum(float(p.detach().double().sum()) for p in model.parameters())
        floor = float(criterion(torch.zeros(1, 3, device=device), torch.zeros(1, dtype=torch.long, device=device)))
        return weights / 100 + len(loader.dataset) / 100 + floor + self.calls / 10

    def train_one_epoch(self, model: nn.Module, loader: DataLoader, criterion: nn.Module,
                        optimizer: torch.optim.Optimizer, device: torch.device) -> float:
        """Nudge every parameter by a known amount; return a number made from the arguments."""
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(0.01 * (self.calls + 1))
        return self._number(model, loader, criterion, device) + (0.0 if optimizer is self.optimizer else 1e3)

    def evaluate(self, model: nn.Module, loader: DataLoader, criterion: nn.Module,
                 device: torch.device) -> tuple[float, float]:
        """Return a (loss, accuracy) pair made from the arguments; change nothing."""
        made = self._number(model, loader, criterion, device)
        return made + 0.5, self.calls / 100


def probe(namespace: dict[str, Any], seed: int) -> dict[str, Any]:
    """The re-check: the learner's fit, for two epochs, with :class:`FitStandIns` in place of its building blocks."""
    fit = namespace["fit"]
    model, train, val, optimizer = loop_scenario(seed)
    stand_ins = FitStandIns(optimizer)
    saved = {name: fit.__globals__.get(name) for name in ("train_one_epoch", "evaluate")}
    fit.__globals__.update(train_one_epoch=stand_ins.train_one_epoch, evaluate=stand_ins.evaluate)
    try:
        history = fit(model, train, val, nn.CrossEntropyLoss(), optimizer, torch.device("cpu"), 2)
    finally:
        fit.__globals__.update(saved)
    rows = [[number(r.get(k)) for k in ("epoch", "loss", "val_loss", "accuracy")]
            for r in history if isinstance(r, dict)] if isinstance(history, list) else []
    return {"history": rows, "parameters": parameters(model)}
