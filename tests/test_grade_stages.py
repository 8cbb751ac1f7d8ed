"""Unit tests of course grade's stages, runnable anywhere (no root, no sandbox): kernel outputs and tokens,
the re-check, the cached execution, the feedback view, scoring's CSV and the cache key."""

from __future__ import annotations

import csv
from pathlib import Path

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course_tools.grade import kernel
from course_tools.grade.feedback import StudentFeedbackView, diagnosis_codes, exercise_titles, failure_message
from course_tools.grade.prepare import InvalidLesson, grading_code_digest, load_lesson
from course_tools.grade.report import GRADES_FILE, exercise_table, record, student_table
from course_tools.grade.results import ExerciseResult, Status, SubmissionResult, load_results
from course_tools.grade.judges.lesson07 import reference_epoch
from course_tools.grade.verdict import draw_seeds, judge, probe_source, read_values
from course_tools.nbgrader_hooks import CachedExecution, without_hidden_tests
from course_utils import verdict_probes
from tests.helpers import copy_course

LOOP = "07_epoch_loop_gpu"


def grade_cell(grade_id="ex1-tests", source="assert True", points=3):
    cell = new_code_cell(source, id=grade_id)
    cell.metadata.nbgrader = {"grade": True, "solution": False, "grade_id": grade_id, "points": points, "locked": True}
    return cell


# --- kernel: tokens and budgets ------------------------------------------------------------

def test_token_goes_after_the_cell_so_line_numbers_match():
    cell = grade_cell(source="x = 1\nassert x == 1")
    wrapped, token = kernel._with_token(cell)
    assert wrapped.source.splitlines()[:2] == ["x = 1", "assert x == 1"]
    assert token in wrapped.source.splitlines()[-1]
    assert kernel.GUARD not in wrapped.source


def test_the_token_is_noticed_even_in_output_that_is_cut_and_then_removed():
    client = kernel._CappedClient(new_notebook())
    client.output_budget = 10
    client.start_cell("abc")
    outs = []
    client.output(outs, {"msg_type": "stream", "content": {"name": "stdout", "text": "x" * 50}}, None, 0)
    client.output(outs, {"msg_type": "stream", "content": {"name": "stdout", "text": "abc"}}, None, 0)
    assert client.token_seen, "a test cell that printed a lot still finished"
    client.start_cell("def")
    assert not client.token_seen
    cell = grade_cell()
    cell.outputs = [new_output("stream", name="stdout", text="helloabc"), new_output("stream", name="stdout", text="abc")]
    kernel._strip_token(cell, "abc")
    assert [o["text"] for o in cell.outputs] == ["hello"]


def test_widget_messages_have_a_budget_of_their_own():
    client = kernel._CappedClient(new_notebook())
    client.comm_budget = 100
    flood = {"msg_type": "comm_msg", "content": {"comm_id": "w", "data": {"state": {"value": "x" * 200}}},
             "buffers": []}
    assert client.handle_comm_msg([], flood, 0) is None, "past its budget a widget message is dropped"
    assert client._within_budget(10), "and the cells' output budget is untouched"


def unsandboxed(notebook, tmp_path, **options):
    settings = kernel.RunSettings(cell_timeout=30, notebook_timeout=120)
    return kernel.run_submission(notebook, tmp_path, uid=None, settings=settings, **options)


@pytest.mark.notebook
def test_a_forged_pass_does_not_hide_a_failing_test_cell(tmp_path):
    """A pre_run_cell hook and a replaced showtraceback: the cell still counts as failed (no token)."""
    forger = new_code_cell("import IPython\nip = IPython.get_ipython()\n"
                           "ip.showtraceback = lambda *a, **k: None\n"
                           "ip.run_code = (lambda original: (lambda *a, **k: original(*a, **k)))(ip.run_code)")
    notebook = new_notebook(cells=[forger, grade_cell(source="raise AssertionError('wrong')")])
    result = unsandboxed(notebook, tmp_path)
    assert failure_message(result.notebook.cells[1]), "the failing test cell must carry an error"
    assert result.status == "tampered" and "without reporting an error" in result.reason


