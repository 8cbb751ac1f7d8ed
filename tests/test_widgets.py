"""The quiz widget: feedback by salted hash, a text fallback, and one quiz cell per student notebook."""

import ast
import re

import nbformat
import pytest

from course_tools.notebooks import read_notebook
from course_tools.student_cells import (
    BADGE_ID, QUIZ_ID, SETUP_ID, QuizFormatError, add_student_cells, parse_quiz_markdown, quiz_cell,
    solution_quiz_answers,
)
from course_utils.widgets import FEEDBACK_CLASS, Quiz, QuizQuestion, answer_digest
from tests.conftest import LESSONS
from tests.helpers import ROOT

QUIZ_TEXT = """## Quiz

**q1.** How many batches does `batch_size=100` give?
(a) 1  (b) 10  (c) 100

**q2.** Which is true?
(a) the first
one spans two lines
(b) the second
"""


def make_quiz(salt="lesson"):
    return Quiz([QuizQuestion("q1", "How many?", ("1", "10", "100"), digest=answer_digest(salt, "q1", "b")),
                 QuizQuestion("q2", "Which?", ("x", "y"), digest=answer_digest(salt, "q2", "a"))], salt=salt)


def test_digests_are_salted_per_lesson_and_question():
    assert answer_digest("l1", "q1", "b") == answer_digest("l1", "q1", " B ")
    assert len({answer_digest("l1", "q1", "b"), answer_digest("l2", "q1", "b"), answer_digest("l1", "q2", "b")}) == 3


def test_feedback_is_immediate_and_the_widget_shows_it():
    quiz = make_quiz()
    feedback = quiz.widget.children[1].children[2]
    assert FEEDBACK_CLASS in feedback._dom_classes
    quiz.widget.children[1].children[1].value = "a"  # a click on (a)
    assert "Not (a)" in feedback.value and quiz.chosen == {"q1": "a"}
    assert quiz.answer("q1", "b").startswith("✓ Right")
    assert "✓ Right" in feedback.value
    with pytest.raises(ValueError, match="choose one of"):
        quiz.answer("q1", "z")
    with pytest.raises(KeyError, match="no question"):
        quiz.answer("q9", "a")


def test_outside_a_front_end_the_quiz_is_text():
    quiz = make_quiz()
    bundle = quiz._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"] == quiz.as_text() == repr(quiz)
    assert "q1. How many?\n  (a) 1\n  (b) 10\n  (c) 100" in quiz.as_text()
    assert "quiz_answers" in quiz.as_text()


@pytest.mark.parametrize("bad", [dict(choices=("only one",)), dict(digest="B" * 16), dict(key="")])
def test_bad_questions_are_refused(bad):
    settings = dict(key="q1", text="?", choices=("a", "b"), digest="0" * 16) | bad
    with pytest.raises(ValueError):
        QuizQuestion(**settings)


def test_quiz_markdown_is_parsed_with_inline_and_multiline_choices():
    assert parse_quiz_markdown(QUIZ_TEXT) == [
        ("q1", "How many batches does `batch_size=100` give?", ("1", "10", "100")),
        ("q2", "Which is true?", ("the first one spans two lines", "the second")),
    ]
    with pytest.raises(QuizFormatError, match="in order"):
        parse_quiz_markdown("**q1.** What? (a) yes (c) no")


def test_solution_answers_are_read_without_running_the_cell():
    source = '### BEGIN SOLUTION\nquiz_answers = {"q1": "b", "q2": "a"}\n### END SOLUTION'
    assert solution_quiz_answers(source) == {"q1": "b", "q2": "a"}
    with pytest.raises(QuizFormatError):
        solution_quiz_answers("quiz_answers = make_answers()")


def test_quiz_cell_refuses_answers_that_do_not_fit():
    questions = parse_quiz_markdown(QUIZ_TEXT)
    with pytest.raises(QuizFormatError, match="no answer"):
        quiz_cell("l", questions, {"q1": "b"})
    with pytest.raises(QuizFormatError, match="not one of the choices"):
        quiz_cell("l", questions, {"q1": "b", "q2": "d"})


def test_added_cells_go_to_the_top_and_after_the_quiz_text():
    source = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("import torch"),
        nbformat.v4.new_markdown_cell(QUIZ_TEXT), nbformat.v4.new_code_cell('quiz_answers = {"q1": "b", "q2": "a"}'),
    ])
    student = add_student_cells(nbformat.from_dict(source), source, "99_demo")
    assert [c.get("id") for c in student.cells[:3]] == [BADGE_ID, None or student.cells[1].get("id"), SETUP_ID]
    assert student.cells[1].source == "# Title" and student.cells[4].source == QUIZ_TEXT
    assert student.cells[5].id == QUIZ_ID
    with pytest.raises(QuizFormatError, match="already holds"):
        add_student_cells(student, source, "99_demo")


def run_quiz_cell(source: str) -> Quiz:
    tree = ast.parse(source)
    namespace: dict = {}
    exec(compile(ast.Module(tree.body[:-1], []), "<quiz>", "exec"), namespace)
    return eval(compile(ast.Expression(tree.body[-1].value), "<quiz>", "eval"), namespace)


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_student_quiz_gives_right_feedback_for_exactly_the_solution(lesson):
    solution = read_notebook(ROOT / "solutions" / lesson / f"{lesson}.ipynb")
    student = read_notebook(ROOT / "notebooks" / lesson / f"{lesson}.ipynb")
    cells = {cell.id: cell for cell in student.cells}
    answers = solution_quiz_answers(next(c.source for c in solution.cells if c.id == "quiz-answers"))
    quiz = run_quiz_cell(cells[QUIZ_ID].source)
    assert [q.key for q in quiz.questions] == sorted(answers) == ["q1", "q2", "q3"]
    for question in quiz.questions:
        assert [letter for letter in question.letters if question.is_right(lesson, letter)] == [answers[question.key]]
    ids = [cell.id for cell in student.cells]
    assert ids.index(QUIZ_ID) == ids.index("quiz-text") + 1
    assert not re.search(r"""['"]q\d['"]\s*:\s*['"][a-d]['"]""", cells[QUIZ_ID].source), "the answer key leaked"


@pytest.mark.parametrize("lesson", LESSONS)
def test_student_notebook_is_the_solution_plus_the_added_cells(lesson):
    solution = read_notebook(ROOT / "solutions" / lesson / f"{lesson}.ipynb")
    student = read_notebook(ROOT / "notebooks" / lesson / f"{lesson}.ipynb")
    added = {BADGE_ID, SETUP_ID, QUIZ_ID}
    assert [c.id for c in student.cells if c.id not in added] == [c.id for c in solution.cells]
    assert student.cells[0].id == BADGE_ID
    first_code = next(c for c in student.cells if c.cell_type == "code")
    assert first_code.id == SETUP_ID
    graded = {c.id: c.metadata.nbgrader for c in solution.cells if c.metadata.get("nbgrader", {}).get("grade")}
    for cell in student.cells:
        if cell.id in graded:
            found = {key: cell.metadata.nbgrader.get(key) for key in ("grade_id", "points", "grade", "solution")}
            assert found == {key: graded[cell.id].get(key) for key in found}, f"{cell.id}: nbgrader metadata changed"
