"""Exercise 4 · distributed data parallel: the mistakes, the check of ``train_ddp`` on two gloo ranks, the probe.

Inside each rank the check counts DDP's all-reduces through a communication hook, the optimizer's
steps through a global step hook and the checkpoint writes through ``torch.save``, and records which
samples the rank loaded (:func:`course_utils.checks.lesson08.instruments.instrumented`); the parent
process compares what both ranks did. :class:`DDPTask` and :func:`verdict_ddp_task` build the
scenarios, the re-check's on both sides (the kernel's probe and the grader's reference loop).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_utils.checks.lesson08.common import LESSON, as_float, crashed, is_float, picker, short_error, values_of
from course_utils.checks.lesson08.ex1 import scale_codes, step_codes
from course_utils.checks.lesson08.instruments import (
    DDP_TOLERANCE,
    DDPCriterion,
    DDPProbeModel,
    IndexedDataset,
    groups,
    instrumented,
)
from course_utils.checks.lesson08.stored import DDP_SCENARIOS, as_tensors, lookup
from course_utils.data import RAW_MAX, make_course_data
from course_utils.diagnoses import Exercise, ForbiddenCall, fail_with
from course_utils.distributed import DDPConfig, run_distributed
from course_utils.recipe import DEFAULT_RECIPE, default_model

EXERCISE = Exercise(LESSON, "ex4-tests", "4 · Distributed data parallel")
DIAGNOSES = EXERCISE.diagnoses(
    ("ddp-not-wrapped", "the model was not wrapped in DistributedDataParallel",
     "model = model.to(device); ddp_model = DDP(model, device_ids=...); train ddp_model, so gradients are averaged across ranks.", "distributed"),
    ("ddp-wrapped-before-move", "the model was wrapped in DDP before it was moved to the device",
     "move first, then wrap: DDP(model.to(device), ...). DDP registers the parameters it finds when it is built.", "device"),
    ("ddp-model-not-moved", "the model was never moved to the device",
     "call model.to(device) before wrapping it in DDP.", "device"),
    ("ddp-no-sampler", "every rank trained on all the data",
     "give the DataLoader sampler=DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=config.seed).", "distributed"),
    ("ddp-no-shuffle", "the DistributedSampler did not shuffle (shuffle=False): every epoch visited the samples in index order",
     "create it with shuffle=True, seed=config.seed, and call sampler.set_epoch(epoch) at the start of every epoch.", "distributed"),
    ("ddp-loader-shuffle", "the DataLoader was given shuffle=True as well as the DistributedSampler",
     "shuffle in the sampler only: DistributedSampler(..., shuffle=True, seed=config.seed) and DataLoader(dataset, batch_size=..., sampler=sampler).", "distributed"),
    ("ddp-no-set-epoch", "every epoch visited the samples in the same order",
     "call sampler.set_epoch(epoch) at the start of every epoch: the sampler's shuffle is seeded by seed + epoch.", "distributed"),
    ("ddp-no-no-sync", "gradients were all-reduced after every micro-batch, not once per accumulation group",
     "run the backward of every micro-batch except the last of a group inside `with ddp_model.no_sync():`.", "distributed"),
    ("ddp-never-synced", "the gradients were never all-reduced: every backward ran inside no_sync(), so each rank trained on its own gradients",
     "leave the backward of the micro-batch that ends a group (and of the epoch's last one) outside no_sync(): that backward all-reduces the accumulated gradients.", "distributed"),
    ("ddp-sync-positions", "the gradients were all-reduced on other micro-batches than the one that ends each accumulation group",
     "run every backward inside ddp_model.no_sync() except the one right before optimizer.step(): the step needs the synchronised gradients of the whole group.", "distributed"),
    ("ddp-loss-not-divided", "the micro-batch losses were not divided by config.accumulation_steps",
     "backward (loss / config.accumulation_steps), as in exercise 1.", "gradients"),
    ("ddp-wrong-scale", "micro-batch losses were scaled by the wrong factor",
     "divide each micro-batch's loss by config.accumulation_steps, as in exercise 1.", "gradients"),
    ("ddp-last-group-dropped", "the last, shorter accumulation group never led to an optimizer step",
     "step after the last micro-batch of the epoch too, and let it synchronise (no no_sync there).", "data"),
    ("ddp-step-positions", "the optimizer did not step once per accumulation group",
     "step after micro-batches k, 2k, ... and after the last one of the epoch, as in exercise 1.", "optimizer"),
    ("ddp-optimizer-settings", "the optimizer is not SGD with config.learning_rate and config.momentum",
     "torch.optim.SGD(ddp_model.parameters(), lr=config.learning_rate, momentum=config.momentum): take the numbers from config.", "optimizer"),
    ("ddp-metrics-not-reduced", "the reported loss and accuracy are one rank's own, not the whole data's",
     "sum loss × samples, correct predictions and samples in one tensor, dist.all_reduce it, then divide.", "metrics"),
    ("ddp-metrics-wrong", "the reported loss or accuracy is not the mean over all samples of all ranks",
     "all_reduce the sums (loss × samples, correct, samples) with the default SUM, then divide: not the mean of means.", "metrics"),
    ("ddp-history", "train_ddp must return one record per epoch with epoch, loss and accuracy on every rank",
     "return [{'epoch': 1, 'loss': ..., 'accuracy': ...}, ...] with Python floats, on every rank.", "interface"),
    ("ddp-every-rank-saves", "more than one rank wrote the checkpoint",
     "save only on rank 0: if rank == 0: torch.save(...). The ranks hold identical models.", "distributed"),
    ("ddp-no-checkpoint", "rank 0 did not save a checkpoint to config.checkpoint_path every epoch",
     "at the end of every epoch, on rank 0: torch.save({'epoch': epoch, 'model': ..., 'optimizer': ...}, config.checkpoint_path).", "distributed"),
    ("ddp-checkpoint-wrapper-keys", "the checkpoint holds the DDP wrapper's state_dict (keys start with 'module.')",
     "save ddp_model.module.state_dict() (or the unwrapped model's): it loads into a plain model for resuming and inference.", "distributed"),
    ("ddp-checkpoint-contents", "the checkpoint lacks 'epoch', 'model' or 'optimizer'",
     "save {'epoch': epoch, 'model': model.state_dict(), 'optimizer': optimizer.state_dict()}.", "interface"),
    ("ddp-every-rank-logs", "a rank other than 0 printed",
     "print only on rank 0: every rank prints the same reduced numbers, so the log would repeat.", "distributed"),
    ("ddp-trajectory", "the parameters after training differ from one process training on the same batches",
     "per micro-batch: forward, loss / k, backward; step and zero_grad at the end of each group; SGD with config's lr and momentum.", "distributed"),
    ("ddp-hang", "the ranks did not finish: one waited for a collective the other never called",
     "every rank must call the same collectives (all_reduce, DDP's backward) the same number of times; only printing and saving are rank-0 only.", "distributed"),
)

FORBIDDEN_CALLS: tuple[ForbiddenCall, ...] = ()  # the exercise calls DDP, DistributedSampler and all_reduce


@dataclass
class DDPTask:
    """A seeded network, data set and configuration on which the learner's per-rank function runs."""

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
        """The configuration ``train_ddp`` receives (the checkpoint goes to ``folder``)."""
        return DDPConfig(epochs=self.epochs, batch_size=self.batch_size, accumulation_steps=self.accumulation_steps,
                         learning_rate=0.1, momentum=0.9, seed=self.sampler_seed,
                         checkpoint_path=str(Path(self.folder) / "checkpoint.pt"))

    def data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The running example's samples, scaled to [0, 1]."""
        features, targets = make_course_data(self.n_samples, seed=2000 + self.seed)
        return features / RAW_MAX, targets

    def network(self) -> nn.Module:
        """The lesson's small network, initialised from the seed."""
        return default_model(replace(DEFAULT_RECIPE, hidden=self.hidden, seed=self.seed))


