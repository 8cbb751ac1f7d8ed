"""Lesson 03 (forward pass): the catalogue of typical mistakes and the checks that recognise them.

Each check runs the learner's code on seeded models and inputs the notebook never prints, compares
the result with PyTorch's own answer (stored as data, ``checks/expected/lesson03-*.json``, computed on
the grader's side), and when they differ works out *which* typical mistake
reproduces the learner's result (ReLU missing, softmax inside ``forward``, argmax over the batch,
frozen parameters counted, ...). The first line of every failure message ends with its code.
Importing this module has no side effects.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, NoReturn

import torch
from torch import nn
from torch.nn import functional as F

from course_utils.checks import expected as stored
from course_utils.checks.core import CheckFailed
from course_utils.checks.learner import error_text
from course_utils.diagnoses import Diagnosis, by_code, raise_diagnosis

LESSON = "03_forward_pass"
_EX1 = ("ex1-tests", "Exercise 1 · An MLP of any size")
_EX2 = ("ex2-tests", "Exercise 2 · Predict classes")
_EX3 = ("ex3-tests", "Exercise 3 · Count trainable parameters")
_LAYERS = "2 · `Linear` and `ReLU`"
_LOGITS = "5 · Logits, probabilities, predicted classes"
_PARAMETERS = "3 · Parameters: how many, where, what type"

# The numbers the lesson prints for its own model: an answer that returns them for another model
# was written into the code, not counted.
LESSON_COUNTS = frozenset({451, 99, 352})
# The seeds of predict's and count_parameters' checks whose expected results are stored
# (``checks/expected/lesson03-*.json``, computed on the grader's side): the notebook's and the tests'.
CHECK_SEEDS = (1, 2, 3, 3041, 3051)


def _row(code: str, what: str, hint: str, family: str, where: tuple[str, str], section: str = "") -> Diagnosis:
    exercise, heading = where
    return Diagnosis(code, what, hint, family, lesson=LESSON, exercise=exercise, section=section or heading)


CATALOGUE = (
    # Exercise 1 · MLP
    _row("mlp-crashed", "MLP(...) or its forward pass raised an error",
         "run MLP(in_features, hidden, out_features)(x) in a cell of your own to see the full traceback.",
         "interface", _EX1),
    _row("mlp-super-init", "MLP.__init__ assigns layers before calling super().__init__()",
         "the first line of __init__ must be super().__init__(): it sets up the bookkeeping that registers layers.",
         "interface", _EX1, "1 · A model is an `nn.Module`"),
    _row("mlp-not-module", "MLP is not an nn.Module subclass",
         "write class MLP(nn.Module): so that PyTorch finds its parameters and runs forward when you call it.",
         "interface", _EX1, "1 · A model is an `nn.Module`"),
    _row("mlp-unregistered-layers",
         "the model has no registered parameters: its layers are not attributes of the module",
         "store each layer as an attribute in __init__ (self.hidden = nn.Linear(...)); layers kept in a plain "
         "Python list or created inside forward are invisible to model.parameters() and would never be trained.",
         "interface", _EX1, "1 · A model is an `nn.Module`"),
    _row("mlp-layers-in-forward", "forward creates new layers (new random weights) at every call",
         "create the nn.Linear layers once, in __init__; forward only uses them.",
         "interface", _EX1, "1 · A model is an `nn.Module`"),
    _row("mlp-sizes-ignored", "the layers have the running example's sizes 10, 32, 3 whatever sizes MLP is given",
         "use the arguments: nn.Linear(in_features, hidden) and nn.Linear(hidden, out_features).",
         "shapes", _EX1),
    _row("mlp-layer-sizes",
         "the nn.Linear layers do not have the sizes (in_features, hidden) and (hidden, out_features)",
         "the first layer maps in_features -> hidden, the second hidden -> out_features; a batch (N, in_features) "
         "must come out as logits (N, out_features).",
         "shapes", _EX1, _LAYERS),
    _row("mlp-no-bias", "a Linear layer has no bias",
         "keep nn.Linear's default bias=True: each layer computes x W^T + b.",
         "shapes", _EX1, _LAYERS),
    _row("mlp-extra-parameters", "the model holds parameters besides the two Linear layers",
         "two nn.Linear layers and one nn.ReLU, nothing else: in*hidden + hidden + hidden*out + out parameters.",
         "shapes", _EX1, _PARAMETERS),
    _row("mlp-no-relu", "forward skips the ReLU: the two Linear layers are applied back to back",
         "forward must be out(relu(hidden(x))): without the ReLU two Linear layers collapse into one linear map.",
         "shapes", _EX1, _LAYERS),
    _row("mlp-relu-on-logits", "a ReLU is applied to the logits (the output of the last layer)",
         "the ReLU goes between the two layers only; logits may be negative: return out(relu(hidden(x))).",
         "loss", _EX1, _LOGITS),
    _row("mlp-softmax-in-forward", "forward returns probabilities (softmax or log_softmax), not raw logits",
         "return the last Linear layer's output unchanged; softmax is for people (lesson 03 section 5), and the "
         "loss of lesson 04 applies it itself.",
         "loss", _EX1, _LOGITS),
    _row("mlp-softmax-dim", "forward applies a softmax over dim=0, across the samples of the batch",
         "return raw logits; and whenever you do need softmax, take it over the classes: dim=1 (or dim=-1).",
         "shapes", _EX1, _LOGITS),
    _row("mlp-wrong-activation", "the activation between the layers is not a ReLU",
         "use nn.ReLU() (max(0, z)) between the two layers, as the exercise asks.",
         "shapes", _EX1, _LAYERS),
    _row("mlp-batch-size", "the model does not work on a batch of another size",
         "do not write the batch size into forward: every layer works on (N, features) for any N.",
         "shapes", _EX1),
    _row("mlp-output", "forward does not compute Linear -> ReLU -> Linear",
         "forward must return self.out(self.act(self.hidden(x))), with the layers created in __init__.",
         "shapes", _EX1),
    # Exercise 2 · predict
    _row("predict-crashed", "predict raised an error",
         "run predict(model, xb) in a cell of your own to see the full traceback.", "interface", _EX2),
    _row("predict-ignores-model", "predict never called the model it was given",
         "compute the logits with the `model` argument, model(x), not with a global variable.", "interface", _EX2),
    _row("predict-not-eval", "the forward pass inside predict ran in training mode",
         "call model.eval() before the forward pass: Dropout and BatchNorm behave differently in evaluation.",
         "modes", _EX2, "Predicting: `eval()` and `no_grad()`"),
    _row("predict-tracks-gradients", "the forward pass inside predict tracked gradients",
         "run the model inside `with torch.no_grad():` (or torch.inference_mode()).",
         "modes", _EX2, "Predicting: `eval()` and `no_grad()`"),
    _row("predict-mode-not-restored", "predict left a model that was training in eval mode",
         "remember was_training = model.training before model.eval(), and call model.train(was_training) at the end.",
         "modes", _EX2, "Predicting: `eval()` and `no_grad()`"),
    _row("predict-forced-train", "predict put a model that was in eval mode into training mode",
         "restore the mode the model had, do not always call model.train(): model.train(was_training).",
         "modes", _EX2, "Predicting: `eval()` and `no_grad()`"),
    _row("predict-changed-model", "predict changed the model's parameters or buffers",
         "predict only reads the model: eval mode, no_grad, no backward and no optimiser step.",
         "modes", _EX2),
    _row("predict-not-tensor", "predict did not return a tensor",
         "return logits.argmax(dim=1), a tensor; do not convert it with .tolist() or .item().", "interface", _EX2),
    _row("predict-returns-max-tuple", "predict returned the pair (values, indices) of torch.max, not the classes alone",
         "torch.max(logits, dim=1) returns two tensors, the largest values and their indices: keep the indices, "
         "_, classes = torch.max(logits, dim=1), or use logits.argmax(dim=1).", "interface", _EX2, _LOGITS),
    _row("predict-returns-logits", "predict returned the logits, not the predicted classes",
         "return logits.argmax(dim=1): one class index per row.", "metrics", _EX2, _LOGITS),
    _row("predict-returns-probabilities", "predict returned probabilities, not the predicted classes",
         "the prediction is the index of the largest value: probabilities.argmax(dim=1) (or logits.argmax(dim=1)).",
         "metrics", _EX2, _LOGITS),
    _row("predict-argmax-dim0", "predict took the argmax over dim=0, across the samples, not over the classes",
         "logits have shape (batch, classes): argmax(dim=1) gives one class per row, shape (batch,).",
         "shapes", _EX2, _LOGITS),
    _row("predict-keepdim", "predict returned shape (batch, 1) instead of (batch,)",
         "use logits.argmax(dim=1) without keepdim=True.", "shapes", _EX2, _LOGITS),
    _row("predict-softmax-dim0", "predict took a softmax over dim=0 (across the batch) before the argmax",
         "softmax over the classes is dim=1; for the prediction you need no softmax at all: logits.argmax(dim=1).",
         "shapes", _EX2, _LOGITS),
    _row("predict-float-classes", "predict returned classes as floats, not int64",
         "argmax already returns int64 indices: do not convert them.", "dtypes", _EX2),
    _row("predict-wrong-classes", "predict returned classes that differ from the argmax of the eval-mode logits",
         "model.eval(), then under torch.no_grad(): return model(x).argmax(dim=1).", "metrics", _EX2),
    # Exercise 3 · count_parameters
    _row("count-crashed", "count_parameters raised an error on a model",
         "use only what every nn.Module has: model.parameters().", "interface", _EX3),
    _row("count-hard-coded", "count_parameters returns the lesson's numbers (451, 99, ...) instead of counting",
         "this is not allowed: the check uses models of other sizes. Count them: "
         "sum(p.numel() for p in model.parameters() if p.requires_grad).", "not-allowed", _EX3),
    _row("count-sequential-only", "count_parameters indexes or loops over the model's layers (model[0], "
         "for layer in model), which works only for an nn.Sequential",
         "loop over model.parameters(): it works for any nn.Module, Sequential or not, whatever its layers.",
         "interface", _EX3, _PARAMETERS),
    _row("count-not-int", "count_parameters did not return a Python int",
         "p.numel() is an int and so is a sum of them; do not return a tensor, a float or a NumPy number.",
         "interface", _EX3),
    _row("count-includes-frozen", "count_parameters counts frozen parameters (requires_grad=False) too",
         "count only trainable parameters: ... for p in model.parameters() if p.requires_grad.", "gradients", _EX3),
    _row("count-tensors-not-numbers", "count_parameters counts parameter tensors, not the numbers inside them",
         "each parameter is a tensor of many numbers: add p.numel() for each, not 1.", "shapes", _EX3, _PARAMETERS),
    _row("count-weights-only", "count_parameters skips the biases",
         "every parameter counts, weights and biases: iterate over model.parameters().", "shapes", _EX3, _PARAMETERS),
    _row("count-not-numel", "count_parameters adds up the sizes of the dimensions instead of multiplying them",
         "a weight of shape (32, 10) holds 32 * 10 = 320 numbers: use p.numel().", "shapes", _EX3, _PARAMETERS),
    _row("count-shared-twice", "count_parameters counts a parameter used twice twice (a layer used twice, or a "
         "weight tied between two layers)",
         "model.parameters() lists each parameter once even if its layer is used twice or its weight is shared: "
         "iterate over it, not over the layers or modules.", "shapes", _EX3, _PARAMETERS),
    _row("count-buffers", "count_parameters counts buffers (such as BatchNorm's running statistics) as parameters",
         "model.state_dict() also holds buffers, tensors that are saved with the model but not trained: "
         "count model.parameters() only.", "shapes", _EX3, _PARAMETERS),
    _row("count-only-linear", "count_parameters counts only the parameters of nn.Linear layers",
         "other layers have parameters too (BatchNorm has a weight and a bias): iterate over model.parameters().",
         "shapes", _EX3, _PARAMETERS),
    _row("count-wrong", "count_parameters returned a wrong count",
         "sum(p.numel() for p in model.parameters() if p.requires_grad).", "shapes", _EX3),
)
DIAGNOSES = by_code(CATALOGUE)


def _fail(code: str, *, expected: Any, found: Any, subject: str, also: list[str] = ()) -> NoReturn:
    raise_diagnosis(DIAGNOSES[code], expected=expected, found=found, subject=subject,
                    also=[DIAGNOSES[c] for c in also if c != code])


def _close(found: torch.Tensor, expected: torch.Tensor) -> bool:
    return (isinstance(found, torch.Tensor) and found.shape == expected.shape
            and bool(torch.allclose(found.detach().double(), expected.detach().double(), rtol=1e-5, atol=1e-6)))



# --- Exercise 1 · MLP ------------------------------------------------------------------------

def _sizes_for(seed: int) -> tuple[int, int, int]:
    generator = torch.Generator().manual_seed(seed)
    while True:
        n_in, n_hidden, n_out = (int(torch.randint(low, high, (1,), generator=generator))
                                 for low, high in ((4, 13), (5, 41), (2, 7)))
        if len({n_in, n_hidden, n_out}) == 3 and (n_in, n_hidden, n_out) != (10, 32, 3):
            return n_in, n_hidden, n_out


def _build(mlp_class: Callable[..., Any], sizes: tuple[int, int, int], subject: str) -> nn.Module:
    try:
        model = mlp_class(*sizes)
    except AttributeError as error:
        if "Module.__init__" in str(error) or "_modules" in str(error) or "_parameters" in str(error):
            _fail("mlp-super-init", expected="super().__init__() as the first line of __init__",
                  found=error_text(error), subject=subject)
        _fail("mlp-crashed", expected="a model", found=error_text(error), subject=subject)
    except Exception as error:  # noqa: BLE001 - a student's error is a finding
        _fail("mlp-crashed", expected="a model", found=error_text(error), subject=subject)
    if not isinstance(model, nn.Module):
        _fail("mlp-not-module", expected="an nn.Module", found=f"a {type(model).__name__}", subject=subject)
    return model


def _forward(model: nn.Module, x: torch.Tensor, subject: str, code: str = "mlp-crashed") -> Any:
    try:
        return model(x)
    except Exception as error:  # noqa: BLE001
        _fail(code, expected=f"logits for an input of shape {tuple(x.shape)}", found=error_text(error),
              subject=subject)


def _pick_linears(model: nn.Module, sizes: tuple[int, int, int], subject: str) -> tuple[nn.Linear, nn.Linear]:
    n_in, n_hidden, n_out = sizes
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    shapes = [(m.in_features, m.out_features) for m in linears]
    wanted = [(n_in, n_hidden), (n_hidden, n_out)]
    expected = f"nn.Linear layers {wanted} (in_features, out_features)"
    if shapes and all(shape in ((10, 32), (32, 3)) for shape in shapes) and sizes != (10, 32, 3):
        _fail("mlp-sizes-ignored", expected=expected, found=f"nn.Linear layers {shapes}", subject=subject)
    if len(shapes) > 2 and all(shapes.count(shape) >= wanted.count(shape) for shape in wanted):
        _fail("mlp-extra-parameters", expected=expected, found=f"nn.Linear layers {shapes}", subject=subject)
    if sorted(shapes) != sorted(wanted):
        _fail("mlp-layer-sizes", expected=expected, found=f"nn.Linear layers {shapes}", subject=subject)
    first = next(m for m in linears if (m.in_features, m.out_features) == wanted[0])
    second = next(m for m in linears if (m.in_features, m.out_features) == wanted[1] and m is not first)
    if first.bias is None or second.bias is None:
        _fail("mlp-no-bias", expected="both layers with a bias", found="a layer with bias=False", subject=subject)
    expected_count = n_in * n_hidden + n_hidden + n_hidden * n_out + n_out
    counted = sum(p.numel() for p in model.parameters())
    if counted != expected_count:
        _fail("mlp-extra-parameters", expected=f"{expected_count} parameters", found=f"{counted} parameters",
              subject=subject)
    return first, second


# The seeds of check_mlp whose expected logits are stored, with the sizes and batch each one uses (None: sizes
# drawn from the seed, a batch of 13): the notebook's calls and the tests'.
MLP_CHECKS: dict[int, tuple[tuple[int, int, int], int] | None] = {
    1: None, 2: None, 3: None, 3031: None, 3032: ((10, 32, 3), 100), 3033: ((1, 2, 1), 2)}


def mlp_check_case(seed: int) -> dict[str, Any]:
    """check_mlp's fixed inputs for ``seed``: sizes, a batch, and the weights it loads into the two Linear layers."""
    sizes, batch = MLP_CHECKS[seed] or (_sizes_for(seed), 13)
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
        _fail("mlp-layers-in-forward" if differs else "mlp-unregistered-layers",
              expected=f"{sum(a * b + b for a, b in zip(sizes, sizes[1:]))} parameters in model.parameters()",
              found="no parameters" + (" and a different output at every call" if differs else ""), subject=subject)
    first, second = _pick_linears(model, sizes, subject)
    _load(first, second, case["weights"])
    output = _forward(model, x, subject)
    reference = stored.tensor(stored.for_seed("lesson03-mlp", seed)["logits"])
    if not isinstance(output, torch.Tensor):
        _fail("mlp-output", expected="a tensor of logits", found=f"a {type(output).__name__}", subject=subject)
    if not _close(output, reference):
        for code, equals, variant in _forward_variants(first, second, x, reference):
            if _close(output, variant):
                _fail(code, expected=f"logits out(relu(hidden(x))) of shape {tuple(reference.shape)}",
                      found=f"an output equal to {equals}", subject=subject)
        found = (f"shape {tuple(output.shape)}" if output.shape != reference.shape else
                 f"largest difference {float((output.detach() - reference).abs().max()):.3g}")
        _fail("mlp-output", expected=f"logits out(relu(hidden(x))) of shape {tuple(reference.shape)}",
              found=found, subject=subject)
    one = _forward(model, x[:1], subject, "mlp-batch-size")
    if not _close(one, reference[:1]):
        _fail("mlp-batch-size", expected=f"shape (1, {sizes[2]}) for a batch of one",
              found=f"{one.shape if isinstance(one, torch.Tensor) else type(one).__name__}", subject=subject)


