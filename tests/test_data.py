"""The running dataset: shape, range, determinism, one task across seeds, and clear errors."""

import pytest
import torch

from course_utils.data import (
    N_CLASSES, N_FEATURES, N_SAMPLES, RAW_MAX, RAW_MIN, TRAIN_SEED, VALIDATION_SEED,
    class_centres, make_course_data,
)
from course_utils.recipe import TrainingRecipe


@pytest.fixture(scope="module")
def course_data():
    return make_course_data()


def test_running_example_shapes_and_dtypes(course_data):
    features, targets = course_data
    assert features.shape == (N_SAMPLES, N_FEATURES) == (1000, 10)
    assert targets.shape == (1000,)
    assert features.dtype == torch.float32 and targets.dtype == torch.int64


def test_every_feature_spans_exactly_0_to_100_so_min_max_maps_50_to_half(course_data):
    features, _ = course_data
    low, high = features.min(dim=0).values, features.max(dim=0).values
    assert torch.equal(low, torch.full((10,), RAW_MIN)) and torch.equal(high, torch.full((10,), RAW_MAX))
    assert torch.equal(features, features.round()), "raw readings are whole numbers"
    assert ((torch.tensor(50.0) - low) / (high - low) == 0.5).all()


def test_three_classes_roughly_balanced(course_data):
    counts = torch.bincount(course_data[1], minlength=N_CLASSES)
    assert counts.tolist() and len(counts) == 3
    assert counts.min() > 280 and counts.max() < 390, counts.tolist()


def test_same_seed_same_tensors_other_seed_other_draw():
    first, again, other = make_course_data(seed=5), make_course_data(seed=5), make_course_data(seed=6)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])


def test_train_and_validation_seeds_share_one_task():
    (x_train, y_train), (x_val, y_val) = make_course_data(seed=TRAIN_SEED), make_course_data(seed=VALIDATION_SEED)
    for label in range(3):
        gap = (x_train[y_train == label].mean(0) - x_val[y_val == label].mean(0)).abs().max()
        assert gap < 5.0, f"class {label} means differ by {gap:.1f} raw units between seeds"


def test_centres_are_fixed_and_inside_the_range():
    centres = class_centres()
    assert centres.shape == (3, 10)
    assert torch.equal(centres, class_centres())
    assert (centres > RAW_MIN).all() and (centres < RAW_MAX).all()


def test_other_sizes_work():
    features, targets = make_course_data(7, n_features=4, n_classes=5, seed=3)
    assert features.shape == (7, 4) and targets.shape == (7,)
    assert int(targets.max()) < 5


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"n_samples": -1}, ValueError, "n_samples must be positive"),
        ({"n_samples": 0}, ValueError, "n_samples must be positive"),
        ({"n_samples": 2.5}, TypeError, "n_samples must be an integer"),
        ({"n_samples": True}, TypeError, "n_samples must be an integer"),
        ({"n_features": 0}, ValueError, "n_features must be positive"),
        ({"n_classes": 1}, ValueError, "n_classes must be at least 2"),
        ({"seed": -3}, ValueError, "seed must be at least 0"),
        ({"dtype": torch.int64}, TypeError, "dtype must be a floating-point torch dtype"),
        ({"dtype": "float32"}, TypeError, "dtype must be a floating-point torch dtype"),
    ],
)
def test_bad_arguments_name_the_problem(kwargs, error, words):
    with pytest.raises(error, match=words):
        make_course_data(**kwargs)


def test_other_float_dtypes_give_the_same_values():
    single, double = make_course_data(dtype=torch.float32), make_course_data(dtype=torch.float64)
    assert double[0].dtype == torch.float64 and torch.equal(double[0].float(), single[0])


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"batch_size": 0}, ValueError, "batch_size must be positive"),
        ({"batch_size": 2.5}, TypeError, "batch_size must be an integer"),
        ({"epochs": -1}, ValueError, "epochs must be positive"),
        ({"hidden": 0}, ValueError, "hidden must be positive"),
        ({"seed": -1}, ValueError, "seed must be at least 0"),
        ({"learning_rate": 0}, ValueError, "learning_rate must be a number greater than 0"),
        ({"momentum": 1.0}, ValueError, "momentum must be a number in"),
    ],
)
def test_recipe_rejects_bad_settings(kwargs, error, words):
    with pytest.raises(error, match=words):
        TrainingRecipe(**kwargs)
