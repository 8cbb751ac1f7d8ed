"""The dataset is tuned so lesson 07's default recipe stays close to the running example's typical run.

Typical run: loss 1.20, 0.85, 0.60, 0.45, 0.35 and accuracy 0.45, 0.60, 0.75, 0.82, 0.88. The
lesson's text promises every epoch within 0.1 (tests/test_lesson07_story.py reads the numbers from
the executed notebook); the reference loop below is the plain loop of lesson 07 (training loss per
sample over the epoch, accuracy on the validation draw).
"""

from dataclasses import replace

import pytest
import torch
from torch import nn

from course_utils.recipe import (
    DEFAULT_RECIPE, ORIGINAL_ACCURACY, ORIGINAL_LOSS, TrainingRecipe, default_loaders, default_model,
    default_optimizer,
)

TOLERANCE = 0.1


def reference_trace(recipe: TrainingRecipe) -> list[tuple[float, float]]:
    """(mean training loss per sample, validation accuracy) for every epoch."""
    train_loader, val_loader = default_loaders(recipe)
    model = default_model(recipe)
    optimizer = default_optimizer(model, recipe)
    criterion = nn.CrossEntropyLoss()
    trace = []
    for _ in range(recipe.epochs):
        model.train()
        total = 0.0
        for xb, yb in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(yb)
        model.eval()
        with torch.no_grad():
            correct = sum((model(xb).argmax(1) == yb).sum().item() for xb, yb in val_loader)
        trace.append((total / len(train_loader.dataset), correct / len(val_loader.dataset)))
    return trace


@pytest.fixture(scope="module")
def default_trace():
    return reference_trace(DEFAULT_RECIPE)


@pytest.mark.parametrize("epoch", [1, 2, 3, 4, 5])
def test_default_recipe_reproduces_the_original_trace(default_trace, epoch):
    loss, accuracy = default_trace[epoch - 1]
    print("measured trace:", [(round(l, 3), round(a, 3)) for l, a in default_trace])
    assert abs(loss - ORIGINAL_LOSS[epoch - 1]) <= TOLERANCE, f"epoch {epoch} loss {loss:.3f}"
    assert abs(accuracy - ORIGINAL_ACCURACY[epoch - 1]) <= TOLERANCE, f"epoch {epoch} accuracy {accuracy:.3f}"


def test_loss_falls_and_accuracy_rises_every_epoch(default_trace):
    losses, accuracies = zip(*default_trace)
    assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses
    assert accuracies[-1] > accuracies[0] + 0.3, accuracies


def test_same_seed_gives_identical_history():
    assert reference_trace(DEFAULT_RECIPE) == reference_trace(DEFAULT_RECIPE)


@pytest.mark.parametrize("seed", range(10))
def test_any_seed_learns_the_task(seed):
    """The trace's numbers need the default seed; learning the task must not (worst of 50 seeds: 0.44, 0.84)."""
    loss, accuracy = reference_trace(replace(DEFAULT_RECIPE, seed=seed))[-1]
    assert loss < 0.6 and accuracy > 0.8, f"seed {seed}: epoch 5 loss {loss:.3f}, accuracy {accuracy:.3f}"
