"""Lesson 07's default setup: the model, optimiser, data and loaders of the lesson's run.

The running example's typical run (five epochs): loss 1.20, 0.85, 0.60, 0.45, 0.35 and accuracy
0.45, 0.60, 0.75, 0.82, 0.88 (``ORIGINAL_LOSS``, ``ORIGINAL_ACCURACY``). This recipe's run stays
within 0.1 of every number: ``tests/test_reference_trace.py`` measures it, and lesson 07's text
shows both (``tests/test_lesson07_story.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils._validate import require_int
from course_utils.data import N_CLASSES, N_FEATURES, RAW_MAX, TRAIN_SEED, VALIDATION_SEED, make_course_data

ORIGINAL_LOSS = (1.20, 0.85, 0.60, 0.45, 0.35)
ORIGINAL_ACCURACY = (0.45, 0.60, 0.75, 0.82, 0.88)


def _require_number(value: object, name: str, low: float, high: float | None, *, open_low: bool) -> None:
    bad_type = isinstance(value, bool) or not isinstance(value, (int, float))
    too_low = not bad_type and (value <= low if open_low else value < low)
    too_high = not bad_type and high is not None and value >= high
    if bad_type or too_low or too_high:
        wanted = f"in [{low:g}, {high:g})" if high is not None else f"greater than {low:g}"
        raise ValueError(f"{name} must be a number {wanted}, got {value!r}")


@dataclass(frozen=True)
class TrainingRecipe:
    """The default model and optimiser settings of lesson 07.

    The model is ``Linear(10, hidden) -> ReLU -> Linear(hidden, 3)`` with Kaiming-normal weights
    (suited to ReLU) and zero biases, built right after ``torch.manual_seed(seed)``; SGD with
    momentum; the training loader shuffles with ``torch.Generator().manual_seed(seed)``.
    """

    hidden: int = 32
    learning_rate: float = 0.1
    momentum: float = 0.9
    batch_size: int = 100
    epochs: int = 5
    seed: int = 31

    def __post_init__(self) -> None:
        for name in ("hidden", "batch_size", "epochs"):
            require_int(getattr(self, name), name, minimum=1)
        require_int(self.seed, "seed", minimum=0)
        _require_number(self.learning_rate, "learning_rate", 0.0, None, open_low=True)
        _require_number(self.momentum, "momentum", 0.0, 1.0, open_low=False)


DEFAULT_RECIPE = TrainingRecipe()


def default_model(recipe: TrainingRecipe = DEFAULT_RECIPE) -> nn.Sequential:
    """Build lesson 07's model on the CPU, seeded by ``recipe.seed``."""
    torch.manual_seed(recipe.seed)
    model = nn.Sequential(nn.Linear(N_FEATURES, recipe.hidden), nn.ReLU(), nn.Linear(recipe.hidden, N_CLASSES))
    for layer in (model[0], model[2]):
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        nn.init.zeros_(layer.bias)
    return model


def default_optimizer(model: nn.Module, recipe: TrainingRecipe = DEFAULT_RECIPE) -> torch.optim.SGD:
    """SGD with momentum over ``model``'s parameters, with the recipe's settings."""
    return torch.optim.SGD(model.parameters(), lr=recipe.learning_rate, momentum=recipe.momentum)


def scaled_splits() -> tuple[TensorDataset, TensorDataset]:
    """Training and validation sets of the running example, features scaled to 0-1.

    Every raw feature spans exactly 0-100 in the training draw, so min-max scaling with the
    training statistics is a division by 100 (lesson 02 shows why only training statistics count).
    """
    (x_train, y_train), (x_val, y_val) = make_course_data(seed=TRAIN_SEED), make_course_data(seed=VALIDATION_SEED)
    return TensorDataset(x_train / RAW_MAX, y_train), TensorDataset(x_val / RAW_MAX, y_val)


def default_loaders(recipe: TrainingRecipe = DEFAULT_RECIPE, **loader_options: object) -> tuple[DataLoader, DataLoader]:
    """Shuffled, seeded training loader and ordered validation loader of the running example."""
    train, validation = scaled_splits()
    train_loader = DataLoader(train, batch_size=recipe.batch_size, shuffle=True,
                              generator=torch.Generator().manual_seed(recipe.seed), **loader_options)
    return train_loader, DataLoader(validation, batch_size=recipe.batch_size, **loader_options)
