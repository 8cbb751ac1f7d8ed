"""Lesson 07, Exercise 1: ``train_one_epoch``, run on the instrumented model, loss, optimiser and loader.

The check runs the learner's loop on :data:`TRAIN_SCENARIOS` and compares what the instruments
recorded (modes, device moves, the order of ``backward`` and ``step``, the gradient each step
applied) and the parameters it left with a correct epoch's, stored as data
(``checks/expected/lesson07-train-one-epoch.json``, computed on the grader's side). Evaluation
shares the recognisers of mode, device, skipped batches and the returned mean loss
(:func:`mode_and_device_findings`, :func:`skipped_batches`, :func:`loss_findings`): their
diagnoses are declared here. Importing this module has no side effects.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from course_utils.checks import expected as stored
from course_utils.checks.learner import call_learner
from course_utils.checks.lesson07.common import (
    LESSON, LOOP_CASES, Finding, Scenario, crashed, fail, number, of, parameters, times,
)
from course_utils.checks.lesson07.instruments import (
    ProbeCriterion, ProbeLoader, ProbeModel, Recorder, largest_difference, plain, recording, same_parameters,
)
from course_utils.diagnoses import Exercise, ForbiddenCall

EXERCISE = Exercise(LESSON, "ex1-tests", "Exercise 1 · train_one_epoch")
DIAGNOSES = EXERCISE.diagnoses(
    ("train-mode", "the model was not in train mode during training",
     "call model.train() at the start of train_one_epoch (evaluate() switches it to eval mode).", "modes"),
    ("train-no-grad", "the training forward pass ran without gradient tracking",
     "do not wrap training in torch.no_grad() or torch.inference_mode(); only evaluation is.", "modes"),
    ("inputs-not-moved", "the inputs were not moved to the device",
     "move every batch: xb = xb.to(device) before model(xb).", "device"),
    ("targets-not-moved", "the targets were not moved to the device",
     "move the targets too: yb = yb.to(device) before criterion(logits, yb).", "device"),
    ("softmax-before-loss", "the loss received probabilities (softmax output), not raw logits",
     "CrossEntropyLoss applies log-softmax itself: pass model(xb) straight to the criterion.", "loss"),
    ("not-raw-logits", "the loss did not receive the model's raw output",
     "pass the model's output to the criterion unchanged: criterion(model(xb), yb).", "loss"),
    ("criterion-ignored", "the criterion passed in was never called",
     "compute the loss with the `criterion` argument, criterion(logits, yb); do not build a loss of your "
     "own.", "loss"),
    ("no-backward", "loss.backward() was never called",
     "call loss.backward() after computing the loss and before optimizer.step().", "gradients"),
    ("step-before-backward", "optimizer.step() ran before loss.backward() in a batch",
     "the order in every batch is: zero_grad, forward, loss, backward, step.", "gradients"),
    ("accumulated-gradients", "gradients accumulated across batches (they were never zeroed)",
     "call optimizer.zero_grad() once per batch, before loss.backward() (or right after optimizer.step()).",
     "gradients"),
    ("cleared-before-step", "gradients were cleared between loss.backward() and optimizer.step()",
     "zero the gradients before backward() or after step(), never between them: step() needs them.", "gradients"),
    ("optimizer-ignored", "the optimizer passed to train_one_epoch never stepped",
     "call step() on the `optimizer` argument; do not create a new optimizer inside the function.", "optimizer"),
    ("steps-per-batch", "optimizer.step() did not run exactly once per batch",
     "call optimizer.step() once in every batch, after loss.backward().", "optimizer"),
    ("skipped-batches", "not every batch of the loader went through the model",
     "loop over the whole loader (for xb, yb in loader), including the last, smaller batch.", "data"),
    ("graph-kept", "a tensor that still tracks gradients was kept from one batch to the next",
     "accumulate loss.item() (a float) or loss.detach(), never the loss tensor itself: it keeps every "
     "batch's autograd graph alive and memory grows with every batch.", "gradients"),
    ("not-a-float", "the returned loss is not a Python float",
     "return a float: accumulate loss.item() * len(yb) and divide by the number of samples.", "interface"),
    ("mean-of-batch-means", "the returned loss is the mean of the batch losses, not the mean per sample",
     "weight each batch's loss by its size (loss.item() * len(yb)); the last batch is smaller.", "metrics"),
    ("wrong-mean", "the returned loss is not the mean loss per sample over the epoch",
     "sum loss.item() * len(yb) over the batches and divide by the number of samples.", "metrics"),
    ("trajectory", "the parameters after one epoch differ from those of a correct loop on the same batches",
     "one batch = zero_grad, forward, loss, backward, step, with the given model, criterion and optimizer.",
     "optimizer"),
    ("model-moved-every-batch", "the model was moved to the device inside the loop over batches",
     "move the model once, before training (fit does it); inside the loop move only the batch: xb, yb = "
     "xb.to(device), yb.to(device).", "device"),
    ("train-crashed", "train_one_epoch raised an error",
     "the found line shows where. To see it on the lesson's own data, run train_one_epoch(model, "
     "train_loader, nn.CrossEntropyLoss(), default_optimizer(model), device) in a new cell: section 1 "
     "defines model, train_loader and device.", "interface"),
    ("returned-in-loop", "the epoch ended after the first batch: a return or break inside the loop",
     "the return (or a break) is inside the for loop: move it after the loop, at the function's own "
     "indentation, so that every batch is visited first.", "data"),
    ("step-after-loop", "optimizer.step() ran once, after the loop over batches, not once per batch",
     "indent optimizer.step() into the for loop, right after loss.backward(): one step per batch.", "optimizer"),
    ("loss-divided-twice", "the returned loss adds up batch means and divides them by the number of samples",
     "loss.item() is already the batch's mean: add loss.item() * len(yb) (the batch's sum), then divide by "
     "the number of samples.", "metrics"),
    ("hard-coded-device", "tensors or the model went to a device written in the code, not to `device`",
     "move with .to(device), the function's own argument, never .cuda() or .to('cuda'): the caller decides "
     "where training runs, and a machine without a GPU has no 'cuda'.", "device"),
    ("grad-modified", "the gradients were changed between loss.backward() and optimizer.step()",
     "step with the gradients as backward() left them: the loss is already a batch mean, so do not divide "
     "or clip them here (clipping comes in lesson 08).", "gradients"),
    ("scaled-loss", "backward() ran on a multiple of the criterion's loss, not on the loss itself",
     "call loss.backward() on criterion(logits, yb) as it is: the criterion already averages over the "
     "batch, so multiplying it (by len(yb), for instance) scales every step.", "gradients"),
    ("optimizer-changed", "train_one_epoch changed the settings of the optimizer it was given",
     "leave the optimizer's learning rate and momentum as the caller set them: train_one_epoch only steps "
     "it.", "optimizer"),
    ("train-library-loss", "train_one_epoch computes the loss with a loss function of its own, not the "
     "criterion it was given",
     "call criterion(logits, yb): the caller chooses the loss, and fit passes its own on.", "not-allowed"),
    ("train-own-optimizer", "train_one_epoch builds an optimizer of its own",
     "step the `optimizer` argument: a new optimizer inside the function loses the caller's settings and "
     "momentum.", "not-allowed"),
)

# Library losses the exercises ask to leave to the criterion passed in (evaluate forbids them too).
LIBRARY_LOSSES = ("torch.nn.functional.cross_entropy", "torch.nn.functional.nll_loss", "torch.nn.CrossEntropyLoss",
                  "torch.nn.NLLLoss")
# What the grader's source scan forbids: the exercise asks for the loop with the criterion and optimizer passed in.
FORBIDDEN_CALLS = (
    ForbiddenCall("ex1-tests", "train_one_epoch", LIBRARY_LOSSES, "train-library-loss"),
    ForbiddenCall("ex1-tests", "train_one_epoch", ("torch.optim",), "train-own-optimizer"),
)

# 250 samples in batches of 100 make batches of 100, 100 and 50: a smaller last batch exposes unweighted
# means. One sample is the smallest loader a loop must handle (the grader draws other sizes).
TRAIN_SCENARIOS = (Scenario("main", seed=0, n_samples=250, batch_size=100),
                   Scenario("one-sample", seed=11, n_samples=1, batch_size=100))
TRAIN_EXPECTED = "lesson07-train-one-epoch"


def _stored_epoch(scenario: Scenario) -> tuple[list[torch.Tensor], list[float], list[torch.Tensor]]:
    """A correct epoch on ``scenario`` (stored data, see :class:`Scenario`): the parameters it leaves, the sum
    of squares of the parameters after every step, and the gradient its first step applies."""
    data = stored.load(TRAIN_EXPECTED)[scenario.name]
    return ([stored.tensor(values) for values in data["parameters"]], data["step_norms"],
            [stored.tensor(values) for values in data["first_gradient"]])


def _scale_of(found: list[torch.Tensor], wanted: list[torch.Tensor]) -> float | None:
    """c when ``found`` is c times ``wanted`` (the whole gradient, one common factor); None otherwise."""
    if len(found) != len(wanted) or any(f.shape != w.shape for f, w in zip(found, wanted)):
        return None
    f = torch.cat([t.flatten().double() for t in found])
    w = torch.cat([t.flatten().double() for t in wanted])
    if not bool(w.abs().sum()):
        return None
    scale = float(f @ w / (w @ w))
    return scale if torch.allclose(f, scale * w, rtol=1e-4, atol=1e-7) else None


def _settings_findings(optimizer: torch.optim.Optimizer, scenario: Scenario) -> list[Finding]:
    """The optimizer's settings after the epoch against those it was given."""
    given = {"lr": scenario.recipe.learning_rate, "momentum": scenario.recipe.momentum}
    changed = [f"{name} {value:g} -> {group[name]:g}" for group in optimizer.param_groups
               for name, value in given.items() if group[name] != value]
    if not changed:
        return []
    return [Finding("optimizer-changed", "the optimizer's settings were changed: " + ", ".join(changed))]


