"""Lesson 08's re-check without a kernel: probes (course_utils.checks.lesson08.PROBES) and judges
(course_tools.grade.judges.lesson08) on seeds drawn as `course grade` would.

The solution's functions and every correct loop of the zoo pass; the stub and the zoo's buggy loops
whose mistake changes values fail. Exercise 4 runs the per-rank function on two real gloo ranks.
"""

from __future__ import annotations

import ast
import warnings

import pytest
import torch

from course_tools.grade.verdict import draw_seeds, judge, judges_for
from course_tools.notebooks import read_notebook
from course_utils.checks import lesson08
from course_utils.verdict_probes import MARKER, encode, probe_line, probes_for
from tests.helpers import ROOT, student_answer
from tests.zoo_lesson08 import BUGGY, CORRECT, DDP_LOOP, GRADE_CELL, mutate, variant

LESSON = "08_loop_at_scale"
GRADE_IDS = ("ex1-tests", "ex2-tests", "ex3-tests", "ex4-tests")
SEEDS = [10_000 + 7919 * i for i in range(20)]
ZOO_SEEDS = SEEDS[:6]
FUNCTIONS = {grade_id: function for function, grade_id in GRADE_CELL.items()}
# Mistakes whose effect values show (those that only change who prints, saves or synchronises when do not).
VALUE_BUGS = {
    "train_one_epoch_accumulated": ["loss-not-divided", "last-group-dropped", "steps-every-micro-batch",
                                    "zero-grad-every-micro-batch", "never-zeroed", "reports-divided-loss",
                                    "off-by-one-step", "zero-grad-before-step"],
    "fit_scheduled": ["clip-after-step", "no-clipping", "clip-to-a-constant", "batch-schedule-stepped-per-epoch",
                      "epoch-schedule-stepped-per-batch", "scheduler-before-optimizer", "scheduler-never-stepped",
                      "clip-by-value", "parameters-generator-used-up", "zero-grad-before-step"],
    "train_one_epoch_amp": ["clips-scaled-gradients", "scaler-step-then-optimizer-step",
                            "optimizer-step-instead-of-scaler", "no-autocast", "autocast-default-dtype",
                            "backward-on-unscaled-loss", "no-scaler-update", "loss-outside-autocast",
                            "update-skipped-on-overflow", "update-skipped-on-overflow-no-clip"],
    "train_ddp": ["no-set-epoch", "no-sampler", "loss-not-divided", "last-group-dropped", "metrics-not-reduced",
                  "sample-count-not-reduced", "not-wrapped", "sampler-shuffle-off", "no-sync-on-every-micro-batch",
                  "sync-on-first-micro-batch", "loader-shuffle-and-sampler", "optimizer-default-settings"],
}


def setup_imports(cell_source: str) -> str:
    """Only the import statements of the lesson's setup cell (no device picking, no folders, no printing)."""
    tree = ast.parse(cell_source)
    return "\n".join(ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom)))


@pytest.fixture(scope="module")
def imports() -> str:
    source = read_notebook(ROOT / "solutions" / LESSON / f"{LESSON}.ipynb")
    return setup_imports(next(cell.source for cell in source.cells if cell.id == "setup"))


def namespace_with(imports: str, *sources: str) -> dict:
    namespace: dict = {"__name__": "__main__"}
    exec(imports, namespace)  # noqa: S102 - the lesson's own setup imports
    for source in sources:
        exec(source, namespace)  # noqa: S102 - the lesson's solutions and the zoo's loops
    return namespace


@pytest.fixture(scope="module")
def solution(imports) -> dict:
    source = read_notebook(ROOT / "solutions" / LESSON / f"{LESSON}.ipynb")
    answers = [student_answer(cell) for cell in source.cells
               if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution")
               and cell.id != "quiz-answers"]
    return namespace_with(imports, *answers)


def printed(namespace: dict, grade_id: str, seed: int) -> str:
    """What the kernel would print for one probe (as course_utils.verdict_probes.emit does)."""
    return probe_line(LESSON, grade_id, namespace, seed) + "\n"


def verdict(namespace: dict, grade_id: str, seed: int):
    return judge(LESSON, grade_id, seed, printed(namespace, grade_id, seed))