# --- Exercise 2 · predict --------------------------------------------------------------------

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
    n_in, n_hidden, n_out = _sizes_for(seed)
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
        if _close(rows, logits):
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
        try:
            result = predict(net, x)
        except CheckFailed:
            raise
        except Exception as error:  # noqa: BLE001
            _fail("predict-crashed", expected="the predicted classes", found=error_text(error), subject=subject)
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
            _fail(codes[0], expected=f"int64 classes of shape ({len(x)},), the argmax of the eval-mode logits, "
                                     f"computed in eval mode without gradients, the model back in {mode} mode",
                  found=finding[1] if finding and codes[0] == finding[0] else
                  f"forward calls (training, grad enabled): {net.calls}; model.training afterwards {net.training}",
                  subject=subject, also=codes[1:])


# --- Exercise 3 · count_parameters -------------------------------------------------------------

class _Custom(nn.Module):
    """A model that is not an nn.Sequential (it cannot be indexed), with a parameter of its own."""

    def __init__(self, n_in: int, n_hidden: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(n_in, n_hidden), nn.ReLU())
        self.scale = nn.Parameter(torch.ones(n_hidden))
        self.head = nn.Linear(n_hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x) * self.scale)


def _count_models(seed: int) -> dict[str, nn.Module]:
    """Models whose counts tell the typical mistakes apart (sizes drawn from ``seed``)."""
    a, b, c = _sizes_for(seed)
    torch.manual_seed(seed)
    plain = nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Linear(b, c))
    frozen = copy.deepcopy(plain)
    frozen[0].requires_grad_(False)
    with_norm = nn.Sequential(nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU(), nn.Linear(b, c))
    with_norm[3].bias.requires_grad_(False)
    shared_layer = nn.Linear(b, b)
    shared = nn.Sequential(nn.Linear(a, b), nn.ReLU(), shared_layer, nn.ReLU(), shared_layer)
    tied = nn.Sequential(nn.Linear(b, b), nn.ReLU(), nn.Linear(b, b))
    tied[2].weight = tied[0].weight  # weight tying: two layers, one weight
    return {
        f"Linear({a}, {b}) -> ReLU -> Linear({b}, {c})": plain,
        f"the same model with its first Linear layer frozen": frozen,
        "a model with BatchNorm (its running statistics are buffers) and one frozen bias": with_norm,
        "a model that uses one Linear layer twice": shared,
        "a model whose two Linear layers share (tie) one weight": tied,
        "an nn.Module subclass (not an nn.Sequential) with an nn.Parameter of its own": _Custom(a, b),
    }


