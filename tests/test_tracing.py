"""course_utils.tracing: stages and shapes of a traced forward pass, hooks removed, clear errors."""

import pytest
import torch
from torch import nn

from course_utils.tracing import Stage, format_trace, trace_forward


def make_sequential() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))


class TwoLayer(nn.Module):
    """A custom module with named children and a nested block."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(4, 5)
        self.block = nn.Sequential(nn.ReLU(inplace=True), nn.Linear(5, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.hidden(x))


class Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.first(x)
        raise RuntimeError("boom")


def hook_count(model: nn.Module) -> int:
    return sum(len(module._forward_hooks) for module in model.modules())


def batch(rows: int = 100, columns: int = 10) -> torch.Tensor:
    return torch.rand(rows, columns, generator=torch.Generator().manual_seed(1))


def test_sequential_records_every_leaf_with_shapes_in_call_order():
    model = make_sequential()
    stages = trace_forward(model, batch())
    assert [s.name for s in stages] == ["0", "1", "2"]
    assert [s.module_type for s in stages] == ["Linear", "ReLU", "Linear"]
    assert [s.input_shape for s in stages] == [(100, 10), (100, 32), (100, 32)]
    assert [s.output_shape for s in stages] == [(100, 32), (100, 32), (100, 3)]
    assert all(isinstance(s, Stage) for s in stages)


def test_outputs_match_the_model_and_are_detached():
    model = make_sequential()
    x = batch()
    stages = trace_forward(model, x)
    torch.testing.assert_close(stages[0].output, model[0](x).detach())
    torch.testing.assert_close(stages[1].output, torch.relu(model[0](x)).detach())
    torch.testing.assert_close(stages[-1].output, model(x).detach())
    assert not any(s.output.requires_grad for s in stages)


def test_custom_module_uses_qualified_names_and_copies_outputs_before_inplace_ops():
    torch.manual_seed(0)
    model = TwoLayer()
    x = torch.randn(7, 4, generator=torch.Generator().manual_seed(2))
    stages = trace_forward(model, x)
    assert [(s.name, s.module_type) for s in stages] == [("hidden", "Linear"), ("block.0", "ReLU"),
                                                        ("block.1", "Linear")]
    assert [s.output_shape for s in stages] == [(7, 5), (7, 5), (7, 2)]
    expected_hidden = model.hidden(x).detach()
    assert (expected_hidden < 0).any(), "the check below needs negative pre-activations"
    torch.testing.assert_close(stages[0].output, expected_hidden)  # not zeroed by ReLU(inplace=True)


def test_hooks_are_removed_and_the_model_is_unchanged():
    model = make_sequential().train()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trace_forward(model, batch())
    assert hook_count(model) == 0
    assert model.training
    assert all(torch.equal(before[name], p) for name, p in model.named_parameters())
    assert all(p.grad is None for p in model.parameters())


def test_existing_user_hooks_survive():
    model = make_sequential()
    calls = []
    handle = model[0].register_forward_hook(lambda module, inputs, output: calls.append(output.shape))
    trace_forward(model, batch())
    assert hook_count(model) == 1 and calls == [torch.Size([100, 32])]
    handle.remove()


def test_hooks_are_removed_even_when_forward_raises():
    model = Broken()
    with pytest.raises(RuntimeError, match="boom"):
        trace_forward(model, torch.ones(2, 3))
    assert hook_count(model) == 0


def test_a_leaf_model_and_a_repeated_module():
    stages = trace_forward(nn.Linear(4, 2), torch.ones(4))
    assert [(s.name, s.input_shape, s.output_shape) for s in stages] == [("(model)", (4,), (2,))]

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layer(self.layer(x))

    assert [s.name for s in trace_forward(Twice(), torch.ones(1, 3))] == ["layer", "layer"]


def test_tracing_is_deterministic():
    first = trace_forward(make_sequential(), batch())
    second = trace_forward(make_sequential(), batch())
    assert all(torch.equal(a.output, b.output) for a, b in zip(first, second))


@pytest.mark.parametrize("model, x", [
    ("not a model", torch.ones(1, 10)),
    (lambda t: t, torch.ones(1, 10)),
    (nn.Linear(10, 3), [[1.0] * 10]),
    (nn.Linear(10, 3), None),
])
def test_bad_arguments_raise_type_error(model, x):
    with pytest.raises(TypeError):
        trace_forward(model, x)


def test_format_trace_shows_shapes_probabilities_and_the_prediction():
    model = make_sequential()
    x = batch(1)
    stages = trace_forward(model, x)
    text = format_trace(stages, inputs=x)
    names = [line.split()[0] for line in text.splitlines()]
    assert names == ["stage", "input", "0", "1", "2", "softmax", "prediction"]
    assert "(1, 10)" in text and "(1, 32)" in text and "(1, 3)" in text
    probabilities = torch.softmax(model(x), dim=1)[0]
    assert f"[{', '.join(f'{p:.3f}' for p in probabilities.tolist())}]" in text
    predicted = int(probabilities.argmax())
    assert text.splitlines()[-1].endswith(f"class {predicted} (probability {probabilities[predicted]:.3f})")


def test_format_trace_without_softmax_and_for_another_sample():
    model = make_sequential()
    x = batch(4)
    stages = trace_forward(model, x)
    text = format_trace(stages, softmax=False, sample=2, decimals=2)
    assert "softmax" not in text and "prediction" not in text
    assert f"{model(x)[2, 0].item():.2f}" in text.splitlines()[-1]
    assert "... (32 values)" in text


def test_format_trace_bad_arguments():
    stages = trace_forward(make_sequential(), batch(2))
    with pytest.raises(TypeError):
        format_trace("not stages")
    with pytest.raises(TypeError):
        format_trace([object()])
    with pytest.raises(ValueError):
        format_trace([])
    with pytest.raises(IndexError):
        format_trace(stages, sample=5)
    with pytest.raises(TypeError):
        format_trace(stages, sample=1.0)
    with pytest.raises(ValueError):
        format_trace(stages, max_values=0)


def test_import_has_no_side_effects():
    import importlib
    import sys

    original = sys.modules.pop("course_utils.tracing")
    state = torch.random.get_rng_state()
    try:
        importlib.import_module("course_utils.tracing")
        assert torch.equal(state, torch.random.get_rng_state())
    finally:
        sys.modules["course_utils.tracing"] = original
