"""Lesson 03's re-check judges: MLP, predict and count_parameters, against PyTorch.

The scenarios come from the lesson's exercise modules, ``course_utils.checks.lesson03.ex1`` to ``ex3``
(``mlp_scenario``, ``predict_scenario``, ``count_scenario``). For the MLP, the probe loads the scenario's weights into the learner's two Linear
layers, so the grader computes the logits Linear -> ReLU -> Linear itself. Tolerances are looser than
the lesson's own checks, so that every correct style passes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from course_tools.grade.judges._compare import tensors_close
from course_utils.checks.lesson03.common import CHECK_SEEDS
from course_utils.checks.lesson03.ex1 import MLP_CHECKS, mlp_check_case, mlp_scenario, tiny_mlp_scenario
from course_utils.checks.lesson03.ex2 import predict_scenario
from course_utils.checks.lesson03.ex3 import count_scenario


def judge_mlp(values: dict[str, Any], seed: int) -> str:
    """Exercise 1: two Linear layers of the given sizes with biases, and out(relu(hidden(x))) for any batch size,
    at drawn sizes and at the smallest ones (1, 2, 1)."""
    tiny = values.get("tiny")
    return _judge_mlp(values, mlp_scenario(seed)) or _judge_mlp(tiny if isinstance(tiny, dict) else {},
                                                                  tiny_mlp_scenario(seed))


def _judge_mlp(values: dict[str, Any], scenario: dict[str, Any]) -> str:
    n_in, n_hidden, n_out = sizes = scenario["sizes"]
    if values.get("module") is not True:
        return f"MLP{sizes} is not an nn.Module"
    linears = values.get("linears")
    wanted = [[n_in, n_hidden, True], [n_hidden, n_out, True]]
    if not isinstance(linears, list) or sorted(map(tuple, linears)) != sorted(map(tuple, wanted)):
        return (f"MLP{sizes} should hold two registered nn.Linear layers ({n_in} -> {n_hidden}, "
                f"{n_hidden} -> {n_out}, with biases); found {linears!r}"[:300])
    expected_count = n_in * n_hidden + n_hidden + n_hidden * n_out + n_out
    if values.get("parameters") != expected_count:
        return f"MLP{sizes} holds {values.get('parameters')!r} parameters, not {expected_count}"
    if values.get("forward-error") is not None:
        return f"MLP{sizes}(x) raised {str(values['forward-error'])[:200]}"
    w1, b1, w2, b2 = scenario["weights"]
    x = scenario["x"]
    logits = torch.relu(x @ w1.T + b1) @ w2.T + b2
    if not tensors_close([values.get("logits")], [logits]):
        return f"MLP{sizes}(x) is not out(relu(hidden(x))) for a batch of {len(x)}"
    if not tensors_close([values.get("one")], [logits[:1]]):
        return f"MLP{sizes} does not work on a batch of one sample"
    return ""


def _argmax_of(classes: torch.Tensor, logits: torch.Tensor) -> bool:
    """Each class is a largest logit of its row (a near-tie may go either way with other arithmetic)."""
    if not bool(((classes >= 0) & (classes < logits.shape[1])).all()):
        return False
    chosen = logits.gather(1, classes[:, None])[:, 0]
    return bool((chosen >= logits.max(dim=1).values - 1e-5).all())


def judge_predict(values: dict[str, Any], seed: int) -> str:
    """Exercise 2: argmax of the eval-mode logits, without gradients, mode restored, model unchanged."""
    for start_training in (True, False):
        net, x = predict_scenario(seed)
        net.train(start_training)
        state = copy.deepcopy(net.state_dict())
        with torch.no_grad():
            logits = copy.deepcopy(net).eval()(x)
        mode = "train" if start_training else "eval"
        found = values.get(mode)
        subject = f"predict on a model in {'training' if start_training else 'eval'} mode"
        if not isinstance(found, dict):
            return f"{subject} sent back nothing readable"
        calls = found.get("calls")
        if not (isinstance(calls, list) and calls and all(c == [False, False] for c in calls)):
            return f"{subject} did not run the model in eval mode under torch.no_grad()"
        if found.get("training") is not start_training:
            return f"{subject} did not leave the model in {mode} mode"
        after = found.get("state")
        if (found.get("grads") is not False or not isinstance(after, dict) or set(after) != set(state)
                or not all(type(after[k]) is torch.Tensor and after[k].shape == v.shape
                           and torch.equal(after[k], v) for k, v in state.items())):
            return f"{subject} changed the model's parameters, buffers or gradients"
        classes = found.get("classes")
        if not (type(classes) is torch.Tensor and classes.dtype == torch.int64 and classes.shape == (len(x),)
                and _argmax_of(classes, logits)):
            return f"{subject} did not return the int64 classes argmax(dim=1) of the eval-mode logits"
    return ""


def judge_count_parameters(values: dict[str, Any], seed: int) -> str:
    """Exercise 3: the number of trainable parameter elements of each model, as a Python int."""
    models = count_scenario(seed)
    expected = [sum(p.numel() for p in model.parameters() if p.requires_grad) for model in models.values()]
    counts = values.get("counts")
    if not isinstance(counts, list) or len(counts) != len(expected):
        return "count_parameters sent back no count for each model"
    for description, count, right in zip(models, counts, expected):
        if type(count) is not int:
            return f"count_parameters of {description} returned {str(count)[:60]}, not a Python int"
        if count != right:
            return f"count_parameters of {description} gave {count}, not its number of trainable parameter elements"
    return ""


JUDGES = {"ex1-tests": judge_mlp, "ex2-tests": judge_predict, "ex3-tests": judge_count_parameters}


# --- the visible checks' expected results (course_utils/checks/expected/lesson03-*.json) -----------------

def _trainable(parameters: Any) -> list[torch.Tensor]:
    return [p for p in parameters if p.requires_grad]


# Each typical mistake as a counting rule; the check names the first that reproduces every answer.
_COUNTING_MISTAKES: tuple[tuple[str, Callable[[nn.Module], int]], ...] = (
    ("count-includes-frozen", lambda m: sum(p.numel() for p in m.parameters())),
    ("count-tensors-not-numbers", lambda m: len(_trainable(m.parameters()))),
    ("count-tensors-not-numbers", lambda m: len(list(m.parameters()))),
    ("count-weights-only", lambda m: sum(p.numel() for n, p in m.named_parameters() if p.requires_grad
                                         and n.endswith("weight"))),
    ("count-weights-only", lambda m: sum(p.numel() for n, p in m.named_parameters() if n.endswith("weight"))),
    ("count-not-numel", lambda m: sum(sum(p.shape) for p in _trainable(m.parameters()))),
    ("count-not-numel", lambda m: sum(p.shape[0] for p in _trainable(m.parameters()))),
    ("count-not-numel", lambda m: sum(sum(p.shape) for p in m.parameters())),
    ("count-shared-twice", lambda m: sum(p.numel() for _, p in m.named_parameters(remove_duplicate=False)
                                         if p.requires_grad)),
    ("count-shared-twice", lambda m: sum(p.numel() for _, p in m.named_parameters(remove_duplicate=False))),
    ("count-shared-twice", lambda m: sum(p.numel() for module in m.modules() for p in module.parameters(recurse=False)
                                         if p.requires_grad)),
    ("count-buffers", lambda m: sum(v.numel() for v in m.state_dict().values())),
    ("count-buffers", lambda m: sum(p.numel() for p in _trainable(m.parameters()))
     + sum(v.numel() for v in m.buffers())),
    ("count-only-linear", lambda m: sum(p.numel() for layer in m.modules() if isinstance(layer, nn.Linear)
                                        for p in layer.parameters() if p.requires_grad)),
    ("count-only-linear", lambda m: sum(p.numel() for layer in m.modules() if isinstance(layer, nn.Linear)
                                        for p in layer.parameters())),
)


def _count(rule: Callable[[nn.Module], int], model: nn.Module) -> int | None:
    try:
        return rule(model)
    except (StopIteration, TypeError, IndexError):  # this mistake would have crashed on this model
        return None


def _count_parameters_expected() -> dict[str, Any]:
    results = {}
    for seed in CHECK_SEEDS:
        models = list(count_scenario(seed).values())
        results[str(seed)] = {
            "expected": [sum(p.numel() for p in model.parameters() if p.requires_grad) for model in models],
            "mistakes": [[code, [_count(rule, model) for model in models]] for code, rule in _COUNTING_MISTAKES]}
    return results


def _predict_expected() -> dict[str, Any]:
    results = {}
    for seed in CHECK_SEEDS:
        net, x = predict_scenario(seed)
        with torch.no_grad():
            results[str(seed)] = {"logits": net.eval()(x).tolist()}
    return results


def _mlp_expected() -> dict[str, Any]:
    results = {}
    for seed in MLP_CHECKS:
        case = mlp_check_case(seed)
        w1, b1, w2, b2 = case["weights"]
        results[str(seed)] = {"logits": (torch.relu(case["x"] @ w1.T + b1) @ w2.T + b2).tolist()}
    return results


EXPECTED = {"lesson03-count-parameters": _count_parameters_expected, "lesson03-predict": _predict_expected,
            "lesson03-mlp": _mlp_expected}
