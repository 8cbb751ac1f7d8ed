"""The behavioural grader of lesson 07, through the library: every bug named, every style accepted."""

from dataclasses import replace

import pytest
import torch
from torch import nn
from tqdm.auto import trange

from course_utils import fit_grader, loop_grader
from course_utils.checks import CheckFailed
from course_utils.diagnoses import codes_in
from course_utils.loop_grader import BUGS, CATALOGUE, Unmoved, converged, run_course_fit
from course_utils.recipe import DEFAULT_RECIPE
from tests.loop_zoo import BUGGY, CANONICAL_EVALUATE, CANONICAL_FIT, CANONICAL_TRAIN, CORRECT, mutate

CHECKS = {"train_one_epoch": loop_grader.check_train_one_epoch, "evaluate": loop_grader.check_evaluate,
          "fit": loop_grader.check_fit}


def define(source: str) -> dict:
    """Run a cell's source in a namespace like the lesson's: torch, nn, trange, and solutions of ex1 and ex2."""
    namespace = {"torch": torch, "nn": nn, "trange": trange}
    exec(CANONICAL_TRAIN + "\n" + CANONICAL_EVALUATE + "\n" + source, namespace)  # noqa: S102 - the zoo's own code
    return namespace


def grade(variant) -> None:
    namespace = define(variant.source)
    if variant.function == "fit":
        loop_grader.check_fit(namespace["fit"], namespace["train_one_epoch"], namespace["evaluate"])
    else:
        CHECKS[variant.function](namespace[variant.function])


def test_the_zoo_is_big_enough():
    for function in CHECKS:
        assert len({v.bug for v in BUGGY if v.function == function}) >= 5, f"at least 5 distinct bugs of {function}"
        assert len([v for v in CORRECT if v.function == function]) >= 4, f"at least 4 correct styles of {function}"
    assert {v.bug for v in BUGGY} <= set(BUGS)


def test_the_catalogue_places_every_diagnosis_in_lesson_07():
    assert all(d.lesson == "07_epoch_loop_gpu" and d.exercise in {"ex1-tests", "ex2-tests", "ex3-tests"}
               and d.section for d in CATALOGUE)
    assert BUGS["fit-model-not-moved"].exercise == "ex3-tests" and BUGS["eval-loss"].exercise == "ex2-tests"


@pytest.mark.parametrize("variant", CORRECT, ids=lambda v: f"{v.function}-{v.name}")
def test_correct_variants_pass(variant):
    grade(variant)


@pytest.mark.parametrize("variant", BUGGY, ids=lambda v: f"{v.function}-{v.name}")
def test_each_bug_fails_with_its_own_message(variant):
    with pytest.raises(CheckFailed) as info:
        grade(variant)
    message = str(info.value)
    headline = message.strip().splitlines()[0]
    assert f"[{variant.bug}]" in headline, message
    assert codes_in(message)[0] == variant.bug
    bug = BUGS[variant.bug]
    assert bug.what in headline and f"hint:     {bug.hint}" in message


def message_of(function, source: str) -> str:
    with pytest.raises(CheckFailed) as info:
        CHECKS[function](define(source)[function])
    return str(info.value)


def test_messages_say_what_happened_with_counts():
    twice = message_of("train_one_epoch", mutate(CANONICAL_TRAIN, "        optimizer.step()\n",
                                                  "        optimizer.step()\n        optimizer.step()\n"))
    assert "optimizer.step() ran 6 times for 3 batches (2 per batch)" in twice
    frozen = message_of("train_one_epoch", mutate(CANONICAL_TRAIN, "        optimizer.step()\n", ""))
    assert "stepped 0 times for 3 batches" in frozen
    unmoved = message_of("evaluate", mutate(CANONICAL_EVALUATE, "features, targets = features.to(device), targets.to(device)",
                                            "targets = targets.to(device)"))
    assert "3 of 3 forward passes" in unmoved
    means = message_of("evaluate", mutate(mutate(CANONICAL_EVALUATE, "* len(targets)\n", "\n"),
                                          "return total_loss / total_samples", "return total_loss / len(loader)"))
    assert "the plain mean of the 3 batch losses" in means


def test_a_crashing_loop_is_reported_not_raised():
    def broken(model, loader, criterion, optimizer, device):
        raise KeyError("oops")

    with pytest.raises(CheckFailed, match="train_one_epoch raised an error: KeyError"):
        loop_grader.check_train_one_epoch(broken)


def test_unmoved_tensors_become_plain_only_when_moved_to_a_device():
    batch = torch.ones(2, 3).as_subclass(Unmoved)
    assert type(batch.to("cpu")) is torch.Tensor
    assert type(batch.to(torch.device("cpu"), non_blocking=True)) is torch.Tensor
    assert type(batch.float()) is Unmoved and type(batch.to(torch.float64)) is Unmoved
    assert type(batch[0]) is Unmoved and len(batch) == 2


BROKEN_TRAIN = mutate(CANONICAL_TRAIN, "        optimizer.zero_grad()\n", "")


def test_fit_is_judged_on_its_own(capsys):
    """A correct fit keeps its points when train_one_epoch is broken; the grade cell says which exercise to fix."""
    namespace = define(BROKEN_TRAIN + "\n" + CANONICAL_FIT)
    learners = namespace["train_one_epoch"], namespace["evaluate"]
    assert loop_grader.check_fit(namespace["fit"], *learners) is None
    assert "Exercise 1 (train_one_epoch) still fails" in capsys.readouterr().out
    assert (namespace["train_one_epoch"], namespace["evaluate"]) == learners, \
        "the learner's functions are back in place after the check"


