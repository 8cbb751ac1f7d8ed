"""Synthetic classes with known mistakes, as ``course grade`` would leave them, for the report's tests.

Lesson 07's mistakes use its real catalogue (``course_utils.checks.lesson07.CATALOGUE``) and its real
failure messages (``format_failure``). Lesson 08's catalogue is still being written, so the
cross-lesson class uses two made-up lesson 08 diagnoses (:data:`LESSON08`), passed to the report
as its catalogue: the tests do not depend on another lesson's work in progress.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from course_tools.grade.results import ExerciseResult, Status, SubmissionResult
from course_utils.diagnoses import Diagnosis, by_code, format_failure
from course_utils.checks.lesson07 import CATALOGUE as LESSON07_CATALOGUE

L07 = "07_epoch_loop_gpu"
L08 = "08_loop_at_scale"
EXERCISES = {
    L07: (("ex1-tests", "Exercise 1 · train_one_epoch", 4.0), ("ex2-tests", "Exercise 2 · evaluate", 3.0),
          ("ex3-tests", "Exercise 3 · fit", 3.0)),
    L08: (("ex1-tests", "Exercise 1 · to_device", 5.0), ("ex2-tests", "Exercise 2 · sampler", 5.0)),
}
LESSON08 = (
    Diagnosis("test-model-not-moved", "the model was not moved to the device", "call model.to(device) once.",
              "device", lesson=L08, exercise="ex1-tests", section="2 · Devices"),
    Diagnosis("test-sampler-epoch", "the sampler's epoch was never set", "call sampler.set_epoch(epoch).",
              "distributed", lesson=L08, exercise="ex2-tests", section="3 · Samplers"),
)
CRASH = "NameError: name 'lossx' is not defined\n  line 3"  # a failure that names no diagnosis

Mistakes = Mapping[str, tuple[str, ...] | str]  # grade id -> codes (main first), or a message naming none


def diagnoses() -> dict[str, Diagnosis]:
    """The catalogue the tests report with: lesson 07's real one and the made-up lesson 08 rows."""
    return by_code((*LESSON07_CATALOGUE, *LESSON08))


def message(codes: tuple[str, ...], catalogue: Mapping[str, Diagnosis]) -> str:
    """The failure message a check raises for ``codes`` (unknown codes get a message of the same shape)."""
    known = [catalogue.get(code) or Diagnosis(code, code, "gone", "interface") for code in codes]
    return format_failure(known[0], expected=1, found=2, subject="check", also=known[1:])


def submission(student: str, lesson: str, mistakes: Mistakes | None = None, *, status: Status = Status.OK,
               reason: str = "", repairs: tuple[str, ...] = (), catalogue: Mapping[str, Diagnosis] | None = None,
               ) -> SubmissionResult:
    """One student's result: full points except where ``mistakes`` names a failure (then zero points)."""
    catalogue = diagnoses() if catalogue is None else catalogue
    maximum = sum(points for _, _, points in EXERCISES[lesson])
    if status is not Status.OK:
        return SubmissionResult(student, lesson, status, 0.0, maximum, (), reason, repairs, 1.0)
    exercises = []
    for grade_id, title, points in EXERCISES[lesson]:
        mistake = (mistakes or {}).get(grade_id)
        if mistake is None:
            exercises.append(ExerciseResult(grade_id, title, points, points))
        elif isinstance(mistake, str):
            exercises.append(ExerciseResult(grade_id, title, 0.0, points, (), mistake))
        else:
            exercises.append(ExerciseResult(grade_id, title, 0.0, points, mistake, message(mistake, catalogue)))
    return SubmissionResult(student, lesson, status, sum(e.points for e in exercises), maximum, tuple(exercises),
                            reason, repairs, 2.0)


def lesson07_class() -> list[SubmissionResult]:
    """20 graded students of lesson 07 with known mistakes, and 3 submissions that could not be graded.

    ex1: accumulated-gradients s01-s07 (s03 also names graph-kept), inputs-not-moved s08-s10, a crash s11;
    ex2: eval-mode s01 s02 s12 s13, eval-grad s14 s15; ex3: no-convergence s01 s16; s17-s20 full marks.
    """
    mistakes: dict[str, dict[str, tuple[str, ...] | str]] = {f"s{n:02d}": {} for n in range(1, 21)}
    for n in range(1, 8):
        mistakes[f"s{n:02d}"]["ex1-tests"] = ("accumulated-gradients",)
    mistakes["s03"]["ex1-tests"] = ("accumulated-gradients", "graph-kept")
    for n in (8, 9, 10):
        mistakes[f"s{n:02d}"]["ex1-tests"] = ("inputs-not-moved",)
    mistakes["s11"]["ex1-tests"] = CRASH
    for n in (1, 2, 12, 13):
        mistakes[f"s{n:02d}"]["ex2-tests"] = ("eval-mode",)
    for n in (14, 15):
        mistakes[f"s{n:02d}"]["ex2-tests"] = ("eval-grad",)
    for n in (1, 16):
        mistakes[f"s{n:02d}"]["ex3-tests"] = ("no-convergence",)
    results = [submission(student, L07, found, repairs=("restored the deleted grade cell ex2-tests",)
                          if student == "s12" else ()) for student, found in mistakes.items()]
    results += [
        submission("s21", L07, status=Status.TIMED_OUT, reason="the notebook ran longer than 120 s",
                   repairs=("restored the deleted grade cell ex2-tests",)),
        submission("s22", L07, status=Status.INVALID, reason="not a notebook: the file is not valid JSON"),
        submission("s23", L07, status=Status.WORKER_LOST, reason="the cluster worker died twice"),
    ]
    return results


def lesson08_class() -> list[SubmissionResult]:
    """10 graded students of lesson 08: s01 s02 did not move the model, s03 never set the sampler's epoch.

    s01-s09 also took lesson 07; s30 took lesson 08 only.
    """
    students = [f"s{n:02d}" for n in range(1, 10)] + ["s30"]
    mistakes: dict[str, dict[str, tuple[str, ...]]] = {student: {} for student in students}
    mistakes["s01"]["ex1-tests"] = ("test-model-not-moved",)
    mistakes["s02"]["ex1-tests"] = ("test-model-not-moved",)
    mistakes["s03"]["ex2-tests"] = ("test-sampler-epoch",)
    return [submission(student, L08, found) for student, found in mistakes.items()]


def random_class(students: int, lesson: str = L07, seed: int = 0) -> list[SubmissionResult]:
    """A class of ``students`` with mistakes drawn from the lesson's catalogue (for the benchmark)."""
    rng = random.Random(seed)
    catalogue = diagnoses()
    by_exercise: dict[str, list[str]] = {}
    for diagnosis in catalogue.values():
        if diagnosis.lesson == lesson:
            by_exercise.setdefault(diagnosis.exercise, []).append(diagnosis.code)
    results = []
    for number in range(students):
        student = f"student{number:03d}"
        if rng.random() < 0.05:
            results.append(submission(student, lesson, status=Status.TIMED_OUT, reason="ran longer than 120 s"))
            continue
        mistakes = {grade_id: (rng.choice(codes),) for grade_id, codes in by_exercise.items() if rng.random() < 0.3}
        results.append(submission(student, lesson, mistakes, catalogue=catalogue))
    return results