def _trajectory_finding(recorder: Recorder, model: ProbeModel, scenario: Scenario, batches: int) -> Finding | None:
    """What differs from a correct epoch, as precisely as the records allow; None when nothing does."""
    correct, step_norms, first_gradient = _stored_epoch(scenario)
    if same_parameters(model.net.parameters(), correct):
        return None
    gap = largest_difference(model.net.parameters(), correct)
    scale = _scale_of(recorder.first_gradient, first_gradient)
    if scale is not None and not math.isclose(scale, 1.0, rel_tol=1e-3):
        return Finding("scaled-loss", f"the first step applied {scale:.4g} times the gradient of the batch's mean "
                                      f"loss; after {batches} batches the parameters differ by up to {gap:.3g}")
    first = next((step for step, (found, wanted) in enumerate(zip(recorder.step_norms, step_norms), 1)
                  if not math.isclose(found, wanted, rel_tol=1e-6, abs_tol=1e-9)), len(step_norms))
    batch = recorder.step_batches[first - 1] if first <= len(recorder.step_batches) else first
    return Finding("trajectory", f"the parameters first differ from a correct loop's after step {first} of "
                                 f"{len(step_norms)}, which used the loader's batch {batch}; after {batches} "
                                 f"batches by up to {gap:.3g}")

