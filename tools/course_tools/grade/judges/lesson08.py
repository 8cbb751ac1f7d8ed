"""Lesson 08's judges: the grader recomputes, with PyTorch, what the learner's loops must have produced.

The kernel ran the learner's functions on scenarios built from a seed drawn at grading time
(``probe`` of each exercise module of :mod:`course_utils.checks.lesson08`) and sent back values; here
the same scenarios are rebuilt from the seed, with the student package's builders, and trained by
reference loops. Tolerances are never stricter than the lesson's own checks, and every correct way
the lesson accepts passes: dividing the last, shorter accumulation group by ``accumulation_steps``
or by its own length, any epoch numbering given to ``DistributedSampler.set_epoch``. The loss must be
computed under autocast, as the lesson says.

What values cannot show (whether batches were moved to the device, whether only rank 0 printed or
saved) stays with the in-kernel checks. The reference loops here also compute, once, the results the
visible checks compare with (``EXPECTED``, written by ``course expected 08_loop_at_scale``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data.distributed import DistributedSampler

from course_tools.grade.judges._compare import close, tensors_close, tensors_like
from course_utils.checks.lesson08.common import Task, VerdictCase, verdict_case, verdict_optimizer
from course_utils.checks.lesson08.ex3 import FloatCrossEntropy, VerdictAmpModel, verdict_scaler
from course_utils.checks.lesson08.ex4 import DDPTask, verdict_ddp_task
from course_utils.checks.lesson08.stored import (
    ACCUMULATION_SCENARIOS,
    DDP_EPOCH_OFFSETS,
    DDP_SCENARIOS,
    FIT_SCENARIOS,
    key,
)

# Parameters: _compare's TOLERANCE (float32 sums in another order; the lesson's checks: 1e-4, 1e-7), and for DDP:
_DDP_PARAMETERS = dict(rtol=1e-4, atol=2e-5)  # the lesson's own DDP tolerance
_RATES = dict(rel_tol=1e-6, abs_tol=1e-9)  # learning rates: the same products of gamma
# bfloat16 keeps 8 bits of mantissa: a float32 sum in another order (other threads, another library build) can
# round one activation to the neighbouring bfloat16 value. The parameters are judged by how far they are from the
# reference relative to how far the reference moved in the epoch; mistakes move them by 30 % or more of it.
_AMP_DRIFT = 0.03
_AMP_LOSS = dict(rel_tol=2e-3, abs_tol=1e-4)


def _parameters(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _groups(n_batches: int, k: int) -> list[tuple[int, int]]:
    return [(start, min(start + k, n_batches)) for start in range(0, n_batches, k)]


# --- exercise 1: gradient accumulation --------------------------------------------------------------

def reference_accumulation(task: Task, accumulation_steps: int, *,
                           divide_last_by_its_length: bool) -> tuple[list[torch.Tensor], float]:
    """Parameters after one accumulated epoch, and the mean loss per sample."""
    model = task.network()
    optimizer = torch.optim.SGD(model.parameters(), lr=task.learning_rate, momentum=task.momentum)
    batches = list(task.loader())
    total, count = 0.0, 0
    for start, end in _groups(len(batches), accumulation_steps):
        divisor = end - start if divide_last_by_its_length else accumulation_steps
        for features, targets in batches[start:end]:
            loss = F.cross_entropy(model(features), targets)
            (loss / divisor).backward()
            total, count = total + loss.item() * len(targets), count + len(targets)
        optimizer.step()
        optimizer.zero_grad()
    return _parameters(model), total / count


def _judge_accumulation(values: dict[str, Any], seed: int) -> str:
    case = verdict_case(seed)
    single = values.get("single")
    for k, found in ((case.accumulation_steps, values), (1, single if isinstance(single, dict) else {})):
        references = [reference_accumulation(case.task, k, divide_last_by_its_length=flag) for flag in (False, True)]
        if not any(tensors_close(found.get("parameters"), parameters) for parameters, _ in references):
            return (f"after one epoch with accumulation_steps={k}, the parameters differ from those of PyTorch's "
                    f"reference loop (each loss divided by accumulation_steps, a step and zero_grad after every group "
                    f"and after the last micro-batch)")
        loss = references[0][1]
        if not close(found.get("loss"), loss):
            return (f"with accumulation_steps={k}, the returned loss {_short(found.get('loss'))} is not the mean "
                    f"(undivided) loss per sample, {loss:.6f}")
    return ""


def _short(value: Any) -> str:
    """A received value in a message, bounded: it came from the learner's process."""
    return repr(value)[:80] if isinstance(value, (int, float, type(None))) else f"a {type(value).__name__}"


