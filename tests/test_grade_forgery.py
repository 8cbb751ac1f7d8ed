"""No forged output earns points, even without a sandbox: the verdict is the grader's own re-check.

The forgeries of the adversarial class that harm nothing but the verdict run here without root or
bubblewrap (the grader runs the kernels unsandboxed, as `course grade --no-sandbox` does), so the
re-check is tested on every machine. tests/test_grading.py runs the whole class in the sandbox.
"""

from __future__ import annotations

import nbformat
import pytest

from course_tools.grade.kernel import RunSettings
from course_tools.grade.pipeline import Options, grade
from course_tools.notebooks import read_notebook
from tests import grading_corpus as corpus
from tests.helpers import add_hidden_test, copy_course, fill_answers, remove_hidden_tests

pytestmark = pytest.mark.pipeline

LESSON = corpus.LESSON
FORGERIES = {
    "forge-run-code": corpus.FORGE_RUN_CODE,
    "forge-input-transformer": corpus.FORGE_INPUT_TRANSFORMER,
    "fake-checks-name": corpus.FAKE_CHECKS_NAME,
    "no-reload": corpus.NO_RELOAD,
    "fake-integrity-module": corpus.FAKE_INTEGRITY_MODULE,
}


def test_forged_passes_score_nothing_and_are_named_tampered(tmp_path, monkeypatch, capsys):
    root = copy_course(tmp_path / "course", [LESSON])
    release = read_notebook(root / "notebooks" / LESSON / f"{LESSON}.ipynb")
    source = read_notebook(root / "solutions" / LESSON / f"{LESSON}.ipynb")
    notebooks = {"correct": fill_answers(release, source)}
    for student, code in FORGERIES.items():
        notebooks[student] = corpus.after_answers(nbformat.from_dict(release), code)
    for student, notebook in notebooks.items():
        folder = root / "submitted" / student / LESSON
        folder.mkdir(parents=True)
        nbformat.write(notebook, str(folder / f"{LESSON}.ipynb"))
    monkeypatch.setattr("course_tools.grade.pipeline.sandbox_problem", lambda: "this test grades unsandboxed")
    settings = RunSettings(cell_timeout=30, notebook_timeout=180)
    results = {r.student: r for r in grade(root, LESSON, Options(jobs=2, allow_unsandboxed=True, settings=settings))}
    capsys.readouterr()
    assert results["correct"].score == results["correct"].max_score > 0, results["correct"]
    for student in FORGERIES:
        assert results[student].score == 0, f"{student} forged {results[student].score} points"
        assert results[student].status.value == "tampered", (student, results[student].status, results[student].reason)


# --- issue 18 (h18k): the probe's answer is the probe's, and the kernel holds nothing to copy ---------

def grade_class(tmp_path, monkeypatch, lesson: str, notebooks: dict, *, hidden: tuple[str, str] | None = None):
    """Grade ``notebooks`` (student -> notebook) of ``lesson`` in a fresh course; sandboxed where this machine can.

    ``hidden``: (grade id, code) of an instructor-style hidden test added to the course copy's source.
    """
    from course_tools.sandbox import sandbox_problem

    root = copy_course(tmp_path / "course", [lesson])
    remove_hidden_tests(root, lesson)  # as the course's own lessons have none (their checks are the grader's judges)
    if hidden is not None:
        add_hidden_test(root, lesson, *hidden)
    for student, notebook in notebooks.items():
        folder = root / "submitted" / student / lesson
        folder.mkdir(parents=True)
        nbformat.write(notebook, str(folder / f"{lesson}.ipynb"))
    if sandbox_problem() is not None:  # the verdict does not rest on the sandbox: the re-check decides
        monkeypatch.setattr("course_tools.grade.pipeline.sandbox_problem", lambda: "this test grades unsandboxed")
    settings = RunSettings(cell_timeout=60, notebook_timeout=300)
    results = grade(root, lesson, Options(jobs=2, allow_unsandboxed=True, settings=settings))
    return root, {r.student: r for r in results}


@pytest.mark.parametrize("lesson, first_answer", [(LESSON, "ex1-dataset"), ("07_epoch_loop_gpu", "ex1-train-one-epoch")])
def test_the_empty_notebook_recipe_scores_nothing_and_is_flagged(tmp_path, monkeypatch, capsys, lesson, first_answer):
    """Issue 18's recipe (seed from the probe's source, the course's references, a line after the probe's,
    a forged run_code) on an empty notebook: 0 points, tampered; a correct notebook beside it keeps full marks."""
    release = read_notebook(copy_course(tmp_path / "lesson", [lesson]) / "notebooks" / lesson / f"{lesson}.ipynb")
    source = read_notebook(tmp_path / "lesson" / "solutions" / lesson / f"{lesson}.ipynb")
    notebooks = {"correct": fill_answers(release, source), "recipe": corpus.empty_with_recipe(release, first_answer)}
    _, results = grade_class(tmp_path, monkeypatch, lesson, notebooks)
    capsys.readouterr()
    assert results["correct"].score == results["correct"].max_score > 0, results["correct"]
    assert results["recipe"].score == 0, f"the empty notebook forged {results['recipe'].score} points"
    assert results["recipe"].status.value == "tampered", (results["recipe"].status, results["recipe"].reason)
    assert "re-check" in results["recipe"].reason


