"""Lesson 01, Exercise 3 · ``batch_sizes``: its diagnoses, its visible check and its re-check probe.

:func:`check_batch_sizes` compares the learner's sizes with a real ``DataLoader``'s on seeded inputs
and names the pattern of a wrong answer; what a DataLoader gives, and what each typical mistake
gives, are stored data (``checks/expected/lesson01-batch-sizes.json``, computed on the grader's side).
:func:`probe` is the kernel's half of the grader's re-check.
"""

from __future__ import annotations

import ast
import inspect
import random
import textwrap
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import BatchSampler, DataLoader

from course_utils.checks import expected as stored
from course_utils.checks.learner import call_learner, counting_calls, error_text
from course_utils.checks.lesson01.common import LESSON, LOADER_SECTION
from course_utils.diagnoses import Exercise, ForbiddenCall, fail_with

EXERCISE = Exercise(LESSON, "ex3-tests", "Exercise 3 · Predict the batches")
DIAGNOSES = EXERCISE.diagnoses(
    ("batch-sizes-crashed", "batch_sizes raised an exception",
     "for any n_samples >= 0 and batch_size >= 1: full batches first, then the remainder unless drop_last.",
     "interface", LOADER_SECTION),
    ("batch-sizes-uses-loader", "batch_sizes builds a DataLoader or BatchSampler to count the batches",
     "not allowed here: the exercise is to predict the sizes without building a loader. Use divmod(n_samples, "
     "batch_size).", "not-allowed", LOADER_SECTION),
    ("batch-sizes-hard-coded", "batch_sizes gives the lesson's printed examples but not other inputs "
     "(hard-coded answers)",
     "not allowed: compute from the arguments. full, rest = divmod(n_samples, batch_size), then [batch_size] * "
     "full, plus [rest] if rest and not drop_last.", "not-allowed", LOADER_SECTION),
    ("batch-sizes-not-a-list", "batch_sizes does not return a list",
     "return a list of ints, e.g. [100, 100, ...], not a number, tuple, tensor or generator.", "interface",
     LOADER_SECTION),
    ("batch-sizes-floats", "the batch sizes are floats, not ints",
     "use integer division: n_samples // batch_size (or divmod), never n_samples / batch_size.", "dtypes",
     LOADER_SECTION),
    ("batch-sizes-remainder-dropped", "the smaller last batch is missing although drop_last=False",
     "add the remainder n_samples % batch_size as a last batch when it is not 0 and drop_last is False.", "data",
     LOADER_SECTION),
    ("batch-sizes-drop-last-ignored", "the smaller last batch is kept although drop_last=True",
     "with drop_last=True leave out the remainder.", "data", LOADER_SECTION),
    ("batch-sizes-drop-last-inverted", "drop_last works the wrong way round (kept when True, dropped when "
     "False)",
     "keep the remainder only if rest and not drop_last.", "data", LOADER_SECTION),
    ("batch-sizes-empty-last-batch", "a batch of size 0 is added when batch_size divides n_samples",
     "add the remainder only when it is not 0: [rest] if rest else [].", "data", LOADER_SECTION),
    ("batch-sizes-last-batch-full", "the last batch is as big as the others, although fewer samples are left "
     "for it",
     "the last batch holds n_samples % batch_size samples, not batch_size.", "data", LOADER_SECTION),
    ("batch-sizes-loop-stops-early", "the batch that starts at the last sample is missing: the loop stops one "
     "sample early",
     "loop over every start, range(0, n_samples, batch_size), not range(0, n_samples - 1, batch_size); or use "
     "divmod(n_samples, batch_size).", "data", LOADER_SECTION),
    ("batch-sizes-wrong", "the batch sizes differ from those of a real DataLoader",
     "full batches first, then the remainder unless drop_last; nothing at all for 0 samples.", "data",
     LOADER_SECTION),
)

# Library calls the answer must not make, found by the grader in the submitted source (course_tools.grade).
FORBIDDEN_CALLS = (
    ForbiddenCall("ex3-tests", "batch_sizes", ("torch.utils.data.DataLoader", "torch.utils.data.BatchSampler"),
                  "batch-sizes-uses-loader"),
)

# The examples the lesson prints for Exercise 3: a function that only knows these is hard-coded.
PRINTED_BATCH_CASES = ((1000, 100, False), (1000, 64, False), (1000, 64, True))


def seeded_batch_cases(seed: int) -> list[tuple[int, int, bool]]:
    """Seeded inputs: a remainder, an exact fit, fewer samples than one batch, no samples, batch size 1."""
    rng = random.Random(seed)
    size = rng.randrange(3, 50)
    cases = [(size * rng.randrange(2, 9) + rng.randrange(1, size), size, drop) for drop in (False, True)]
    size = rng.randrange(2, 40)
    cases += [(size * rng.randrange(1, 8), size, rng.random() < 0.5)]
    size = rng.randrange(5, 200)
    cases += [(rng.randrange(1, size), size, False), (rng.randrange(1, size), size, True)]
    cases += [(0, rng.randrange(1, 10), False), (rng.randrange(2, 9), 1, rng.random() < 0.5)]
    return cases


