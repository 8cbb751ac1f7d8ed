"""Matplotlib figures of the course, with labelled axes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure


def plot_history(history: Sequence[Mapping[str, float]], *, reference_loss: Sequence[float] | None = None,
                 reference_accuracy: Sequence[float] | None = None, title: str = "Training history") -> Figure:
    """Loss (and validation loss) and accuracy per epoch, optionally against a reference trace."""
    if not history:
        raise ValueError("history must hold at least one epoch")
    epochs = [record.get("epoch", i + 1) for i, record in enumerate(history)]
    figure = Figure(figsize=(9, 3.5))
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    loss_axes.plot(epochs, [r["loss"] for r in history], "o-", label="training loss")
    if all("val_loss" in r for r in history):
        loss_axes.plot(epochs, [r["val_loss"] for r in history], "s--", label="validation loss")
    accuracy_axes.plot(epochs, [r["accuracy"] for r in history], "o-", color="tab:green", label="validation accuracy")
    if reference_loss is not None:
        loss_axes.plot(epochs, list(reference_loss)[: len(epochs)], "x:", color="grey", label="original material")
    if reference_accuracy is not None:
        accuracy_axes.plot(epochs, list(reference_accuracy)[: len(epochs)], "x:", color="grey", label="original material")
    loss_axes.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    accuracy_axes.set(xlabel="epoch", ylabel="accuracy", title="Accuracy", ylim=(0, 1))
    for axes in (loss_axes, accuracy_axes):
        axes.set_xticks(epochs)
        axes.legend()
    figure.suptitle(title)
    figure.tight_layout()
    return figure
