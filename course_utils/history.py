"""Training histories in words and text: the epoch table with observations, and a text loss chart.

A history is a list of records, one per epoch: ``{"epoch": 1, "loss": 1.2, "val_loss": 1.0,
"accuracy": 0.45}`` (``val_loss`` is optional). The observations are derived from the numbers
alone, so they stay true whatever the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Record = Mapping[str, float]

FAST_DROP = 0.25  # relative loss drop per epoch that reads as fast progress
STEADY_DROP = 0.10
GOOD_ACCURACY = 0.85
CHANCE_MARGIN = 0.15  # accuracy within this of 1 / n_classes is still mostly guessing


def _check_history(history: Sequence[Record]) -> None:
    if not isinstance(history, Sequence) or not history:
        raise ValueError("history must be a non-empty list of per-epoch records")
    for index, record in enumerate(history):
        if not isinstance(record, Mapping) or not {"loss", "accuracy"} <= set(record):
            raise ValueError(f"history[{index}] must be a dict with at least 'loss' and 'accuracy', got {record!r}")


def observation(history: Sequence[Record], index: int, n_classes: int = 3) -> str:
    """Describe epoch ``index`` of ``history`` in a few words, from its numbers and the epoch before."""
    _check_history(history)
    record = history[index]
    loss, accuracy = float(record["loss"]), float(record["accuracy"])
    if index == 0:
        words = ("mostly guessing: accuracy near chance" if accuracy < 1 / n_classes + CHANCE_MARGIN
                 else "learning from the first epoch")
    else:
        previous = history[index - 1]
        drop = (float(previous["loss"]) - loss) / float(previous["loss"])
        val_rising = ("val_loss" in record and "val_loss" in previous
                      and float(record["val_loss"]) > float(previous["val_loss"]))
        if drop < 0:
            words = "loss went up: learning rate too high, or a bug"
        elif val_rising:
            words = "validation loss rising: the start of overfitting"
        elif drop >= FAST_DROP:
            words = f"fast progress: loss down {drop:.0%}"
        elif drop >= STEADY_DROP:
            words = f"steady improvement: loss down {drop:.0%}"
        else:
            words = "converging: smaller gains each epoch"
    return words + (", good accuracy" if accuracy >= GOOD_ACCURACY else "")


def epoch_table(history: Sequence[Record], n_classes: int = 3) -> str:
    """A text table with the columns Epoch, Loss, Accuracy and Observation."""
    _check_history(history)
    rows = [("Epoch", "Loss", "Accuracy", "Observation")]
    for index, record in enumerate(history):
        epoch = record.get("epoch", index + 1)
        rows.append((str(epoch), f"{float(record['loss']):.2f}", f"{float(record['accuracy']):.2f}",
                     observation(history, index, n_classes)))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def text_chart(values: Sequence[float], *, width: int = 40, label: str = "loss") -> str:
    """One bar per epoch, as long as its value relative to the largest: a chart that prints anywhere."""
    if not values:
        raise ValueError("text_chart needs at least one value")
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    largest = max(float(v) for v in values)
    scale = width / largest if largest > 0 else 0.0
    return "\n".join(f"epoch {i:>2} {label} {float(v):5.2f} {'█' * max(1, round(float(v) * scale))}"
                     for i, v in enumerate(values, start=1))
