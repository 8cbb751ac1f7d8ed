"""Exercise 4's check: ``train_ddp``, one rank's share of data-parallel training, on two real gloo ranks.

Inside each rank the check counts DDP's all-reduces through a communication hook, the optimizer's
steps through a global step hook and the checkpoint writes through ``torch.save``, and records which
samples the rank loaded; the parent process compares what both ranks did.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.data import Dataset

from course_utils.checks.lesson08 import stored
from course_utils.checks.lesson08.accumulation import scale_codes, step_codes
from course_utils.checks.lesson08.catalogue import _crashed, _fail, _is_float, _short_error
from course_utils.checks.lesson08.instruments import _DDP_TOLERANCE, _groups
from course_utils.data import RAW_MAX, make_course_data
from course_utils.distributed import DDPConfig, run_distributed
from course_utils.recipe import DEFAULT_RECIPE, default_model

class IndexedDataset(Dataset):
    """The running example's samples; records which indices this process loaded, in order."""

    def __init__(self, features: torch.Tensor, targets: torch.Tensor) -> None:
        self.features, self.targets = features, targets
        self.loaded: list[int] = []

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.loaded.append(int(index))
        return self.features[index], self.targets[index]


class DDPProbeModel(nn.Module):
    """Wraps a network; records moves to a device and whether they came before the DDP wrapper."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.log: dict[str, Any] = {"moves_before_wrap": 0, "moves_after_wrap": 0, "wrapped": 0}

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.net(x)

    def _apply(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> nn.Module:
        key = "moves_after_wrap" if self.log["wrapped"] else "moves_before_wrap"
        self.log[key] += 1
        return super()._apply(fn, *args, **kwargs)


class DDPCriterion(nn.Module):
    """Cross-entropy recording each micro-batch's loss, size, correct predictions and gradient scale."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[dict[str, Any]] = []

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:  # noqa: D102
        loss = F.cross_entropy(logits, targets)
        entry = {"value": loss.item(), "size": len(targets), "scale": None,
                 "correct": int((logits.detach().argmax(dim=1) == targets).sum())}
        self.entries.append(entry)
        if loss.requires_grad:
            loss.register_hook(lambda gradient: entry.__setitem__("scale", float(gradient)))
        return loss


@dataclass
class _DDPTask:
    seed: int = 0
    n_samples: int = 400
    batch_size: int = 50
    accumulation_steps: int = 3
    epochs: int = 2
    world_size: int = 2
    hidden: int = 16
    sampler_seed: int = 5
    folder: str = field(default="")

    def config(self) -> DDPConfig:
        return DDPConfig(epochs=self.epochs, batch_size=self.batch_size, accumulation_steps=self.accumulation_steps,
                         learning_rate=0.1, momentum=0.9, seed=self.sampler_seed,
                         checkpoint_path=str(Path(self.folder) / "checkpoint.pt"))

    def data(self) -> tuple[torch.Tensor, torch.Tensor]:
        features, targets = make_course_data(self.n_samples, seed=2000 + self.seed)
        return features / RAW_MAX, targets

    def network(self) -> nn.Module:
        return default_model(replace(DEFAULT_RECIPE, hidden=self.hidden, seed=self.seed))


@contextlib.contextmanager
def _instrumented(rank: int, model: DDPProbeModel, log: dict[str, Any]) -> Iterator[None]:
    """Inside one rank: count DDP's all-reduces, optimizer steps and checkpoint writes."""
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
    from torch.nn.parallel import DistributedDataParallel

    original_init, original_save = DistributedDataParallel.__init__, torch.save
    log.update(syncs=[], steps=[], saves=[], optimizers=[], wrapped_probe=0)

    def counting_hook(state, bucket):  # noqa: ANN001, ANN202 - DDP rejects a bucket annotation other than GradBucket
        if bucket.index() == 0:
            log["syncs"].append(len(log["criterion"].entries))
        return default_hooks.allreduce_hook(state, bucket)

    def init(self: DistributedDataParallel, module: nn.Module, *args: Any, **kwargs: Any) -> None:
        if module is model:
            model.log["wrapped"] += 1
        original_init(self, module, *args, **kwargs)
        if module is model:
            self.register_comm_hook(None, counting_hook)

    def save(obj: Any, path: Any, *args: Any, **kwargs: Any) -> None:
        keys = sorted(obj) if isinstance(obj, dict) else []
        model_keys = sorted(obj["model"]) if isinstance(obj, dict) and isinstance(obj.get("model"), dict) else []
        log["saves"].append({"path": str(path), "keys": keys, "model_keys": model_keys})
        return original_save(obj, path, *args, **kwargs)

    def on_step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        log["steps"].append(len(log["criterion"].entries))
        group = optimizer.param_groups[0]
        log["optimizers"].append((type(optimizer).__name__, group.get("lr"), group.get("momentum")))

    handle = register_optimizer_step_pre_hook(on_step)
    DistributedDataParallel.__init__, torch.save = init, save
    try:
        yield
    finally:
        DistributedDataParallel.__init__, torch.save = original_init, original_save
        handle.remove()