# --- exercise 2: clipping and schedules ---------------------------------------------------------------

def reference_fit_scheduled(case: VerdictCase, interval: str) -> dict[str, Any]:
    """History, learning rates at each optimizer step, final learning rate and parameters of a correct run."""
    return reference_fit(case.task, case.epochs, case.max_norm, interval,
                         lambda optimizer: torch.optim.lr_scheduler.ExponentialLR(optimizer, case.gamma))


def reference_fit(task: Task, epochs: int, max_norm: float, interval: str,
                  schedule: Callable[[torch.optim.Optimizer], LRScheduler]) -> dict[str, Any]:
    """A correct clipped, scheduled run of ``epochs`` epochs on ``task``."""
    model = task.network()
    optimizer = torch.optim.SGD(model.parameters(), lr=task.learning_rate, momentum=task.momentum)
    scheduler = schedule(optimizer)
    loader = task.loader()
    history, rates = [], []
    for _ in range(epochs):
        total, count = 0.0, 0
        for features, targets in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(features), targets)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            rates.append(float(optimizer.param_groups[0]["lr"]))
            optimizer.step()
            if interval == "batch":
                scheduler.step()
            total, count = total + loss.item() * len(targets), count + len(targets)
        if interval == "epoch":
            scheduler.step()
        history.append(total / count)
    return {"history": history, "rates": rates, "final_rate": float(optimizer.param_groups[0]["lr"]),
            "parameters": _parameters(model)}


def _judge_fit_scheduled(values: dict[str, Any], seed: int) -> str:
    case = verdict_case(seed)
    for interval in ("batch", "epoch"):
        found, expected = values.get(interval), reference_fit_scheduled(case, interval)
        if not isinstance(found, dict):
            return f"no run with interval={interval!r} was reported"
        rates = found.get("rates")
        if not (isinstance(rates, list) and len(rates) == len(expected["rates"])
                and all(close(r, e, **_RATES) for r, e in zip(rates, expected["rates"]))
                and close(found.get("final_rate"), expected["final_rate"], **_RATES)):
            return (f"with interval={interval!r}, the learning rates the optimizer stepped with differ from a schedule "
                    f"stepped after the optimizer, once per {interval}")
        if not tensors_close(found.get("parameters"), expected["parameters"]):
            return (f"with interval={interval!r}, the parameters differ from a reference loop that clips the gradients "
                    f"to max_norm={case.max_norm} between backward and optimizer.step()")
        history = found.get("history")
        if not (isinstance(history, list) and len(history) == case.epochs
                and all(close(h, e) for h, e in zip(history, expected["history"]))):
            return (f"with interval={interval!r}, the returned history {_short(history)} is not the mean loss per sample "
                    f"of each epoch")
    return ""


# --- exercise 3: mixed precision ----------------------------------------------------------------------

def reference_amp(case: VerdictCase) -> dict[str, Any]:
    """A correct bfloat16 autocast epoch with a gradient scaler and clipping, on this machine's CPU."""
    model = VerdictAmpModel(case.task.network(), case.inf_batch)
    start = _parameters(model)
    optimizer = verdict_optimizer(model)
    scaler, criterion = verdict_scaler(), FloatCrossEntropy()
    total, count = 0.0, 0
    for features, targets in case.task.loader():
        optimizer.zero_grad()
        with torch.autocast(device_type="cpu", dtype=case.amp_dtype):
            loss = criterion(model(features), targets)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), case.max_norm)
        scaler.step(optimizer)
        scaler.update()
        total, count = total + loss.item() * len(targets), count + len(targets)
    return {"loss": total / count, "parameters": _parameters(model), "start": start,
            "scale": float(scaler.get_scale()), "output_dtypes": list(model.output_dtypes)}