def verdict_ddp_task(seed: int) -> DDPTask:
    """The re-check's scenario of ``seed``: two ranks, an odd or even number of samples, a shorter last group."""
    pick = picker(seed)
    k, batch = pick((2, 3)), pick((16, 20, 25))
    n_batches = k * pick((1, 2, 3)) + pick(range(1, k))  # per rank, leaving a shorter last group
    per_rank = (n_batches - 1) * batch + pick(range(1, batch + 1))
    return DDPTask(seed=seed % 2**31, n_samples=2 * per_rank - pick((0, 1)), batch_size=batch, accumulation_steps=k,
                   epochs=2, hidden=12, sampler_seed=pick(range(100)))


def _ddp_rank(rank: int, world_size: int, train_ddp: Callable[..., Any], task: DDPTask) -> dict[str, Any]:
    features, targets = task.data()
    dataset = IndexedDataset(features, targets)
    model = DDPProbeModel(task.network())
    criterion = DDPCriterion()
    log: dict[str, Any] = {"criterion": criterion}
    error = None
    with instrumented(model, log):
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

    The inputs must be one of :data:`DDP_SCENARIOS`, whose final parameters are stored. Ranks
    that cannot start (a busy machine) are tried once more, then reported as the machine's problem
    (:class:`course_utils.distributed.DistributedStartError`), never as the learner's.
    """
    subject = "train_ddp"
    scenario = dict(seed=seed, n_samples=n_samples, batch_size=batch_size, accumulation_steps=accumulation_steps,
                    epochs=epochs)
    with tempfile.TemporaryDirectory() as folder:
        task = DDPTask(seed=seed, n_samples=n_samples, batch_size=batch_size, accumulation_steps=accumulation_steps,
                       epochs=epochs, sampler_seed=seed + 5, folder=folder)
        results = run_distributed(_ddp_rank, task.world_size, (train_ddp, task), backend="gloo", timeout=timeout,
                                  collective_timeout=min(60.0, timeout / 2), check=False, start_attempts=2,
                                  rendezvous_timeout=_RENDEZVOUS_PER_ATTEMPT)
    broken = [r for r in results if r.error and r.value is None]
    hung = [r for r in broken if "did not finish" in r.error or "without a result" in r.error]
    if len(hung) < len(broken):  # the grader itself failed on a rank: show it, never blame the learner
        raise RuntimeError("the check failed inside a rank, before or after your function ran (a problem of the "
                           "course, not of your code): " + short_error(next(r.error for r in broken if r not in hung)))
    ranks = [r.value for r in results]
    errors = [r.value["error"] for r in results if r.value and r.value["error"]]
    collective = [e for e in errors if any(word in e for word in _COLLECTIVE_ERRORS)]
    if hung or collective:
        fail_with("ddp-hang", subject=subject, expected="both ranks to finish",
                  found=short_error(collective[0] if collective else hung[0].error))
    codes = _ddp_structure_codes(ranks, results, task)
    if errors:  # only what was seen before the crash counts: a missing wrapper may just not have come yet
        seen = [code for code in codes if code not in ("ddp-not-wrapped", "ddp-model-not-moved")]
        if any(_LOADER_SHUFFLE in error for error in errors):
            seen.insert(0, "ddp-loader-shuffle")
        raise crashed(subject, errors[0], seen)
    training, where = _ddp_training_codes(ranks, task)
    codes += training
    codes += _ddp_report_codes(ranks, results, task)
    if not codes and _differs_from_stored(ranks, task, scenario):
        codes.append("ddp-trajectory")
    if codes:
        codes = list(dict.fromkeys(codes))
        found = _ddp_found(ranks, results)
        fail_with(codes[0], also=codes[1:], subject=subject, expected=_ddp_expected(task),
                  found=f"{where}; {found}" if where else found)


def _differs_from_stored(ranks: list[dict[str, Any]], task: DDPTask, scenario: dict[str, Any]) -> bool:
    """Whether both ranks' final parameters differ from those stored for the sample orders they loaded.

    Orders other than those of the lesson's sampler (another seed, say) have no stored parameters: the
    check then relies on what it counted, and the grader's re-check judges the parameters.
    """
    variants = lookup("ddp", "check_ddp", scenario, DDP_SCENARIOS)
    per_epoch = len(ranks[0]["loaded"]) // task.epochs
    fingerprint = [ranks[0]["loaded"][e * per_epoch:e * per_epoch + 8] for e in range(task.epochs)]
    for variant in variants.values():
        if variant["fingerprint"] != fingerprint:
            continue
        expected = [as_tensors(parameters) for parameters in variant["parameters"]]
        return not all(any(all(torch.allclose(found, wanted, **DDP_TOLERANCE)
                                for found, wanted in zip(rank["state"].values(), parameters))
                            for parameters in expected) for rank in ranks)
    return False


def _ddp_structure_codes(ranks: list[dict[str, Any]], results: list[Any], task: DDPTask) -> list[str]:
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


def _ddp_training_codes(ranks: list[dict[str, Any]], task: DDPTask) -> tuple[list[str], str]:
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
        expected_steps = [g + epoch * n_batches for epoch in range(task.epochs) for g in groups(n_batches, k)]
        if rank["steps"] != expected_steps:
            codes += step_codes(first_epoch, n_batches, k, "ddp") or ["ddp-step-positions"]
        if rank["model"]["wrapped"]:
            sync, sync_where = _sync_codes(rank, len(entries), k, number)
            codes += sync
            where = where or sync_where
    return list(dict.fromkeys(codes)), where


def _ddp_report_codes(ranks: list[dict[str, Any]], results: list[Any], task: DDPTask) -> list[str]:
    codes = []
    per_epoch = [len(r["entries"]) // task.epochs for r in ranks]

    def totals(entries: list[dict[str, Any]]) -> tuple[float, float]:
        count = sum(e["size"] for e in entries)
        return sum(e["value"] * e["size"] for e in entries) / count, sum(e["correct"] for e in entries) / count

    for number, rank in enumerate(ranks):
        history = rank["history"]
        well_formed = isinstance(history, list) and len(history) == task.epochs and all(
            isinstance(r, dict) and {"epoch", "loss", "accuracy"} <= set(r) and is_float(r["loss"]) and is_float(r["accuracy"])
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


def _ddp_expected(task: DDPTask) -> str:
    per_rank = math.ceil(task.n_samples / task.world_size)
    n_batches = math.ceil(per_rank / task.batch_size)
    steps = len(groups(n_batches, task.accumulation_steps))
    return (f"2 ranks, each loading {per_rank} different samples per epoch ({task.epochs} epochs) in a new order "
            f"every epoch; per epoch "
            f"{n_batches} micro-batches, {steps} optimizer steps and {steps} all-reduces per rank "
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



# --- the re-check ---------------------------------------------------------------------------------------

def _verdict_ddp_run(rank: int, world_size: int, train_ddp: Callable[..., Any], task: DDPTask) -> dict[str, Any]:
    features, targets = task.data()
    dataset = IndexedDataset(features, targets)
    network = task.network()
    history = train_ddp(rank, world_size, network, dataset, nn.CrossEntropyLoss(), torch.device("cpu"), task.config())
    rows = [[as_float(r.get("loss")), as_float(r.get("accuracy"))] if isinstance(r, dict) else None
            for r in history] if isinstance(history, list) else None
    return {"history": rows, "loaded": list(dataset.loaded), "parameters": values_of(network.parameters())}


def _verdict_ddp_rank(rank: int, world_size: int, train_ddp: Callable[..., Any], task: DDPTask) -> dict[str, Any]:
    """The scenario's run, then one with accumulation_steps=1, in the same process group."""
    return {"main": _verdict_ddp_run(rank, world_size, train_ddp, task),
            "single": _verdict_ddp_run(rank, world_size, train_ddp, replace(task, accumulation_steps=1))}


def probe(namespace: dict[str, Any], seed: int) -> dict[str, Any]:
    """The re-check's values: rank 0's parameters, both ranks' histories and sample orders, on ``seed``'s
    scenario and again with accumulation_steps=1 (two real gloo ranks)."""
    with tempfile.TemporaryDirectory() as folder:
        task = replace(verdict_ddp_task(seed), folder=folder)
        results = run_distributed(_verdict_ddp_rank, task.world_size, (namespace["train_ddp"], task), backend="gloo",
                                  timeout=90.0, collective_timeout=45.0, start_attempts=2, rendezvous_timeout=25.0)
    first, second = (r.value for r in results)

    def values(run: str) -> dict[str, Any]:
        return {"parameters": first[run]["parameters"], "histories": [first[run]["history"], second[run]["history"]],
                "loaded": [first[run]["loaded"], second[run]["loaded"]]}

    return {**values("main"), "single": values("single")}