def check_count_parameters(count_parameters: Callable[[nn.Module], Any], *, seed: int) -> None:
    """Count the trainable parameters of several seeded models (frozen layers, BatchNorm, a shared layer, ...).

    The right counts, and the counts of each typical mistake, are stored data (``lesson03-count-parameters``):
    ``{"expected": [...], "mistakes": [[code, [...]], ...]}``, one count per model, the mistakes most specific first.
    """
    models = _count_models(seed)
    want = stored.for_seed("lesson03-count-parameters", seed)
    expected = dict(zip(models, want["expected"]))
    answers: dict[str, Any] = {}
    crash: tuple[str, BaseException] | None = None
    for description, model in models.items():
        try:
            answers[description] = count_parameters(copy.deepcopy(model))
        except Exception as error:  # noqa: BLE001 - a student's error is a finding
            crash = crash or (description, error)
    wrong = {d: a for d, a in answers.items() if not (type(a) is int and a == expected[d])}
    if wrong and all(type(a) is int and a in LESSON_COUNTS for a in answers.values()):
        description, answer = next(iter(wrong.items()))
        _fail("count-hard-coded", expected=f"{expected[description]}", found=f"{answer}",
              subject=f"count_parameters of {description}")
    for description, answer in answers.items():
        if type(answer) is not int:
            _fail("count-not-int", expected=f"the int {expected[description]}",
                  found=f"{answer!r} (a {type(answer).__name__})", subject=f"count_parameters of {description}")
    if wrong:
        description, answer = next(iter(wrong.items()))
        subject = f"count_parameters of {description}"
        for code, counts in want["mistakes"]:
            by_model = dict(zip(models, counts))
            if all(by_model[d] == a for d, a in answers.items()):
                _fail(code, expected=f"{expected[description]}", found=f"{answer}", subject=subject)
    if crash:
        description, error = crash
        sequential_only = isinstance(error, (TypeError, IndexError, AttributeError)) \
            and not isinstance(models[description], nn.Sequential)
        _fail("count-sequential-only" if sequential_only else "count-crashed", expected=f"{expected[description]}",
              found=error_text(error), subject=f"count_parameters of {description}")
    if wrong:
        _fail("count-wrong", expected=f"{expected[description]}", found=f"{answer}", subject=subject)