@pytest.mark.notebook
def test_probes_run_right_after_their_test_cell_and_print_values(tmp_path):
    answers = new_code_cell("def batch_sizes(n, size, drop_last=False):\n"
                            "    full, rest = divmod(n, size)\n"
                            "    return [size] * full + ([rest] if rest and not drop_last else [])")
    seed = 1234
    result = unsandboxed(new_notebook(cells=[answers, grade_cell("ex3-tests", "assert batch_sizes(10, 3) == [3, 3, 3, 1]")]),
                         tmp_path,
                         probes={"ex3-tests": probe_source("01_dataloader_batching", "ex3-tests", seed)})
    assert judge("01_dataloader_batching", "ex3-tests", seed, result.printed["ex3-tests"]).passed


# --- the re-check --------------------------------------------------------------------------

def printed_by(function_name, seed, namespace, lesson=LOOP, grade_id="ex1-tests"):
    return verdict_probes.probe_line(lesson, grade_id, namespace, seed) + "\n"


def test_the_recheck_accepts_a_correct_loop_and_refutes_a_wrong_one():
    seed = draw_seeds(LOOP)["ex1-tests"]
    correct = {"train_one_epoch": reference_epoch}
    assert judge(LOOP, "ex1-tests", seed, printed_by("train_one_epoch", seed, correct)).passed

    def no_zero_grad(model, loader, criterion, optimizer, device):
        model.train()
        total, count = 0.0, 0
        for xb, yb in loader:
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * len(yb), count + len(yb)
        return total / count

    verdict = judge(LOOP, "ex1-tests", seed, printed_by("train_one_epoch", seed, {"train_one_epoch": no_zero_grad}))
    assert not verdict.passed and "parameters" in verdict.reason


def test_fit_is_rechecked_on_its_own_with_reference_building_blocks():
    seed = 77

    def fit(model, train_loader, val_loader, criterion, optimizer, device, epochs):
        model.to(device)
        history = []
        for epoch in range(1, epochs + 1):
            loss = train_one_epoch(model, train_loader, criterion, optimizer, device)  # noqa: F821
            val_loss, accuracy = evaluate(model, val_loader, criterion, device)  # noqa: F821
            history.append({"epoch": epoch, "loss": loss, "val_loss": val_loss, "accuracy": accuracy})
        return history

    broken = {"fit": fit, "train_one_epoch": lambda *a: 7.989, "evaluate": lambda *a: (0.0, 0.0)}
    fit.__globals__.update(train_one_epoch=broken["train_one_epoch"], evaluate=broken["evaluate"])
    try:
        text = printed_by("fit", seed, broken, grade_id="ex3-tests")
    finally:
        del fit.__globals__["train_one_epoch"], fit.__globals__["evaluate"]
    assert judge(LOOP, "ex3-tests", seed, text).passed, "a correct fit must not pay for train_one_epoch"


def test_fit_is_judged_with_stand_ins_that_are_no_answers():
    """The bug zoo's fit variants: a correct fit passes, every mistake that changes values fails, and those
    whose values stay right on a CPU (the kernel's checks catch them) pass, with stand-ins for
    train_one_epoch and evaluate that never train (no reference loop exists in course_utils)."""
    from tqdm.auto import trange

    from course_utils.checks.lesson07 import common, ex1, ex2, ex3
    from tests.helpers import recheck
    from tests.zoos.lesson07 import ZOO

    for module in (verdict_probes, common, ex1, ex2, ex3):
        assert not [name for name in vars(module) if name.lstrip("_").startswith("reference")], module
    for variant in [v for v in ZOO.variants if v.exercise == "ex3-tests"]:
        namespace = {"torch": torch, "nn": torch.nn, "trange": trange}
        exec(variant.source, namespace)  # noqa: S102 - the zoo's own code
        verdicts = [recheck(LOOP, namespace, "ex3-tests", seed).passed for seed in (3, 77, 123_456)]
        should_pass = variant.bug is None or not variant.values_show
        assert verdicts == [should_pass] * 3, (variant.name, verdicts)


