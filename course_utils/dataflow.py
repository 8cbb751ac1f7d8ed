"""The data flow of one training step of the running example, in five stages, with measured shapes.

``trace_data_flow()`` runs one real step of lesson 07's recipe on the running example and records,
for each stage, what goes in and what comes out::

    stage             in                                  out
    1 loading         raw features (1000, 10), 0-100      10 batches of (100, 10) + labels (100,)
    2 preprocessing   batch (100, 10), 0-100              batch (100, 10), scaled to 0-1
    3 model input     batch (100, 10)                     logits (100, 3)
    4 loss            logits (100, 3) + labels (100,)     scalar loss ()
    5 backpropagation scalar loss ()                      gradients 0.weight (32, 10), 0.bias (32,), ...

Shapes are read from the tensors, not written down, so the table stays true if the recipe changes.
Importing this module has no side effects.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from course_utils.data import RAW_MAX, TRAIN_SEED, make_course_data
from course_utils.recipe import DEFAULT_RECIPE, TrainingRecipe, default_model

__all__ = ["FlowStage", "trace_data_flow", "format_data_flow", "STAGE_NAMES"]

STAGE_NAMES = ("loading", "preprocessing", "model input", "loss", "backpropagation")


@dataclass(frozen=True)
class FlowStage:
    """One stage: its name, what goes in and comes out (in words, with shapes), and the shapes alone."""

    name: str
    goes_in: str
    comes_out: str
    shape_in: tuple[int, ...]
    shape_out: tuple[int, ...] | dict[str, tuple[int, ...]]


def _shape(tensor: torch.Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


def _range(tensor: torch.Tensor) -> str:
    return f"{float(tensor.min()):.3g}-{float(tensor.max()):.3g}"


def trace_data_flow(recipe: TrainingRecipe = DEFAULT_RECIPE) -> list[FlowStage]:
    """Run one training step of the running example and describe its five stages.

    The model is ``default_model(recipe)``; no optimiser step is taken, so nothing is changed.
    """
    features, targets = make_course_data(seed=TRAIN_SEED)
    loader = DataLoader(TensorDataset(features, targets), batch_size=recipe.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(recipe.seed))
    raw_batch, labels = next(iter(loader))
    scaled = raw_batch / RAW_MAX
    model = default_model(recipe)
    logits = model(scaled)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    gradients = {name: _shape(p.grad) for name, p in model.named_parameters() if p.grad is not None}
    return [
        FlowStage("loading", f"raw features {_shape(features)}, values {_range(features)}",
                  f"{len(loader)} batches of {_shape(raw_batch)} + labels {_shape(labels)}",
                  _shape(features), _shape(raw_batch)),
        FlowStage("preprocessing", f"batch {_shape(raw_batch)}, values {_range(raw_batch)}",
                  f"batch {_shape(scaled)}, scaled to {_range(scaled)} (÷ {RAW_MAX:g})",
                  _shape(raw_batch), _shape(scaled)),
        FlowStage("model input", f"batch {_shape(scaled)}",
                  f"logits {_shape(logits)} (one score per class)", _shape(scaled), _shape(logits)),
        FlowStage("loss", f"logits {_shape(logits)} + labels {_shape(labels)}",
                  f"scalar loss {_shape(loss)} = {float(loss.detach()):.3f}", _shape(logits), _shape(loss)),
        FlowStage("backpropagation", f"scalar loss {_shape(loss)}",
                  "gradients " + ", ".join(f"{name} {shape}" for name, shape in gradients.items()),
                  _shape(loss), gradients),
    ]


def format_data_flow(stages: list[FlowStage]) -> str:
    """The stages as a text table: number and name, what goes in, what comes out."""
    if not stages:
        raise ValueError("format_data_flow needs at least one stage")
    rows = [("stage", "in", "out")] + [(f"{i} {s.name}", s.goes_in, s.comes_out) for i, s in enumerate(stages, 1)]
    widths = [max(len(row[column]) for row in rows) for column in range(2)]
    lines = [f"{a.ljust(widths[0])}  {b.ljust(widths[1])}  {c}".rstrip() for a, b, c in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)
