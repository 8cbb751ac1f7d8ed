"""Lesson 07's checks through the library: what the zoo's data cannot say.

The zoo (tests/zoos/lesson07.py) runs every variant through the real grade cells and the re-check;
here: fit judged apart from the functions it calls (also when it reaches them by another name),
the instruments, the convergence verdict, and that the visible checks ship no correct loop.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import replace

import pytest
import torch

from course_utils.checks import CheckFailed, lesson07
from course_utils.checks.lesson07 import common, ex1, ex2, ex3, instruments
from course_utils.checks.lesson07.ex3 import fake_train_loss
from course_utils.checks.lesson07.instruments import Unmoved
from course_utils.diagnoses import codes_in
from course_utils.recipe import DEFAULT_RECIPE
from tests.helpers import ROOT, solution_namespace, with_source
from tests.zoos.lesson07 import CANONICAL_FIT, CANONICAL_TRAIN, NO_ZERO_GRAD, ZOO, mutate

SOLUTION = solution_namespace(lesson07.LESSON)


def define(source: str) -> dict:
    """The lesson's imports and answers, then ``source`` run after them, as in a student's notebook."""
    return with_source(SOLUTION, source)


def test_the_catalogue_places_every_diagnosis_in_its_exercise():
    diagnoses = lesson07.DIAGNOSES
    assert all(d.lesson == lesson07.LESSON and d.section for d in lesson07.CATALOGUE)
    assert diagnoses["fit-model-not-moved"].exercise == "ex3-tests" and diagnoses["eval-loss"].exercise == "ex2-tests"
    assert diagnoses["no-convergence"].exercise == "ex3-tests" and diagnoses["inputs-not-moved"].exercise == "ex1-tests"


def test_a_crash_hint_names_no_example_cell():
    """Issue 17: no 'example cell' that does not exist; the found line says where the learner's code raised."""
    for code in ("train-crashed", "eval-crashed", "fit-crashed"):
        assert "example cell" not in lesson07.DIAGNOSES[code].hint


def test_unmoved_tensors_become_plain_only_when_moved_to_a_device():
    batch = torch.ones(2, 3).as_subclass(Unmoved)
    assert type(batch.to("cpu")) is torch.Tensor
    assert type(batch.to(torch.device("cpu"), non_blocking=True)) is torch.Tensor
    assert type(batch.float()) is Unmoved and type(batch.to(torch.float64)) is Unmoved
    assert type(batch[0]) is Unmoved and len(batch) == 2


def test_fit_is_judged_on_its_own(capsys):
    """A correct fit keeps its points when train_one_epoch is broken; the grade cell says which exercise to fix."""
    namespace = define(NO_ZERO_GRAD + "\n" + CANONICAL_FIT)
    learners = namespace["train_one_epoch"], namespace["evaluate"]
    assert lesson07.check_fit(namespace["fit"], *learners) is None
    assert "Exercise 1 (train_one_epoch) still fails" in capsys.readouterr().out
    assert (namespace["train_one_epoch"], namespace["evaluate"]) == learners, \
        "the learner's functions are back in place after the check"


def fit_by_another_name(train_source: str) -> dict:
    """A fit that reaches ``train_one_epoch`` through an argument, not by its global name."""
    return define(train_source + "\n" + CANONICAL_FIT.replace("def fit(", "def fit_with(step, ").replace(
        "loss = train_one_epoch(", "loss = step("))


def test_a_fit_that_reaches_a_broken_train_one_epoch_by_another_name_says_so_first():
    namespace = fit_by_another_name(NO_ZERO_GRAD)
    namespace["fit"] = lambda *args: namespace["fit_with"](namespace["train_one_epoch"], *args)
    with pytest.raises(CheckFailed) as info:
        lesson07.check_fit(namespace["fit"], namespace["train_one_epoch"], namespace["evaluate"])
    assert codes_in(str(info.value))[0] == "fit-earlier-train", str(info.value)


def test_a_fit_that_crashes_in_a_broken_train_one_epoch_reached_by_another_name_says_so_first():
    namespace = fit_by_another_name(mutate(CANONICAL_TRAIN, "    model.train()\n",
                                           "    model.train()\n    raise KeyError('oops')\n"))
    fit = lambda *args: namespace["fit_with"](namespace["train_one_epoch"], *args)  # noqa: E731
    with pytest.raises(CheckFailed) as info:
        lesson07.check_fit(fit, namespace["train_one_epoch"], namespace["evaluate"])
    assert codes_in(str(info.value))[0] == "fit-earlier-train", str(info.value)
    with pytest.raises(CheckFailed, match="fit raised an error: KeyError"):
        lesson07.check_fit(fit)


