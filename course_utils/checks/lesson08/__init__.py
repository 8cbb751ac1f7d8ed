"""Behavioural grader for lesson 08, the loop at scale: accumulation, clipping, schedules, mixed precision, DDP.

Like lesson 07's grader (:mod:`course_utils.loop_grader`), every check runs the learner's function
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
:class:`CheckFailed` through :func:`course_utils.diagnoses.raise_diagnosis`.

Modules: :mod:`.catalogue` (the mistakes), :mod:`.instruments`, one module per exercise
(:mod:`.accumulation`, :mod:`.clipping`, :mod:`.amp`, :mod:`.ddp`) and :mod:`.verdict` (``PROBES``).
"""

from __future__ import annotations

from course_utils.checks.lesson08.accumulation import check_accumulation
from course_utils.checks.lesson08.amp import check_amp
from course_utils.checks.lesson08.catalogue import CATALOGUE, DIAGNOSES, FORBIDDEN_CALLS, LESSON
from course_utils.checks.lesson08.clipping import check_fit_scheduled
from course_utils.checks.lesson08.ddp import DDPCriterion, DDPProbeModel, IndexedDataset, _DDPTask, check_ddp
from course_utils.checks.lesson08.instruments import ProbeCriterion, ProbeModel, _Task
from course_utils.checks.lesson08.verdict import (
    PROBES,
    FloatCrossEntropy,
    VerdictAmpModel,
    VerdictCase,
    verdict_case,
    verdict_ddp_task,
    verdict_optimizer,
    verdict_scaler,
)

__all__ = [
    "CATALOGUE", "DIAGNOSES", "FORBIDDEN_CALLS", "LESSON", "PROBES", "DDPCriterion", "DDPProbeModel",
    "FloatCrossEntropy", "IndexedDataset", "ProbeCriterion", "ProbeModel", "VerdictAmpModel", "VerdictCase",
    "check_accumulation", "check_amp", "check_ddp", "check_fit_scheduled", "verdict_case", "verdict_ddp_task",
    "verdict_optimizer", "verdict_scaler",
]
