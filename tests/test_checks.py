"""Self-check helpers: pass silently, fail with what was expected, what was found and a hint."""

import pytest
import torch

from course_utils import checks
from course_utils.checks import CheckFailed


def message_of(call) -> str:
    with pytest.raises(CheckFailed) as info:
        call()
    return str(info.value)


def test_failures_are_assertion_errors_so_nbgrader_marks_them():
    assert issubclass(CheckFailed, AssertionError)


def test_check_equal_message_has_expected_found_and_hint():
    text = message_of(lambda: checks.check_equal(9, 10, "number of batches", hint="count the last batch."))
    assert "✗ number of batches" in text
    assert "expected: 10" in text and "found:    9" in text and "hint:     count the last batch." in text


@pytest.mark.parametrize(("found", "expected"), [(True, 1), (1.0, "1"), ([1, 2], (1, 2))])
def test_check_equal_is_strict_about_types(found, expected):
    message_of(lambda: checks.check_equal(found, expected, "x", hint="h"))


def test_check_equal_accepts_equal_numbers():
    checks.check_equal(10, 10, "x", hint="h")
    checks.check_equal(0.5, 0.5, "x", hint="h")
    checks.check_equal([100] * 10, [100] * 10, "x", hint="h")


def test_check_requires_a_real_true():
    class AlwaysTrue:
        def __bool__(self):
            return True

    message_of(lambda: checks.check(AlwaysTrue(), "x", expected="e", found="f", hint="h"))
    checks.check(True, "x", expected="e", found="f", hint="h")


def test_check_shape_and_type():
    checks.check_shape(torch.zeros(100, 10), (100, 10), "batch", hint="h")
    assert "shape (100, 10)" in message_of(lambda: checks.check_shape(torch.zeros(10, 100), (100, 10), "batch", hint="h"))
    assert "a list" in message_of(lambda: checks.check_shape([1], (1,), "batch", hint="h"))
    assert "a DataLoader" in message_of(lambda: checks.check_type(3, torch.utils.data.DataLoader, "x", hint="h"))


def test_check_close_for_tensors_and_numbers():
    reference = torch.tensor([1.0, 2.0, 3.0])
    checks.check_close(reference + 1e-8, reference, "t", hint="h")
    assert "largest difference 0.1" in message_of(
        lambda: checks.check_close(reference + 0.1, reference, "t", hint="h"))
    checks.check_close(0.5, 0.5 + 1e-9, "n", hint="h")
    message_of(lambda: checks.check_close(torch.tensor(0.5), 0.5, "n", hint="h"))


def test_check_raises_returns_the_error_and_reports_the_wrong_kind():
    error = checks.check_raises(lambda: int("x"), ValueError, "parse", hint="h")
    assert isinstance(error, ValueError)
    assert "KeyError" in message_of(lambda: checks.check_raises(lambda: {}["k"], ValueError, "lookup", hint="h"))
    assert "no error (returned 3)" in message_of(lambda: checks.check_raises(lambda: 3, ValueError, "x", hint="h"))


def test_check_choice_reports_form_problems():
    checks.check_choice({"q1": "b"}, "q1", choices="abcd")
    assert "a dict" in message_of(lambda: checks.check_choice(["b"], "q1", choices="abcd"))
    assert 'a key "q2"' in message_of(lambda: checks.check_choice({"q1": "b"}, "q2", choices="abcd"))
    assert "'B'" in message_of(lambda: checks.check_choice({"q1": "B"}, "q1", choices="abcd"))


def test_report_passed_prints_one_line(capsys):
    checks.report_passed("Exercise 1")
    assert capsys.readouterr().out == "✓ Exercise 1: all visible checks passed.\n"


class AlwaysEqual:
    """What a submission might return to pass every `==` comparison."""

    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


@pytest.mark.parametrize("fake", [AlwaysEqual(), [AlwaysEqual()] * 10, (AlwaysEqual(),), {"q1": AlwaysEqual()}])
def test_always_equal_objects_earn_nothing(fake):
    expected = {list: [100] * 10, tuple: (1,), dict: {"q1": "b"}}.get(type(fake), 10)
    message_of(lambda: checks.check_equal(fake, expected, "result", hint="h"))


def test_strict_equality_of_tensors_and_nested_values():
    assert checks.strictly_equal({"a": [1, (2, "x")]}, {"a": [1, (2, "x")]})
    assert not checks.strictly_equal(torch.tensor([1, 2]), torch.tensor([1.0, 2.0]))
    assert checks.strictly_equal(torch.tensor([1, 2]), torch.tensor([1, 2]))
    assert not checks.strictly_equal([1, 2], [1, 2, 3])


@pytest.mark.parametrize("lesson", ["01_dataloader_batching", "02_normalization", "04_loss"])
def test_forbidden_calls_name_a_not_allowed_diagnosis_of_their_exercise(lesson):
    """Lessons 01-04: each library call an exercise forbids names its own diagnosis, for a function the answer defines."""
    from course_utils.diagnoses import catalogue, forbidden_calls
    from tests.helpers import ROOT

    declared = forbidden_calls(lesson)
    assert declared, f"{lesson} declares no FORBIDDEN_CALLS"
    source = (ROOT / "solutions" / lesson / f"{lesson}.ipynb").read_text()
    for call in declared:
        diagnosis = catalogue()[call.code]
        assert (diagnosis.lesson, diagnosis.family) == (lesson, "not-allowed")
        # the same exercise (lesson 04's cross-entropy is graded by three cells, its diagnosis lives in the first)
        assert diagnosis.exercise.split("-")[0] == call.grade_id.split("-")[0], (call, diagnosis.exercise)
        assert f"def {call.inside}(" in source or f"class {call.inside}" in source, call.inside
        assert all(name.count(".") >= 1 for name in call.calls)
