"""Behavioural grader for lesson 07: run a learner's training loop on instrumented objects.

The learner's ``train_one_epoch``, ``evaluate`` and ``fit`` are called with a probe model, loader,
loss and optimiser that record what happens (modes, gradient tracking, device moves, the order of
``backward`` and ``step``, the gradients each step applies) and the results are compared with a
reference loop on the same seeded batches. Every bug found raises :class:`CheckFailed` with a
message that names the bug and the fix. Nothing here depends on printed output.

Moves to the device are detected even on a CPU-only machine: the loader yields tensors of a
marker subclass that turns into a plain tensor only through ``.to(device)`` or ``.cuda()``.
"""

from __future__ import annotations

import contextlib
import copy
import math
import weakref
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from course_utils.checks.core import CheckFailed
from course_utils.data import RAW_MAX, make_course_data
from course_utils.diagnoses import Diagnosis, by_code
from course_utils.recipe import DEFAULT_RECIPE, TrainingRecipe, default_loaders, default_model, default_optimizer

# Thresholds of the convergence check, from measurement: with the default recipe the worst of
# 50 seeds ends epoch 5 at loss 0.44 and accuracy 0.84 (tests/test_reference_trace.py).
CONVERGED_LOSS = 0.6
CONVERGED_ACCURACY = 0.8
_TOLERANCE = dict(rtol=1e-5, atol=1e-6)


LESSON = "07_epoch_loop_gpu"
_EXERCISES = {"train_one_epoch": ("ex1-tests", "Exercise 1 · train_one_epoch"),
              "evaluate": ("ex2-tests", "Exercise 2 · evaluate"), "fit": ("ex3-tests", "Exercise 3 · fit")}
_FAMILIES = {
    "train-mode": "modes", "train-no-grad": "modes", "eval-mode": "modes", "eval-grad": "modes",
    "inputs-not-moved": "device", "targets-not-moved": "device",
    "softmax-before-loss": "loss", "not-raw-logits": "loss",
    "no-backward": "gradients", "step-before-backward": "gradients", "accumulated-gradients": "gradients",
    "cleared-before-step": "gradients", "graph-kept": "gradients",
    "optimizer-ignored": "optimizer", "steps-per-batch": "optimizer", "trajectory": "optimizer",
    "skipped-batches": "data", "eval-changed-parameters": "optimizer",
    "not-a-float": "interface", "eval-return": "interface", "fit-history": "interface",
    "mean-of-batch-means": "metrics", "wrong-mean": "metrics", "eval-loss": "metrics", "eval-accuracy": "metrics",
    "fit-values": "metrics", "no-convergence": "metrics",
}
_FUNCTION_OF = {"eval": "evaluate", "fit": "fit", "no-convergence": "fit"}


def Bug(code: str, what: str, hint: str) -> Diagnosis:  # noqa: N802 - reads as the catalogue's row type
    """One row of lesson 07's catalogue, placed in the exercise its code belongs to."""
    function = next((name for prefix, name in _FUNCTION_OF.items() if code.startswith(prefix)), "train_one_epoch")
    exercise, section = _EXERCISES[function]
    return Diagnosis(code, what, hint, _FAMILIES[code], lesson=LESSON, exercise=exercise, section=section)