def test_every_grade_cell_has_a_probe_and_a_judge():
    source = read_notebook(ROOT / "solutions" / LESSON / f"{LESSON}.ipynb")
    graded = {cell.metadata.nbgrader.grade_id for cell in source.cells
              if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade")}
    assert graded == set(GRADE_IDS)
    assert set(probes_for(LESSON)) == set(judges_for(LESSON)) == set(GRADE_IDS) == set(draw_seeds(LESSON))


@pytest.mark.parametrize("grade_id", GRADE_IDS)
def test_the_solution_passes_on_every_seed(solution, grade_id):
    failures = {seed: result.reason for seed in SEEDS if not (result := verdict(solution, grade_id, seed)).passed}
    assert not failures


# Styles the lesson's check accepts beyond the zoo's: a sampler that drops the odd sample instead of padding,
# its default seed, and epochs counted from 0.
MORE_CORRECT = [
    variant("train_ddp", "drop-last-default-seed-epoch-from-0",
            mutate(mutate(DDP_LOOP, "shuffle=True, seed=config.seed)", "shuffle=True, drop_last=True)"),
                   "sampler.set_epoch(epoch)", "sampler.set_epoch(epoch - 1)")),
]


@pytest.mark.parametrize("variant", CORRECT + MORE_CORRECT, ids=lambda v: f"{v.function}-{v.name}")
def test_every_correct_zoo_loop_passes(imports, variant):
    namespace = namespace_with(imports, variant.source)
    grade_id = GRADE_CELL[variant.function]
    failures = {seed: result.reason for seed in ZOO_SEEDS if not (result := verdict(namespace, grade_id, seed)).passed}
    assert not failures


@pytest.mark.parametrize("grade_id", GRADE_IDS)
def test_the_stub_fails(imports, grade_id):
    function = FUNCTIONS[grade_id]
    namespace = namespace_with(imports, f"def {function}(*args, **kwargs):\n    raise NotImplementedError()\n")
    result = verdict(namespace, grade_id, SEEDS[0])
    assert not result.passed and "NotImplementedError" in result.reason


def test_the_zoo_names_the_buggy_loops_judged_here():
    names = {(v.function, v.name) for v in BUGGY}
    assert {(function, name) for function, bugs in VALUE_BUGS.items() for name in bugs} <= names


@pytest.mark.parametrize("variant", [v for v in BUGGY if v.name in VALUE_BUGS[v.function]],
                         ids=lambda v: f"{v.function}-{v.name}")
def test_buggy_loops_whose_values_change_fail(imports, variant):
    namespace = namespace_with(imports, variant.source)
    grade_id = GRADE_CELL[variant.function]
    seeds = [seed for seed in SEEDS if not _right_for(variant, seed)][:3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # PyTorch warns about a scheduler stepped before the optimizer
        passed = [seed for seed in seeds if verdict(namespace, grade_id, seed).passed]
    assert len(seeds) == 3 and not passed


def _right_for(variant, seed: int) -> bool:
    """A loop that hard-codes float16 is right where the scenario asks for float16."""
    return variant.name == "autocast-default-dtype" and lesson08.verdict_case(seed).amp_dtype == torch.float16


def test_a_wrong_type_or_a_forged_value_fails(solution):
    seed = SEEDS[1]
    returns_tensor = dict(solution)
    returns_tensor["train_one_epoch_accumulated"] = (
        lambda *args: torch.tensor(solution["train_one_epoch_accumulated"](*args)))
    assert not verdict(returns_tensor, "ex1-tests", seed).passed
    values = probes_for(LESSON)["ex3-tests"](solution, seed)
    forged = {**values, "scale": values["scale"] * 2}
    result = judge(LESSON, "ex3-tests", seed, f"{MARKER} ex3-tests {encode(forged)}")
    assert not result.passed and "scaler.update()" in result.reason
    values = probes_for(LESSON)["ex2-tests"](solution, seed)
    values["epoch"]["parameters"] = [p + 1e-3 for p in values["epoch"]["parameters"]]
    result = judge(LESSON, "ex2-tests", seed, f"{MARKER} ex2-tests {encode(values)}")
    assert not result.passed and "interval='epoch'" in result.reason


def test_mixed_precision_tolerates_bfloat16_roundings_of_another_machine(solution, monkeypatch):
    """Start parameters 1e-6 apart flip some bfloat16 roundings, as another CPU's float32 sums can: still a pass."""
    network = lesson08._Task.network

    def nudged(task):
        net = network(task)
        with torch.no_grad():
            for parameter in net.parameters():
                parameter.mul_(1 + 1e-6 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(1)))
        return net

    for seed in SEEDS[:8]:
        with monkeypatch.context() as patch:
            patch.setattr(lesson08._Task, "network", nudged)
            text = printed(solution, "ex3-tests", seed)
        result = judge(LESSON, "ex3-tests", seed, text)
        assert result.passed, result.reason


def test_the_scenarios_are_small_and_leave_a_shorter_last_group():
    for seed in SEEDS:
        case = lesson08.verdict_case(seed)
        n_batches = -(-case.task.n_samples // case.task.batch_size)
        assert n_batches % case.accumulation_steps and case.task.n_samples % case.task.batch_size
        assert 0 <= case.inf_batch < n_batches and case.task.n_samples < 600
        task = lesson08.verdict_ddp_task(seed)
        per_rank = -(-task.n_samples // 2)
        assert -(-per_rank // task.batch_size) % task.accumulation_steps


@pytest.mark.parametrize("name", ["no-scaler-update", "update-skipped-on-overflow", "update-skipped-on-overflow-no-clip"])
def test_a_missing_scaler_update_is_named_not_a_raw_pytorch_error(imports, name):
    namespace = namespace_with(imports, next(v for v in BUGGY if v.name == name).source)
    result = verdict(namespace, "ex3-tests", SEEDS[0])
    assert not result.passed and "[amp-no-update]" in result.reason, result.reason
