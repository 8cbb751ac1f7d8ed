"""The grader's own re-check: verdicts computed where no submission's code ever runs.

The kernel that ran a submission is the submission's: its outputs, IPython machinery, modules and
builtins can all be replaced, so a test cell's output there is a claim, not a verdict. For every
graded cell listed in :data:`JUDGES`, the grader draws a seed at grading time, the kernel runs the
learner's functions on scenarios built from it (:mod:`course_utils.verdict_probes`) and sends back
values only; here, in the grader's process, the same scenarios are rebuilt, PyTorch computes the
answer, and the values are judged. Values are read with ``torch.load(weights_only=True)`` (no
code runs while reading) from at most :data:`MAX_VALUES_BYTES`.

A cell earns its points only when the kernel's check passed AND the re-check passed. When the
kernel claims a pass that the re-check refutes, the submission is marked ``tampered``.
See docs/grading-threat-model.md for what this does and does not cover.
"""

from __future__ import annotations

import base64
import importlib
import io
import math
import secrets
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils.verdict_probes import (
    MARKER,
    probes_for,
    batching_cases,
    dataset_tensors,
    loop_scenario,
    reference_epoch,
    reference_evaluate,
)

MAX_VALUES_BYTES = 8 * 2**20
_TOLERANCE = dict(rtol=1e-4, atol=1e-5)
Judge = Callable[[dict[str, Any], int], str]  # values, seed -> "" when right, else what is wrong


@dataclass(frozen=True)
class Verdict:
    """The re-check of one graded cell: passed, or why not."""

    grade_id: str
    passed: bool
    reason: str = ""


def judges_for(lesson: str) -> dict[str, Judge]:
    """The lesson's judges by grade id: those below, and ``JUDGES`` of ``course_tools.grade.judges.lessonNN``."""
    found = dict(JUDGES.get(lesson, {}))
    try:
        module = importlib.import_module(f"course_tools.grade.judges.lesson{lesson[:2]}")
    except ModuleNotFoundError as error:
        if not (error.name or "").startswith("course_tools.grade.judges"):
            raise
    else:
        found.update(getattr(module, "JUDGES", {}))
    return found


def draw_seeds(lesson: str) -> dict[str, int]:
    """A fresh secret seed per judged cell of ``lesson`` (a cell needs both a probe and a judge)."""
    judged = set(judges_for(lesson)) & set(probes_for(lesson))
    return {grade_id: 10_000 + secrets.randbelow(10**9) for grade_id in sorted(judged)}


def probe_source(lesson: str, grade_id: str, seed: int) -> str:
    """The code the kernel runs for one probe."""
    return (f"import course_utils.verdict_probes as __course_probe__\n"
            f"__course_probe__.emit({lesson!r}, {grade_id!r}, {seed})\n"
            f"del __course_probe__")


