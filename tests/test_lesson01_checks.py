"""Lesson 01's checks without a kernel: every zoo variant on several seeds, no side effects, and what the
re-check's probes send (the zoo's runs through the grade cells and the re-check: tests/test_zoos.py,
tests/test_rechecks.py)."""

import linecache

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from course_utils.checks import CheckFailed, lesson01
from course_utils.data import make_course_data
from course_utils.diagnoses import catalogue, codes_in
from course_utils.verdict_probes import probes_for
from tests.helpers import solution_namespace
from tests.zoos.lesson01 import ZOO

CORRECT, BUGGY = ZOO.correct, ZOO.buggy

CHECKS = {"ex1-tests": ("CourseDataset", lesson01.check_course_dataset),
          "ex2-tests": ("make_loader", lesson01.check_make_loader),
          "ex3-tests": ("batch_sizes", lesson01.check_batch_sizes)}
SEEDS = (0, 1, 2, 3, 17)


def defined(variant):
    """Run the variant's cell source as a notebook would (its source readable by inspect)."""
    features, targets = make_course_data()
    namespace = dict(torch=torch, DataLoader=DataLoader, Dataset=Dataset, TensorDataset=TensorDataset,
                     features=features, targets=targets)
    filename = f"<zoo-lesson01-{variant.exercise}-{variant.name}>"
    linecache.cache[filename] = (len(variant.source), None, variant.source.splitlines(True), filename)
    exec(compile(variant.source, filename, "exec"), namespace)  # noqa: S102 - the zoo is our own code
    name, check = CHECKS[variant.exercise]
    return namespace[name], check


def code_of(function, check, seed):
    try:
        check(function, seed=seed)
    except CheckFailed as failure:
        return codes_in(str(failure))[0]
    return None


@pytest.mark.parametrize("variant", CORRECT, ids=lambda v: f"{v.exercise}-{v.name}")
def test_correct_variants_pass_on_every_seed(variant):
    function, check = defined(variant)
    assert [code_of(function, check, seed) for seed in SEEDS] == [None] * len(SEEDS)


@pytest.mark.parametrize("variant", BUGGY, ids=lambda v: f"{v.exercise}-{v.name}")
def test_buggy_variants_are_named_on_every_seed(variant):
    function, check = defined(variant)
    assert [code_of(function, check, seed) for seed in SEEDS] == [variant.bug] * len(SEEDS)


def test_the_catalogue_is_complete_and_placed():
    codes = {d.code for d in lesson01.CATALOGUE}
    assert codes <= set(catalogue())
    assert all(d.lesson == lesson01.LESSON and d.exercise in ("ex1-tests", "ex2-tests", "ex3-tests")
               for d in lesson01.CATALOGUE)
    named = {v.bug for v in BUGGY}
    assert named <= codes
    assert all(lesson01.DIAGNOSES[v.bug].exercise == v.exercise for v in BUGGY), "each mistake in its own exercise"


def test_the_loader_check_leaves_the_global_random_state_alone():
    function, check = defined(next(v for v in CORRECT if v.exercise == "ex2-tests"))
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    check(function, seed=3)
    assert torch.equal(before, torch.random.get_rng_state())


def test_a_stub_fails_with_a_named_crash():
    def make_loader(dataset, batch_size, *, shuffle=True, drop_last=False, seed=None):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match=r"\[loader-crashed\]"):
        lesson01.check_make_loader(make_loader)


def test_a_seed_without_stored_results_is_a_clear_error():
    function, check = defined(next(v for v in CORRECT if v.exercise == "ex3-tests"))
    with pytest.raises(ValueError, match=r"stores the expected results lesson01-batch-sizes for seeds .*not for seed=999"):
        check(function, seed=999)


def test_the_student_package_computes_no_batch_sizes_or_orders_of_its_own():
    for module in (lesson01, lesson01.common, lesson01.ex1, lesson01.ex2, lesson01.ex3):
        assert not any(hasattr(module, name) for name in ("_expected_sizes", "_reference_order", "_PATTERNS"))


def test_the_one_sample_dataset_and_the_edge_cases_are_rechecked():
    solution = solution_namespace(ZOO.lesson)
    values = probes_for(ZOO.lesson)["ex1-tests"](solution, 5)
    assert [d["length"] for d in values["datasets"]][-1] == 1
    assert all(error[0] in ("TypeError", "ValueError") and error[1] for error in values["errors"])
    sizes = probes_for(ZOO.lesson)["ex3-tests"](solution, 5)["sizes"]
    assert [] in sizes and any(set(s) == {1} for s in sizes if s)


def test_the_probe_sends_values_only():
    values = probes_for(ZOO.lesson)["ex2-tests"](solution_namespace(ZOO.lesson), 5)
    assert all(type(i) is int for i in values["unseeded"]) and type(values["second-epoch"]) is list