# --- PROBES: the grader's re-check (course_utils.verdict_probes) ------------------------------------
# The kernel calls the learner's code on scenarios drawn from a seed chosen at grading time and sends
# back values only; the grader rebuilds the same scenarios with these builders and judges the values.

def mlp_scenario(seed: int) -> dict[str, Any]:
    """Exercise 1's re-check: sizes, a batch, and the weights the probe loads into the learner's two Linear layers."""
    sizes = _sizes_for(seed)
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


def predict_scenario(seed: int) -> tuple[nn.Module, torch.Tensor]:
    """Exercise 2's re-check: a model with BatchNorm and Dropout that records its calls, and a batch."""
    with torch.random.fork_rng(devices=[]):  # seeds its own generator, leaves the caller's random state alone
        return _probe_net(seed)


def count_scenario(seed: int) -> dict[str, nn.Module]:
    """Exercise 3's re-check: models whose counts tell the typical mistakes apart."""
    with torch.random.fork_rng(devices=[]):
        return _count_models(seed)


def _plain(result: Any) -> torch.Tensor | None:
    """A plain tensor copy of ``result``, or None when it is no tensor (a value the judge rejects)."""
    return result.detach().clone().as_subclass(torch.Tensor) if isinstance(result, torch.Tensor) else None


def _probe_mlp(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    return {**_mlp_values(ns, mlp_scenario(seed)), "tiny": _mlp_values(ns, tiny_mlp_scenario(seed))}


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
        values.update(logits=_plain(model(x.clone())), one=_plain(model(x[:1].clone())))
    except Exception as error:  # noqa: BLE001 - reported as a value
        values["forward-error"] = f"{type(error).__name__}: {error}"[:300]
    return values


def _probe_predict(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for start_training in (True, False):
        net, x = predict_scenario(seed)
        net.train(start_training)
        result = ns["predict"](net, x.clone())
        mode = "train" if start_training else "eval"
        values[mode] = {"classes": _plain(result), "training": net.training if type(net.training) is bool else None,
                        "calls": [[bool(t), bool(g)] for t, g in net.calls],
                        "state": {name: _plain(v) for name, v in net.state_dict().items()},
                        "grads": any(p.grad is not None for p in net.parameters())}
    return values


def _probe_count_parameters(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    answers = [ns["count_parameters"](copy.deepcopy(model)) for model in count_scenario(seed).values()]
    # an answer that is no int goes back as the name of its type, which the judge rejects
    return {"counts": [answer if type(answer) is int else f"a {type(answer).__name__}" for answer in answers]}


PROBES = {"ex1-tests": _probe_mlp, "ex2-tests": _probe_predict, "ex3-tests": _probe_count_parameters}