SPY = r'''
import IPython, linecache
shell = IPython.get_ipython()
SEEN = set()


def _record(*args, **kwargs):
    SEEN.update([repr(args), repr(kwargs), *map(str, shell.user_ns.get("_ih", []))])
    SEEN.update("".join(entry[2]) for name, entry in list(linecache.cache.items())  # the cells' sources
                if ("ipykernel" in name or name.startswith("<")) and len(entry) > 2 and entry[2])


for event in ("pre_execute", "pre_run_cell", "post_run_cell", "post_execute"):
    shell.events.register(event, _record)


def _transformer(lines):
    SEEN.add(repr(lines))
    return lines


shell.input_transformers_cleanup.append(_transformer)
shell.input_transformers_post.append(_transformer)
_original_run_code = shell.run_code


async def _run_code(code_obj, result=None, *, async_=False):
    SEEN.add(repr(code_obj.co_consts) + repr(code_obj.co_names))
    return await _original_run_code(code_obj, result, async_=async_)


shell.run_code = _run_code


def _forge(*args):
    print(FORGED)


shell.events.register("post_run_cell", _forge)
shell.events.register("post_execute", _forge)
'''


def test_no_hook_sees_the_seed_and_no_printed_line_is_read(tmp_path):
    """Hooks of every IPython event, input transformers and a wrapped run_code record all they see; a
    hook prints the right line for the very seed (the test knows it): the seed reached none of them,
    the wrong answer is still refuted, so the printed line was never read."""
    from nbformat.v4 import new_code_cell, new_notebook

    from course_tools.grade import kernel
    from course_tools.grade.verdict import judge, probe_source
    from course_utils.verdict_probes import probe_line

    seed, grade_id = 987_654_321, "ex3-tests"

    def batch_sizes(n, size, drop_last=False):
        full, rest = divmod(n, size)
        return [size] * full + ([rest] if rest and not drop_last else [])

    forged = probe_line(LESSON, grade_id, {"batch_sizes": batch_sizes}, seed)
    assert judge(LESSON, grade_id, seed, forged).passed, "the forged line holds the right values"
    test = new_code_cell("assert callable(batch_sizes)", id=grade_id)
    test.metadata.nbgrader = {"grade": True, "solution": False, "grade_id": grade_id, "points": 3, "locked": True}
    notebook = new_notebook(cells=[new_code_cell(f"FORGED = {forged!r}\n" + SPY),
                                   new_code_cell("def batch_sizes(n, size, drop_last=False):\n    return [size]"),
                                   test, new_code_cell("print('SEEN', len(SEEN))\nprint(*sorted(SEEN), sep='\\n')")])
    result = kernel.run_submission(notebook, tmp_path, uid=None, probes={grade_id: probe_source(LESSON, grade_id, seed)},
                                   settings=kernel.RunSettings(cell_timeout=60, notebook_timeout=180))
    printed = "".join(o.get("text", "") for c in result.notebook.cells for o in c.get("outputs", []))
    assert "SEEN" in printed and forged in printed, "the spies ran and the forged line was printed"
    assert str(seed) not in printed, "a hook, transformer or run_code saw the seed"
    assert result.printed[grade_id].startswith(f"COURSE-VERDICT {grade_id} ") and result.printed[grade_id] != forged
    assert not judge(LESSON, grade_id, seed, result.printed[grade_id]).passed, "the wrong answer must be refuted"


def test_hidden_tests_read_from_inside_the_kernel_never_reach_the_feedback(tmp_path, monkeypatch, capsys):
    """An instructor's hidden test, read four ways (raw_cell hooks, _ih, linecache, sys.settrace) and printed
    plainly, reversed and in hex: the instructor is warned, autograded/ keeps everything, the feedback none of it."""
    from course_tools.grade.feedback import REDACTED

    release = read_notebook(copy_course(tmp_path / "lesson", [LESSON]) / "notebooks" / LESSON / f"{LESSON}.ipynb")
    source = read_notebook(tmp_path / "lesson" / "solutions" / LESSON / f"{LESSON}.ipynb")
    notebooks = {"correct": fill_answers(release, source)}
    for student, (code, answer_cell) in corpus.EXFILTRATIONS.items():
        notebooks[student] = corpus.prepend(fill_answers(release, source), answer_cell, code)
    root, results = grade_class(tmp_path, monkeypatch, LESSON, notebooks,
                                hidden=(corpus.HIDDEN_TEST_CELL, corpus.INSTRUCTOR_HIDDEN_TEST))
    warnings = capsys.readouterr().err
    assert warnings.count(f"WARNING: {LESSON} has hidden tests ({corpus.HIDDEN_TEST_CELL})") == 1, warnings[-2000:]
    lines = [line.strip() for line in corpus.INSTRUCTOR_HIDDEN_TEST.strip().splitlines()]
    forms = {form for line in lines for form in (line, line[::-1], line.encode().hex())}
    forms |= {corpus.HIDDEN_MARK, corpus.HIDDEN_MARK[::-1], corpus.HIDDEN_MARK.encode().hex()}
    for student, result in results.items():
        assert result.score == result.max_score > 0, (student, result)
        page = (root / "feedback" / student / LESSON / f"{LESSON}.html").read_text()
        leaked = sorted(form for form in forms if form in page or __import__("html").escape(form) in page)
        assert not leaked, f"{student}: the hidden test reached the feedback as {leaked}"
        if student != "correct":
            kept = (root / "autograded" / student / LESSON / f"{LESSON}.ipynb").read_text()
            assert corpus.HIDDEN_MARK.encode().hex() in kept, f"{student}: the attack read nothing (the test tests nothing)"
            assert REDACTED in page, f"{student}: nothing was redacted"
