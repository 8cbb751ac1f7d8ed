"""Lesson 03, Exercise 1 · An MLP of any size: its diagnoses, its visible check, and its re-check probe.

The check builds the learner's ``MLP`` at sizes drawn from a seed, loads known weights into its two
Linear layers, and compares its forward pass with Linear -> ReLU -> Linear (the right logits are
stored data, ``checks/expected/lesson03-mlp.json``); when they differ it works out which typical
mistake reproduces the output (ReLU missing, softmax inside ``forward``, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from course_utils.checks import expected as stored
from course_utils.checks.learner import call_learner, error_text
from course_utils.checks.lesson03.common import LAYERS, LESSON, LOGITS, PARAMETERS, close, plain, sizes_for
from course_utils.diagnoses import Exercise, fail_with

EXERCISE = Exercise(LESSON, "ex1-tests", "Exercise 1 · An MLP of any size")
_MODULE = "1 · A model is an `nn.Module`"

DIAGNOSES = EXERCISE.diagnoses(
    ("mlp-crashed", "MLP(...) or its forward pass raised an error",
     "run MLP(in_features, hidden, out_features)(x) in a cell of your own to see the full traceback.", "interface"),
    ("mlp-super-init", "MLP.__init__ assigns layers before calling super().__init__()",
     "the first line of __init__ must be super().__init__(): it sets up the bookkeeping that registers layers.",
     "interface", _MODULE),
    ("mlp-not-module", "MLP is not an nn.Module subclass",
     "write class MLP(nn.Module): so that PyTorch finds its parameters and runs forward when you call it.",
     "interface", _MODULE),
    ("mlp-unregistered-layers", "the model has no registered parameters: its layers are not attributes of the module",
     "store each layer as an attribute in __init__ (self.hidden = nn.Linear(...)); layers kept in a plain "
     "Python list or created inside forward are invisible to model.parameters() and would never be trained.",
     "interface", _MODULE),
    ("mlp-layers-in-forward", "forward creates new layers (new random weights) at every call",
     "create the nn.Linear layers once, in __init__; forward only uses them.", "interface", _MODULE),
    ("mlp-sizes-ignored", "the layers have the running example's sizes 10, 32, 3 whatever sizes MLP is given",
     "use the arguments: nn.Linear(in_features, hidden) and nn.Linear(hidden, out_features).", "shapes"),
    ("mlp-layer-sizes", "the nn.Linear layers do not have the sizes (in_features, hidden) and (hidden, out_features)",
     "the first layer maps in_features -> hidden, the second hidden -> out_features; a batch (N, in_features) "
     "must come out as logits (N, out_features).", "shapes", LAYERS),
    ("mlp-no-bias", "a Linear layer has no bias",
     "keep nn.Linear's default bias=True: each layer computes x W^T + b.", "shapes", LAYERS),
    ("mlp-extra-parameters", "the model holds parameters besides the two Linear layers",
     "two nn.Linear layers and one nn.ReLU, nothing else: in*hidden + hidden + hidden*out + out parameters.",
     "shapes", PARAMETERS),
    ("mlp-no-relu", "forward skips the ReLU: the two Linear layers are applied back to back",
     "forward must be out(relu(hidden(x))): without the ReLU two Linear layers collapse into one linear map.",
     "shapes", LAYERS),
    ("mlp-relu-on-logits", "a ReLU is applied to the logits (the output of the last layer)",
     "the ReLU goes between the two layers only; logits may be negative: return out(relu(hidden(x))).",
     "loss", LOGITS),
    ("mlp-softmax-in-forward", "forward returns probabilities (softmax or log_softmax), not raw logits",
     "return the last Linear layer's output unchanged; softmax is for people (lesson 03 section 5), and the "
     "loss of lesson 04 applies it itself.", "loss", LOGITS),
    ("mlp-softmax-dim", "forward applies a softmax over dim=0, across the samples of the batch",
     "return raw logits; and whenever you do need softmax, take it over the classes: dim=1 (or dim=-1).",
     "shapes", LOGITS),
    ("mlp-wrong-activation", "the activation between the layers is not a ReLU",
     "use nn.ReLU() (max(0, z)) between the two layers, as the exercise asks.", "shapes", LAYERS),
    ("mlp-batch-size", "the model does not work on a batch of another size",
     "do not write the batch size into forward: every layer works on (N, features) for any N.", "shapes"),
    ("mlp-output", "forward does not compute Linear -> ReLU -> Linear",
     "forward must return self.out(self.act(self.hidden(x))), with the layers created in __init__.", "shapes"),
)
FORBIDDEN_CALLS = ()

# The seeds of check_mlp whose expected logits are stored, with the sizes and batch each one uses (None: sizes
# drawn from the seed, a batch of 13): the notebook's calls and the tests'.
MLP_CHECKS: dict[int, tuple[tuple[int, int, int], int] | None] = {
    1: None, 2: None, 3: None, 3031: None, 3032: ((10, 32, 3), 100), 3033: ((1, 2, 1), 2)}


def _build(mlp_class: Callable[..., Any], sizes: tuple[int, int, int], subject: str) -> nn.Module:
    model, error = call_learner(mlp_class, *sizes)
    if error is not None:
        text = str(error)
        if isinstance(error, AttributeError) and ("Module.__init__" in text or "_modules" in text
                                                  or "_parameters" in text):
            fail_with("mlp-super-init", expected="super().__init__() as the first line of __init__",
                      found=error_text(error), subject=subject)
        fail_with("mlp-crashed", expected="a model", found=error_text(error), subject=subject)
    if not isinstance(model, nn.Module):
        fail_with("mlp-not-module", expected="an nn.Module", found=f"a {type(model).__name__}", subject=subject)
    return model


def _forward(model: nn.Module, x: torch.Tensor, subject: str, code: str = "mlp-crashed") -> Any:
    output, error = call_learner(model, x)
    if error is not None:
        fail_with(code, expected=f"logits for an input of shape {tuple(x.shape)}", found=error_text(error),
                  subject=subject)
    return output


def _pick_linears(model: nn.Module, sizes: tuple[int, int, int], subject: str) -> tuple[nn.Linear, nn.Linear]:
    n_in, n_hidden, n_out = sizes
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    shapes = [(m.in_features, m.out_features) for m in linears]
    wanted = [(n_in, n_hidden), (n_hidden, n_out)]
    expected = f"nn.Linear layers {wanted} (in_features, out_features)"
    if shapes and all(shape in ((10, 32), (32, 3)) for shape in shapes) and sizes != (10, 32, 3):
        fail_with("mlp-sizes-ignored", expected=expected, found=f"nn.Linear layers {shapes}", subject=subject)
    if len(shapes) > 2 and all(shapes.count(shape) >= wanted.count(shape) for shape in wanted):
        fail_with("mlp-extra-parameters", expected=expected, found=f"nn.Linear layers {shapes}", subject=subject)
    if sorted(shapes) != sorted(wanted):
        fail_with("mlp-layer-sizes", expected=expected, found=f"nn.Linear layers {shapes}", subject=subject)
    first = next(m for m in linears if (m.in_features, m.out_features) == wanted[0])
    second = next(m for m in linears if (m.in_features, m.out_features) == wanted[1] and m is not first)
    if first.bias is None or second.bias is None:
        fail_with("mlp-no-bias", expected="both layers with a bias", found="a layer with bias=False", subject=subject)
    expected_count = n_in * n_hidden + n_hidden + n_hidden * n_out + n_out
    counted = sum(p.numel() for p in model.parameters())
    if counted != expected_count:
        fail_with("mlp-extra-parameters", expected=f"{expected_count} parameters", found=f"{counted} parameters",
                  subject=subject)
    return first, second


def mlp_check_case(seed: int) -> dict[str, Any]:
    """check_mlp's fixed inputs for ``seed``: sizes, a batch, and the weights it loads into the two Linear layers."""
    sizes, batch = MLP_CHECKS[seed] or (sizes_for(seed), 13)
    n_in, n_hidden, n_out = sizes
    generator = torch.Generator().manual_seed(seed + 1)
    return {"sizes": sizes, "x": torch.randn(batch, n_in, generator=generator),
            "weights": [torch.randn(n_hidden, n_in, generator=generator) / n_in ** 0.5,
                        torch.randn(n_hidden, generator=generator),
                        torch.randn(n_out, n_hidden, generator=generator) / n_hidden ** 0.5,
                        torch.randn(n_out, generator=generator)]}