def test_the_answer_is_exactly_the_probes_line():
    line = verdict_probes.probe_line("01_dataloader_batching", "ex3-tests", {"batch_sizes": lambda n, s, d=False: [s]}, 5)
    assert read_values(line, "ex3-tests") is not None and read_values(line + "\n", "ex3-tests") is not None
    assert read_values(line + "\n" + line, "ex3-tests") is None, "more than the probe's one line is refused"
    assert read_values("noise\n" + line, "ex3-tests") is None
    assert "COURSE-VERDICT" not in probe_source("01_dataloader_batching", "ex3-tests", 5), "an expression, no print"


@pytest.mark.parametrize("printed", ["", "COURSE-VERDICT ex1-tests not-base64!!", "COURSE-VERDICT ex1-tests aGVsbG8=",
                                     "COURSE-VERDICT other-cell " + verdict_probes.encode({"loss": 1.0})])
def test_unreadable_or_foreign_values_fail(printed):
    assert read_values(printed, "ex1-tests") is None
    assert not judge(LOOP, "ex1-tests", 5, printed).passed


def test_values_are_read_without_running_code():
    class Boom:
        def __reduce__(self):
            return (print, ("code ran while reading",))

    import base64
    import io
    import pickle

    payload = base64.b64encode(pickle.dumps({"x": Boom()})).decode()
    assert read_values(f"COURSE-VERDICT ex1-tests {payload}", "ex1-tests") is None
    buffer = io.BytesIO()
    torch.save({"loss": 0.5}, buffer)
    assert read_values(f"COURSE-VERDICT ex1-tests {base64.b64encode(buffer.getvalue()).decode()}", "ex1-tests") == {"loss": 0.5}


# --- cached execution, feedback view -------------------------------------------------------

def test_cached_execution_takes_outputs_from_memory_by_cell_id():
    executed = new_notebook(cells=[new_code_cell("1", id="a"), grade_cell()])
    executed.cells[0].outputs = [new_output("stream", name="stdout", text="ran")]
    sanitized = new_notebook(cells=[new_code_cell("1", id="a"), grade_cell(), new_code_cell("2", id="added")])
    step = CachedExecution(executed={"alice/lesson": executed})
    result, _ = step.preprocess(sanitized, {"nbgrader": {"student": "alice", "notebook": "lesson"}})
    assert result.cells[0].outputs[0]["text"] == "ran"
    assert result.cells[2].outputs[0]["ename"] == "NotGraded"


def test_feedback_shows_no_hidden_tests_and_no_course_frames():
    test = grade_cell(source="check(x)\n### BEGIN HIDDEN TESTS\nsecret_check(x)\n### END HIDDEN TESTS\n")
    test.metadata.nbgrader.update(score=0, points=3)
    test.outputs = [new_output("error", ename="CheckFailed",
                               evalue="\n✗ train_one_epoch: gradients accumulated across batches [accumulated-gradients]\n"
                                      "    expected: a\n    found:    b\n    hint:     c",
                               traceback=["File /x/site-packages/course_utils/checks/lesson07/ex1.py line 3", "CheckFailed: ..."])]
    answer = new_code_cell("def f():\n    raise ValueError('mine')", id="answer")
    answer.outputs = [new_output("error", ename="ValueError", evalue="mine",
                                 traceback=["Cell In[3], line 2, in f", "/venv/lib/python3.11/site-packages/torch/x.py",
                                            "ValueError: mine"])]
    notebook = new_notebook(cells=[new_markdown_cell("### Exercise 1 · `train_one_epoch` (4 points)"), answer, test])
    view, resources = StudentFeedbackView().preprocess(notebook, {})
    assert "secret_check" not in view.cells[2].source and "HIDDEN" not in view.cells[2].source
    assert not any("course_utils" in line for line in view.cells[2].outputs[0]["traceback"])
    assert view.cells[1].outputs[0]["traceback"] == ["Cell In[3], line 2, in f", "ValueError: mine"]
    [row] = resources["course_feedback"]["rows"]
    assert row.title == "Exercise 1 · train_one_epoch" and row.points == 3
    assert "[accumulated-gradients]" in row.diagnosis


