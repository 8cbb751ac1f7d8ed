"""The benchmark scripts keep working (their figures are printed by `make benchmark`, never asserted)."""

import importlib.util

import torch

from tests.helpers import ROOT


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_epoch_loop_benchmark_measures_every_variant():
    results = load("epoch_loop").measure(torch.device("cpu"), samples=500, repeat=1)
    assert set(results) == {"naive (batch 100)", "on-device (batch 100)", "on-device (batch 1000)"}
    assert all(rate > 0 for rate in results.values())


def test_lesson_benchmark_reads_peak_memory_of_a_process():
    import os

    assert load("lesson_notebooks").peak_rss_mib(os.getpid()) > 10
