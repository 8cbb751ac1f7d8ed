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


def test_every_benchmark_of_make_benchmark_loads():
    """`make benchmark` runs these scripts; each must at least import against today's code."""
    import re

    makefile = (ROOT / "Makefile").read_text()
    scripts = re.findall(r"benchmarks/(\w+)\.py", makefile.split("\nbenchmark:", 1)[1])
    assert {"lesson_notebooks", "epoch_loop", "loop_at_scale", "grading", "report"} <= set(scripts)
    for name in scripts:
        assert callable(load(name).main), name


def test_loop_at_scale_benchmark_measures_one_process_accumulation_and_bf16():
    results = load("loop_at_scale").measure(samples=400, repeat=1)
    assert all(rate > 0 for rate in results.values()) and len(results) >= 3