def _forward_variants(first: nn.Linear, second: nn.Linear, x: torch.Tensor,
                      logits: torch.Tensor) -> list[tuple[str, str, torch.Tensor]]:
    """(code, what the output equals, output) for each typical mistake: from the stored right ``logits``, or from
    the learner's own layers where the mistake changes the hidden layer."""
    with torch.no_grad():
        hidden = first(x)
        linear_only = second(hidden)
        return [
            ("mlp-no-relu", "out(hidden(x)), without the ReLU", linear_only),
            ("mlp-relu-on-logits", "relu(out(relu(hidden(x)))): no negative logits", torch.relu(logits)),
            ("mlp-relu-on-logits", "relu(out(hidden(x))): no negative logits", torch.relu(linear_only)),
            ("mlp-softmax-in-forward", "softmax(logits, dim=1): rows that sum to 1", torch.softmax(logits, dim=1)),
            ("mlp-softmax-in-forward", "log_softmax(logits, dim=1)", torch.log_softmax(logits, dim=1)),
            ("mlp-softmax-dim", "softmax(logits, dim=0): columns that sum to 1", torch.softmax(logits, dim=0)),
            ("mlp-softmax-dim", "log_softmax(logits, dim=0)", torch.log_softmax(logits, dim=0)),
            ("mlp-wrong-activation", "out(sigmoid(hidden(x)))", second(torch.sigmoid(hidden))),
            ("mlp-wrong-activation", "out(tanh(hidden(x)))", second(torch.tanh(hidden))),
            ("mlp-wrong-activation", "out(leaky_relu(hidden(x)))", second(F.leaky_relu(hidden))),
        ]


