"""The practice quiz: right or wrong by salted hash, why for every choice, a text fallback, one quiz cell per notebook."""

import ast
import re

import nbformat
import pytest

from course_tools.notebooks import read_notebook
from course_tools.student_cells import (
    ANSWERS_ID, BADGE_ID, QUIZ_ID, SETUP_ID, QuizFormatError, add_student_cells, parse_quiz_markdown, quiz_cell,
    solution_quiz_answers,
)
from course_utils.widgets import (
    CHOICE_CLASS, FEEDBACK_CLASS, QUESTION_CLASS, Quiz, QuizQuestion, answer_digest, decode_explanations,
    encode_explanations,
)
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


WHY_Q1 = ("One batch is the whole set only with `batch_size=1000`.", "1000 / 100 = 10.", "100 is the batch size.")
ANSWERS = {
    "q1": ("b", dict(zip("abc", WHY_Q1))),
    "q2": ("a", {"a": "The first is right.", "b": "The second is wrong."}),
}
ANSWERS_SOURCE = f"### BEGIN SOLUTION\nquiz_answers = {ANSWERS!r}\n### END SOLUTION"


def make_quiz(salt="lesson"):
    return Quiz([QuizQuestion("q1", "How many?", ("1", "`10`", "100"), digest=answer_digest(salt, "q1", "b"),
                              explanations=encode_explanations(salt, "q1", WHY_Q1)),
                 QuizQuestion("q2", "Which?", ("x", "y"), digest=answer_digest(salt, "q2", "a"))], salt=salt)


def test_digests_are_salted_per_lesson_and_question():
    assert answer_digest("l1", "q1", "b") == answer_digest("l1", "q1", " B ")
    assert len({answer_digest("l1", "q1", "b"), answer_digest("l2", "q1", "b"), answer_digest("l1", "q2", "b")}) == 3


def test_explanations_are_scrambled_and_come_back_only_with_the_salt():
    encoded = encode_explanations("l1", "q1", WHY_Q1)
    assert "batch" not in encoded and decode_explanations("l1", "q1", encoded) == WHY_Q1
    assert decode_explanations("l1", "q1", "") == ()
    with pytest.raises(ValueError, match="do not decode"):
        decode_explanations("l2", "q1", encoded)
    with pytest.raises(ValueError, match="do not decode"):
        make_quiz().__class__(make_quiz().questions, salt="another lesson")


def test_a_click_says_right_or_wrong_and_why():
    quiz = make_quiz()
    block = quiz.widget.children[1]
    assert QUESTION_CLASS in block._dom_classes
    choices = [row for row in block.children if CHOICE_CLASS in row._dom_classes]
    feedback = block.children[-1]
    assert FEEDBACK_CLASS in feedback._dom_classes and len(choices) == 3
    button, label = choices[0].children
    assert button.description == "(a)" and label.value == "1"
    assert choices[1].children[1].value == "<code>10</code>", "code in a choice renders as code"
    button.click()
    assert quiz.chosen == {"q1": "a"}
    assert "✗ (a) is not right" in feedback.value and "<code>batch_size=1000</code>" in feedback.value
    assert "Try another choice" in feedback.value and button.button_style == "warning"
    choices[1].children[0].click()
    assert "✓ (b) is right" in feedback.value and "1000 / 100 = 10" in feedback.value
    assert [row.children[0].button_style for row in choices] == ["", "success", ""]
    assert "quiz_answers" not in feedback.value and "Write" not in feedback.value
    with pytest.raises(ValueError, match="choose one of"):
        quiz.answer("q1", "z")
    with pytest.raises(KeyError, match="no question"):
        quiz.answer("q9", "a")


def test_feedback_without_explanations_still_says_right_or_wrong():
    quiz = make_quiz()
    assert quiz.answer("q2", "a") == "✓ (a) is right."
    assert quiz.answer("q2", "b") == "✗ (b) is not right. Try another choice."
    assert quiz.answer("q1", "c") == "✗ (c) is not right. 100 is the batch size. Try another choice."


def test_outside_a_front_end_the_quiz_is_text():
    quiz = make_quiz()
    bundle = quiz._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"] == quiz.as_text() == repr(quiz)
    assert "q1. How many?\n  (a) 1\n  (b) `10`\n  (c) 100" in quiz.as_text()
    assert "practice, no points" in quiz.as_text() and "quiz_answers" not in quiz.as_text()


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
    assert solution_quiz_answers(ANSWERS_SOURCE) == ANSWERS
    for bad in ("quiz_answers = make_answers()", 'quiz_answers = {"q1": "b"}',
                'quiz_answers = {"q1": ("b", {"a": ""})}', 'quiz_answers = {"q1": ("b", ["why"])}'):
        with pytest.raises(QuizFormatError, match="one-sentence|why a is right"):
            solution_quiz_answers(bad)


