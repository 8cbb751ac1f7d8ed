"""A training playground: sliders for the learning rate and the batch size retrain the running example.

``training_playground()`` trains lesson 07's default recipe (:mod:`course_utils.recipe`) once with the
default settings and shows the loss curve; moving a slider retrains with the new setting and redraws
the curve, with the previous run in grey for comparison. Training takes well under a second on a
CPU (1000 samples, a 10-32-3 network, 5 epochs); runs with many small batches show a progress bar.

Outside a live front end (nbconvert, CI) the playground shows as the loss plot of the default run
(a PNG) and as text: the settings and the loss of each epoch. Importing this module has no side
effects (ipywidgets is imported when the widget is built).
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, replace
from typing import Any

import torch
from matplotlib.figure import Figure
from torch.nn import functional as F
from tqdm.auto import tqdm

from course_utils.recipe import DEFAULT_RECIPE, TrainingRecipe, default_loaders, default_model, default_optimizer
from course_utils.widgets import WidgetWithText

__all__ = ["BATCH_SIZES", "LEARNING_RATES", "PlaygroundRun", "train_run", "loss_figure", "Playground",
           "training_playground", "PLOT_CLASS", "STATUS_CLASS"]

BATCH_SIZES = (10, 20, 50, 100, 200, 500, 1000)
LEARNING_RATES = (0.001, 1.0)  # slider bounds (log scale)
PROGRESS_STEPS = 1000  # runs with at least this many optimiser steps show a tqdm progress bar
PLOT_CLASS = "course-playground-plot"
STATUS_CLASS = "course-playground-status"


@dataclass(frozen=True)
class PlaygroundRun:
    """One training run: its settings, the mean training loss of each epoch, and the final validation accuracy."""

    learning_rate: float
    batch_size: int
    losses: tuple[float, ...]
    accuracy: float
    seconds: float

    @property
    def label(self) -> str:
        """A short legend entry such as ``lr 0.1, batch 100``."""
        return f"lr {self.learning_rate:g}, batch {self.batch_size}"


def train_run(learning_rate: float = DEFAULT_RECIPE.learning_rate, batch_size: int = DEFAULT_RECIPE.batch_size,
              *, recipe: TrainingRecipe = DEFAULT_RECIPE, progress: bool | None = None) -> PlaygroundRun:
    """Train the running example from its seeded start with the given learning rate and batch size.

    ``progress`` shows a tqdm bar over the optimiser steps; by default only for long runs
    (``PROGRESS_STEPS`` steps or more).
    """
    settings = replace(recipe, learning_rate=float(learning_rate), batch_size=int(batch_size))
    start = time.perf_counter()
    model = default_model(settings)
    optimizer = default_optimizer(model, settings)
    train_loader, validation_loader = default_loaders(settings)
    steps = settings.epochs * len(train_loader)
    bar = tqdm(total=steps, desc=f"training ({settings.learning_rate:g}, {settings.batch_size})", leave=False,
               disable=not (progress if progress is not None else steps >= PROGRESS_STEPS))
    losses = []
    with bar:
        for _ in range(settings.epochs):
            model.train()
            total, count = torch.zeros(()), 0
            for features, targets in train_loader:
                optimizer.zero_grad()
                loss = F.cross_entropy(model(features), targets)
                loss.backward()
                optimizer.step()
                total += loss.detach() * len(targets)
                count += len(targets)
                bar.update()
            losses.append(float(total) / count)
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(x).argmax(dim=1) == y).sum()) for x, y in validation_loader)
    accuracy = correct / len(validation_loader.dataset)
    return PlaygroundRun(settings.learning_rate, settings.batch_size, tuple(losses), accuracy,
                         time.perf_counter() - start)


def loss_figure(run: PlaygroundRun, previous: PlaygroundRun | None = None) -> Figure:
    """The loss curve of ``run`` (and of ``previous``, in grey), with labelled axes."""
    figure = Figure(figsize=(6, 3.2))
    axes = figure.subplots()
    epochs = range(1, len(run.losses) + 1)
    if previous is not None:
        axes.plot(range(1, len(previous.losses) + 1), previous.losses, "o--", color="grey", alpha=0.6,
                  label=f"before: {previous.label}")
    axes.plot(epochs, run.losses, "o-", color="tab:blue", label=run.label)
    top = max(run.losses + (previous.losses if previous else ()))
    axes.set(xlabel="epoch", ylabel="training loss (cross-entropy)", xticks=list(epochs),
             ylim=(0, max(1.3, min(top * 1.05, 5.0))),
             title=f"{run.label}: validation accuracy {run.accuracy:.2f}")
    axes.legend(loc="upper right")
    figure.tight_layout()
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


class Playground(WidgetWithText):
    """The sliders, the loss plot and a status line; retrains whenever a slider is released."""

    def __init__(self, recipe: TrainingRecipe = DEFAULT_RECIPE) -> None:
        self.recipe = recipe
        self.run = train_run(recipe=recipe)
        self.previous: PlaygroundRun | None = None
        self._widget: Any = None
        self._png_for: tuple | None = None
        self._png = b""

    def as_text(self) -> str:
        """The current run as text, for nbconvert, CI logs and terminals."""
        losses = ", ".join(f"{loss:.2f}" for loss in self.run.losses)
        return (f"Training playground ({self.run.label}): training loss per epoch {losses}; "
                f"validation accuracy {self.run.accuracy:.2f}. Open the notebook in JupyterLab, Colab "
                "or Binder to move the sliders.")

    def retrain(self, learning_rate: float, batch_size: int) -> PlaygroundRun:
        """Train with new settings, keep the last run for comparison, and redraw."""
        self.previous, self.run = self.run, train_run(learning_rate, batch_size, recipe=self.recipe, progress=False)
        self._redraw()
        return self.run

    def _status_text(self) -> str:
        losses = " → ".join(f"{loss:.2f}" for loss in self.run.losses)
        return f"trained in {self.run.seconds:.2f} s: loss {losses}, validation accuracy {self.run.accuracy:.2f}"

    def _current_png(self) -> bytes:
        """The loss plot of the current (and previous) run, drawn once per pair of runs."""
        key = (self.run, self.previous)
        if self._png_for != key:
            self._png_for, self._png = key, _png(loss_figure(self.run, self.previous))
        return self._png

    def _image_png(self) -> bytes:
        return self._current_png()

    def _redraw(self) -> None:
        if self._widget is not None:
            self._plot.value = self._current_png()
            self._status.value = self._status_text()

    def _build(self) -> Any:
        import ipywidgets as widgets

        self._lr = widgets.FloatLogSlider(value=self.run.learning_rate, base=10, min=-3, max=0, step=0.25,
                                          description="learning rate", continuous_update=False,
                                          readout_format=".3g", style={"description_width": "initial"})
        self._batch = widgets.SelectionSlider(options=list(BATCH_SIZES), value=self.run.batch_size,
                                              description="batch size", continuous_update=False,
                                              style={"description_width": "initial"})
        self._plot = widgets.Image(value=self._current_png(), format="png",
                                   layout=widgets.Layout(width="600px"))
        self._plot.add_class(PLOT_CLASS)
        self._status = widgets.Label(self._status_text())
        self._status.add_class(STATUS_CLASS)

        def on_change(_: dict[str, Any]) -> None:
            self._status.value = "training…"
            self.retrain(self._lr.value, self._batch.value)

        self._lr.observe(on_change, names="value")
        self._batch.observe(on_change, names="value")
        intro = widgets.HTML("<b>Training playground:</b> move a slider to retrain the running example "
                             "(5 epochs from the same seeded start) and compare the loss curves.")
        return widgets.VBox([intro, widgets.HBox([self._lr, self._batch]), self._plot, self._status])


def training_playground(recipe: TrainingRecipe = DEFAULT_RECIPE) -> Playground:
    """Train once with ``recipe`` and return the playground; leave it as the last expression of a cell."""
    return Playground(recipe)
