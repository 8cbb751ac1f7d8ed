"""Matplotlib figures of the course, with labelled axes, shown as images wherever a notebook runs.

The course draws on plain :class:`~matplotlib.figure.Figure` objects (no pyplot state, no backend
needed). A bare Figure left as a cell's last value shows only as ``<Figure size 900x350 with 2 Axes>``
unless the kernel's inline backend happens to be set up, so :func:`show_figure` publishes the PNG
itself: in JupyterLab, in a notebook executed by nbconvert/nbclient and in nbgrader feedback alike.
Helpers such as :func:`plot_history` show their figure as they draw it and return it (a
:class:`CourseFigure`), which shows nothing more when it is also the cell's last value.
Outside IPython (scripts, tests) nothing is displayed. Importing this module has no side effects.
"""

from __future__ import annotations

import base64
import io
import sys
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

__all__ = ["CourseFigure", "figure_png", "show_figure", "plot_history"]

PNG_DPI = 100


def figure_png(figure: Figure, *, dpi: int = PNG_DPI) -> bytes:
    """The figure rendered as PNG bytes, trimmed to its contents."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def _shell():
    """The running IPython shell, or None in a plain interpreter (IPython is imported only if already loaded)."""
    if "IPython" not in sys.modules:
        return None
    from IPython.core.interactiveshell import InteractiveShell

    return InteractiveShell.instance() if InteractiveShell.initialized() else None


def _label(figure: Figure) -> str:
    suptitle = getattr(figure, "get_suptitle", lambda: "")()  # matplotlib >= 3.8
    titles = suptitle or ", ".join(axes.get_title() for axes in figure.axes if axes.get_title())
    return f"[figure: {titles}]" if titles else "[figure]"


def show_figure(figure: Figure) -> Figure:
    """Show ``figure`` as a PNG below the running cell (once per cell) and return it.

    Nothing happens outside IPython. A figure already shown by the running cell is not shown again,
    so a helper that shows its figure may also return it as the cell's last value.
    """
    shell = _shell()
    if shell is None:
        return figure
    cell = shell.execution_count
    if getattr(figure, "_course_shown_in", None) == cell:
        return figure
    from IPython.display import display

    png = base64.b64encode(figure_png(figure)).decode("ascii")
    display({"image/png": png, "text/plain": _label(figure)}, raw=True)
    figure._course_shown_in = cell
    return figure


class CourseFigure(Figure):
    """A Figure that IPython shows as a PNG through :func:`show_figure` (never as ``<Figure size ...>``)."""

    def _ipython_display_(self) -> None:
        show_figure(self)


def plot_history(history: Sequence[Mapping[str, float]], *, reference_loss: Sequence[float] | None = None,
                 reference_accuracy: Sequence[float] | None = None, title: str = "Training history") -> Figure:
    """Loss (and validation loss) and accuracy per epoch, optionally against a reference trace.

    In a notebook the figure is shown right away (as a PNG); it is also returned, for tests and
    further drawing, and returning it as the cell's last value does not show it twice.
    """
    if not history:
        raise ValueError("history must hold at least one epoch")
    epochs = [record.get("epoch", i + 1) for i, record in enumerate(history)]
    figure = CourseFigure(figsize=(9, 3.5))
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    loss_axes.plot(epochs, [r["loss"] for r in history], "o-", label="training loss")
    if all("val_loss" in r for r in history):
        loss_axes.plot(epochs, [r["val_loss"] for r in history], "s--", label="validation loss")
    accuracy_axes.plot(epochs, [r["accuracy"] for r in history], "o-", color="tab:green", label="validation accuracy")
    if reference_loss is not None:
        loss_axes.plot(epochs, list(reference_loss)[: len(epochs)], "x:", color="grey", label="goal trace")
    if reference_accuracy is not None:
        accuracy_axes.plot(epochs, list(reference_accuracy)[: len(epochs)], "x:", color="grey", label="goal trace")
    loss_axes.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    accuracy_axes.set(xlabel="epoch", ylabel="accuracy", title="Accuracy", ylim=(0, 1))
    for axes in (loss_axes, accuracy_axes):
        axes.set_xticks(epochs)
        axes.legend()
    figure.suptitle(title)
    figure.tight_layout()
    return show_figure(figure)