def _same_sizes(found: Any, expected: list[int]) -> bool:
    """Equal as a list of ints: an object that claims equality with anything does not pass."""
    return (type(found) is list and len(found) == len(expected) and all(type(v) is int for v in found)
            and found == expected)


def _mentions_printed_numbers(function: Callable[..., Any]) -> bool:
    """True if the function's source holds the printed examples' numbers (1000, 64, 40, 960) as literals."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return False
    constants = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)}
    return bool(constants & {1000, 64, 40, 960})


def batch_cases(seed: int) -> list[tuple[int, int, bool]]:
    """Every input of Exercise 3's check for ``seed``: the seeded ones, then the lesson's printed examples."""
    return seeded_batch_cases(seed) + list(PRINTED_BATCH_CASES)


def check_batch_sizes(batch_sizes: Callable[..., Any], *, seed: int = 0) -> None:
    """Exercise 3: ``batch_sizes`` against a real DataLoader on seeded inputs; name the pattern of any mistake.

    What a DataLoader gives for these inputs, and what each typical mistake gives, are stored data
    (``lesson01-batch-sizes``): ``{"expected": [...], "patterns": [[code, [...]], ...]}``, one list entry
    per case, the patterns most specific first; the printed examples' once, under "printed".
    """
    cases = batch_cases(seed)
    seeded, printed = stored.for_seed("lesson01-batch-sizes", seed), stored.load("lesson01-batch-sizes")["printed"]
    want = {"expected": seeded["expected"] + printed["expected"],
            "patterns": [[code, sizes + dict(printed["patterns"])[code]] for code, sizes in seeded["patterns"]]}
    right = dict(zip(cases, want["expected"]))
    with (counting_calls([DataLoader], ["__init__"]) as made,
          counting_calls([BatchSampler], ["__iter__", "__len__"]) as sampled):
        results = {case: call_learner(batch_sizes, *case) for case in cases}
    if made or sampled:
        fail_with("batch-sizes-uses-loader", expected="arithmetic on n_samples and batch_size",
                  found=f"{len(made)} DataLoader(s) built inside batch_sizes", subject="batch_sizes")

    def shown(case: tuple[int, int, bool]) -> str:
        return f"batch_sizes({case[0]}, {case[1]}, drop_last={case[2]})"

    wrong = [case for case in results if not _same_sizes(results[case][0], right[case])]
    if not wrong:
        return
    printed_ok = not any(case in wrong for case in PRINTED_BATCH_CASES) and _mentions_printed_numbers(batch_sizes)
    case = wrong[0]
    result, error = results[case]
    expected = f"{shown(case)} = {right[case]}"
    if error is not None:
        code = "batch-sizes-hard-coded" if printed_ok else "batch-sizes-crashed"
        fail_with(code, expected=expected, found=error_text(error), subject=shown(case))
    if not isinstance(result, list):
        fail_with("batch-sizes-not-a-list", expected=expected, found=f"a {type(result).__name__}: {result!r}"[:200],
                  subject=shown(case))
    if any(isinstance(v, float) for v in result):
        fail_with("batch-sizes-floats", expected=expected, found=repr(result)[:200], subject=shown(case))
    for code, sizes in want["patterns"]:  # most specific first, as stored
        if all(_same_sizes(results[c][0], pattern) for c, pattern in zip(cases, sizes)):
            fail_with(code, expected=expected, found=f"{result}", subject=shown(case))
    fail_with("batch-sizes-hard-coded" if printed_ok else "batch-sizes-wrong", expected=expected, found=f"{result}",
              subject=shown(case))


# --- the grader's re-check: the kernel's half (course_utils.verdict_probes) ----------------------------------

def batching_cases(seed: int) -> list[tuple[int, int, bool]]:
    """(n_samples, batch_size, drop_last) triples drawn from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    cases = []
    for _ in range(6):
        n = int(torch.randint(0, 300, (1,), generator=generator))
        size = int(torch.randint(1, 70, (1,), generator=generator))
        cases.append((n, size, bool(torch.randint(0, 2, (1,), generator=generator))))
    return cases


def batching_edge_cases(seed: int) -> list[tuple[int, int, bool]]:
    """The edge cases of Exercise 3 with sizes drawn from ``seed``: no samples, an exact fit, fewer samples
    than one batch, and batch_size=1."""
    generator = torch.Generator().manual_seed(seed + 1)
    size = 2 + int(torch.randint(0, 40, (1,), generator=generator))
    exact = size * (1 + int(torch.randint(0, 9, (1,), generator=generator)))
    return [(0, size, False), (exact, size, False), (exact, size, True), (size - 1, size, False),
            (size - 1, size, True), (size + 1, 1, True)]


def probe(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    """``batch_sizes`` on the drawn cases and the edge cases: lists of ints, or the names of what came instead."""
    answers = [ns["batch_sizes"](n, size, drop) for n, size, drop in batching_cases(seed) + batching_edge_cases(seed)]
    # anything but a list of ints goes back as the names of its types, which the judge rejects
    return {"sizes": [[s if type(s) is int else f"a {type(s).__name__}" for s in answer] if type(answer) is list
                      else f"a {type(answer).__name__}" for answer in answers]}
