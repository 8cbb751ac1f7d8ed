"""The training playground retrains and redraws; the data-flow trace measures the five stages."""

import pytest

from course_utils.dataflow import STAGE_NAMES, format_data_flow, trace_data_flow
from course_utils.playground import PLOT_CLASS, STATUS_CLASS, loss_figure, train_run, training_playground
from course_utils.recipe import DEFAULT_RECIPE


def test_a_run_is_reproducible_and_follows_its_settings():
    first, again = train_run(), train_run()
    assert first.losses == again.losses and len(first.losses) == DEFAULT_RECIPE.epochs
    assert (first.learning_rate, first.batch_size) == (DEFAULT_RECIPE.learning_rate, DEFAULT_RECIPE.batch_size)
    assert first.losses[-1] < first.losses[0] and first.accuracy > 0.8
    slow = train_run(learning_rate=0.001)
    assert slow.losses[-1] > first.losses[-1], "a tiny learning rate should learn less in 5 epochs"
    assert train_run(batch_size=1000).losses != first.losses


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="learning_rate"):
        train_run(learning_rate=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        train_run(batch_size=0)


def test_loss_figure_has_labelled_axes_and_the_previous_run():
    run, previous = train_run(), train_run(learning_rate=0.01)
    axes = loss_figure(run, previous).axes[0]
    assert axes.get_xlabel() == "epoch" and "loss" in axes.get_ylabel()
    assert [line.get_label() for line in axes.get_lines()] == [f"before: {previous.label}", run.label]


def test_moving_a_slider_retrains_and_redraws():
    playground = training_playground()
    widget = playground.widget
    plot = next(child for child in widget.children if PLOT_CLASS in getattr(child, "_dom_classes", ()))
    status = next(child for child in widget.children if STATUS_CLASS in getattr(child, "_dom_classes", ()))
    before, before_text = plot.value, status.value
    playground._batch.value = 20
    assert playground.run.batch_size == 20 and playground.previous.batch_size == DEFAULT_RECIPE.batch_size
    assert plot.value != before and status.value != before_text
    playground._lr.value = 0.01
    assert playground.run.learning_rate == pytest.approx(0.01) and playground.run.batch_size == 20


def test_outside_a_front_end_the_playground_is_text():
    playground = training_playground()
    bundle = playground._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"] == playground.as_text()
    assert "lr 0.1, batch 100" in playground.as_text() and "validation accuracy" in playground.as_text()


def test_an_executed_notebook_shows_the_playground_plot_as_an_image():
    import base64

    playground = training_playground()
    png = base64.b64decode(playground._repr_mimebundle_()["image/png"])
    assert png.startswith(b"\x89PNG") and png == playground.widget.children[2].value
    playground.retrain(0.5, 50)
    assert base64.b64decode(playground._repr_mimebundle_()["image/png"]) == playground.widget.children[2].value != png


def test_data_flow_has_five_stages_with_the_running_example_shapes():
    stages = trace_data_flow()
    assert tuple(stage.name for stage in stages) == STAGE_NAMES
    assert [(s.shape_in, s.shape_out) for s in stages[:4]] == [
        ((1000, 10), (100, 10)), ((100, 10), (100, 10)), ((100, 10), (100, 3)), ((100, 3), ())]
    assert stages[4].shape_in == ()
    assert stages[4].shape_out == {"0.weight": (32, 10), "0.bias": (32,), "2.weight": (3, 32), "2.bias": (3,)}
    assert "10 batches of (100, 10)" in stages[0].comes_out
    assert "values 0-100" in stages[1].goes_in and "scaled to 0-1" in stages[1].comes_out


def test_data_flow_table_reads_in_order():
    table = format_data_flow(trace_data_flow())
    lines = table.splitlines()
    assert lines[0].split() == ["stage", "in", "out"] and len(lines) == 7
    assert [line.split()[1] for line in lines[2:]] == ["loading", "preprocessing", "model", "loss", "backpropagation"]
    with pytest.raises(ValueError):
        format_data_flow([])