def mode_and_device_findings(recorder: Recorder, *, training: bool) -> list[Finding]:
    """Modes, gradient tracking, device moves and what the loss received, in training or in evaluation."""
    forwards, calls = recorder.forwards, recorder.loss_calls
    passes = lambda n: of(n, len(forwards), "forward passes")  # noqa: E731
    findings = []
    if training:
        if n := sum(not f.training for f in forwards):
            findings.append(Finding("train-mode", f"the model was in eval mode in {passes(n)}"))
        if n := sum(not f.grad_enabled for f in forwards):
            findings.append(Finding("train-no-grad", f"gradient tracking was off in {passes(n)}"))
    else:
        if n := sum(f.training for f in forwards):
            findings.append(Finding("eval-mode", f"the model was in train mode in {passes(n)}"))
        if n := sum(f.grad_enabled for f in forwards):
            findings.append(Finding("eval-grad", f"gradient tracking was on in {passes(n)}"))
    if n := recorder.counts["hard-coded-device"]:
        findings.append(Finding("hard-coded-device" if training else "eval-hard-coded-device",
                                f"a batch or the model was sent to cuda {times(n)}, while the `device` argument "
                                "was the CPU"))
    if n := sum(not f.moved for f in forwards):
        findings.append(Finding("inputs-not-moved", f"{passes(n)} received inputs that never went through .to(device)"))
    if n := sum(not c.targets_moved for c in calls):
        findings.append(Finding("targets-not-moved", f"{of(n, len(calls), 'criterion calls')} received targets "
                                                     "that never went through .to(device)"))
    # once before the loop (or once at all) is harmless; a move in every batch is the mistake
    if len(moved_in := sorted({batch for batch in recorder.model_moves if batch})) >= 2:
        code = "model-moved-every-batch" if training else "eval-model-moved-every-batch"
        findings.append(Finding(code, f"model.to(device) ran {times(len(recorder.model_moves))}, during "
                                      f"{of(len(moved_in), len(recorder.batch_sizes), 'batches')}"))
    kinds = Counter(c.kind for c in calls)
    if kinds["probabilities"]:
        findings.append(Finding("softmax-before-loss", f"{of(kinds['probabilities'], len(calls), 'criterion calls')} "
                                                       "received rows that are all in [0, 1] and sum to 1"))
    elif kinds["other"]:
        findings.append(Finding("not-raw-logits", f"{of(kinds['other'], len(calls), 'criterion calls')} received "
                                                  "values that are not rows the model produced"))
    return findings


