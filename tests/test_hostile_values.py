"""Hostile values and text never hurt the grader (issue 18, item 5), runnable anywhere (no root, no sandbox).

Judges run in a limited fork; received values are described in bounded text; error outputs from a
kernel are cut and counted against the output budgets; the instructor's terminal gets printable
text only; one student's failing step is that student's row.
"""

from __future__ import annotations

import base64
import io
import time

import torch
from nbformat.v4 import new_notebook

from course_tools.grade import kernel
from course_tools.grade.bounded import describe_error, expanded_size, short_repr, short_text
from course_tools.grade.judge_worker import MAX_EXPANDED_NODES, JudgeWorker, LimitedWorker
from course_tools.grade.report import student_table, summary
from course_tools.grade.results import ExerciseResult, Status, SubmissionResult
from course_utils.verdict_probes import MARKER

LESSON = "01_dataloader_batching"


def list_bomb(levels: int = 45) -> list:
    """A DAG of shared lists: a few hundred bytes pickled, 2^levels leaves when printed."""
    bomb: list = []
    for _ in range(levels):
        bomb = [bomb, bomb]
    return bomb


def printed_values(values: dict, grade_id: str = "ex3-tests") -> str:
    buffer = io.BytesIO()
    torch.save(values, buffer)
    return f"{MARKER} {grade_id} {base64.b64encode(buffer.getvalue()).decode()}\n"


# --- bounded text --------------------------------------------------------------------------

def test_a_list_bomb_is_described_and_measured_in_bounded_time():
    start = time.perf_counter()
    text = short_repr({"error": list_bomb()}, 80)
    size = expanded_size(list_bomb(), cap=10**6)
    assert time.perf_counter() - start < 1.0
    assert len(text) <= 80 and text.startswith("{'error': [[[")
    assert size == 10**6 + 1
    assert expanded_size([[1, 2], (3, {"a": 4})]) == 9  # 3 containers + 1 dict + keys/values + leaves


def test_short_repr_of_ordinary_values_reads_like_repr():
    assert short_repr([1, 2.5, None, "a"]) == "[1, 2.5, None, 'a']"
    assert short_repr({"loss": 0.5}) == "{'loss': 0.5}"
    assert short_repr(torch.zeros(2, 3)) == "tensor(2×3, float32)"
    assert short_repr(10**100000) == "<int of 332193 bits>"
    cycle: list = []
    cycle.append(cycle)
    assert expanded_size(cycle, cap=10) == 11 and len(short_repr(cycle, 20)) <= 20


def test_errors_and_kernel_text_are_described_without_str_of_their_arguments():
    assert describe_error(KeyError(list_bomb()), 60).startswith("KeyError: ([[[")
    assert len(describe_error(ValueError("x" * 10**6), 60)) <= 60
    assert short_text("\x1b]0;title\x07Name\x1b[2J" + "E" * 10**6, 40).startswith("Name")


# --- judges in a limited worker ------------------------------------------------------------

def test_a_repr_bomb_fails_one_cell_fast_and_a_correct_answer_beside_it_is_still_judged():
    from course_tools.grade.judges.lesson01 import JUDGES  # noqa: F401 - the lesson has judges

    with JudgeWorker(seconds=60) as judges:
        start = time.perf_counter()
        bomb = judges.judge(LESSON, "ex3-tests", 12345, printed_values({"error": list_bomb()}))
        took = time.perf_counter() - start
        unreadable = judges.judge(LESSON, "ex3-tests", 12345, "nothing")
    assert not bomb.passed and str(MAX_EXPANDED_NODES) in bomb.reason and took < 30
    assert not unreadable.passed and "no readable values" in unreadable.reason


def _hog_memory() -> int:
    blocks = []
    while True:
        blocks.append(bytearray(2**27))


def _sleep() -> None:
    time.sleep(30)


def _answer() -> int:
    return 42


def test_a_judgement_past_its_limits_fails_only_itself():
    with LimitedWorker(extra_bytes=2**29, seconds=5) as worker:
        assert worker.run(_hog_memory) == (False, "it went past its memory limit")
        assert worker.run(_sleep) == (False, "it took more than 5 s")
        assert worker.run(_answer) == (True, 42), "a fresh worker takes the next one"