CATALOGUE = (
    Bug("train-mode", "the model was not in train mode during training",
        "call model.train() at the start of train_one_epoch (evaluate() switches it to eval mode)."),
    Bug("train-no-grad", "the training forward pass ran without gradient tracking",
        "do not wrap training in torch.no_grad() or torch.inference_mode(); only evaluation is."),
    Bug("inputs-not-moved", "the inputs were not moved to the device",
        "move every batch: xb = xb.to(device) before model(xb)."),
    Bug("targets-not-moved", "the targets were not moved to the device",
        "move the targets too: yb = yb.to(device) before criterion(logits, yb)."),
    Bug("softmax-before-loss", "the loss received probabilities (softmax output), not raw logits",
        "CrossEntropyLoss applies log-softmax itself: pass model(xb) straight to the criterion."),
    Bug("not-raw-logits", "the loss did not receive the model's raw output",
        "pass the model's output to the criterion unchanged: criterion(model(xb), yb)."),
    Bug("no-backward", "loss.backward() was never called",
        "call loss.backward() after computing the loss and before optimizer.step()."),
    Bug("step-before-backward", "optimizer.step() ran before loss.backward() in a batch",
        "the order in every batch is: zero_grad, forward, loss, backward, step."),
    Bug("accumulated-gradients", "gradients accumulated across batches (they were never zeroed)",
        "call optimizer.zero_grad() once per batch, before loss.backward() (or right after optimizer.step())."),
    Bug("cleared-before-step", "gradients were cleared between loss.backward() and optimizer.step()",
        "zero the gradients before backward() or after step(), never between them: step() needs them."),
    Bug("optimizer-ignored", "the optimizer passed to train_one_epoch never stepped",
        "call step() on the `optimizer` argument; do not create a new optimizer inside the function."),
    Bug("steps-per-batch", "optimizer.step() did not run exactly once per batch",
        "call optimizer.step() once in every batch, after loss.backward()."),
    Bug("skipped-batches", "not every batch of the loader went through the model",
        "loop over the whole loader (for xb, yb in loader), including the last, smaller batch."),
    Bug("graph-kept", "a tensor that still tracks gradients was kept from one batch to the next",
        "accumulate loss.item() (a float), not the loss tensor: keeping loss tensors keeps every "
        "batch's autograd graph alive and memory grows with every batch."),
    Bug("not-a-float", "the returned loss is not a Python float",
        "return a float: accumulate loss.item() * len(yb) and divide by the number of samples."),
    Bug("mean-of-batch-means", "the returned loss is the mean of the batch losses, not the mean per sample",
        "weight each batch's loss by its size (loss.item() * len(yb)); the last batch is smaller."),
    Bug("wrong-mean", "the returned loss is not the mean loss per sample over the epoch",
        "sum loss.item() * len(yb) over the batches and divide by the number of samples."),
    Bug("trajectory", "the parameters after one epoch differ from those of a correct loop on the same batches",
        "one batch = zero_grad, forward, loss, backward, step, with the given model, criterion and optimizer."),
    Bug("eval-mode", "the model was in train mode during evaluation",
        "call model.eval() at the start of evaluate (dropout and batch norm behave differently)."),
    Bug("eval-grad", "evaluation tracked gradients",
        "wrap the evaluation loop in torch.no_grad() or torch.inference_mode()."),
    Bug("eval-changed-parameters", "evaluation changed the model's parameters",
        "evaluate must never call backward() or step(): it only measures."),
    Bug("eval-return", "evaluate must return a tuple (loss, accuracy) of two Python floats",
        "return mean_loss, accuracy, both floats (use .item())."),
    Bug("eval-loss", "the loss returned by evaluate is not the mean loss per sample",
        "sum loss.item() * len(yb) over the batches and divide by the number of samples."),
    Bug("eval-accuracy", "the accuracy returned by evaluate is not correct predictions / samples",
        "count (logits.argmax(dim=1) == yb).sum().item() over all batches and divide by the number of samples."),
    Bug("fit-history", "fit must return one record per epoch with epoch, loss, val_loss and accuracy",
        "append {'epoch': e, 'loss': train_loss, 'val_loss': val_loss, 'accuracy': accuracy} for e = 1..epochs."),
    Bug("fit-values", "the history of fit does not match train_one_epoch and evaluate run epoch by epoch",
        "in every epoch call train_one_epoch, then evaluate on the validation loader, and record both."),
    Bug("no-convergence", "the loop did not learn the course task in five epochs",
        "with a correct loop the default recipe reaches loss < 0.6 and accuracy > 0.8 by epoch 5."),
)
BUGS = by_code(CATALOGUE)


# --- marker tensors -------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and type(value) is not torch.Tensor:
        with torch._C.DisableTorchFunctionSubclass():
            return value.as_subclass(torch.Tensor)
    return value


def _names_a_device(args: tuple, kwargs: dict) -> bool:
    if "device" in kwargs:
        return True
    return any(isinstance(a, (torch.device, str, torch.Tensor)) for a in args[1:])