def _seen(recorder: Recorder) -> tuple[int, int]:
    """How many distinct batches, and how many of their samples, went through the model."""
    batches = {f.batch for f in recorder.forwards if f.batch}
    return len(batches), sum(recorder.batch_sizes[b] for b in batches)


def _batches(count: int) -> str:
    return "the 1 batch" if count == 1 else f"each of the {count} batches"


def skipped_batches(recorder: Recorder, loader: ProbeLoader, scenario: Scenario, *, training: bool) -> Finding | None:
    """Batches the model never saw: all after the first one (a return or break in the loop), or others.

    Training counts the distinct batches that went through the model; evaluation counts samples,
    since a correct evaluate may concatenate every batch and run one forward pass.
    """
    batches, taken = len(loader), loader.batches_served
    if training:
        seen_batches, seen_samples = _seen(recorder)
        complete = seen_batches >= batches
        saw = (f"the model saw {of(seen_batches, batches, 'batches')} "
               f"({of(seen_samples, scenario.n_samples, 'samples')})")
    else:
        seen_samples = sum(f.size for f in recorder.forwards)
        complete = seen_samples >= scenario.n_samples
        saw = f"the model saw {of(seen_samples, scenario.n_samples, 'samples')}"
    if complete and taken >= batches:
        return None
    saw += f"; {of(taken, batches, 'batches')} taken from the loader"
    if taken == 1 < batches and recorder.forwards:
        return Finding("returned-in-loop" if training else "eval-returned-in-loop", f"{saw}, then it returned")
    return Finding("skipped-batches", saw)


def _steps_per_batch(recorder: Recorder, batches: int) -> Finding | None:
    per_batch = Counter(recorder.step_batches)
    forwarded = sorted({f.batch for f in recorder.forwards if f.batch})
    counts = [per_batch.get(b, 0) for b in forwarded]
    if counts and all(c == 1 for c in counts) and recorder.steps == len(counts):
        return None
    if recorder.steps == 1 and batches > 1 and recorder.step_batches == [max(forwarded, default=0)] \
            and recorder.backwards >= batches:
        return Finding("step-after-loop", f"optimizer.step() ran 1 time for {batches} batches, after the last "
                                          f"batch's backward; backward ran {times(recorder.backwards)}")
    shown = (f"{counts[0]} per batch" if len(set(counts)) == 1
             else "per batch: " + ", ".join(map(str, counts[:12])) + (", ..." if len(counts) > 12 else ""))
    return Finding("steps-per-batch", f"optimizer.step() ran {times(recorder.steps)} for {batches} batches ({shown})")


def close(first: float, second: float) -> bool:
    """Two returned numbers equal within the checks' tolerance."""
    return math.isclose(first, second, rel_tol=1e-5, abs_tol=1e-6)


def loss_findings(result: Any, recorder: Recorder, samples: int, *, training: bool = True) -> list[Finding]:
    """The returned loss against the mean per sample of the losses the criterion handed out."""
    if isinstance(result, torch.Tensor) or not isinstance(result, (int, float)) or isinstance(result, bool):
        shown = plain(result.detach()) if isinstance(result, torch.Tensor) else result
        return [Finding("not-a-float", f"returned {shown!r}, of type {type(shown).__name__}")]
    calls = recorder.loss_calls
    if not calls:
        return []
    per_sample = sum(c.mean * c.size for c in calls) / sum(c.size for c in calls)
    if close(result, per_sample):
        return []
    correct = f"the mean per sample over the {samples} samples is {per_sample:.6f}"
    prefix = "" if training else "eval-"
    if len(calls) > 1 and close(result, sum(c.mean for c in calls) / len(calls)):
        return [Finding("mean-of-batch-means" if training else "eval-loss",
                        f"returned {result:.6f}, the plain mean of the {len(calls)} batch losses; {correct}")]
    if len(calls) > 1 and close(result, sum(c.mean for c in calls) / samples):
        return [Finding(f"{prefix}loss-divided-twice", f"returned {result:.6f}, the sum of the {len(calls)} batch "
                                                       f"means divided by {samples} samples; {correct}")]
    return [Finding("wrong-mean" if training else "eval-loss", f"returned {result!r}; {correct}")]


