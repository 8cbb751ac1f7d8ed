"""Lesson 08's helpers and grader without a notebook: the distributed launcher, the catalogue, the checks,
and what the re-check must also refuse or accept beyond the zoo (tests/zoos/lesson08.py, run by
tests/test_zoos.py and tests/test_rechecks.py).

The distributed tests start real gloo process groups on 127.0.0.1 (two ranks on this CPU) and
bound every wait, so a broken run fails with a message instead of hanging the suite.
"""

from __future__ import annotations

import contextlib
import math
import time

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from course_tools.grade.verdict import judge
from course_utils import distributed
from course_utils.checks import lesson08
from course_utils.checks.core import CheckFailed
from course_utils.checks.lesson08 import common, ex4, stored
from course_utils.diagnoses import catalogue, codes_in
from course_utils.distributed import (
    DDPConfig,
    DistributedRunError,
    DistributedStartError,
    run_distributed,
    torchrun,
    write_script,
)
from course_utils.recipe import default_model, scaled_splits
from course_utils.verdict_probes import MARKER, encode, probe_line, probes_for
from tests.helpers import solution_namespace
from tests.zoos.lesson08 import ACCUMULATED, AMP, DDP_LOOP, FIT_SCHEDULED

LESSON = "08_loop_at_scale"
SEEDS = [10_000 + 7919 * i for i in range(20)]

NAMES = dict(torch=torch, nn=nn, dist=dist, DDP=DDP, DataLoader=DataLoader, DistributedSampler=DistributedSampler,
             contextlib=contextlib)


def define(source: str, name: str):
    namespace = dict(NAMES)
    exec(source, namespace)  # noqa: S102 - the zoo's own sources
    return namespace[name]


# --- the launcher -----------------------------------------------------------------------------

def _sum_of_ranks(rank, world_size):
    value = torch.tensor([float(rank + 1)])
    dist.all_reduce(value)
    print(f"rank {rank} of {world_size}")
    return value.item()


def test_run_distributed_returns_each_ranks_value_and_output():
    results = run_distributed(_sum_of_ranks, world_size=2, backend="gloo", timeout=60)
    assert [r.value for r in results] == [3.0, 3.0]
    assert [r.output for r in results] == ["rank 0 of 2\n", "rank 1 of 2\n"]
    assert not dist.is_initialized(), "the parent never joins the group"


def _fails_on_rank_one(rank, world_size):
    if rank == 1:
        raise ValueError("rank one is broken")
    dist.barrier()


def test_a_failing_rank_stops_the_run_at_once_with_its_error():
    start = time.monotonic()
    with pytest.raises(DistributedRunError, match="rank one is broken"):
        run_distributed(_fails_on_rank_one, world_size=2, backend="gloo", timeout=60, collective_timeout=20)
    assert time.monotonic() - start < 15, "the waiting rank must be stopped, not left to its collective timeout"


def _sleeps(rank, world_size):
    time.sleep(60)


def test_a_hanging_run_is_stopped_at_its_deadline():
    start = time.monotonic()
    with pytest.raises(DistributedRunError, match="did not finish within 3 s"):
        run_distributed(_sleeps, world_size=2, backend="gloo", timeout=3)
    assert time.monotonic() - start < 15


def _not_written(rank, world_size):
    raise NotImplementedError()


def test_an_unwritten_exercise_fails_like_in_the_notebook():
    with pytest.raises(NotImplementedError):
        run_distributed(_not_written, world_size=2, backend="gloo", timeout=30)


def _meets_late(original):
    def meet(rank, *args):
        if rank == 1:
            time.sleep(3)  # a rank that a busy machine schedules late
        return original(rank, *args)
    return meet


def test_ranks_that_meet_late_are_waited_for_beyond_the_collective_timeout(monkeypatch):
    monkeypatch.setattr(distributed, "_meet", _meets_late(distributed._meet))  # the forked ranks inherit it
    results = run_distributed(_sum_of_ranks, world_size=2, backend="gloo", timeout=30, collective_timeout=1,
                              rendezvous_timeout=60)
    assert [r.value for r in results] == [3.0, 3.0]


def _cannot_meet(rank, *args):
    raise dist.DistStoreError("wait timeout after 30000ms, keys: /arrived/1")


def test_ranks_that_cannot_start_are_the_machines_problem_and_are_tried_twice(monkeypatch):
    attempts = []
    run_once = distributed._run_once
    monkeypatch.setattr(distributed, "_meet", _cannot_meet)
    monkeypatch.setattr(distributed, "_run_once", lambda *args: attempts.append(1) or run_once(*args))
    with pytest.raises(DistributedStartError) as failure:
        run_distributed(_sum_of_ranks, world_size=2, backend="gloo", timeout=30, start_attempts=2)
    message = str(failure.value)
    assert message.startswith("the 2 processes could not start: ") and "DistStoreError: wait timeout" in message
    assert "not of the code" in message and "tried 2 times" in message and len(attempts) == 2
    assert failure.value._render_traceback_() == [f"DistributedStartError: {message}"]