# --- error outputs from a kernel: cut, counted, capped -------------------------------------

def fresh_client() -> kernel._CappedClient:
    client = kernel._CappedClient(new_notebook())
    client.reset_execution_trackers()
    client.clear_before_next_output = False  # as nbclient sets it when a cell starts
    return client


def error_msg(name: str = "ValueError", value: str = "bad", lines: int = 3) -> dict:
    return {"msg_type": "error", "parent_header": {}, "header": {"msg_type": "error"}, "content": {"ename": name, "evalue": value, "traceback": ["line"] * lines}}


def test_a_flood_of_error_outputs_keeps_few_and_counts_them():
    client = fresh_client()
    client.start_cell()
    outs: list = []
    for _ in range(600):
        client.output(outs, error_msg(value="v" * 40_000, lines=100), None, 0)
    assert len(outs) == client.errors_per_cell
    assert sum(len(str(o)) for o in outs) < 300_000
    assert client._used_total > 0, "error outputs count against the notebook's budget"


def test_an_error_past_the_budget_still_fails_its_cell_in_short():
    client = fresh_client()
    client.notebook_budget = 100
    client._used_total = 1000  # an earlier cell used the notebook's budget up
    client.start_cell()
    outs: list = []
    client.output(outs, error_msg("CheckFailed", "\n✗ wrong [code]\n" + "x" * 5000), None, 0)
    client.output(outs, error_msg(), None, 0)
    assert len(outs) == 1 and outs[0]["ename"] == "CheckFailed", "a cell that raised never looks as if it passed"
    assert len(outs[0]["evalue"]) <= 300 and len(outs[0]["traceback"]) == 1


def test_a_huge_or_escaped_exception_name_is_cut_and_made_printable():
    client = fresh_client()
    client.start_cell()
    outs: list = []
    client.output(outs, error_msg("\x1b]0;owned\x07\x1b[2J" + "E" * 20_000_000, "line one\n\x1b[31mred\udc80"), None, 0)
    [error] = outs
    assert error["ename"] == "E" * kernel.ENAME_CHARS
    assert error["evalue"] == "line one\nred\ufffd", "lines stay; escapes and controls go; a surrogate is replaced"


def test_lone_surrogates_in_any_kernel_message_are_replaced():
    client = fresh_client()
    client.start_cell()
    outs: list = []
    client.output(outs, {"msg_type": "stream", "parent_header": {}, "header": {"msg_type": "stream"}, "content": {"name": "stdout", "text": "a\ud800b"}}, None, 0)
    assert outs[0]["text"] == "a\ufffdb"


# --- the instructor's terminal ---------------------------------------------------------------

def test_escapes_in_kernel_text_never_reach_the_terminal():
    escape = "\x1b]0;owned\x07\x1b[2J\x1b[H\x1b[31m"
    message = f"{escape}Boom{'E' * 10_000}: value{escape}"
    ok = SubmissionResult("mallory", LESSON, Status.OK, 0.0, 9.0,
                          (ExerciseResult("ex1-tests", "Exercise 1", 0.0, 3.0, (), message),))
    invalid = SubmissionResult("eve", LESSON, Status.TAMPERED, 0.0, 9.0, (), reason=escape + "forged")
    text = summary([ok, invalid], LESSON, __import__("pathlib").Path("/tmp"))
    assert "\x1b" not in text and "\x07" not in text
    assert max(len(line) for line in student_table([ok, invalid]).splitlines()) < 140


def test_a_step_that_fails_on_one_notebook_is_that_students_row(monkeypatch):
    from types import SimpleNamespace

    from course_tools.grade import pipeline

    def explode(root, lesson, item, repairer):
        raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")

    monkeypatch.setattr(pipeline, "prepare", explode)
    prepared = pipeline._prepare_one(None, None, SimpleNamespace(student="mallory"), None)
    assert prepared.student == "mallory" and prepared.notebook is None
    assert prepared.problem.startswith("preparing this notebook failed: UnicodeEncodeError")