class Unmoved(torch.Tensor):
    """A batch tensor as the probe loader yields it; ``.to(device)`` or ``.cuda()`` makes it plain."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN206
        kwargs = kwargs or {}
        result = super().__torch_function__(func, types, args, kwargs)
        moved = func is torch.Tensor.cuda or (func is torch.Tensor.to and _names_a_device(args, kwargs))
        return _plain(result) if moved else result


class _Recorder:
    """Everything the probes saw during one call of the learner's function."""

    def __init__(self) -> None:
        self.forwards: list[tuple[bool, bool, bool, int]] = []  # moved, training, grad enabled, batch size
        self.loss_calls: list[tuple[bool, str, int, float]] = []  # targets moved, logits kind, batch size, value
        self.last_output: torch.Tensor | None = None
        self.backwards = 0
        self.backwards_since_step = 0
        self.fresh_grads: dict[int, torch.Tensor] = {}
        self.steps = 0
        self.steps_since_forward = 0
        self.problems: list[str] = []
        self.tracked: list[tuple[int, weakref.ref]] = []

    def flag(self, code: str) -> None:
        if code not in self.problems:
            self.problems.append(code)

    def track(self, tensor: torch.Tensor) -> None:
        self.tracked.append((len(self.loss_calls), weakref.ref(tensor)))

    def graph_kept_alive(self) -> bool:
        """True if a gradient-tracking tensor made in an earlier batch is still alive."""
        current = len(self.loss_calls)
        return any(batch < current and (ref := alive()) is not None and ref.requires_grad
                   for batch, alive in self.tracked)


_ACTIVE: ContextVar[_Recorder | None] = ContextVar("loop_grader_recorder", default=None)


class TrackedLoss(torch.Tensor):
    """The probe criterion's output: remembers every gradient-tracking tensor derived from it."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN206
        result = super().__torch_function__(func, types, args, kwargs or {})
        recorder = _ACTIVE.get()
        if recorder is not None and isinstance(result, torch.Tensor) and result.requires_grad:
            recorder.track(result)
        return result


# --- probes ---------------------------------------------------------------------------------

class ProbeModel(nn.Module):
    """Wraps a network; records the mode, gradient tracking and device of every forward call."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        recorder = _ACTIVE.get()
        output = self.net(_plain(x))
        if recorder is not None:
            recorder.forwards.append((not isinstance(x, Unmoved), self.training, torch.is_grad_enabled(), len(x)))
            recorder.last_output = output
            recorder.steps_since_forward = 0
        return output


def _logits_kind(received: torch.Tensor, produced: torch.Tensor | None) -> str:
    received = _plain(received).detach()
    if produced is not None and received.shape == produced.shape and torch.equal(received, produced.detach()):
        return "raw"
    rows = received.reshape(len(received), -1) if received.ndim else received.reshape(1, 1)
    if rows.numel() and rows.min() >= 0 and rows.max() <= 1 and torch.allclose(rows.sum(dim=1), torch.ones(len(rows)), atol=1e-4):
        return "probabilities"
    return "other"


class ProbeCriterion(nn.Module):
    """Cross-entropy that records what it received and tracks the loss tensors it hands out."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        recorder = _ACTIVE.get()
        loss = F.cross_entropy(_plain(logits), _plain(targets))
        if recorder is None:
            return loss
        kind = _logits_kind(logits, recorder.last_output)
        recorder.loss_calls.append((not isinstance(targets, Unmoved), kind, len(targets), loss.item()))
        if loss.requires_grad:
            loss = loss.as_subclass(TrackedLoss)
            recorder.track(loss)
        return loss


def _zeroed(gradient: torch.Tensor | None) -> bool:
    return gradient is None or not bool(gradient.abs().sum())


class ProbeSGD(torch.optim.SGD):
    """SGD that checks, at every step, that a fresh backward happened and no stale gradient remains."""

    def step(self, closure: Callable[[], float] | None = None) -> Any:  # noqa: D102
        recorder = _ACTIVE.get()
        if recorder is not None:
            self._inspect(recorder)
        return super().step(closure)

    def _inspect(self, recorder: _Recorder) -> None:
        recorder.steps += 1
        recorder.steps_since_forward += 1
        if recorder.graph_kept_alive():
            recorder.flag("graph-kept")
        if recorder.steps_since_forward > 1:
            recorder.flag("steps-per-batch")
            return
        if recorder.backwards_since_step == 0:
            recorder.flag("step-before-backward")
            return
        recorder.backwards_since_step = 0
        for group in self.param_groups:
            for parameter in group["params"]:
                fresh = recorder.fresh_grads.get(id(parameter))
                if fresh is None:
                    continue
                if _zeroed(parameter.grad) and not _zeroed(fresh):
                    recorder.flag("cleared-before-step")
                elif parameter.grad is not None and not torch.allclose(parameter.grad, fresh, **_TOLERANCE):
                    recorder.flag("accumulated-gradients")


class ProbeLoader:
    """Iterates a real DataLoader, handing out batches that remember whether they were moved."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader
        self.batches_served = 0

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for features, targets in self.loader:
            self.batches_served += 1
            yield features.as_subclass(Unmoved), targets.as_subclass(Unmoved)

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:  # dataset, batch_size, ... as on a DataLoader
        return getattr(self.loader, name)


