"""Device selection order, the environment override, clear errors; seeding reproducibility."""

import random

import numpy as np
import pytest
import torch

from course_utils import devices
from course_utils.devices import DEVICE_ENV_VAR, describe_device, pick_device
from course_utils.seeding import make_generator, seed_everything


@pytest.fixture
def machine(monkeypatch):
    """Pretend the machine has the accelerators we say, without touching real ones."""
    monkeypatch.delenv(DEVICE_ENV_VAR, raising=False)

    def configure(*, cuda: bool = False, mps: bool = False) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1 if cuda else 0)
        monkeypatch.setattr(devices, "_mps_available", lambda: mps)

    return configure


@pytest.mark.parametrize(("cuda", "mps", "expected"), [
    (True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu"),
])
def test_order_is_cuda_then_mps_then_cpu(machine, cuda, mps, expected):
    machine(cuda=cuda, mps=mps)
    assert pick_device().type == expected


def test_environment_variable_overrides_the_order(machine, monkeypatch):
    machine(cuda=True)
    monkeypatch.setenv(DEVICE_ENV_VAR, "cpu")
    assert pick_device() == torch.device("cpu")


def test_explicit_argument_wins_over_the_environment(machine, monkeypatch):
    machine(cuda=True)
    monkeypatch.setenv(DEVICE_ENV_VAR, "cuda")
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize(("spec", "error", "words"), [
    ("gpu", ValueError, "not a device name"),
    ("meta", ValueError, "use one of cpu, cuda, mps"),
    ("cuda", RuntimeError, "no CUDA available"),
    ("mps", RuntimeError, "no MPS available"),
])
def test_impossible_requests_fail_clearly(machine, monkeypatch, spec, error, words):
    machine(cuda=False, mps=False)
    monkeypatch.setenv(DEVICE_ENV_VAR, spec)
    with pytest.raises(error, match=words) as info:
        pick_device()
    assert DEVICE_ENV_VAR in str(info.value), "the message says where the request came from"


def test_missing_cuda_index_fails_clearly(machine):
    machine(cuda=True)
    with pytest.raises(RuntimeError, match="only 1 CUDA device"):
        pick_device("cuda:3")


def test_wrong_argument_type(machine):
    with pytest.raises(TypeError, match="device name or torch.device"):
        pick_device(3)


def test_describe_cpu():
    assert describe_device(torch.device("cpu")) == "cpu"


def test_seed_everything_replays_every_generator():
    def draws():
        return random.random(), float(np.random.rand()), torch.rand(3).tolist()

    seed_everything(11)
    first = draws()
    generator = seed_everything(11)
    assert draws() == first
    assert isinstance(generator, torch.Generator)
    assert torch.equal(torch.randperm(10, generator=generator), torch.randperm(10, generator=make_generator(11)))


@pytest.mark.parametrize(("seed", "error"), [(-1, ValueError), (1.5, TypeError), ("0", TypeError)])
def test_bad_seeds(seed, error):
    with pytest.raises(error, match="seed"):
        seed_everything(seed)