def _never_arrives(rank, *args):
    time.sleep(60)  # a rank the machine never schedules in time


def test_ranks_that_never_meet_are_stopped_at_the_rendezvous_deadline(monkeypatch):
    monkeypatch.setattr(distributed, "_meet", _never_arrives)
    start = time.monotonic()
    with pytest.raises(DistributedStartError, match="could not start: .*did not meet within 2 s"):
        run_distributed(_sum_of_ranks, world_size=2, backend="gloo", timeout=30, rendezvous_timeout=2)
    assert time.monotonic() - start < 20


def test_the_graded_ddp_check_retries_and_never_blames_the_learner_for_a_start_failure(monkeypatch):
    monkeypatch.setattr(distributed, "_meet", _cannot_meet)
    with pytest.raises(DistributedStartError, match="could not start.*tried 2 times"):
        lesson08.check_ddp(define(DDP_LOOP, "train_ddp"))


def test_torchrun_runs_a_written_script_on_two_gloo_ranks(tmp_path):
    train_ddp = define(DDP_LOOP, "train_ddp")
    train_ddp.__module__ = "__main__"
    source_file = tmp_path / "solution.py"
    source_file.write_text(DDP_LOOP.strip() + "\n")
    namespace = {}
    exec(compile(source_file.read_text(), str(source_file), "exec"), {**NAMES, "__name__": "zoo"}, namespace)
    script = write_script(tmp_path / "script.py", [namespace["train_ddp"]], imports="""
        import contextlib, os
        import torch
        import torch.distributed as dist
        from torch import nn
        from torch.nn.parallel import DistributedDataParallel as DDP
        from torch.utils.data import DataLoader
        from torch.utils.data.distributed import DistributedSampler
        from course_utils.distributed import DDPConfig
        from course_utils.recipe import default_model, scaled_splits
    """, main="""
        rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        dist.init_process_group("gloo")
        try:
            train_set, _ = scaled_splits()
            config = DDPConfig(epochs=1, checkpoint_path="checkpoint.pt")
            train_ddp(rank, world_size, default_model(), train_set, nn.CrossEntropyLoss(), torch.device("cpu"), config)
        finally:
            dist.destroy_process_group()
    """)
    completed = torchrun(script, nproc_per_node=2, cwd=tmp_path, timeout=240)
    assert completed.stdout.count("epoch 1: loss") == 1, completed.stdout  # rank 0 alone prints
    assert (tmp_path / "checkpoint.pt").is_file()


# --- the lesson's claim: 2 ranks x 50 == 1 process x 100 -------------------------------------------

def _train(rank, world_size, batch_size, seed, train_ddp, folder):
    train_set, _ = scaled_splits()
    config = DDPConfig(epochs=2, batch_size=batch_size, seed=seed, accumulation_steps=2,
                       checkpoint_path=f"{folder}/w{world_size}.pt")
    train_ddp(rank, world_size, default_model(), train_set, nn.CrossEntropyLoss(), torch.device("cpu"), config)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_ranks_of_fifty_end_where_one_process_of_a_hundred_ends(seed, tmp_path):
    train_ddp = define(DDP_LOOP, "train_ddp")
    run_distributed(_train, 2, (50, seed, train_ddp, tmp_path), backend="gloo", timeout=120)
    run_distributed(_train, 1, (100, seed, train_ddp, tmp_path), backend="gloo", timeout=120)
    two, one = torch.load(tmp_path / "w2.pt"), torch.load(tmp_path / "w1.pt")
    gap = max((two["model"][name] - one["model"][name]).abs().max().item() for name in one["model"])
    # The grader's tolerance (atol 2e-5) is about 100 times what this measures (about 2e-7).
    assert gap < 2e-6


# --- the catalogue and the checks -------------------------------------------------------------

def test_the_catalogue_is_registered_and_placed_in_the_lessons_exercises():
    rows = lesson08.CATALOGUE
    assert all(row.lesson == "08_loop_at_scale" for row in rows)
    assert {row.exercise for row in rows} == {"ex1-tests", "ex2-tests", "ex3-tests", "ex4-tests"}
    assert all(catalogue()[row.code] is row for row in rows)