def _drift(found: list[torch.Tensor], expected: list[torch.Tensor], start: list[torch.Tensor]) -> float:
    """How far ``found`` is from ``expected``, relative to how far ``expected`` moved from ``start``."""
    gap = math.sqrt(sum(float(((f.double() - e.double()) ** 2).sum()) for f, e in zip(found, expected)))
    moved = math.sqrt(sum(float(((e.double() - s.double()) ** 2).sum()) for e, s in zip(expected, start)))
    return gap / max(moved, 1e-12)


def _judge_amp(values: dict[str, Any], seed: int) -> str:
    case = verdict_case(seed)
    expected = reference_amp(case)
    dtypes = values.get("output_dtypes")
    if dtypes != expected["output_dtypes"]:
        shown = sorted({str(d)[:20] for d in dtypes[:100]}) if isinstance(dtypes, list) else _short(dtypes)
        return (f"the model's outputs had dtypes {shown}, expected {case.amp_dtype} in every forward pass: run it "
                f"under torch.autocast with dtype=amp_dtype")
    inside = values.get("loss_under_autocast")
    if not (isinstance(inside, list) and len(inside) == len(expected["output_dtypes"]) and all(f is True for f in inside)):
        return ("the loss was computed outside torch.autocast: compute it inside the same `with torch.autocast(...)` "
                "block as the forward pass")
    found = values.get("parameters")
    if not (tensors_like(found, expected["parameters"]) and all(bool(torch.isfinite(f).all()) for f in found)):
        return ("the parameters after the epoch are missing or not finite: a batch with infinite gradients must be "
                "skipped by scaler.step(optimizer)")
    if _drift(found, expected["parameters"], expected["start"]) > _AMP_DRIFT:
        return (f"the parameters after the epoch differ from a reference loop (scaler.scale(loss).backward(), "
                f"unscale_, clip to max_norm={case.max_norm}, scaler.step, scaler.update, every batch)")
    if values.get("scale") != expected["scale"]:
        return (f"the scaler's scale ended at {_short(values.get('scale'))}, expected {expected['scale']:g}: call "
                f"scaler.update() once after every scaler.step(optimizer)")
    if not close(values.get("loss"), expected["loss"], **_AMP_LOSS):
        return f"the returned loss {_short(values.get('loss'))} is not the mean loss per sample, {expected['loss']:.5f}"
    return ""


# --- exercise 4: distributed data parallel ------------------------------------------------------------