def _ddp_rank(rank: int, world_size: int, train_ddp: Callable[..., Any], task: _DDPTask) -> dict[str, Any]:
    features, targets = task.data()
    dataset = IndexedDataset(features, targets)
    model = DDPProbeModel(task.network())
    criterion = DDPCriterion()
    log: dict[str, Any] = {"criterion": criterion}
    error = None
    with _instrumented(rank, model, log):
        try:
            history = train_ddp(rank, world_size, model, dataset, criterion, torch.device("cpu"), task.config())
        except Exception as caught:  # noqa: BLE001 - reported with what was seen before
            history, error = None, f"{type(caught).__name__}: {caught}"
    log.pop("criterion")
    return {"history": history, "error": error, "loaded": dataset.loaded, "entries": criterion.entries,
            "model": model.log, "state": {k: v.detach().clone() for k, v in model.net.state_dict().items()}, **log}


# Seconds per try for the ranks to meet: two tries stay within the time a grading cell is given (60 s under
# `course grade`); a machine that needs longer is reported as the machine's problem.
_RENDEZVOUS_PER_ATTEMPT = 25.0
# How DataLoader refuses shuffle=True beside a sampler.
_LOADER_SHUFFLE = "mutually exclusive with shuffle"
# How a collective that the other rank never joined fails under gloo: its peer closed the connection or time ran out.
_COLLECTIVE_ERRORS = ("Connection closed", "Connection reset", "timed out", "Timed out", "Timeout", "gloo")


def check_ddp(train_ddp: Callable[..., Any], *, seed: int = 1, n_samples: int = 400, batch_size: int = 50,
              accumulation_steps: int = 3, epochs: int = 2, timeout: float = 120.0) -> None:
    """Run ``train_ddp(rank, world_size, model, dataset, criterion, device, config)`` on two gloo ranks.

    The inputs must be one of :data:`stored.DDP_SCENARIOS`, whose final parameters are stored. Ranks
    that cannot start (a busy machine) are tried once more, then reported as the machine's problem
    (:class:`course_utils.distributed.DistributedStartError`), never as the learner's.
    """
    subject = "train_ddp"
    scenario = dict(seed=seed, n_samples=n_samples, batch_size=batch_size, accumulation_steps=accumulation_steps,
                    epochs=epochs)
    with tempfile.TemporaryDirectory() as folder:
        task = _DDPTask(seed=seed, n_samples=n_samples, batch_size=batch_size, accumulation_steps=accumulation_steps,
                        epochs=epochs, sampler_seed=seed + 5, folder=folder)
        results = run_distributed(_ddp_rank, task.world_size, (train_ddp, task), backend="gloo", timeout=timeout,
                                  collective_timeout=min(60.0, timeout / 2), check=False, start_attempts=2,
                                  rendezvous_timeout=_RENDEZVOUS_PER_ATTEMPT)
    broken = [r for r in results if r.error and r.value is None]
    hung = [r for r in broken if "did not finish" in r.error or "without a result" in r.error]
    if len(hung) < len(broken):  # the grader itself failed on a rank: show it, never blame the learner
        raise RuntimeError("the check failed inside a rank, before or after your function ran (a problem of the "
                           "course, not of your code): " + _short_error(next(r.error for r in broken if r not in hung)))
    ranks = [r.value for r in results]
    errors = [r.value["error"] for r in results if r.value and r.value["error"]]
    collective = [e for e in errors if any(word in e for word in _COLLECTIVE_ERRORS)]
    if hung or collective:
        _fail(["ddp-hang"], subject=subject, expected="both ranks to finish",
              found=_short_error(collective[0] if collective else hung[0].error))
    codes = _ddp_structure_codes(ranks, results, task)
    if errors:  # only what was seen before the crash counts: a missing wrapper may just not have come yet
        seen = [code for code in codes if code not in ("ddp-not-wrapped", "ddp-model-not-moved")]
        if any(_LOADER_SHUFFLE in error for error in errors):
            seen.insert(0, "ddp-loader-shuffle")
        raise _crashed(subject, errors[0], seen)
    training, where = _ddp_training_codes(ranks, task)
    codes += training
    codes += _ddp_report_codes(ranks, results, task)
    if not codes and _differs_from_stored(ranks, task, scenario):
        codes.append("ddp-trajectory")
    if codes:
        found = _ddp_found(ranks, results)
        _fail(codes, subject=subject, expected=_ddp_expected(task), found=f"{where}; {found}" if where else found)