def test_a_fit_that_reaches_a_broken_train_one_epoch_by_another_name_says_so_first():
    namespace = define(BROKEN_TRAIN + "\n" + CANONICAL_FIT.replace("def fit(", "def fit_with(step, ").replace(
        "loss = train_one_epoch(", "loss = step("))
    namespace["fit"] = lambda *args: namespace["fit_with"](namespace["train_one_epoch"], *args)
    with pytest.raises(CheckFailed) as info:
        loop_grader.check_fit(namespace["fit"], namespace["train_one_epoch"], namespace["evaluate"])
    assert codes_in(str(info.value))[0] == "fit-earlier-train", str(info.value)


def test_check_fit_rejects_a_malformed_history():
    fit = define(CANONICAL_FIT)["fit"]
    with pytest.raises(CheckFailed, match=r"\[fit-history\]") as info:
        loop_grader.check_fit(lambda *args: fit(*args)[:-1])
    assert "4 records for 5 epochs" in str(info.value)


def test_the_probes_leave_tqdm_and_the_namespace_as_they_were():
    import tqdm.auto

    namespace = define(CANONICAL_FIT)
    before = dict(namespace), tqdm.auto.trange, tqdm.auto.tqdm
    loop_grader.check_fit(namespace["fit"])
    assert (dict(namespace), tqdm.auto.trange, tqdm.auto.tqdm) == before


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU on this machine; the CUDA verdict runs where there is one"))]


@pytest.mark.parametrize("device", DEVICES)
def test_convergence_verdict_is_the_same_for_50_seeds(device):
    good = define(CANONICAL_FIT.replace('desc="epochs"', "disable=True"))["fit"]
    frozen = define(CANONICAL_TRAIN.replace("        optimizer.step()\n", "") + "\n"
                    + CANONICAL_FIT.replace('desc="epochs"', "disable=True"))["fit"]
    seeds = range(50)
    assert all(converged(run_course_fit(good, replace(DEFAULT_RECIPE, seed=s), device)) for s in seeds)
    assert not any(converged(run_course_fit(frozen, replace(DEFAULT_RECIPE, seed=s), device)) for s in seeds)


def test_a_fit_that_crashes_in_a_broken_train_one_epoch_reached_by_another_name_says_so_first():
    namespace = define(mutate(CANONICAL_TRAIN, "    model.train()\n", "    model.train()\n    raise KeyError('oops')\n")
                       + "\n" + CANONICAL_FIT.replace("def fit(", "def fit_with(step, ").replace(
                           "loss = train_one_epoch(", "loss = step("))
    fit = lambda *args: namespace["fit_with"](namespace["train_one_epoch"], *args)  # noqa: E731
    with pytest.raises(CheckFailed) as info:
        loop_grader.check_fit(fit, namespace["train_one_epoch"], namespace["evaluate"])
    assert codes_in(str(info.value))[0] == "fit-earlier-train", str(info.value)
    with pytest.raises(CheckFailed, match="fit raised an error: KeyError"):
        loop_grader.check_fit(fit)


def loops_that_train_or_score(module) -> list[str]:
    """Functions of ``module`` with a for loop that calls backward and step, or argmax: a correct answer's shape."""
    import ast
    import inspect

    found = []
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for loop in (n for n in ast.walk(node) if isinstance(n, ast.For)):
                called = {n.func.attr for n in ast.walk(loop) if isinstance(n, ast.Call)
                          and isinstance(n.func, ast.Attribute)}
                if {"backward", "step"} <= called or "argmax" in called:
                    found.append(node.name)
    return found


@pytest.mark.parametrize("module", [loop_grader, fit_grader], ids=lambda m: m.__name__)
def test_the_visible_checks_ship_no_correct_loop(module):
    """Issue 18: expected results are stored data (course expected), the stand-ins of fit train nothing."""
    assert loops_that_train_or_score(module) == []
    assert not [name for name in vars(module) if "reference" in name.lower()]


def test_fit_is_judged_with_stand_ins_that_return_made_up_numbers():
    """The history must hold what the stand-ins returned, so a fit that rounds or recomputes them fails."""
    assert len({fit_grader.fake_train_loss(call) for call in range(1, 6)}) == 5
    rounded = define(CANONICAL_FIT.replace('"loss": loss,', '"loss": round(loss, 3),'))
    with pytest.raises(CheckFailed, match=r"\[fit-values\]") as info:
        loop_grader.check_fit(rounded["fit"])
    assert "stand-ins" in str(info.value)


def test_a_crash_says_where_in_the_learners_code():
    source = mutate(CANONICAL_EVALUATE, "logits.argmax(dim=1)", "logits.argmax(dim=0)")
    message = message_of("evaluate", source)
    assert codes_in(message) == ["eval-crashed"]
    assert "RuntimeError raised at line" in message and "of evaluate" in message
    assert "run the lesson's example cell" not in message


def test_zero_grad_right_after_step_is_accepted_and_the_text_says_so():
    """Issue 17: lessons 06 and 07 agree that zeroing right after step() is a correct placement."""
    from course_tools.notebooks import read_notebook
    from tests.helpers import ROOT

    lesson = "07_epoch_loop_gpu"
    cells = {cell.id: " ".join(cell.source.split())
             for cell in read_notebook(ROOT / "solutions" / lesson / f"{lesson}.ipynb").cells}
    assert "Zeroing right after `optimizer.step()` instead is just as correct" in cells["device-text"]
    assert "zeroing right after the step is fine too" in cells["ex1-text"]
    after_step = [v for v in CORRECT if v.function == "train_one_epoch" and "zero_grad(" in v.source
                  and v.source.index("optimizer.step()") < v.source.rindex("zero_grad(")]
    assert after_step, "the zoo keeps a correct loop that zeroes right after the step"
    for variant in after_step:
        grade(variant)
    assert "or right after optimizer.step()" in BUGS["accumulated-gradients"].hint
