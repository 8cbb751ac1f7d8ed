"""The catalogue of diagnoses: well-formed, unique codes, and messages whose codes read back."""

import pytest

from course_tools.release import find_lessons
from tests.helpers import ROOT

from course_utils.checks import CheckFailed
from course_utils.diagnoses import (
    COURSE_WIDE,
    FAMILIES,
    Diagnosis,
    Exercise,
    by_code,
    catalogue,
    checks_module,
    codes_in,
    fail_with,
    lesson_modules,
    format_failure,
    raise_diagnosis,
)

EXAMPLE = Diagnosis("example-bug", "something went wrong", "do it right", "gradients",
                    lesson="07_epoch_loop_gpu", exercise="ex1-tests", section="3 · One epoch")


def test_the_message_names_what_expected_found_fix_and_code():
    other = Diagnosis("other-bug", "also wrong", "fix that too", "device")
    text = format_failure(EXAMPLE, expected="a", found=[1, 2], subject="train_one_epoch", also=[other])
    lines = text.strip().splitlines()
    assert lines[0] == "✗ train_one_epoch: something went wrong [example-bug]"
    assert lines[1].strip() == "also:     also wrong [other-bug]"
    assert [line.split(":")[0].strip() for line in lines[2:]] == ["expected", "found", "hint"]
    assert codes_in(text) == ["example-bug", "other-bug"]


def test_raise_diagnosis_raises_check_failed():
    with pytest.raises(CheckFailed) as caught:
        raise_diagnosis(EXAMPLE, expected=1, found=2)
    assert codes_in(str(caught.value)) == ["example-bug"]


def test_codes_in_ignores_brackets_elsewhere():
    assert codes_in("✗ shape [batch, features] is fine\n    found: [x]") == []
    assert codes_in("no message at all") == []


@pytest.mark.parametrize("bad", [dict(code="Bad Code"), dict(family="nonsense"), dict(hint="")])
def test_malformed_diagnoses_are_refused(bad):
    fields = dict(code="fine", what="what", hint="hint", family="data") | bad
    with pytest.raises(ValueError):
        Diagnosis(**fields)


def test_a_code_defined_twice_is_an_error():
    with pytest.raises(ValueError, match="twice"):
        by_code([EXAMPLE, EXAMPLE])


def test_every_catalogued_diagnosis_says_where_it_belongs():
    diagnoses = catalogue()
    assert diagnoses, "no lesson catalogue could be imported"
    course_wide = {d.code for d in COURSE_WIDE}
    for code, diagnosis in diagnoses.items():
        assert diagnosis.code == code
        assert diagnosis.family in FAMILIES
        if code in course_wide:  # named by the grader for any exercise (not-attempted): no lesson of its own
            continue
        assert diagnosis.lesson in LESSONS, f"{code}: lesson {diagnosis.lesson!r}"
        assert diagnosis.exercise and diagnosis.section, f"{code}: exercise and section are needed for the report"


LESSONS = find_lessons(ROOT)


def test_every_lesson_has_its_checks_module_found_by_name():
    assert lesson_modules() == tuple(checks_module(lesson) for lesson in LESSONS)


def test_an_exercise_declares_its_diagnoses_as_data():
    exercise = Exercise("03_forward_pass", "ex9-tests", "Exercise 9 · Example")
    first, second = exercise.diagnoses(
        ("example-one", "what went wrong", "the fix", "shapes"),
        ("example-two", "what else went wrong", "another fix", "modes", "4 · A section"),
    )
    assert (first.lesson, first.exercise, first.section) == ("03_forward_pass", "ex9-tests", "Exercise 9 · Example")
    assert second.section == "4 · A section" and second.family == "modes"
    with pytest.raises(ValueError, match="code, what, hint, family"):
        exercise.diagnoses(("too-short", "what", "hint"))


def test_fail_with_names_a_catalogued_code_and_refuses_an_unknown_one():
    code = next(code for code, diagnosis in catalogue().items() if diagnosis.lesson)
    with pytest.raises(CheckFailed) as caught:
        fail_with(code, expected="this", found="that", subject="f(x)")
    assert codes_in(str(caught.value)) == [code] and "expected: this" in str(caught.value)
    with pytest.raises(KeyError, match="no-such-code"):
        fail_with("no-such-code", expected="", found="")