def read_values(text: str, grade_id: str) -> dict[str, Any] | None:
    """The values a probe printed (the last line with its marker), read without running any code."""
    prefix = f"{MARKER} {grade_id} "
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    if not lines or len(lines[-1]) > MAX_VALUES_BYTES * 4 // 3 + 64:
        return None
    try:
        raw = base64.b64decode(lines[-1][len(prefix):].strip(), validate=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = torch.load(io.BytesIO(raw), weights_only=True)
    except Exception:  # noqa: BLE001 - hostile bytes fail in many ways; every one of them is "unreadable"
        return None
    return values if isinstance(values, dict) else None


# --- judges: PyTorch computes the answer in the grader's process -------------------------------

def _tensors_close(found: Any, expected: list[torch.Tensor]) -> bool:
    return (isinstance(found, list) and len(found) == len(expected)
            and all(type(f) is torch.Tensor and f.shape == e.shape and f.is_floating_point()
                    and bool(torch.allclose(f.double(), e.double(), **_TOLERANCE)) for f, e in zip(found, expected)))


def _close(found: Any, expected: float) -> bool:
    return type(found) is float and math.isclose(found, expected, rel_tol=1e-4, abs_tol=1e-5)


def _judge_train_one_epoch(values: dict[str, Any], seed: int) -> str:
    model, train, _, optimizer = loop_scenario(seed)
    loss = reference_epoch(model, train, nn.CrossEntropyLoss(), optimizer, torch.device("cpu"))
    if not _tensors_close(values.get("parameters"), [p.detach() for p in model.parameters()]):
        return "the parameters after one epoch differ from PyTorch's reference loop on the same seeded batches"
    if not _close(values.get("loss"), loss):
        return f"the returned loss {values.get('loss')!r} is not the mean loss per sample ({loss:.6f})"
    return ""


def _judge_evaluate(values: dict[str, Any], seed: int) -> str:
    model, _, val, _ = loop_scenario(seed)
    before = [p.detach().clone() for p in model.parameters()]
    loss, accuracy = reference_evaluate(model, val, nn.CrossEntropyLoss(), torch.device("cpu"))
    if not _tensors_close(values.get("parameters"), before):
        return "evaluation changed the model's parameters"
    if not (_close(values.get("loss"), loss) and _close(values.get("accuracy"), accuracy)):
        return f"returned ({values.get('loss')!r}, {values.get('accuracy')!r}), expected ({loss:.6f}, {accuracy:.6f})"
    return ""


def _judge_fit(values: dict[str, Any], seed: int) -> str:
    model, train, val, optimizer = loop_scenario(seed)
    expected = []
    for epoch in (1, 2):
        loss = reference_epoch(model, train, nn.CrossEntropyLoss(), optimizer, torch.device("cpu"))
        val_loss, accuracy = reference_evaluate(model, val, nn.CrossEntropyLoss(), torch.device("cpu"))
        expected.append([float(epoch), loss, val_loss, accuracy])
    rows = values.get("history")
    if not (isinstance(rows, list) and len(rows) == 2
            and all(isinstance(r, list) and len(r) == 4 and all(_close(a, b) for a, b in zip(r, e))
                    for r, e in zip(rows, expected))):
        return "the history of fit does not match train_one_epoch then evaluate, epoch by epoch"
    if not _tensors_close(values.get("parameters"), [p.detach() for p in model.parameters()]):
        return "the model's parameters after fit differ from two reference epochs"
    return ""


def _judge_dataset(values: dict[str, Any], seed: int) -> str:
    features, targets = dataset_tensors(seed)
    if values.get("length") != len(features):
        return f"len() gave {values.get('length')!r} for {len(features)} samples"
    if not _tensors_close(values.get("features"), list(features)) or values.get("targets") != targets.tolist():
        return "ds[i] does not return (features[i], targets[i])"
    return ""


def _judge_make_loader(values: dict[str, Any], seed: int) -> str:
    index = TensorDataset(torch.zeros(97, 1), torch.arange(97))
    expected = []
    for shuffle, drop_last, size in ((True, False, 10), (False, True, 16), (True, True, 7)):
        generator = torch.Generator().manual_seed(seed + size)
        loader = DataLoader(index, batch_size=size, shuffle=shuffle, drop_last=drop_last, generator=generator)
        expected.append([[int(i) for i in labels] for _, labels in loader])
    return "" if values.get("orders") == expected else \
        "the batches differ from DataLoader's with the same batch_size, shuffle, drop_last and seed"


def _judge_batch_sizes(values: dict[str, Any], seed: int) -> str:
    expected = [[len(b[0]) for b in DataLoader(TensorDataset(torch.arange(n)), batch_size=size, drop_last=drop)]
                for n, size, drop in batching_cases(seed)]
    return "" if values.get("sizes") == expected else "the batch sizes differ from a real DataLoader's"


JUDGES: dict[str, dict[str, Judge]] = {
    "01_dataloader_batching": {"ex1-tests": _judge_dataset, "ex2-tests": _judge_make_loader,
                               "ex3-tests": _judge_batch_sizes},
    "07_epoch_loop_gpu": {"ex1-tests": _judge_train_one_epoch, "ex2-tests": _judge_evaluate, "ex3-tests": _judge_fit},
}


def judge(lesson: str, grade_id: str, seed: int, printed: str) -> Verdict:
    """Judge what the kernel printed for one probe; anything unreadable or wrong fails."""
    values = read_values(printed, grade_id)
    if values is None:
        return Verdict(grade_id, False, "the re-check received no readable values from the notebook")
    if "error" in values:
        return Verdict(grade_id, False, f"the re-check's call raised {str(values['error'])[:200]}")
    try:
        problem = judges_for(lesson)[grade_id](values, seed)
    except Exception as error:  # noqa: BLE001 - values of the wrong shape are a wrong answer
        problem = f"the values sent back have the wrong form ({type(error).__name__})"
    return Verdict(grade_id, not problem, problem)