def test_hidden_test_lines_are_cut_from_every_output_in_every_disguise():
    from course_tools.grade.feedback import REDACTED, redact_hidden_tests

    secret = 'check_secret(x, seed=4242)  # "instructor"'
    test = grade_cell(source=f"check(x)\n### BEGIN HIDDEN TESTS\n{secret}\n### END HIDDEN TESTS\n")
    answer = new_code_cell("print(...)", id="answer")
    disguises = [secret, secret[::-1], secret.encode().hex(), secret.encode().hex().upper(), repr(secret)[1:-1],
                 __import__("json").dumps(secret)[1:-1], __import__("html").escape(secret)]
    answer.outputs = [new_output("stream", name="stdout", text="\n".join(disguises)),
                      new_output("error", ename="E", evalue=secret, traceback=[f"line: {secret}"]),
                      new_output("display_data", data={"text/plain": secret, "text/html": f"<b>{secret}</b>"})]
    answer.outputs[0]["text"] += "\nordinary output stays"
    redact_hidden_tests(new_notebook(cells=[answer, test]))
    shown = str(answer.outputs)
    assert not [d for d in disguises if d in shown], shown
    assert shown.count(REDACTED) >= len(disguises) + 4 and "ordinary output stays" in shown
    assert "check(x)" in test.source, "the test cell's source itself is left to StudentFeedbackView"


def test_the_instructor_is_warned_about_hidden_tests(tmp_path):
    from course_tools.grade.prepare import hidden_tests_warning
    from tests.helpers import add_hidden_test, remove_hidden_tests

    course = copy_course(tmp_path / "course", [LOOP])
    remove_hidden_tests(course, LOOP)
    assert load_lesson(course, LOOP).hidden == () and hidden_tests_warning(load_lesson(course, LOOP)) == ""
    add_hidden_test(course, LOOP, "ex2-tests", "assert True")
    warning = hidden_tests_warning(load_lesson(course, LOOP))
    assert "(ex2-tests)" in warning and "student's own kernel" in warning


def test_failure_helpers_read_codes_and_titles():
    message = "\n✗ evaluate: the model was in train mode during evaluation [eval-mode]\n    also:     x [eval-grad]"
    assert diagnosis_codes(message) == ("eval-mode", "eval-grad")
    assert without_hidden_tests("a\n### BEGIN HIDDEN TESTS\nb\n### END HIDDEN TESTS\nc") == "a\nc"
    notebook = new_notebook(cells=[new_markdown_cell("## Part\n### Exercise 2 · `evaluate` (3 points)"), grade_cell("ex2-tests")])
    assert exercise_titles(notebook) == {"ex2-tests": "Exercise 2 · evaluate"}


# --- report: course-grades.csv, tables -----------------------------------------------------

def result(student, score, status=Status.OK, codes=(), reason=""):
    exercises = (ExerciseResult("ex1-tests", "Exercise 1", 0.0 if codes else 4.0, 4.0, tuple(codes), "m" if codes else ""),)
    return SubmissionResult(student, LOOP, status, score, 10.0, exercises, reason)


def test_course_grades_csv_neutralises_formulas_and_control_characters(tmp_path):
    results = [result("=cmd", 10.0), result("bob", 6.0, codes=("accumulated-gradients",)),
               result("eve", 0.0, Status.INVALID, reason="bad\x1b[31m zip")]
    path = record(tmp_path, LOOP, results)
    assert path.name == GRADES_FILE != "grades.csv"
    rows = list(csv.DictReader(path.open()))
    assert [r["student_id"] for r in rows] == ["'=cmd", "bob", "eve"]
    assert "\x1b" not in rows[2]["reason"]
    assert rows[1]["diagnoses"] == "accumulated-gradients"
    assert load_results(tmp_path, LOOP) == sorted(results, key=lambda r: r.student)


def test_the_summary_tables_name_the_diagnoses():
    results = [result("alice", 10.0), result("bob", 6.0, codes=("accumulated-gradients",))]
    students = student_table(results)
    assert "alice" in students and "full marks" in students
    assert "gradients accumulated across batches" in students
    assert "accumulated-gradients ×1" in exercise_table(results) and "1/2" in exercise_table(results)


# --- prepare: stale releases, the cache key ------------------------------------------------

def test_a_stale_release_is_a_clear_error_not_a_rewrite(tmp_path):
    course = copy_course(tmp_path / "course", [LOOP])
    release = course / "notebooks" / LOOP / f"{LOOP}.ipynb"
    notebook = nbformat.read(str(release), as_version=4)
    for cell in notebook.cells:
        if cell.get("id") == "ex1-tests":
            cell.source += "\n# changed"
    nbformat.write(notebook, str(release))
    before = release.read_bytes()
    with pytest.raises(InvalidLesson, match="stale.*make notebooks"):
        load_lesson(course, LOOP)
    assert release.read_bytes() == before


