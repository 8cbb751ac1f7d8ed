"""Lesson 02's checks without a kernel: every zoo variant on several seeds and sizes, no side effects, and what
the re-check's probe sends (the zoo's runs through the grade cells and the re-check: tests/test_zoos.py,
tests/test_rechecks.py)."""

import linecache

import pytest
import torch

from course_utils.checks import CheckFailed, lesson02
from course_utils.checks.lesson02.common import seeded_data, seeded_splits
from course_utils.checks.lesson02.ex1 import _matches, fingerprint
from course_utils.data import VALIDATION_SEED, make_course_data
from course_utils.diagnoses import catalogue, codes_in
from course_utils.verdict_probes import probes_for
from tests.helpers import solution_namespace
from tests.zoos.lesson02 import ZOO

CORRECT, BUGGY = ZOO.correct, ZOO.buggy

SIZES = ((4, 37, 6), (1, 9, 3), (2, 50, 7), (7, 12, 4))  # lesson02.SCALER_CHECKS: their results are stored


def defined(variant):
    """Run the variant's cell source as a notebook would; return its namespace."""
    features, _ = make_course_data()
    valid_features, _ = make_course_data(seed=VALIDATION_SEED)
    namespace = dict(torch=torch, features=features, valid_features=valid_features)
    filename = f"<zoo-lesson02-{variant.exercise}-{variant.name}>"
    linecache.cache[filename] = (len(variant.source), None, variant.source.splitlines(True), filename)
    exec(compile(variant.source, filename, "exec"), namespace)  # noqa: S102 - the zoo is our own code
    return namespace


def codes(variant):
    namespace = defined(variant)
    found = []
    for seed, n_samples, n_features in SIZES:
        try:
            if variant.exercise == "ex1-tests":
                lesson02.check_scaler(namespace["Scaler"], seed=seed, n_samples=n_samples, n_features=n_features)
            else:
                lesson02.check_normalize_splits(namespace["normalize_splits"], namespace.get("Scaler"), seed=seed,
                                                n_samples=n_samples, n_features=n_features)
                lesson02.check_splits_running_example(namespace["normalize_splits"], namespace["features"],
                                                      namespace["valid_features"])
            found.append(None)
        except CheckFailed as failure:
            found.append(codes_in(str(failure))[0])
    return found


@pytest.mark.parametrize("variant", CORRECT, ids=lambda v: f"{v.exercise}-{v.name}")
def test_correct_variants_pass_on_every_seed(variant):
    assert codes(variant) == [None] * len(SIZES)


@pytest.mark.parametrize("variant", BUGGY, ids=lambda v: f"{v.exercise}-{v.name}")
def test_buggy_variants_are_named_on_every_seed(variant):
    assert codes(variant) == [variant.bug] * len(SIZES)


def test_the_catalogue_is_complete_and_placed():
    known = {d.code for d in lesson02.CATALOGUE}
    assert known <= set(catalogue())
    assert all(d.lesson == lesson02.LESSON and d.exercise in ("ex1-tests", "ex2-tests") for d in lesson02.CATALOGUE)
    assert {v.bug for v in BUGGY} <= known
    assert all(lesson02.DIAGNOSES[v.bug].exercise == v.exercise for v in BUGGY), "each mistake in its own exercise"


def test_checks_hand_learner_code_copies_only():
    namespace = defined(next(v for v in BUGGY if v.name == "scales-in-place"))
    features, valid_features = namespace["features"], namespace["valid_features"]
    raw, raw_valid = features.clone(), valid_features.clone()
    with pytest.raises(CheckFailed, match=r"\[splits-inplace\]"):
        lesson02.check_splits_running_example(namespace["normalize_splits"], features, valid_features)
    assert torch.equal(features, raw) and torch.equal(valid_features, raw_valid)


def test_the_reference_matches_scikit_learn():
    """The grader's reference (which writes the stored results) gives scikit-learn's numbers."""
    from course_tools.grade.judges.lesson02 import reference_scale

    sklearn = pytest.importorskip("sklearn.preprocessing")
    train, valid = seeded_splits(3, 40, 6)
    for method, scaler in (("minmax", sklearn.MinMaxScaler), ("standard", sklearn.StandardScaler)):
        expected = torch.from_numpy(scaler().fit(train.numpy()).transform(valid.numpy()))
        assert torch.allclose(reference_scale(method, train, valid), expected, rtol=1e-10, atol=1e-12)


def test_the_student_package_holds_no_reference_scaler():
    for module in (lesson02, lesson02.common, lesson02.ex1, lesson02.ex2):
        assert not hasattr(module, "reference_scale") and not hasattr(module, "ReferenceScaler"), module.__name__


def test_a_fingerprint_tells_close_tables_from_different_ones():
    table = seeded_data(5, 11, 4)
    entry = fingerprint(table)
    assert _matches(table * (1 + 1e-9), entry)
    nudged = table.clone()
    nudged[3, 2] += 1e-4 * (1 + abs(float(nudged[3, 2])))
    assert not _matches(nudged, entry) and not _matches(table[:-1], entry)


def test_the_probe_sends_values_only():
    values = probes_for(ZOO.lesson)["ex2-tests"](solution_namespace(ZOO.lesson), 5)
    assert type(values["minmax"]["valid"]) is torch.Tensor and type(values["minmax"]["unchanged"]) is bool
