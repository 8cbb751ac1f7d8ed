"""Behavioural grader for lesson 08, the loop at scale: accumulation, clipping, schedules, mixed precision, DDP.

Like lesson 07's checks (:mod:`course_utils.checks.lesson07`), every check runs the learner's function
on instrumented objects and a seeded task the notebook never prints, and names each mistake it
recognises by what the function *did*:

- a hook on every loss tensor records the factor its gradient was scaled by (``loss / k`` gives
  ``1 / k``, ``scaler.scale(loss)`` gives the scaler's scale), and whether it was computed under autocast;
- hooks on the parameters record each backward's own gradient, so the gradient an optimizer step
  applies can be compared with what it should have been (accumulated, clipped, unscaled);
- a probe optimizer, scheduler and gradient scaler record when they were stepped and updated;
- the distributed check runs the learner's per-rank function on two real gloo ranks
  (:func:`course_utils.distributed.run_distributed`), counts the all-reduces DDP performs through a
  communication hook, records which samples each rank loaded, what each rank printed and saved.

The final parameters are compared with results stored as data for the checks' fixed inputs
(:mod:`.stored`); the reference loops live on the grader's side only. Each finding raises
:class:`CheckFailed` through :func:`course_utils.diagnoses.fail_with`.

Modules: :mod:`.common` (the lesson's name, the seeded task and re-check scenarios), one module per
exercise, each with its mistakes (``DIAGNOSES``), its check and its re-check ``probe``
(:mod:`.ex1` accumulation, :mod:`.ex2` clipping and schedules, :mod:`.ex3` mixed precision,
:mod:`.ex4` DDP), :mod:`.instruments` (the probes' recording objects) and :mod:`.stored` (the
checks' fixed inputs).
"""

from __future__ import annotations

from course_utils.checks.lesson08 import ex1, ex2, ex3, ex4
from course_utils.checks.lesson08.common import LESSON
from course_utils.checks.lesson08.ex1 import check_accumulation
from course_utils.checks.lesson08.ex2 import check_fit_scheduled
from course_utils.checks.lesson08.ex3 import check_amp
from course_utils.checks.lesson08.ex4 import check_ddp
from course_utils.diagnoses import by_code

CATALOGUE = ex1.DIAGNOSES + ex2.DIAGNOSES + ex3.DIAGNOSES + ex4.DIAGNOSES
DIAGNOSES = by_code(CATALOGUE)
FORBIDDEN_CALLS = ex1.FORBIDDEN_CALLS + ex2.FORBIDDEN_CALLS + ex3.FORBIDDEN_CALLS + ex4.FORBIDDEN_CALLS
PROBES = {"ex1-tests": ex1.probe, "ex2-tests": ex2.probe, "ex3-tests": ex3.probe, "ex4-tests": ex4.probe}

__all__ = ["CATALOGUE", "DIAGNOSES", "FORBIDDEN_CALLS", "LESSON", "PROBES", "check_accumulation", "check_amp",
           "check_ddp", "check_fit_scheduled"]