def test_the_cache_key_changes_when_the_grading_code_does(tmp_path, monkeypatch):
    """A fix to a grader (here: one line of lesson 07's checks) regrades everyone without --force."""
    import shutil

    import course_utils

    course = copy_course(tmp_path / "course", [LOOP])
    package = tmp_path / "package" / "course_utils"
    shutil.copytree(Path(course_utils.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(course_utils, "__file__", str(package / "__init__.py"))
    before = load_lesson(course, LOOP).fingerprint
    assert load_lesson(course, LOOP).fingerprint == before, "the key is stable while nothing changes"
    grader = package / "checks" / "lesson07" / "ex1.py"
    grader.write_text(grader.read_text() + "\n# a fix to the grader\n")
    assert load_lesson(course, LOOP).fingerprint != before


# --- score: nbgrader in-process on executions handed over in memory (no kernel launched) ---------

def test_scoring_takes_points_and_diagnoses_from_the_executions_in_memory(tmp_path):
    import tempfile as _tempfile

    from course_tools.grade.execute import Executed
    from course_tools.grade.prepare import with_hidden_tests
    from course_tools.grade.score import register_lesson, score_all
    from tests.helpers import fill_answers

    course = copy_course(tmp_path / "course", [LOOP])
    lesson = load_lesson(course, LOOP)
    with _tempfile.TemporaryDirectory() as scratch:
        register_lesson(course, LOOP, Path(scratch))
    runs = {}
    for student, failing in (("alice", None), ("bob", "ex1-tests")):
        notebook = with_hidden_tests(fill_answers(lesson.release, lesson.source), lesson)
        folder = course / "submitted" / student / LOOP
        folder.mkdir(parents=True)
        nbformat.write(notebook, str(folder / f"{LOOP}.ipynb"))
        for cell in notebook.cells:
            if cell.get("id") == failing:  # what the kernel would have recorded for a loop that never zeroes
                cell.outputs = [new_output("error", ename="CheckFailed", traceback=["CheckFailed"],
                                           evalue="\n✗ train_one_epoch: gradients accumulated across batches "
                                                  "[accumulated-gradients]\n    expected: a\n    found:    b\n    hint:     c")]
        runs[student] = Executed(student, notebook, Status.OK)
    results = score_all(course, lesson, runs, {"bob": ("metadata restored",)})
    alice, bob = results["alice"], results["bob"]
    assert alice.score == alice.max_score > 0 and alice.status is Status.OK
    lost = [e for e in bob.exercises if not e.full]
    assert [(e.grade_id, e.diagnoses) for e in lost] == [("ex1-tests", ("accumulated-gradients",))]
    assert bob.score == bob.max_score - lost[0].max_points and bob.repairs == ("metadata restored",)
    page = (course / "feedback" / "bob" / LOOP / f"{LOOP}.html").read_text()
    assert "gradients accumulated across batches" in page and "BEGIN HIDDEN TESTS" not in page


def test_repairs_run_bounded_in_a_worker_and_a_runaway_one_is_invalid(tmp_path, monkeypatch):
    from course_tools.grade import prepare as stage
    from course_tools.repair import InvalidSubmission

    course = copy_course(tmp_path / "course", [LOOP])
    lesson = load_lesson(course, LOOP)
    with stage.RepairWorker(seconds=60) as repairer:
        fixed, notes = repairer.repair(nbformat.writes(lesson.release), lesson, "my copy.ipynb")
        assert [c.get("id") for c in fixed.cells] == [c.get("id") for c in lesson.release.cells]
        assert any("renamed" in note for note in notes)
        with pytest.raises(InvalidSubmission, match="not valid JSON|JSON"):
            repairer.repair("{not json", lesson, "x.ipynb")
    with stage.RepairWorker(seconds=0.001) as slow:
        with pytest.raises(InvalidSubmission, match="took more than"):
            slow.repair(nbformat.writes(lesson.release), lesson, "x.ipynb")