@contextlib.contextmanager
def _recording(model: ProbeModel) -> Iterator[_Recorder]:
    recorder = _Recorder()
    parameters = list(model.parameters())

    def on_gradient(parameter: torch.Tensor, gradient: torch.Tensor) -> None:
        if parameter is parameters[0]:
            recorder.backwards += 1
            recorder.backwards_since_step += 1
        recorder.fresh_grads[id(parameter)] = gradient.detach().clone()

    handles = [p.register_hook(lambda g, p=p: on_gradient(p, g)) for p in parameters]
    token = _ACTIVE.set(recorder)
    try:
        yield recorder
    finally:
        _ACTIVE.reset(token)
        for handle in handles:
            handle.remove()


# --- scenarios ------------------------------------------------------------------------------

@dataclass
class _Scenario:
    """A seeded model, optimiser settings and data on which a learner's function is run."""

    seed: int = 0
    n_samples: int = 250  # batches of 100, 100 and 50: a smaller last batch exposes unweighted means
    batch_size: int = 100
    recipe: TrainingRecipe = field(default_factory=lambda: replace(DEFAULT_RECIPE, hidden=16))

    def data(self) -> TensorDataset:
        features, targets = make_course_data(self.n_samples, seed=1000 + self.seed)
        return TensorDataset(features / RAW_MAX, targets)

    def loader(self, shuffle: bool) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.data(), batch_size=self.batch_size, shuffle=shuffle, generator=generator)

    def network(self) -> nn.Module:
        return default_model(replace(self.recipe, seed=self.seed))

    def optimizer(self, parameters: Any) -> torch.optim.SGD:
        return ProbeSGD(parameters, lr=self.recipe.learning_rate, momentum=self.recipe.momentum)


def _fail(bugs: list[str], *, found: str, function: str) -> None:
    main = BUGS[bugs[0]]
    others = "".join(f"\n    also:     {BUGS[code].what}" for code in bugs[1:])
    raise CheckFailed(
        f"\n✗ {function}: {main.what} [{main.code}]{others}\n"
        f"    expected: a correct {function} on a seeded model and loader\n"
        f"    found:    {found}\n"
        f"    hint:     {main.hint}"
    )


def _run(function: Callable[..., Any], *args: Any) -> tuple[Any, Exception | None]:
    """Call the learner's function; an exception is a finding to report, not a crash of the grader."""
    try:
        return function(*args), None
    except CheckFailed:
        raise
    except Exception as error:  # noqa: BLE001
        return None, error


def _crashed(name: str, error: Exception) -> CheckFailed:
    return CheckFailed(
        f"\n✗ {name} raised {type(error).__name__}: {error}\n"
        f"    expected: {name} to run on a model, loader, criterion and device like those of the lesson\n"
        f"    found:    an exception (its traceback is shown above this message)\n"
        f"    hint:     run the lesson's example cell to see the error with your own data first."
    )


def _call(function: Callable[..., Any], name: str, *args: Any) -> Any:
    result, error = _run(function, *args)
    if error is not None:
        raise _crashed(name, error) from error
    return result


def _reference_epoch(network: nn.Module, scenario: _Scenario) -> None:
    optimizer = torch.optim.SGD(network.parameters(), lr=scenario.recipe.learning_rate, momentum=scenario.recipe.momentum)
    network.train()
    for features, targets in scenario.loader(shuffle=True):
        optimizer.zero_grad()
        F.cross_entropy(network(features), targets).backward()
        optimizer.step()


def _same_parameters(first: nn.Module, second: nn.Module) -> bool:
    return all(torch.allclose(a, b, **_TOLERANCE) for a, b in zip(first.parameters(), second.parameters()))


