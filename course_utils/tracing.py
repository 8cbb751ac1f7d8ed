"""Trace a forward pass stage by stage with forward hooks, and print it as a small table.

``trace_forward(model, x)`` runs ``model(x)`` once with a forward hook on every leaf module
(a module without children: ``Linear``, ``ReLU``, ...) and returns one :class:`Stage` per call:
the module's name and type, the shapes that went in and came out, and a detached copy of the output.
The hooks are removed afterwards, even when the forward pass raises, so the model is left as it was.

``format_trace(stages)`` turns that list into a table a student can read, with the softmax
probabilities of the last stage and the predicted class::

    stage       module  in         out        values (sample 0)
    input       -       (1, 10)    (1, 10)    [0.53, 0.61, ...]
    0           Linear  (1, 10)    (1, 32)    [...]
    ...
    softmax     -       (1, 3)     (1, 3)     [0.31, 0.42, 0.27]
    prediction  -       -          -          class 1 (probability 0.42)

Importing this module has no side effects.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["Stage", "trace_forward", "format_trace"]

ROOT_NAME = "(model)"


@dataclass(frozen=True)
class Stage:
    """One call of one leaf module during a traced forward pass.

    Attributes:
        name: the module's qualified name in the model (``"0"``, ``"hidden"``, ``"block.fc"``), or
            ``"(model)"`` when the traced model is itself a leaf module.
        module_type: the class name of the module, such as ``"Linear"`` or ``"ReLU"``.
        input_shape: the shape of the first tensor passed positionally to the module, or ``None``
            when it received no tensor positionally.
        output_shape: the shape of the tensor the module returned.
        output: a detached copy of that tensor (later in-place operations do not change it).
    """

    name: str
    module_type: str
    input_shape: tuple[int, ...] | None
    output_shape: tuple[int, ...]
    output: torch.Tensor


def _first_tensor(values: Any) -> torch.Tensor | None:
    """Return ``values`` if it is a tensor, else the first tensor of a tuple or list, else ``None``."""
    if isinstance(values, torch.Tensor):
        return values
    if isinstance(values, (tuple, list)):
        for value in values:
            if isinstance(value, torch.Tensor):
                return value
    return None


def _leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules without children, with their qualified names; the model itself if it is a leaf."""
    leaves = [(name, module) for name, module in model.named_modules() if not any(True for _ in module.children())]
    return [(name or ROOT_NAME, module) for name, module in leaves]


def trace_forward(model: nn.Module, x: torch.Tensor) -> list[Stage]:
    """Run ``model(x)`` once and return one :class:`Stage` per leaf-module call, in call order.

    The pass runs under ``torch.no_grad()`` and in the model's current mode (call ``model.eval()``
    first if you want evaluation behaviour, for example of dropout). A module used twice appears
    twice. Calls that return no tensor are not recorded. Every hook is removed before this function
    returns or raises, so the model is left unchanged.

    Raises:
        TypeError: if ``model`` is not an ``nn.Module`` or ``x`` is not a ``torch.Tensor``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")

    stages: list[Stage] = []

    def make_hook(name: str):
        def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            result = _first_tensor(output)
            if result is None:
                return
            first_input = _first_tensor(inputs)
            stages.append(Stage(
                name=name,
                module_type=type(module).__name__,
                input_shape=None if first_input is None else tuple(first_input.shape),
                output_shape=tuple(result.shape),
                output=result.detach().clone(),
            ))
        return hook

    handles = []
    try:
        for name, module in _leaf_modules(model):
            handles.append(module.register_forward_hook(make_hook(name)))
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return stages


def _format_shape(shape: tuple[int, ...] | None) -> str:
    return "-" if shape is None else str(tuple(shape))


def _format_values(values: torch.Tensor, decimals: int, max_values: int) -> str:
    flat = values.detach().cpu().reshape(-1).tolist()
    shown = ", ".join(f"{float(v):.{decimals}f}" for v in flat[:max_values])
    if len(flat) > max_values:
        shown += f", ... ({len(flat)} values)"
    return f"[{shown}]"


def _row_of(tensor: torch.Tensor, sample: int) -> torch.Tensor:
    """The values of one sample: row ``sample`` of a batched tensor, or the whole 0-D/1-D tensor."""
    if tensor.ndim < 2:
        return tensor
    if not -tensor.shape[0] <= sample < tensor.shape[0]:
        raise IndexError(f"sample {sample} is out of range for a batch of {tensor.shape[0]}")
    return tensor[sample]


def format_trace(
    stages: Sequence[Stage],
    softmax: bool = True,
    *,
    inputs: torch.Tensor | None = None,
    sample: int = 0,
    decimals: int = 3,
    max_values: int = 6,
) -> str:
    """Return the trace as a text table: one row per stage with its shapes and the values of one sample.

    Args:
        stages: what :func:`trace_forward` returned (at least one stage).
        softmax: add a ``softmax`` row (the probabilities of the last stage's output along its
            last dimension) and a ``prediction`` row (the most probable class and its probability).
        inputs: the tensor given to the model; when passed, an ``input`` row comes first.
        sample: which sample (row of the batch) to show values for.
        decimals: digits after the decimal point.
        max_values: at most this many values per row; longer rows end with ``...``.

    Raises:
        TypeError: if ``stages`` is not a sequence of :class:`Stage` or an option has the wrong type.
        ValueError: if ``stages`` is empty or ``decimals``/``max_values`` are out of range.
        IndexError: if ``sample`` is not a row of the traced batch.
    """
    if isinstance(stages, (str, bytes)) or not isinstance(stages, Sequence):
        raise TypeError(f"stages must be a list of Stage (what trace_forward returns), got {type(stages).__name__}")
    if not stages:
        raise ValueError("stages is empty: the traced model recorded no leaf-module call")
    for index, stage in enumerate(stages):
        if not isinstance(stage, Stage):
            raise TypeError(f"stages[{index}] must be a Stage, got {type(stage).__name__}")
    if inputs is not None and not isinstance(inputs, torch.Tensor):
        raise TypeError(f"inputs must be a torch.Tensor or None, got {type(inputs).__name__}")
    for name, value, minimum in (("sample", sample, None), ("decimals", decimals, 0), ("max_values", max_values, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
        if minimum is not None and value < minimum:
            raise ValueError(f"{name} must be at least {minimum}, got {value}")

    header = ("stage", "module", "in", "out", f"values (sample {sample})")
    rows: list[tuple[str, str, str, str, str]] = []
    if inputs is not None:
        rows.append(("input", "-", "-", _format_shape(tuple(inputs.shape)),
                     _format_values(_row_of(inputs, sample), decimals, max_values)))
    for stage in stages:
        rows.append((stage.name, stage.module_type, _format_shape(stage.input_shape),
                     _format_shape(stage.output_shape),
                     _format_values(_row_of(stage.output, sample), decimals, max_values)))
    if softmax:
        logits = stages[-1].output
        if logits.ndim == 0:
            raise ValueError("softmax needs the last stage to output at least one dimension of class scores")
        probabilities = torch.softmax(logits.double(), dim=-1)
        row = _row_of(probabilities, sample)
        predicted = int(row.argmax())
        rows.append(("softmax", "-", _format_shape(stages[-1].output_shape), _format_shape(tuple(probabilities.shape)),
                     _format_values(row, decimals, max_values)))
        rows.append(("prediction", "argmax", "-", "-",
                     f"class {predicted} (probability {float(row[predicted]):.{decimals}f})"))

    widths = [max(len(line[column]) for line in (header, *rows)) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in (header, *rows)]
    return "\n".join(lines)