@pytest.mark.parametrize("check, source, name, scenario", [
    *[(lesson08.check_accumulation, ACCUMULATED, "train_one_epoch_accumulated", s) for s in stored.ACCUMULATION_SCENARIOS],
    *[(lesson08.check_fit_scheduled, FIT_SCHEDULED, "fit_scheduled", s) for s in stored.FIT_SCENARIOS],
    *[(lesson08.check_amp, AMP, "train_one_epoch_amp", dict(seed=seed)) for seed in (0, 21)],
], ids=lambda value: stored.key(value) if isinstance(value, dict) else None)
def test_the_solutions_pass_on_every_stored_scenario(check, source, name, scenario):
    check(define(source, name), **scenario)


def test_a_check_asked_for_inputs_without_stored_results_says_which_it_has():
    with pytest.raises(ValueError, match="expected results for these inputs only: .*seed=3"):
        lesson08.check_accumulation(define(ACCUMULATED, "train_one_epoch_accumulated"), seed=77)


def test_the_ddp_solution_passes_and_a_crash_is_reported_not_blamed():
    lesson08.check_ddp(define(DDP_LOOP, "train_ddp"))

    def crashes(rank, world_size, model, dataset, criterion, device, config):
        raise KeyError("oops")

    with pytest.raises(CheckFailed) as failure:
        lesson08.check_ddp(crashes)
    assert "KeyError" in str(failure.value) and codes_in(str(failure.value)) == []


def test_accumulation_with_a_whole_number_of_groups_has_no_partial_group():
    lesson08.check_accumulation(define(ACCUMULATED, "train_one_epoch_accumulated"), seed=0, n_samples=200,
                                batch_size=25, accumulation_steps=4)
    assert math.ceil(200 / 25) % 4 == 0


def test_the_benchmark_measures_every_cpu_row():
    import importlib.util

    from tests.helpers import ROOT

    spec = importlib.util.spec_from_file_location("loop_at_scale", ROOT / "benchmarks" / "loop_at_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.measure(samples=600, repeat=1)
    cpu_rows = {"1 process, CPU (batch 100)", "accumulation, CPU (4 x 25)", "bf16 autocast, CPU (batch 100)",
                "2 DDP ranks, CPU gloo (2 x 50)"}
    assert cpu_rows <= set(results) and all(value > 0 for value in results.values())


# --- the re-check beyond the zoo --------------------------------------------------------------------

@pytest.fixture(scope="module")
def solution() -> dict:
    return solution_namespace(LESSON)


def printed(namespace: dict, grade_id: str, seed: int) -> str:
    """What the kernel would print for one probe (as course_utils.verdict_probes.emit does)."""
    return probe_line(LESSON, grade_id, namespace, seed) + "\n"


def test_a_wrong_type_or_a_forged_value_fails(solution):
    seed = SEEDS[1]
    returns_tensor = dict(solution)
    returns_tensor["train_one_epoch_accumulated"] = (
        lambda *args: torch.tensor(solution["train_one_epoch_accumulated"](*args)))
    assert not judge(LESSON, "ex1-tests", seed, printed(returns_tensor, "ex1-tests", seed)).passed
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
    network = common.Task.network

    def nudged(task):
        net = network(task)
        with torch.no_grad():
            for parameter in net.parameters():
                parameter.mul_(1 + 1e-6 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(1)))
        return net

    for seed in SEEDS[:8]:
        with monkeypatch.context() as patch:
            patch.setattr(common.Task, "network", nudged)
            text = printed(solution, "ex3-tests", seed)
        result = judge(LESSON, "ex3-tests", seed, text)
        assert result.passed, result.reason


def test_the_scenarios_are_small_and_leave_a_shorter_last_group():
    for seed in SEEDS:
        case = common.verdict_case(seed)
        n_batches = -(-case.task.n_samples // case.task.batch_size)
        assert n_batches % case.accumulation_steps and case.task.n_samples % case.task.batch_size
        assert 0 <= case.inf_batch < n_batches and case.task.n_samples < 600
        task = ex4.verdict_ddp_task(seed)
        per_rank = -(-task.n_samples // 2)
        assert -(-per_rank // task.batch_size) % task.accumulation_steps


@pytest.mark.notebook
def test_the_lessons_folder_is_printed_and_removed_when_the_kernel_stops(tmp_path):
    """The setup cell says where checkpoints and the torchrun script go; nothing is left after the kernel."""
    import re
    from pathlib import Path

    from nbclient import NotebookClient
    from nbformat.v4 import new_notebook

    from course_tools.notebooks import read_notebook
    from tests.helpers import ROOT

    source = read_notebook(ROOT / "solutions" / "08_loop_at_scale" / "08_loop_at_scale.ipynb")
    setup = next(cell for cell in source.cells if cell.id == "setup")
    notebook = new_notebook(cells=[setup])
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(output.get("text", "") for output in setup.outputs)
    match = re.search(r"go to (\S*lesson08-\S+) \(removed when the kernel stops\)", printed)
    assert match, printed
    assert not Path(match.group(1)).exists(), "the lesson's folder outlived its kernel"