def _mode_and_device_bugs(recorder: _Recorder, *, training: bool) -> list[str]:
    bugs = []
    modes = [(moved, mode, grad) for moved, mode, grad, _ in recorder.forwards]
    if training:
        bugs += ["train-mode"] if any(not mode for _, mode, _ in modes) else []
        bugs += ["train-no-grad"] if any(not grad for _, _, grad in modes) else []
    else:
        bugs += ["eval-mode"] if any(mode for _, mode, _ in modes) else []
        bugs += ["eval-grad"] if any(grad for _, _, grad in modes) else []
    bugs += ["inputs-not-moved"] if any(not moved for moved, _, _ in modes) else []
    bugs += ["targets-not-moved"] if any(not moved for moved, _, _, _ in recorder.loss_calls) else []
    kinds = {kind for _, kind, _, _ in recorder.loss_calls}
    bugs += ["softmax-before-loss"] if "probabilities" in kinds else ["not-raw-logits"] if "other" in kinds else []
    return bugs


def _loss_bugs(result: Any, recorder: _Recorder) -> list[str]:
    if isinstance(result, torch.Tensor) or not isinstance(result, (int, float)) or isinstance(result, bool):
        return ["not-a-float"]
    sizes = [size for _, _, size, _ in recorder.loss_calls]
    values = [value for _, _, _, value in recorder.loss_calls]
    if not sizes:
        return []
    per_sample = sum(v * n for v, n in zip(values, sizes)) / sum(sizes)
    if math.isclose(result, per_sample, rel_tol=1e-5, abs_tol=1e-6):
        return []
    if math.isclose(result, sum(values) / len(values), rel_tol=1e-5, abs_tol=1e-6):
        return ["mean-of-batch-means"]
    return ["wrong-mean"]


def check_train_one_epoch(train_one_epoch: Callable[..., Any], *, seed: int = 0, n_samples: int = 250,
                          batch_size: int = 100) -> None:
    """Run ``train_one_epoch(model, loader, criterion, optimizer, device)`` on probes; raise on any bug."""
    scenario = _Scenario(seed=seed, n_samples=n_samples, batch_size=batch_size)
    model = ProbeModel(scenario.network())
    reference = copy.deepcopy(model.net)
    model.eval()  # a correct loop switches to train mode itself
    loader = ProbeLoader(scenario.loader(shuffle=True))
    optimizer = scenario.optimizer(model.parameters())
    with _recording(model) as recorder:
        result, error = _run(train_one_epoch, model, loader, ProbeCriterion(), optimizer, torch.device("cpu"))
        kept = recorder.graph_kept_alive()
    batches = len(scenario.loader(shuffle=False))
    bugs = _mode_and_device_bugs(recorder, training=True)
    bugs += [code for code in recorder.problems if code != "step-before-backward" or recorder.backwards]
    if error is not None:  # only what was seen before the crash counts: absences are its consequence
        if bugs:
            _fail(bugs, function="train_one_epoch", found=f"{type(error).__name__}: {error}")
        raise _crashed("train_one_epoch", error) from error
    if recorder.backwards == 0:
        bugs.insert(0, "no-backward")
    if kept and "graph-kept" not in bugs:
        bugs.append("graph-kept")
    if len(recorder.forwards) < batches or loader.batches_served < batches:
        bugs.append("skipped-batches")
    elif recorder.steps == 0:
        bugs.append("optimizer-ignored")
    elif recorder.steps != batches and "steps-per-batch" not in bugs:
        bugs.append("steps-per-batch")
    bugs += _loss_bugs(result, recorder)
    if not bugs:
        _reference_epoch(reference, scenario)
        if not _same_parameters(model.net, reference):
            bugs.append("trajectory")
    if bugs:
        found = (f"{len(recorder.forwards)} forward passes, {recorder.backwards} backward calls and "
                 f"{recorder.steps} optimizer steps for {batches} batches; returned {result!r}")
        _fail(bugs, found=found, function="train_one_epoch")


def _reference_evaluation(network: nn.Module, loader: DataLoader) -> tuple[float, float]:
    network.eval()
    total, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for features, targets in loader:
            logits = network(features)
            total += F.cross_entropy(logits, targets, reduction="sum").item()
            correct += (logits.argmax(dim=1) == targets).sum().item()
            count += len(targets)
    return total / count, correct / count