def _differs_from_stored(ranks: list[dict[str, Any]], task: _DDPTask, scenario: dict[str, Any]) -> bool:
    """Whether both ranks' final parameters differ from those stored for the sample orders they loaded.

    Orders other than those of the lesson's sampler (another seed, say) have no stored parameters: the
    check then relies on what it counted, and the grader's re-check judges the parameters.
    """
    variants = stored.lookup("ddp", "check_ddp", scenario, stored.DDP_SCENARIOS)
    per_epoch = len(ranks[0]["loaded"]) // task.epochs
    fingerprint = [ranks[0]["loaded"][e * per_epoch:e * per_epoch + 8] for e in range(task.epochs)]
    for variant in variants.values():
        if variant["fingerprint"] != fingerprint:
            continue
        expected = [stored.as_tensors(parameters) for parameters in variant["parameters"]]
        return not all(any(all(torch.allclose(found, wanted, **_DDP_TOLERANCE)
                                for found, wanted in zip(rank["state"].values(), parameters))
                            for parameters in expected) for rank in ranks)
    return False


def _ddp_structure_codes(ranks: list[dict[str, Any]], results: list[Any], task: _DDPTask) -> list[str]:
    codes = []
    logs = [r["model"] for r in ranks]
    if any(log["wrapped"] == 0 for log in logs):
        codes.append("ddp-not-wrapped")
    elif any(log["moves_before_wrap"] == 0 and log["moves_after_wrap"] > 0 for log in logs):
        codes.append("ddp-wrapped-before-move")
    elif any(log["moves_before_wrap"] == 0 for log in logs):
        codes.append("ddp-model-not-moved")
    first, second = (set(r["loaded"]) for r in ranks[:2])
    if first and first == second:
        codes.append("ddp-no-sampler")
    return codes


def _increasing(order: list[int]) -> bool:
    """An order DistributedSampler(shuffle=False) gives: increasing (the padding at the end aside)."""
    head = order[:20]
    return len(head) > 2 and all(a < b for a, b in zip(head, head[1:]))


def _sync_codes(rank: dict[str, Any], n_entries: int, k: int, number: int) -> tuple[list[str], str]:
    """Whether DDP all-reduced on exactly the micro-batches after which the optimizer stepped."""
    syncs, steps = rank["syncs"], rank["steps"]
    if syncs == steps:
        return [], ""
    where = (f"rank {number} all-reduced after micro-batches {syncs[:8]}{'...' if len(syncs) > 8 else ''} and "
             f"stepped after {steps[:8]}{'...' if len(steps) > 8 else ''} (counted over all epochs)")
    if not syncs:
        return ["ddp-never-synced"], f"rank {number} never all-reduced its gradients"
    if k > 1 and len(syncs) >= n_entries:
        return ["ddp-no-no-sync"], where
    return ["ddp-sync-positions"], where


def _ddp_training_codes(ranks: list[dict[str, Any]], task: _DDPTask) -> tuple[list[str], str]:
    codes, where = [], ""
    loaded = ranks[0]["loaded"]
    per_epoch = len(loaded) // task.epochs
    orders = "; ".join(f"epoch {e + 1}: {loaded[e * per_epoch:e * per_epoch + 5]}..." for e in range(min(task.epochs, 2)))
    if per_epoch and all(_increasing(r["loaded"][:per_epoch]) for r in ranks):
        codes.append("ddp-no-shuffle")
        where = f"rank 0 loaded samples {orders}"
    elif task.epochs > 1 and per_epoch and loaded[:per_epoch] == loaded[per_epoch:2 * per_epoch]:
        codes.append("ddp-no-set-epoch")
        where = f"rank 0 loaded samples {orders}"
    k = task.accumulation_steps
    config = task.config()
    settings = ("SGD", config.learning_rate, config.momentum)
    for number, rank in enumerate(ranks):
        wrong = [used for used in rank["optimizers"] if tuple(used) != settings]
        if wrong and "ddp-optimizer-settings" not in codes:
            codes.append("ddp-optimizer-settings")
            where = where or f"rank {number} stepped {wrong[0][0]}(lr={wrong[0][1]}, momentum={wrong[0][2]})"
        entries = rank["entries"]
        n_batches = len(entries) // task.epochs
        codes += scale_codes(entries[:n_batches], n_batches, k, "ddp")
        first_epoch = [s for s in rank["steps"] if s <= n_batches]
        expected_steps = [g + epoch * n_batches for epoch in range(task.epochs) for g in _groups(n_batches, k)]
        if rank["steps"] != expected_steps:
            codes += step_codes(first_epoch, n_batches, k, "ddp") or ["ddp-step-positions"]
        if rank["model"]["wrapped"]:
            sync, sync_where = _sync_codes(rank, len(entries), k, number)
            codes += sync
            where = where or sync_where
    return list(dict.fromkeys(codes)), where