def test_check_fit_rejects_a_malformed_history():
    fit = define(CANONICAL_FIT)["fit"]
    with pytest.raises(CheckFailed, match=r"\[fit-history\]") as info:
        lesson07.check_fit(lambda *args: fit(*args)[:-1])
    assert "4 records for 5 epochs" in str(info.value)


def test_the_probes_leave_tqdm_and_the_namespace_as_they_were():
    import tqdm.auto

    namespace = define(CANONICAL_FIT)
    before = dict(namespace), tqdm.auto.trange, tqdm.auto.tqdm
    lesson07.check_fit(namespace["fit"])
    assert (dict(namespace), tqdm.auto.trange, tqdm.auto.tqdm) == before


def test_fit_is_judged_with_stand_ins_that_return_made_up_numbers():
    """The history must hold what the stand-ins returned, so a fit that rounds or recomputes them fails."""
    assert len({fake_train_loss(call) for call in range(1, 6)}) == 5
    rounded = define(CANONICAL_FIT.replace('"loss": loss,', '"loss": round(loss, 3),'))
    with pytest.raises(CheckFailed, match=r"\[fit-values\]") as info:
        lesson07.check_fit(rounded["fit"])
    assert "stand-ins" in str(info.value)


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU on this machine; the CUDA verdict runs where there is one"))]


@pytest.mark.parametrize("device", DEVICES)
def test_convergence_verdict_is_the_same_for_50_seeds(device):
    good = define(CANONICAL_FIT.replace('desc="epochs"', "disable=True"))["fit"]
    frozen = define(CANONICAL_TRAIN.replace("        optimizer.step()\n", "") + "\n"
                    + CANONICAL_FIT.replace('desc="epochs"', "disable=True"))["fit"]
    seeds = range(50)
    assert all(lesson07.converged(lesson07.run_course_fit(good, replace(DEFAULT_RECIPE, seed=s), device))
               for s in seeds)
    assert not any(lesson07.converged(lesson07.run_course_fit(frozen, replace(DEFAULT_RECIPE, seed=s), device))
                   for s in seeds)


def loops_that_train_or_score(module) -> list[str]:
    """Functions of ``module`` with a for loop that calls backward and step, or argmax: a correct answer's shape."""
    found = []
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for loop in (n for n in ast.walk(node) if isinstance(n, ast.For)):
                called = {n.func.attr for n in ast.walk(loop) if isinstance(n, ast.Call)
                          and isinstance(n.func, ast.Attribute)}
                if {"backward", "step"} <= called or "argmax" in called:
                    found.append(node.name)
    return found


@pytest.mark.parametrize("module", [lesson07, common, instruments, ex1, ex2, ex3], ids=lambda m: m.__name__)
def test_the_visible_checks_ship_no_correct_loop(module):
    """Issue 18: expected results are stored data (course expected), the stand-ins of fit train nothing."""
    assert loops_that_train_or_score(module) == []
    assert not [name for name in vars(module) if "reference" in name.lower()]


def test_zero_grad_right_after_step_is_accepted_and_the_text_says_so():
    """Issue 17: lessons 06 and 07 agree that zeroing right after step() is a correct placement (the zoo's
    correct loops that do so pass the grade cell: tests/test_zoos.py)."""
    from course_tools.notebooks import read_notebook

    lesson = lesson07.LESSON
    cells = {cell.id: " ".join(cell.source.split())
             for cell in read_notebook(ROOT / "solutions" / lesson / f"{lesson}.ipynb").cells}
    assert "Zeroing right after `optimizer.step()` instead is just as correct" in cells["device-text"]
    assert "zeroing right after the step is fine too" in cells["ex1-text"]
    after_step = [v for v in ZOO.correct if v.exercise == "ex1-tests" and "zero_grad(" in v.source
                  and v.source.index("optimizer.step()") < v.source.rindex("zero_grad(")]
    assert after_step, "the zoo keeps a correct loop that zeroes right after the step"
    assert "or right after optimizer.step()" in lesson07.DIAGNOSES["accumulated-gradients"].hint