def _epoch_orders(loaded: Any, n_samples: int, epochs: int) -> list[list[list[int]]] | None:
    """Each epoch's sample order per rank, if the two ranks split every epoch as DistributedSampler does.

    With an odd number of samples the sampler pads one rank with a repeated sample, or, with
    ``drop_last=True``, leaves one sample out: both are accepted, as by the lesson's check.
    """
    if not (isinstance(loaded, list) and len(loaded) == 2 and all(isinstance(order, list) for order in loaded)):
        return None
    per_rank = len(loaded[0]) // epochs
    if not (per_rank in (n_samples // 2, math.ceil(n_samples / 2)) and all(
            len(order) == epochs * per_rank and all(type(i) is int and 0 <= i < n_samples for i in order)
            for order in loaded)):
        return None
    orders = [[order[e * per_rank:(e + 1) * per_rank] for order in loaded] for e in range(epochs)]
    if any(len(set(first) | set(second)) < 2 * (n_samples // 2) for first, second in orders):
        return None
    return orders


def _increasing(order: list[int]) -> bool:
    """An order of DistributedSampler(shuffle=False): increasing (the padding at the end aside)."""
    head = order[:20]
    return len(head) > 2 and all(a < b for a, b in zip(head, head[1:]))


def _reshuffled(orders: list[list[list[int]]]) -> bool:
    """Every epoch visits the samples in another order (DistributedSampler's shuffle is seeded by seed + epoch)."""
    return all(orders[e][0] != orders[e + 1][0] for e in range(len(orders) - 1))


def reference_ddp(seed: int | DDPTask, orders: list[list[list[int]]], *,
                  divide_last_by_its_length: bool) -> tuple[list[torch.Tensor], list[tuple[float, float]]]:
    """One process trains on the union of both ranks' micro-batches; parameters and (loss, accuracy) per epoch.

    ``seed`` names a re-check scenario (:func:`verdict_ddp_task`), or is the task itself.
    """
    task = verdict_ddp_task(seed) if isinstance(seed, int) else seed
    features, targets = task.data()
    model = task.network()
    config = task.config()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=config.momentum)
    history = []
    for epoch_orders in orders:
        n_batches = math.ceil(len(epoch_orders[0]) / task.batch_size)
        loss_sum, correct, count = 0.0, 0, 0
        for start, end in _groups(n_batches, task.accumulation_steps):
            divisor = end - start if divide_last_by_its_length else task.accumulation_steps
            for j in range(start, end):
                index = torch.tensor([i for order in epoch_orders
                                      for i in order[j * task.batch_size:(j + 1) * task.batch_size]])
                logits = model(features[index])
                (F.cross_entropy(logits, targets[index]) / divisor).backward()
                loss_sum += F.cross_entropy(logits.detach(), targets[index], reduction="sum").item()
                correct += int((logits.argmax(dim=1) == targets[index]).sum())
                count += len(index)
            optimizer.step()
            optimizer.zero_grad()
        history.append((loss_sum / count, correct / count))
    return _parameters(model), history


def _judge_ddp(values: dict[str, Any], seed: int) -> str:
    task = verdict_ddp_task(seed)
    single = values.get("single")
    return (_judge_ddp_run(values, task)
            or _judge_ddp_run(single if isinstance(single, dict) else {}, replace(task, accumulation_steps=1)))


def _judge_ddp_run(values: dict[str, Any], task: DDPTask) -> str:
    """One run of the re-check: the sample orders, the final parameters, every rank's history."""
    orders = _epoch_orders(values.get("loaded"), task.n_samples, task.epochs)
    if orders is None:
        return ("the two ranks did not split the samples between them in every epoch, as "
                "DistributedSampler(dataset, num_replicas=world_size, rank=rank) does")
    if all(_increasing(order) for epoch in orders for order in epoch):
        return ("the DistributedSampler did not shuffle: every epoch visited the samples in index order; create it "
                "with shuffle=True, seed=config.seed")
    if not _reshuffled(orders):
        return ("every epoch visited the samples in the same order: call sampler.set_epoch(epoch) at the start of "
                "each epoch")
    references = [reference_ddp(task, orders, divide_last_by_its_length=flag) for flag in (False, True)]
    if not any(tensors_close(values.get("parameters"), parameters, **_DDP_PARAMETERS) for parameters, _ in references):
        return ("rank 0's parameters after training differ from one process training on the union of both ranks' "
                f"micro-batches (accumulation_steps={task.accumulation_steps}, a step after every group)")
    expected = references[0][1]
    per_epoch = 2 * len(orders[0][0])
    histories = values.get("histories")
    if not (isinstance(histories, list) and len(histories) == 2):
        return "train_ddp must return its history on every rank"
    for rank, history in enumerate(histories):
        if not (isinstance(history, list) and len(history) == task.epochs and all(
                isinstance(row, list) and len(row) == 2 and close(row[0], loss)
                and type(row[1]) is float and abs(row[1] - accuracy) <= 1.5 / per_epoch + 1e-6
                for row, (loss, accuracy) in zip(history, expected))):
            return (f"rank {rank}'s history is not the loss and accuracy over all samples of both ranks, epoch by "
                    f"epoch (expected {[(round(a, 5), round(b, 4)) for a, b in expected]})")
    return ""


Judge = Callable[[dict[str, Any], int], str]

JUDGES: dict[str, Judge] = {"ex1-tests": _judge_accumulation, "ex2-tests": _judge_fit_scheduled,
                            "ex3-tests": _judge_amp, "ex4-tests": _judge_ddp}


# --- the visible checks' expected results (course expected) ------------------------------------------

def _rounded(parameters: list[torch.Tensor]) -> list[Any]:
    """Parameters as nested lists of 8 significant digits: float32 holds about 7."""
    def walk(value: Any) -> Any:
        return [walk(v) for v in value] if isinstance(value, list) else float(f"{value:.8g}")
    return [walk(p.tolist()) for p in parameters]


def _both_divisors(reference: Callable[[bool], list[torch.Tensor]]) -> list[Any]:
    """The parameters for each accepted divisor of the last, shorter group (once when they are the same)."""
    variants = [_rounded(reference(flag)) for flag in (False, True)]
    return variants[:1] if variants[0] == variants[1] else variants


def expected_accumulation() -> dict[str, Any]:
    """Exercise 1's visible checks: the final parameters of each scenario."""
    results = {}
    for scenario in ACCUMULATION_SCENARIOS:
        task = Task(seed=scenario["seed"], n_samples=scenario["n_samples"], batch_size=scenario["batch_size"])
        k = scenario["accumulation_steps"]
        results[key(scenario)] = _both_divisors(
            lambda flag, task=task, k=k: reference_accumulation(task, k, divide_last_by_its_length=flag)[0])
    return results


def expected_fit() -> dict[str, Any]:
    """Exercise 2's visible checks: the final parameters of each scenario (the probe scheduler: 0.8 ** step)."""
    results = {}
    for scenario in FIT_SCENARIOS:
        task = Task(seed=scenario["seed"], n_samples=scenario["n_samples"], batch_size=scenario["batch_size"])
        run = reference_fit(task, scenario["epochs"], scenario["max_norm"], scenario["interval"],
                            lambda optimizer: torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.8 ** step))
        results[key(scenario)] = _rounded(run["parameters"])
    return results


