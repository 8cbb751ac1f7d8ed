"""Lesson 03, Exercise 2 · Predict classes: its diagnoses, its visible check, and its re-check probe.

The check runs ``predict`` on a model with BatchNorm and Dropout that records how it was called, from
training mode and from eval mode, and compares the classes with the argmax of the model's eval-mode
logits (stored data, ``checks/expected/lesson03-predict.json``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from course_utils.checks import expected as stored
from course_utils.checks.learner import call_learner, error_text
from course_utils.checks.lesson03.common import LESSON, LOGITS, close, plain, sizes_for
from course_utils.diagnoses import Exercise, fail_with

EXERCISE = Exercise(LESSON, "ex2-tests", "Exercise 2 · Predict classes")
_PREDICTING = "Predicting: `eval()` and `no_grad()`"

DIAGNOSES = EXERCISE.diagnoses(
    ("predict-crashed", "predict raised an error",
     "run predict(model, xb) in a cell of your own to see the full traceback.", "interface"),
    ("predict-ignores-model", "predict never called the model it was given",
     "compute the logits with the `model` argument, model(x), not with a global variable.", "interface"),
    ("predict-not-eval", "the forward pass inside predict ran in training mode",
     "call model.eval() before the forward pass: Dropout and BatchNorm behave differently in evaluation.",
     "modes", _PREDICTING),
    ("predict-tracks-gradients", "the forward pass inside predict tracked gradients",
     "run the model inside `with torch.no_grad():` (or torch.inference_mode()).", "modes", _PREDICTING),
    ("predict-mode-not-restored", "predict left a model that was training in eval mode",
     "remember was_training = model.training before model.eval(), and call model.train(was_training) at the end.",
     "modes", _PREDICTING),
    ("predict-forced-train", "predict put a model that was in eval mode into training mode",
     "restore the mode the model had, do not always call model.train(): model.train(was_training).",
     "modes", _PREDICTING),
    ("predict-changed-model", "predict changed the model's parameters or buffers",
     "predict only reads the model: eval mode, no_grad, no backward and no optimiser step.", "modes"),
    ("predict-not-tensor", "predict did not return a tensor",
     "return logits.argmax(dim=1), a tensor; do not convert it with .tolist() or .item().", "interface"),
    ("predict-returns-max-tuple", "predict returned the pair (values, indices) of torch.max, not the classes alone",
     "torch.max(logits, dim=1) returns two tensors, the largest values and their indices: keep the indices, "
     "_, classes = torch.max(logits, dim=1), or use logits.argmax(dim=1).", "interface", LOGITS),
    ("predict-returns-logits", "predict returned the logits, not the predicted classes",
     "return logits.argmax(dim=1): one class index per row.", "metrics", LOGITS),
    ("predict-returns-probabilities", "predict returned probabilities, not the predicted classes",
     "the prediction is the index of the largest value: probabilities.argmax(dim=1) (or logits.argmax(dim=1)).",
     "metrics", LOGITS),
    ("predict-argmax-dim0", "predict took the argmax over dim=0, across the samples, not over the classes",
     "logits have shape (batch, classes): argmax(dim=1) gives one class per row, shape (batch,).", "shapes", LOGITS),
    ("predict-keepdim", "predict returned shape (batch, 1) instead of (batch,)",
     "use logits.argmax(dim=1) without keepdim=True.", "shapes", LOGITS),
    ("predict-softmax-dim0", "predict took a softmax over dim=0 (across the batch) before the argmax",
     "softmax over the classes is dim=1; for the prediction you need no softmax at all: logits.argmax(dim=1).",
     "shapes", LOGITS),
    ("predict-float-classes", "predict returned classes as floats, not int64",
     "argmax already returns int64 indices: do not convert them.", "dtypes"),
    ("predict-wrong-classes", "predict returned classes that differ from the argmax of the eval-mode logits",
     "model.eval(), then under torch.no_grad(): return model(x).argmax(dim=1).", "metrics"),
)
FORBIDDEN_CALLS = ()


class _ProbeNet(nn.Module):
    """Linear -> BatchNorm -> ReLU -> Dropout -> Linear that records (training, grad enabled) per call."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, n_hidden), nn.BatchNorm1d(n_hidden), nn.ReLU(),
                                  nn.Dropout(0.5), nn.Linear(n_hidden, n_out))
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.training, torch.is_grad_enabled()))
        return self.body(x)


def _probe_net(seed: int) -> tuple[_ProbeNet, torch.Tensor]:
    n_in, n_hidden, n_out = sizes_for(seed)
    torch.manual_seed(seed)
    net = _ProbeNet(n_in, n_hidden, n_out)
    with torch.no_grad():  # evaluation statistics far from a batch's own, so the mode changes the answer
        net.body[1].running_mean.uniform_(-1.0, 1.0)
        net.body[1].running_var.uniform_(0.3, 3.0)
    x = torch.randn(11 + seed % 7, n_in, generator=torch.Generator().manual_seed(seed + 1))
    return net, x