def check_train_one_epoch(train_one_epoch: Callable[..., Any]) -> None:
    """Run ``train_one_epoch(model, loader, criterion, optimizer, device)`` on probes; raise on any bug.

    It runs on every scenario of :data:`TRAIN_SCENARIOS` in turn (the first bug found is reported).
    """
    for scenario in TRAIN_SCENARIOS:
        _check_train_scenario(train_one_epoch, scenario)


def _check_train_scenario(train_one_epoch: Callable[..., Any], scenario: Scenario) -> None:
    model = ProbeModel(scenario.network())
    model.eval()  # a correct loop switches to train mode itself
    loader = ProbeLoader(scenario.loader(shuffle=True))
    optimizer = scenario.optimizer(model.parameters())
    with recording(model) as recorder:
        result, error = call_learner(train_one_epoch, model, loader, ProbeCriterion(), optimizer, torch.device("cpu"))
        recorder.batch = loader.batches_served + 1  # whatever is still alive now was kept from an earlier batch
        kept = recorder.graph_kept_alive()
    batches = len(loader)
    expected = (f"on {scenario.describe()}: for {_batches(batches)} one zero_grad, forward, loss, backward and step, "
                f"then the mean loss per sample as a float")
    findings = mode_and_device_findings(recorder, training=True)
    if recorder.counts["step-before-backward"] and recorder.backwards:
        findings.append(Finding("step-before-backward", "optimizer.step() ran before that batch's loss.backward() "
                                f"at {of(recorder.counts['step-before-backward'], recorder.steps, 'steps')}"))
    if error is not None:  # only what was seen before the crash counts: absences are its consequence
        if findings:
            fail(findings, function="train_one_epoch", expected=expected)
        raise crashed("train_one_epoch", error, on=scenario.describe()) from error
    if not recorder.loss_calls and recorder.forwards:
        findings.append(Finding("criterion-ignored", f"the criterion was called 0 times for {batches} batches"))
    if recorder.backwards == 0:
        findings.insert(0, Finding("no-backward", f"loss.backward() ran 0 times for {batches} batches"))
    if (n := recorder.counts["graph-kept"]) or kept:
        where = f"at {of(n, recorder.steps, 'optimizer steps')}" if n else "when train_one_epoch returned"
        findings.append(Finding("graph-kept", "a tensor that tracks gradients from an earlier batch was still "
                                              f"alive {where}"))
    if (skipped := skipped_batches(recorder, loader, scenario, training=True)) is not None:
        findings.append(skipped)
    elif recorder.steps == 0:
        moved = "changed" if not same_parameters(model.net.parameters(), scenario.network().parameters()) \
            else "did not change"
        findings.append(Finding("optimizer-ignored", f"the given optimizer stepped 0 times for {batches} batches "
                                                     f"(the parameters {moved})"))
    elif (wrong_steps := _steps_per_batch(recorder, batches)) is not None:
        findings.append(wrong_steps)
    if n := recorder.counts["cleared-before-step"]:
        findings.append(Finding("cleared-before-step", f"at {of(n, recorder.steps, 'optimizer steps')} every .grad was "
                                                       "zero although backward() had just computed gradients"))
    if n := recorder.counts["grad-modified"]:
        findings.append(Finding("grad-modified", f"at {of(n, recorder.steps, 'optimizer steps')} .grad was not what "
                                                 "loss.backward() had just computed (scaled, clipped or replaced)"))
    if n := recorder.counts["accumulated-gradients"]:
        findings.append(Finding("accumulated-gradients", f"at {of(n, recorder.steps, 'optimizer steps')} .grad "
                                                         "held more than that batch's gradient: earlier batches' "
                                                         "were added in"))
    findings += loss_findings(result, recorder, scenario.n_samples)
    findings += _settings_findings(optimizer, scenario)
    if not findings and (trajectory := _trajectory_finding(recorder, model, scenario, batches)) is not None:
        findings.append(trajectory)
    if findings:
        fail(findings, function="train_one_epoch", expected=expected)


def probe(namespace: dict[str, Any], seed: int) -> dict[str, Any]:
    """The re-check: one epoch of the learner's train_one_epoch on each of the seed's loop scenarios."""
    values: dict[str, Any] = {}
    for key, build in LOOP_CASES:
        model, train, _, optimizer = build(seed)
        loss = namespace["train_one_epoch"](model, train, nn.CrossEntropyLoss(), optimizer, torch.device("cpu"))
        values.update({f"{key}loss": number(loss), f"{key}parameters": parameters(model)})
    return values