def _sampler_orders(task: DDPTask, offset: int, drop_last: bool) -> list[list[list[int]]]:
    """Each epoch's order per rank, from the lesson's sampler with set_epoch(epoch + offset) (epochs from 0)."""
    indices = list(range(task.n_samples))
    samplers = [DistributedSampler(indices, num_replicas=task.world_size, rank=rank, shuffle=True,
                                   seed=task.sampler_seed, drop_last=drop_last) for rank in range(task.world_size)]
    orders = []
    for epoch in range(task.epochs):
        for sampler in samplers:
            sampler.set_epoch(epoch + offset)
        orders.append([list(sampler) for sampler in samplers])
    return orders


def expected_ddp() -> dict[str, Any]:
    """Exercise 4's visible check: per epoch numbering, rank 0's first indices and the accepted final parameters.

    The parameters cover both divisors of the last, shorter group and, for an odd number of samples,
    both ways the sampler evens the ranks out (padding with a repeated sample, or drop_last=True).
    """
    results = {}
    for scenario in DDP_SCENARIOS:
        task = DDPTask(seed=scenario["seed"], n_samples=scenario["n_samples"], batch_size=scenario["batch_size"],
                       accumulation_steps=scenario["accumulation_steps"], epochs=scenario["epochs"],
                       sampler_seed=scenario["seed"] + 5)
        variants = {}
        for offset in DDP_EPOCH_OFFSETS:
            parameters: list[Any] = []
            for drop_last in (False, True) if task.n_samples % task.world_size else (False,):
                orders = _sampler_orders(task, offset, drop_last)
                parameters += [p for p in _both_divisors(
                    lambda flag, orders=orders: reference_ddp(task, orders, divide_last_by_its_length=flag)[0])
                    if p not in parameters]
            variants[f"set_epoch from {offset}"] = {
                "fingerprint": [epoch[0][:8] for epoch in _sampler_orders(task, offset, False)],
                "parameters": parameters}
        results[key(scenario)] = variants
    return results


EXPECTED: dict[str, Callable[[], Any]] = {"lesson08-accumulation": expected_accumulation, "lesson08-fit": expected_fit,
                                          "lesson08-ddp": expected_ddp}