def test_quiz_cell_refuses_answers_that_do_not_fit():
    questions = parse_quiz_markdown(QUIZ_TEXT)
    with pytest.raises(QuizFormatError, match="no answer"):
        quiz_cell("l", questions, {"q1": ANSWERS["q1"]})
    with pytest.raises(QuizFormatError, match="not one of the choices"):
        quiz_cell("l", questions, ANSWERS | {"q2": ("d", ANSWERS["q2"][1])})
    with pytest.raises(QuizFormatError, match="explain every choice"):
        quiz_cell("l", questions, ANSWERS | {"q2": ("a", {"a": "only one"})})
    with pytest.raises(QuizFormatError, match="does not ask"):
        quiz_cell("l", questions, ANSWERS | {"q3": ("a", {})})


def test_the_quiz_cell_hides_the_key_and_the_sentences():
    source = quiz_cell("99_demo", parse_quiz_markdown(QUIZ_TEXT), ANSWERS).source
    assert "quiz_answers" not in source and "1000 / 100" not in source and "The first is right" not in source
    quiz = run_quiz_cell(source)
    assert quiz.answer("q1", "b") == "✓ (b) is right. 1000 / 100 = 10."


def test_added_cells_go_to_the_top_and_after_the_quiz_text():
    source = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("import torch"),
        nbformat.v4.new_markdown_cell(QUIZ_TEXT), nbformat.v4.new_code_cell(ANSWERS_SOURCE),
        nbformat.v4.new_markdown_cell("## Next"),
    ])
    student = add_student_cells(nbformat.from_dict(source), source, "99_demo")
    assert [c.get("id") for c in student.cells[:3]] == [BADGE_ID, None or student.cells[1].get("id"), SETUP_ID]
    assert student.cells[1].source == "# Title" and student.cells[4].source == QUIZ_TEXT
    assert student.cells[5].id == QUIZ_ID
    assert [c.source for c in student.cells[6:]] == ["## Next"], "the answer cell is left out"
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
    answers = solution_quiz_answers(next(c.source for c in solution.cells if c.id == ANSWERS_ID))
    quiz = run_quiz_cell(cells[QUIZ_ID].source)
    assert [q.key for q in quiz.questions] == sorted(answers) == ["q1", "q2", "q3"]
    for question in quiz.questions:
        right, why = answers[question.key]
        assert [letter for letter in question.letters if question.is_right(lesson, letter)] == [right]
        for letter in question.letters:
            assert why[letter] in quiz.answer(question.key, letter), f"{question.key} ({letter}) is not explained"
    ids = [cell.id for cell in student.cells]
    assert ids.index(QUIZ_ID) == ids.index("quiz-text") + 1
    assert ANSWERS_ID not in ids and not any(re.fullmatch(r"quiz-q\d+", i) for i in ids)
    assert not re.search(r"""['"]q\d['"]\s*:\s*\(?['"][a-d]['"]""", cells[QUIZ_ID].source), "the answer key leaked"
    assert "Quiz (practice, no points)" in cells["quiz-text"].source


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_choice_has_a_one_sentence_explanation(lesson):
    solution = read_notebook(ROOT / "solutions" / lesson / f"{lesson}.ipynb")
    answers = solution_quiz_answers(next(c.source for c in solution.cells if c.id == ANSWERS_ID))
    for key, (_, why) in answers.items():
        for letter, sentence in why.items():
            assert sentence[0].isupper() or sentence[0] in "`([0123456789−-", f"{key} ({letter}): {sentence!r}"
            assert sentence.endswith((".", "?")) and ". " not in sentence[:-1].replace("e.g. ", ""), \
                f"{key} ({letter}): one sentence, please: {sentence!r}"


@pytest.mark.parametrize("lesson", LESSONS)
def test_student_notebook_is_the_solution_plus_the_added_cells(lesson):
    solution = read_notebook(ROOT / "solutions" / lesson / f"{lesson}.ipynb")
    student = read_notebook(ROOT / "notebooks" / lesson / f"{lesson}.ipynb")
    added = {BADGE_ID, SETUP_ID, QUIZ_ID}
    assert [c.id for c in student.cells if c.id not in added] == [c.id for c in solution.cells if c.id != ANSWERS_ID]
    assert student.cells[0].id == BADGE_ID
    first_code = next(c for c in student.cells if c.cell_type == "code")
    assert first_code.id == SETUP_ID
    graded = {c.id: c.metadata.nbgrader for c in solution.cells if c.metadata.get("nbgrader", {}).get("grade")}
    for cell in student.cells:
        if cell.id in graded:
            found = {key: cell.metadata.nbgrader.get(key) for key in ("grade_id", "points", "grade", "solution")}
            assert found == {key: graded[cell.id].get(key) for key in found}, f"{cell.id}: nbgrader metadata changed"