def _load(first: nn.Linear, second: nn.Linear, weights: list[torch.Tensor]) -> None:
    """Known weights into the learner's two layers, so that the right logits are the stored ones."""
    with torch.no_grad():
        for layer, weight, bias in ((first, weights[0], weights[1]), (second, weights[2], weights[3])):
            layer.weight.copy_(weight)
            layer.bias.copy_(bias)


def check_mlp(mlp_class: Callable[..., Any], *, seed: int, sizes: tuple[int, int, int] | None = None,
              batch: int = 13) -> None:
    """Build ``mlp_class(*sizes)``, load known weights into its two Linear layers, and compare its forward pass
    with Linear -> ReLU -> Linear on seeded inputs (the right logits are stored data, ``lesson03-mlp``).

    ``sizes`` defaults to sizes drawn from ``seed`` (never the running example's 10, 32, 3); a seed with
    given sizes must be one of MLP_CHECKS.
    """
    if seed not in MLP_CHECKS or (sizes is not None and MLP_CHECKS[seed] != (tuple(sizes), batch)):
        raise ValueError(f"check_mlp has stored results for these seeds (sizes, batch) only: {MLP_CHECKS}")
    case = mlp_check_case(seed)
    sizes, x = case["sizes"], case["x"]
    subject = f"MLP{sizes}"
    torch.manual_seed(seed)
    model = _build(mlp_class, sizes, subject)
    if not list(model.parameters()):
        first_out = _forward(model, x, subject, "mlp-unregistered-layers")
        second_out = _forward(model, x, subject, "mlp-unregistered-layers")
        differs = not (isinstance(first_out, torch.Tensor) and isinstance(second_out, torch.Tensor)
                       and first_out.shape == second_out.shape and torch.equal(first_out, second_out))
        fail_with("mlp-layers-in-forward" if differs else "mlp-unregistered-layers",
                  expected=f"{sum(a * b + b for a, b in zip(sizes, sizes[1:]))} parameters in model.parameters()",
                  found="no parameters" + (" and a different output at every call" if differs else ""),
                  subject=subject)
    first, second = _pick_linears(model, sizes, subject)
    _load(first, second, case["weights"])
    output = _forward(model, x, subject)
    reference = stored.tensor(stored.for_seed("lesson03-mlp", seed)["logits"])
    if not isinstance(output, torch.Tensor):
        fail_with("mlp-output", expected="a tensor of logits", found=f"a {type(output).__name__}", subject=subject)
    if not close(output, reference):
        for code, equals, variant in _forward_variants(first, second, x, reference):
            if close(output, variant):
                fail_with(code, expected=f"logits out(relu(hidden(x))) of shape {tuple(reference.shape)}",
                          found=f"an output equal to {equals}", subject=subject)
        found = (f"shape {tuple(output.shape)}" if output.shape != reference.shape else
                 f"largest difference {float((output.detach() - reference).abs().max()):.3g}")
        fail_with("mlp-output", expected=f"logits out(relu(hidden(x))) of shape {tuple(reference.shape)}",
                  found=found, subject=subject)
    one = _forward(model, x[:1], subject, "mlp-batch-size")
    if not close(one, reference[:1]):
        fail_with("mlp-batch-size", expected=f"shape (1, {sizes[2]}) for a batch of one",
                  found=f"{one.shape if isinstance(one, torch.Tensor) else type(one).__name__}", subject=subject)


