"""Lesson 08's probes: what the kernel sends the grader's re-check, and the scenarios both sides build.

After each test cell, `course grade` asks the kernel to run the learner's function on a scenario
built from a seed drawn at grading time and to send back values only; the grader rebuilds the same
scenario from the seed (the builders below) and recomputes the answer with PyTorch
(``course_tools.grade.judges.lesson08``). The objects given to the learner here are plain PyTorch ones.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from course_utils.checks.lesson08.catalogue import _is_float
from course_utils.checks.lesson08.ddp import IndexedDataset, _DDPTask
from course_utils.checks.lesson08.instruments import _InfGradient, _Task
from course_utils.distributed import run_distributed

VERDICT_LR, VERDICT_MOMENTUM, VERDICT_SCALE = 0.1, 0.9, 2.0 ** 10


@dataclass(frozen=True)
class VerdictCase:
    """One seeded scenario of the re-check: a task, and the settings the learner's function receives.

    The number of micro-batches always leaves a shorter last accumulation group, and the last batch
    is shorter than the others.
    """

    task: _Task
    accumulation_steps: int
    epochs: int
    max_norm: float
    gamma: float  # ExponentialLR's factor
    inf_batch: int  # exercise 3: the batch whose gradients are made infinite
    amp_dtype: torch.dtype = torch.bfloat16  # exercise 3: bfloat16, or float16 (CPU autocast has both)


def _picker(seed: int) -> Callable[[tuple | range], Any]:
    """Draws one of the options given, from a generator seeded by ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return lambda options: options[int(torch.randint(0, len(options), (1,), generator=generator))]


def verdict_case(seed: int) -> VerdictCase:
    """The scenario of ``seed`` (the same on the kernel's side and the grader's)."""
    pick = _picker(seed)
    k, batch = pick((2, 3, 4)), pick((16, 20, 25, 32))
    n_batches = k * pick((1, 2, 3)) + pick(range(1, k))
    n_samples = (n_batches - 1) * batch + pick(range(1, batch))
    task = _Task(seed=seed % 2**31, n_samples=n_samples, batch_size=batch, hidden=12,
                 learning_rate=VERDICT_LR, momentum=VERDICT_MOMENTUM)
    case = VerdictCase(task, k, epochs=2, max_norm=pick((0.15, 0.2, 0.25, 0.3)), gamma=pick((0.7, 0.8, 0.9)),
                       inf_batch=pick(range(n_batches)))
    # Drawn last, so that the draws above stay what they were.
    return replace(case, epochs=pick((2, 3)), amp_dtype=pick((torch.bfloat16, torch.float16)))


def verdict_ddp_task(seed: int) -> _DDPTask:
    """Exercise 4's scenario of ``seed``: two ranks, an odd or even number of samples, a shorter last group."""
    pick = _picker(seed)
    k, batch = pick((2, 3)), pick((16, 20, 25))
    n_batches = k * pick((1, 2, 3)) + pick(range(1, k))  # per rank, leaving a shorter last group
    per_rank = (n_batches - 1) * batch + pick(range(1, batch + 1))
    return _DDPTask(seed=seed % 2**31, n_samples=2 * per_rank - pick((0, 1)), batch_size=batch, accumulation_steps=k,
                    epochs=2, hidden=12, sampler_seed=pick(range(100)))


class VerdictAmpModel(nn.Module):
    """Wraps a network: records the dtype of every output; batch ``inf_batch``'s gradients become infinite."""

    def __init__(self, net: nn.Module, inf_batch: int) -> None:
        super().__init__()
        self.net, self.inf_batch = net, inf_batch
        self.output_dtypes: list[str] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        output = self.net(x)
        self.output_dtypes.append(str(output.dtype))
        return _InfGradient.apply(output) if len(self.output_dtypes) - 1 == self.inf_batch else output


class FloatCrossEntropy(nn.Module):
    """Cross-entropy computed in float32; records whether each loss was computed under autocast."""

    def __init__(self) -> None:
        super().__init__()
        self.under_autocast: list[bool] = []

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:  # noqa: D102
        self.under_autocast.append(torch.is_autocast_enabled("cpu"))
        return F.cross_entropy(logits.float(), targets)


def verdict_optimizer(model: nn.Module) -> torch.optim.SGD:
    """The optimizer every re-check scenario hands to the learner."""
    return torch.optim.SGD(model.parameters(), lr=VERDICT_LR, momentum=VERDICT_MOMENTUM)


def verdict_scaler() -> torch.amp.GradScaler:
    """An enabled CPU gradient scaler that does not grow its scale during one epoch."""
    return torch.amp.GradScaler("cpu", init_scale=VERDICT_SCALE, growth_interval=10_000)


def _as_float(value: Any) -> float | None:
    return float(value) if _is_float(value) else None