def check_evaluate(evaluate: Callable[..., Any], *, seed: int = 0, n_samples: int = 250, batch_size: int = 100) -> None:
    """Run ``evaluate(model, loader, criterion, device)`` on probes; raise on any bug."""
    scenario = _Scenario(seed=seed, n_samples=n_samples, batch_size=batch_size)
    model = ProbeModel(scenario.network())
    model.train()  # a correct evaluate switches to eval mode itself
    before = copy.deepcopy(model.net)
    loader = ProbeLoader(scenario.loader(shuffle=False))
    with _recording(model) as recorder:
        result, error = _run(evaluate, model, loader, ProbeCriterion(), torch.device("cpu"))
    changed = not _same_parameters(model.net, before) or recorder.backwards
    bugs = ["eval-changed-parameters"] * bool(changed) + _mode_and_device_bugs(recorder, training=False)
    if error is not None:
        if bugs:
            _fail(bugs, function="evaluate", found=f"{type(error).__name__}: {error}")
        raise _crashed("evaluate", error) from error
    if len(recorder.forwards) < len(loader) or loader.batches_served < len(loader):
        bugs.append("skipped-batches")
    expected_loss, expected_accuracy = _reference_evaluation(before, scenario.loader(shuffle=False))
    pair_ok = isinstance(result, tuple) and len(result) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, (bool, torch.Tensor)) for v in result)
    if not pair_ok:
        bugs.append("eval-return")
    else:
        loss, accuracy = result
        if not math.isclose(loss, expected_loss, rel_tol=1e-5, abs_tol=1e-6):
            bugs.append("eval-loss")
        if not math.isclose(accuracy, expected_accuracy, abs_tol=1e-6):
            bugs.append("eval-accuracy")
    if bugs:
        found = f"returned {result!r}; a correct evaluation gives ({expected_loss:.6f}, {expected_accuracy:.6f})"
        _fail(bugs, found=found, function="evaluate")


def run_course_fit(fit: Callable[..., Any], recipe: TrainingRecipe = DEFAULT_RECIPE,
                   device: torch.device | str = "cpu") -> list[dict[str, float]]:
    """Run the learner's ``fit`` with the course's default model, data and optimiser; return its history."""
    device = torch.device(device)
    model = default_model(recipe).to(device)
    train_loader, val_loader = default_loaders(recipe)
    return fit(model, train_loader, val_loader, nn.CrossEntropyLoss(), default_optimizer(model, recipe),
               device, recipe.epochs)


def _history_ok(history: Any, epochs: int) -> bool:
    keys = {"epoch", "loss", "val_loss", "accuracy"}
    return (isinstance(history, list) and len(history) == epochs
            and all(isinstance(r, dict) and keys <= set(r) for r in history)
            and [r["epoch"] for r in history] == list(range(1, epochs + 1))
            and all(isinstance(r[k], (int, float)) and not isinstance(r[k], (bool, torch.Tensor))
                    for r in history for k in keys - {"epoch"}))


def check_fit(fit: Callable[..., Any], train_one_epoch: Callable[..., Any], evaluate: Callable[..., Any],
              *, seed: int = DEFAULT_RECIPE.seed) -> list[dict[str, float]]:
    """Check ``fit``'s history shape, that it matches its two building blocks, and that it learns."""
    recipe = replace(DEFAULT_RECIPE, seed=seed)
    history = _call(run_course_fit, "fit", fit, recipe)
    if not _history_ok(history, recipe.epochs):
        _fail(["fit-history"], found=f"{history!r}"[:300], function="fit")
    model = default_model(recipe)
    optimizer = default_optimizer(model, recipe)
    train_loader, val_loader = default_loaders(recipe)
    criterion = nn.CrossEntropyLoss()
    for record in history:
        loss = train_one_epoch(model, train_loader, criterion, optimizer, torch.device("cpu"))
        val_loss, accuracy = evaluate(model, val_loader, criterion, torch.device("cpu"))
        expected = (loss, val_loss, accuracy)
        found = (record["loss"], record["val_loss"], record["accuracy"])
        if not all(math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6) for a, b in zip(found, expected)):
            _fail(["fit-values"], found=f"epoch {record['epoch']}: {found}, expected {expected}", function="fit")
    check_convergence(history)
    return history


def converged(history: list[dict[str, float]]) -> bool:
    """The convergence verdict: after the last epoch, loss below 0.6 and accuracy above 0.8."""
    last = history[-1]
    return last["loss"] < CONVERGED_LOSS and last["accuracy"] > CONVERGED_ACCURACY


def check_convergence(history: list[dict[str, float]]) -> None:
    """Fail unless the history ends converged (see :func:`converged`)."""
    if not converged(history):
        last = history[-1]
        _fail(["no-convergence"], function="fit",
              found=f"epoch {last['epoch']}: loss {last['loss']:.3f}, accuracy {last['accuracy']:.3f}")