def _diagnose_prediction(result: Any, logits: torch.Tensor) -> tuple[str, str] | None:
    """(code, found) for a returned value that is not logits.argmax(dim=1), or None if it is."""
    n, n_classes = logits.shape
    expected = logits.argmax(dim=1)
    if (isinstance(result, tuple) and len(result) == 2 and all(isinstance(r, torch.Tensor) for r in result)
            and result[1].shape == (n,) and torch.equal(result[1].long(), expected)):
        return "predict-returns-max-tuple", "the pair that torch.max returns: (values, indices)"
    if not isinstance(result, torch.Tensor):
        return "predict-not-tensor", f"a {type(result).__name__}"
    shape = tuple(result.shape)
    if shape == (n, n_classes):
        rows = result.detach().double()
        if close(rows, logits):
            return "predict-returns-logits", f"shape {shape}, the logits"
        if rows.min() >= 0 and torch.allclose(rows.sum(dim=1), torch.ones(n, dtype=torch.float64), atol=1e-4):
            return "predict-returns-probabilities", f"shape {shape}, rows that sum to 1"
        return "predict-returns-logits", f"shape {shape}, one value per class"
    if shape == (n_classes,):
        return "predict-argmax-dim0", f"shape {shape}, one value per class"
    if shape == (n, 1):
        return "predict-keepdim", f"shape {shape}"
    if shape != (n,):
        return "predict-wrong-classes", f"shape {shape}"
    if result.dtype != torch.int64:
        if result.is_floating_point() and torch.equal(result.detach().double(), expected.double()):
            return "predict-float-classes", f"dtype {result.dtype}"
        if not result.is_floating_point() and torch.equal(result.long(), expected):
            return "predict-float-classes", f"dtype {result.dtype}"
    if torch.equal(result.long(), expected):
        return None
    if torch.equal(result.long(), torch.softmax(logits, dim=0).argmax(dim=1)):
        return "predict-softmax-dim0", f"{int((result.long() != expected).sum())} of {n} rows differ"
    return "predict-wrong-classes", f"{int((result.long() != expected).sum())} of {n} rows differ"


def check_predict(predict: Callable[..., Any], *, seed: int) -> None:
    """Run ``predict(model, x)`` on a recording model with BatchNorm and Dropout, from train and from eval mode.

    The model's eval-mode logits for the check's input are stored data (``lesson03-predict``).
    """
    for start_training in (True, False):
        net, x = _probe_net(seed)
        net.train(start_training)
        state = copy.deepcopy(net.state_dict())
        logits = stored.tensor(stored.for_seed("lesson03-predict", seed)["logits"])  # the eval-mode logits
        mode = "training" if start_training else "eval"
        subject = f"predict on a model in {mode} mode"
        result, error = call_learner(predict, net, x)
        if error is not None:
            fail_with("predict-crashed", expected="the predicted classes", found=error_text(error), subject=subject)
        codes = []
        if not net.calls:
            codes.append("predict-ignores-model")
        if any(training for training, _ in net.calls):
            codes.append("predict-not-eval")
        if any(grad for _, grad in net.calls):
            codes.append("predict-tracks-gradients")
        if net.training != start_training:
            codes.append("predict-mode-not-restored" if start_training else "predict-forced-train")
        after = net.state_dict()
        if not all(torch.equal(state[name], after[name]) for name in state) and "predict-not-eval" not in codes:
            codes.append("predict-changed-model")
        if any(p.grad is not None for p in net.parameters()):
            codes.append("predict-changed-model")
        finding = _diagnose_prediction(result, logits) if not codes or codes == ["predict-changed-model"] else None
        if finding:
            codes.append(finding[0])
        if codes:
            fail_with(codes[0], expected=f"int64 classes of shape ({len(x)},), the argmax of the eval-mode logits, "
                                         f"computed in eval mode without gradients, the model back in {mode} mode",
                      found=finding[1] if finding and codes[0] == finding[0] else
                      f"forward calls (training, grad enabled): {net.calls}; model.training afterwards {net.training}",
                      subject=subject, also=[code for code in codes[1:] if code != codes[0]])


# --- the grader's re-check (course_utils.verdict_probes) ---------------------------------------------

def predict_scenario(seed: int) -> tuple[nn.Module, torch.Tensor]:
    """Exercise 2's re-check: a model with BatchNorm and Dropout that records its calls, and a batch."""
    with torch.random.fork_rng(devices=[]):  # seeds its own generator, leaves the caller's random state alone
        return _probe_net(seed)


def probe(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    """The values the grader judges for ex2-tests: predict's classes and what it did to the model, per mode."""
    values: dict[str, Any] = {}
    for start_training in (True, False):
        net, x = predict_scenario(seed)
        net.train(start_training)
        result = ns["predict"](net, x.clone())
        mode = "train" if start_training else "eval"
        values[mode] = {"classes": plain(result), "training": net.training if type(net.training) is bool else None,
                        "calls": [[bool(t), bool(g)] for t, g in net.calls],
                        "state": {name: plain(v) for name, v in net.state_dict().items()},
                        "grads": any(p.grad is not None for p in net.parameters())}
    return values