def _values_of(parameters: Iterator[torch.Tensor]) -> list[torch.Tensor]:
    return [p.detach().clone() for p in parameters]


def _probe_accumulation(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    case = verdict_case(seed)
    model = case.task.network()
    loss = ns["train_one_epoch_accumulated"](model, case.task.loader(), nn.CrossEntropyLoss(), verdict_optimizer(model),
                                             torch.device("cpu"), case.accumulation_steps)
    single = case.task.network()  # accumulation_steps=1: a plain epoch, a step after every batch
    single_loss = ns["train_one_epoch_accumulated"](single, case.task.loader(), nn.CrossEntropyLoss(),
                                                    verdict_optimizer(single), torch.device("cpu"), 1)
    return {"loss": _as_float(loss), "parameters": _values_of(model.parameters()),
            "single": {"loss": _as_float(single_loss), "parameters": _values_of(single.parameters())}}


def _probe_fit_scheduled(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    case = verdict_case(seed)
    runs = {}
    for interval in ("batch", "epoch"):
        model = case.task.network()
        optimizer = verdict_optimizer(model)
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, case.gamma)
        rates: list[float] = []
        optimizer.register_step_pre_hook(lambda opt, args, kwargs: rates.append(float(opt.param_groups[0]["lr"])))
        history = ns["fit_scheduled"](model, case.task.loader(), nn.CrossEntropyLoss(), optimizer, scheduler,
                                      torch.device("cpu"), case.epochs, case.max_norm, interval)
        runs[interval] = {"history": [_as_float(v) for v in history] if isinstance(history, list) else None,
                          "rates": rates, "final_rate": float(optimizer.param_groups[0]["lr"]),
                          "parameters": _values_of(model.parameters())}
    return runs


# How GradScaler words a step() or unscale_() that came without update() since the last step().
_SCALER_WITHOUT_UPDATE = ("since the last update()", "is being called after step()")


def _probe_amp(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    case = verdict_case(seed)
    model = VerdictAmpModel(case.task.network(), case.inf_batch)
    scaler, criterion = verdict_scaler(), FloatCrossEntropy()
    try:
        loss = ns["train_one_epoch_amp"](model, case.task.loader(), criterion, verdict_optimizer(model), scaler,
                                         torch.device("cpu"), case.max_norm, case.amp_dtype)
    except RuntimeError as error:
        # GradScaler refuses a second step() or unscale_() without update() in between: name the mistake.
        if any(words in str(error) for words in _SCALER_WITHOUT_UPDATE):
            raise RuntimeError("scaler.update() was not called after every scaler.step(optimizer), also after a "
                               "skipped step [amp-no-update]") from None
        raise
    return {"loss": _as_float(loss), "parameters": _values_of(model.parameters()), "scale": float(scaler.get_scale()),
            "output_dtypes": list(model.output_dtypes), "loss_under_autocast": list(criterion.under_autocast)}


def _verdict_ddp_run(rank: int, world_size: int, train_ddp: Callable[..., Any], task: _DDPTask) -> dict[str, Any]:
    features, targets = task.data()
    dataset = IndexedDataset(features, targets)
    network = task.network()
    history = train_ddp(rank, world_size, network, dataset, nn.CrossEntropyLoss(), torch.device("cpu"), task.config())
    rows = [[_as_float(r.get("loss")), _as_float(r.get("accuracy"))] if isinstance(r, dict) else None
            for r in history] if isinstance(history, list) else None
    return {"history": rows, "loaded": list(dataset.loaded), "parameters": _values_of(network.parameters())}


def _verdict_ddp_rank(rank: int, world_size: int, train_ddp: Callable[..., Any], task: _DDPTask) -> dict[str, Any]:
    """The scenario's run, then one with accumulation_steps=1, in the same process group."""
    return {"main": _verdict_ddp_run(rank, world_size, train_ddp, task),
            "single": _verdict_ddp_run(rank, world_size, train_ddp, replace(task, accumulation_steps=1))}


def _probe_ddp(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        task = replace(verdict_ddp_task(seed), folder=folder)
        results = run_distributed(_verdict_ddp_rank, task.world_size, (ns["train_ddp"], task), backend="gloo",
                                  timeout=90.0, collective_timeout=45.0, start_attempts=2, rendezvous_timeout=25.0)
    first, second = (r.value for r in results)

    def values(run: str) -> dict[str, Any]:
        return {"parameters": first[run]["parameters"], "histories": [first[run]["history"], second[run]["history"]],
                "loaded": [first[run]["loaded"], second[run]["loaded"]]}

    return {**values("main"), "single": values("single")}


PROBES = {"ex1-tests": _probe_accumulation, "ex2-tests": _probe_fit_scheduled, "ex3-tests": _probe_amp,
          "ex4-tests": _probe_ddp}
