"""Histories in words, text and pictures."""

import pytest

from course_utils.history import epoch_table, observation, text_chart
from course_utils.plotting import plot_history
from course_utils.recipe import ORIGINAL_ACCURACY, ORIGINAL_LOSS

ORIGINAL = [{"epoch": i + 1, "loss": l, "accuracy": a} for i, (l, a) in enumerate(zip(ORIGINAL_LOSS, ORIGINAL_ACCURACY))]


def test_observations_of_the_original_trace():
    words = [observation(ORIGINAL, i) for i in range(5)]
    assert words[0] == "mostly guessing: accuracy near chance"
    assert words[1] == "fast progress: loss down 29%"
    assert words[4] == "steady improvement: loss down 22%, good accuracy"


@pytest.mark.parametrize(("second", "expected"), [
    ({"loss": 1.3, "accuracy": 0.5}, "loss went up"),
    ({"loss": 1.15, "accuracy": 0.5}, "converging"),
    ({"loss": 0.9, "accuracy": 0.6, "val_loss": 1.4}, "validation loss rising"),
])
def test_observations_name_what_the_numbers_show(second, expected):
    history = [{"loss": 1.2, "accuracy": 0.45, "val_loss": 1.1}, second]
    assert observation(history, 1).startswith(expected)


def test_epoch_table_has_the_four_columns_and_one_row_per_epoch():
    table = epoch_table(ORIGINAL).splitlines()
    assert [c.strip() for c in table[0].split("|")] == ["Epoch", "Loss", "Accuracy", "Observation"]
    assert len(table) == 2 + 5 and table[2].startswith("1     | 1.20 | 0.45")


def test_text_chart_bars_shrink_with_the_loss():
    lines = text_chart(ORIGINAL_LOSS, width=30).splitlines()
    bars = [line.count("█") for line in lines]
    assert bars[0] == 30 and bars == sorted(bars, reverse=True)


@pytest.mark.parametrize("bad", [[], None, [{"loss": 1.0}]])
def test_bad_histories_are_named(bad):
    with pytest.raises(ValueError, match="history"):
        epoch_table(bad)


def test_text_chart_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one value"):
        text_chart([])
    with pytest.raises(ValueError, match="width"):
        text_chart([1.0], width=0)


def test_plot_history_labels_its_axes():
    history = [dict(record, val_loss=record["loss"] + 0.1) for record in ORIGINAL]
    figure = plot_history(history, reference_loss=ORIGINAL_LOSS, reference_accuracy=ORIGINAL_ACCURACY)
    loss_axes, accuracy_axes = figure.axes
    assert loss_axes.get_xlabel() == "epoch" and loss_axes.get_ylabel() == "cross-entropy loss"
    assert accuracy_axes.get_ylabel() == "accuracy"
    assert len(loss_axes.get_lines()) == 3 and len(accuracy_axes.get_lines()) == 2
    with pytest.raises(ValueError, match="at least one epoch"):
        plot_history([])


class FakeShell:
    """Stands in for the running IPython shell: only the cell counter matters to show_figure."""

    execution_count = 5


@pytest.fixture
def shown(monkeypatch):
    """What show_figure publishes, as a list of display bundles."""
    import IPython.display

    published = []
    monkeypatch.setattr("course_utils.plotting._shell", lambda: FakeShell)
    monkeypatch.setattr(IPython.display, "display", lambda bundle, raw=False: published.append(bundle))
    monkeypatch.setattr(FakeShell, "execution_count", 5)
    return published


def test_plot_history_shows_its_figure_once_per_cell_as_a_png(shown):
    import base64

    figure = plot_history(ORIGINAL)
    assert len(shown) == 1 and set(shown[0]) == {"image/png", "text/plain"}
    assert base64.b64decode(shown[0]["image/png"]).startswith(b"\x89PNG")
    assert "Training history" in shown[0]["text/plain"] and "<Figure size" not in shown[0]["text/plain"]
    figure._ipython_display_()  # the same figure as the cell's last value: not shown twice
    assert len(shown) == 1
    FakeShell.execution_count = 6  # typed again in a later cell: shown again
    figure._ipython_display_()
    assert len(shown) == 2


def test_outside_ipython_nothing_is_displayed(capsys):
    from course_utils.plotting import CourseFigure, show_figure

    figure = plot_history(ORIGINAL)
    assert isinstance(figure, CourseFigure) and show_figure(figure) is figure
    assert capsys.readouterr().out == ""