def _ddp_report_codes(ranks: list[dict[str, Any]], results: list[Any], task: _DDPTask) -> list[str]:
    codes = []
    per_epoch = [len(r["entries"]) // task.epochs for r in ranks]

    def totals(entries: list[dict[str, Any]]) -> tuple[float, float]:
        count = sum(e["size"] for e in entries)
        return sum(e["value"] * e["size"] for e in entries) / count, sum(e["correct"] for e in entries) / count

    for number, rank in enumerate(ranks):
        history = rank["history"]
        well_formed = isinstance(history, list) and len(history) == task.epochs and all(
            isinstance(r, dict) and {"epoch", "loss", "accuracy"} <= set(r) and _is_float(r["loss"]) and _is_float(r["accuracy"])
            for r in history)
        if not well_formed:
            codes.append("ddp-history")
            break
        for epoch, record in enumerate(history):
            chunks = [r["entries"][epoch * n:(epoch + 1) * n] for r, n in zip(ranks, per_epoch)]
            global_loss, global_accuracy = totals([e for chunk in chunks for e in chunk])
            own_loss, own_accuracy = totals(chunks[number])
            found = (record["loss"], record["accuracy"])
            if all(math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6) for a, b in zip(found, (global_loss, global_accuracy))):
                continue
            if all(math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6) for a, b in zip(found, (own_loss, own_accuracy))):
                codes.append("ddp-metrics-not-reduced")
            else:
                codes.append("ddp-metrics-wrong")
            break
    saves = [rank["saves"] for rank in ranks]
    checkpoint = str(Path(task.folder) / "checkpoint.pt")
    if any(s for s in saves[1:]):
        codes.append("ddp-every-rank-saves")
    elif len([s for s in saves[0] if s["path"] == checkpoint]) < task.epochs:
        codes.append("ddp-no-checkpoint")
    else:
        last = [s for s in saves[0] if s["path"] == checkpoint][-1]
        if not {"epoch", "model", "optimizer"} <= set(last["keys"]):
            codes.append("ddp-checkpoint-contents")
        elif any(key.startswith("module.") for key in last["model_keys"]):
            codes.append("ddp-checkpoint-wrapper-keys")
    if any(result.output.strip() for result in results[1:]):
        codes.append("ddp-every-rank-logs")
    return list(dict.fromkeys(codes))


def _ddp_expected(task: _DDPTask) -> str:
    per_rank = math.ceil(task.n_samples / task.world_size)
    n_batches = math.ceil(per_rank / task.batch_size)
    groups = _groups(n_batches, task.accumulation_steps)
    return (f"2 ranks, each loading {per_rank} different samples per epoch ({task.epochs} epochs) in a new order "
            f"every epoch; per epoch "
            f"{n_batches} micro-batches, {len(groups)} optimizer steps and {len(groups)} all-reduces per rank "
            f"(accumulation_steps={task.accumulation_steps}); the same reduced history on both ranks; one checkpoint "
            f"write per epoch, by rank 0")


def _ddp_found(ranks: list[dict[str, Any]], results: list[Any]) -> str:
    parts = []
    for rank, result in zip(ranks, results):
        parts.append(f"rank {result.rank}: loaded {len(rank['loaded'])} samples in all epochs "
                     f"({len(set(rank['loaded']))} distinct), {len(rank['entries'])} micro-batches, "
                     f"{len(rank['steps'])} optimizer steps, {len(rank['syncs'])} all-reduces, "
                     f"{len(rank['saves'])} checkpoint writes, printed {len(result.output.splitlines())} lines, "
                     f"DDP wrappers: {rank['model']['wrapped']}")
    return "; ".join(parts)