# --- the grader's re-check (course_utils.verdict_probes) ---------------------------------------------
# The kernel calls the learner's code on scenarios drawn from a seed chosen at grading time and sends
# back values only; the grader rebuilds the same scenarios with these builders and judges the values.

def mlp_scenario(seed: int) -> dict[str, Any]:
    """Exercise 1's re-check: sizes, a batch, and the weights the probe loads into the learner's two Linear layers."""
    sizes = sizes_for(seed)
    n_in, n_hidden, n_out = sizes
    generator = torch.Generator().manual_seed(seed + 1)
    return {"sizes": sizes, "x": torch.randn(5 + seed % 11, n_in, generator=generator),
            "weights": [torch.randn(n_hidden, n_in, generator=generator) / n_in ** 0.5,
                        torch.randn(n_hidden, generator=generator),
                        torch.randn(n_out, n_hidden, generator=generator) / n_hidden ** 0.5,
                        torch.randn(n_out, generator=generator)]}


def tiny_mlp_scenario(seed: int) -> dict[str, Any]:
    """Exercise 1's re-check at the smallest sizes: one input feature, two hidden units, one output, a batch of 2."""
    generator = torch.Generator().manual_seed(seed + 2)
    return {"sizes": (1, 2, 1), "x": torch.randn(2, 1, generator=generator),
            "weights": [torch.randn(2, 1, generator=generator), torch.randn(2, generator=generator),
                        torch.randn(1, 2, generator=generator), torch.randn(1, generator=generator)]}


def _mlp_values(ns: dict[str, Any], scenario: dict[str, Any]) -> dict[str, Any]:
    n_in, n_hidden, n_out = scenario["sizes"]
    with torch.random.fork_rng(devices=[]):  # building the model draws weights: keep the notebook's random state
        model = ns["MLP"](n_in, n_hidden, n_out)
    if not isinstance(model, nn.Module):
        return {"module": False}
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    w1, b1, w2, b2 = scenario["weights"]
    with torch.no_grad():  # known weights, so that the grader can compute the logits itself
        for layer in linears:
            for (rows, columns), weight, bias in (((n_hidden, n_in), w1, b1), ((n_out, n_hidden), w2, b2)):
                if tuple(layer.weight.shape) == (rows, columns):
                    layer.weight.copy_(weight)
                    if layer.bias is not None:
                        layer.bias.copy_(bias)
    x = scenario["x"]
    values = {"module": True, "linears": [[int(m.in_features), int(m.out_features), m.bias is not None]
                                          for m in linears],
              "parameters": int(sum(p.numel() for p in model.parameters())), "forward-error": None}
    try:  # the layers' sizes above tell the judge more than a crash of the forward pass would
        values.update(logits=plain(model(x.clone())), one=plain(model(x[:1].clone())))
    except Exception as error:  # noqa: BLE001 - reported as a value
        values["forward-error"] = f"{type(error).__name__}: {error}"[:300]
    return values


def probe(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    """The values the grader judges for ex1-tests: the learner's MLP at drawn sizes and at the smallest ones."""
    return {**_mlp_values(ns, mlp_scenario(seed)), "tiny": _mlp_values(ns, tiny_mlp_scenario(seed))}
