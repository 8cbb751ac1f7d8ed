"""``course grade``: grade every submission of a lesson with one safe command.

1. (``--zip``) unpack downloaded notebooks into nbgrader's ``submitted/<student>/<lesson>/``.
2. Keep each original under ``.original/``, repair the notebook (course_tools.repair) and put
   the hidden tests in, as nbgrader would.
3. Run each changed submission in its own sandboxed kernel, ``--jobs`` at a time
   (course_tools.runner); unchanged ones are not run again unless ``--force``.
4. Let stock ``nbgrader autograde`` score the sandboxed outputs and write the gradebook (the grader
   alone writes it), then ``generate_feedback`` and ``export``.
5. Write ``grades.csv`` with a status and a reason for every submission, and print a summary.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import multiprocessing
import shutil
import subprocess
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat
from tqdm.auto import tqdm

import course_utils
from course_tools.nbgrader_hooks import CACHE_ENV_VAR, cached_notebook_path, is_test_cell
from course_tools.notebooks import read_notebook
from course_tools.release import LESSON_NAME, lesson_notebook, nbgrader_env, release_lesson
from course_tools.repair import InvalidSubmission, parse_submission, repair
from course_tools.runner import RunSettings, run_submission
from course_tools.grade.collect import ORIGINALS, find_students, original_notebook, unpack_zip
from course_tools.sandbox import FIRST_SANDBOX_UID, sandbox_problem

CACHE_DIR = ".course-grade"
GRADES_FILE = "grades.csv"
GRADES_COLUMNS = ["student_id", "assignment", "score", "max_score", "status", "reason", "repairs"]


class GradingError(RuntimeError):
    """``course grade`` cannot start; the message says why and what to do."""


@dataclass
class Outcome:
    """What happened to one student's submission of one lesson."""

    student: str
    status: str  # ok, kernel-died, timed-out, invalid, sandbox-failed
    reason: str = ""
    repairs: str = ""
    fingerprint: str = ""
    seconds: float = 0.0


# --- preparing ------------------------------------------------------------------------------

def _fingerprint(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def _with_hidden_tests(notebook: nbformat.NotebookNode, source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Put the source's test cells (hidden tests included) in, as nbgrader's OverwriteCells will."""
    tests = {c.metadata.nbgrader.grade_id: c.source for c in source.cells if is_test_cell(c)}
    sanitized = nbformat.from_dict(notebook)
    for cell in sanitized.cells:
        if is_test_cell(cell):
            cell.source = tests[cell.metadata.nbgrader.grade_id]
    return sanitized


def prepare(root: Path, lesson: str, student: str) -> tuple[Outcome, nbformat.NotebookNode | None]:
    """Repair one submission in place (original kept); return its outcome so far and the notebook to run."""
    folder = root / "submitted" / student / lesson
    original = original_notebook(folder, lesson)
    if original is None:
        return Outcome(student, "invalid", "no notebook in the submission"), None
    source_path = lesson_notebook(root, lesson)
    release = read_notebook(lesson_notebook(root, lesson, "notebooks"))
    raw = original.read_bytes()
    fingerprint = _fingerprint(raw, source_path.read_bytes(), course_utils.__version__.encode())
    source = read_notebook(source_path)
    try:
        fixed = repair(parse_submission(raw.decode("utf-8", errors="replace")), release,
                       submitted_name=original.name, release_name=f"{lesson}.ipynb", source=source)
    except InvalidSubmission as error:
        return Outcome(student, "invalid", str(error), fingerprint=fingerprint), None
    nbformat.write(fixed.notebook, folder / f"{lesson}.ipynb")
    timestamp = folder / ORIGINALS / "timestamp.txt"
    if timestamp.exists() and not (folder / "timestamp.txt").exists():
        shutil.copy(timestamp, folder / "timestamp.txt")
    outcome = Outcome(student, "ok", repairs="; ".join(fixed.notes), fingerprint=fingerprint)
    return outcome, _with_hidden_tests(fixed.notebook, source)


# --- running --------------------------------------------------------------------------------

_SLOT: int | None = None


def _claim_slot(counter: multiprocessing.Value) -> None:
    global _SLOT
    with counter.get_lock():
        _SLOT = counter.value
        counter.value += 1


def _run_one(notebook_json: str, root: str, sandboxed: bool, settings: RunSettings) -> tuple[str, str, str, float]:
    uid = FIRST_SANDBOX_UID + (_SLOT or 0) if sandboxed else None
    result = run_submission(nbformat.reads(notebook_json, as_version=4), Path(root), uid=uid, settings=settings)
    return nbformat.writes(result.notebook), result.status, result.reason, result.seconds


def _cache(root: Path) -> Path:
    return root / CACHE_DIR


def _load_outcome(root: Path, lesson: str, student: str) -> Outcome | None:
    path = _cache(root) / lesson / student / "outcome.json"
    return Outcome(**json.loads(path.read_text())) if path.exists() else None


def _save_outcome(root: Path, lesson: str, outcome: Outcome) -> None:
    folder = _cache(root) / lesson / outcome.student
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "outcome.json").write_text(json.dumps(asdict(outcome), indent=1))


def run_all(root: Path, lesson: str, work: dict[str, nbformat.NotebookNode], outcomes: dict[str, Outcome], *,
            jobs: int, sandboxed: bool, settings: RunSettings) -> None:
    """Run the prepared notebooks, ``jobs`` at a time, with a progress bar; cache every result."""
    if not work:
        return
    context = multiprocessing.get_context("spawn")  # no fork: workers start clean, without the grader's state
    counter = context.Value("i", 0)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_claim_slot, initargs=(counter,)) as pool:
        futures = {pool.submit(_run_one, nbformat.writes(nb), str(root), sandboxed, settings): student
                   for student, nb in work.items()}
        for future in tqdm(as_completed(futures), total=len(futures), desc=f"grading {lesson}", unit="notebook"):
            student = futures[future]
            executed, status, reason, seconds = future.result()
            path = cached_notebook_path(_cache(root), lesson, student, lesson)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(executed)
            outcome = outcomes[student]
            outcome.status, outcome.reason, outcome.seconds = status, reason, seconds
            _save_outcome(root, lesson, outcome)


# --- scoring with nbgrader ------------------------------------------------------------------

def _nbgrader_command(root: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    env = nbgrader_env()
    env[CACHE_ENV_VAR] = str(_cache(root))
    return [sys.executable, "-m", "nbgrader", *args], env


def _check(result: subprocess.CompletedProcess[str], what: str) -> None:
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-12:])
        raise GradingError(f"nbgrader {what} failed:\n{tail}")


def _nbgrader(root: Path, *args: str) -> None:
    command, env = _nbgrader_command(root, *args)
    _check(subprocess.run(command, cwd=root, env=env, capture_output=True, text=True), args[0])


def _exclude(students: list[str]) -> list[str]:
    return [f"--CourseDirectory.student_id_exclude={','.join(students)}"] if students else []


def score_with_nbgrader(root: Path, lesson: str, graded: list[str], others: list[str], jobs: int = 1) -> None:
    """Autograde (from the sandboxed outputs) and write feedback for ``graded``; leave ``others`` alone.

    Autograding writes the gradebook, so one process does it; feedback only reads it, so ``jobs``
    processes write it side by side.
    """
    if not graded:
        return
    _nbgrader(root, "autograde", lesson, "--force", *_exclude(others))
    chunks = [graded[i::jobs] for i in range(min(jobs, len(graded)))]
    running = []
    for chunk in chunks:
        command, env = _nbgrader_command(root, "generate_feedback", lesson, "--force",
                                         *_exclude(sorted(set(others) | set(graded) - set(chunk))))
        running.append(subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for process in running:
        stdout, stderr = process.communicate()
        _check(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), "generate_feedback")


def write_grades(root: Path) -> Path:
    """Export the gradebook and add each submission's status, reason and repairs: ``grades.csv``."""
    exported = root / CACHE_DIR / "export.csv"
    _nbgrader(root, "export", "--to", str(exported))
    rows = list(csv.DictReader(io.StringIO(exported.read_text())))
    seen = {(row["student_id"], row["assignment"]) for row in rows}
    lines = []
    for row in rows:
        outcome = _load_outcome(root, row["assignment"], row["student_id"])
        if outcome is None and not row.get("timestamp"):
            continue  # a student without a submission of this lesson
        lines.append({"student_id": row["student_id"], "assignment": row["assignment"], "score": row["score"],
                      "max_score": row["max_score"], "status": outcome.status if outcome else "ok",
                      "reason": outcome.reason if outcome else "", "repairs": outcome.repairs if outcome else ""})
    for lesson_folder in sorted(p for p in _cache(root).glob("*") if p.is_dir()):
        for outcome_file in sorted(lesson_folder.glob("*/outcome.json")):
            outcome = _load_outcome(root, lesson_folder.name, outcome_file.parent.name)
            if (outcome.student, lesson_folder.name) not in seen and outcome.status == "invalid":
                lines.append({"student_id": outcome.student, "assignment": lesson_folder.name, "score": "0",
                              "max_score": "", "status": "invalid", "reason": outcome.reason, "repairs": ""})
    path = root / GRADES_FILE
    temporary = path.with_suffix(".csv.tmp")
    with open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=GRADES_COLUMNS)
        writer.writeheader()
        writer.writerows(sorted(lines, key=lambda r: (r["assignment"], r["student_id"])))
    temporary.replace(path)  # a crash mid-write never leaves a half file
    return path


# --- the command ----------------------------------------------------------------------------

def _in_gradebook(root: Path, lesson: str) -> bool:
    from nbgrader.api import Gradebook, MissingEntry

    if not (root / "gradebook.db").exists():
        return False
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        try:
            gradebook.find_assignment(lesson)
        except MissingEntry:
            return False
    return True


def _ensure_released(root: Path, lesson: str) -> None:
    """Make sure the gradebook holds the lesson's current tests: release it again only when it changed."""
    stamp = _cache(root) / lesson / "released-from.sha256"
    digest = _fingerprint(lesson_notebook(root, lesson).read_bytes(), course_utils.__version__.encode())
    if stamp.exists() and stamp.read_text() == digest and _in_gradebook(root, lesson):
        return
    release_lesson(root, lesson)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)


def grade(root: Path, lesson: str, *, jobs: int = 1, force: bool = False, archive: Path | None = None,
          allow_unsandboxed: bool = False, settings: RunSettings = RunSettings()) -> list[Outcome]:
    """Grade every submission of ``lesson`` under ``root``; return the outcomes (see the module docstring)."""
    root = Path(root).resolve()
    if not LESSON_NAME.match(lesson) or not lesson_notebook(root, lesson).is_file():
        raise GradingError(f"no lesson {lesson!r} under {root / 'solutions'}")
    if jobs < 1:
        raise GradingError(f"--jobs must be at least 1, got {jobs}")
    problem = sandbox_problem()
    if problem and not allow_unsandboxed:
        raise GradingError(f"NO SANDBOX: {problem}. Student code would run with your rights and could read the "
                           "solutions and rewrite the gradebook. Fix that, or pass --no-sandbox to grade anyway.")
    if problem:
        print(f"WARNING: grading WITHOUT a sandbox ({problem}); student code runs with your rights.", file=sys.stderr)
    _ensure_released(root, lesson)
    if archive is not None:
        unpack_zip(root, lesson, Path(archive))
    outcomes: dict[str, Outcome] = {}
    work: dict[str, nbformat.NotebookNode] = {}
    unchanged: list[str] = []
    for student in find_students(root, lesson):
        outcome, notebook = prepare(root, lesson, student)
        earlier = _load_outcome(root, lesson, student)
        if notebook is not None and not force and earlier and earlier.fingerprint == outcome.fingerprint \
                and cached_notebook_path(_cache(root), lesson, student, lesson).exists():
            outcomes[student] = earlier
            unchanged.append(student)
            continue
        outcomes[student] = outcome
        if notebook is None:
            _save_outcome(root, lesson, outcome)
        else:
            work[student] = notebook
    run_all(root, lesson, work, outcomes, jobs=jobs, sandboxed=problem is None, settings=settings)
    not_now = sorted(set(unchanged) | {s for s, o in outcomes.items() if o.status == "invalid"})
    score_with_nbgrader(root, lesson, sorted(work), not_now, jobs=jobs)
    write_grades(root)
    return sorted(outcomes.values(), key=lambda o: o.student)


def summary(outcomes: list[Outcome], root: Path, lesson: str) -> str:
    """A few lines for the end of ``course grade``: counts, full marks, problems by reason."""
    with open(root / GRADES_FILE, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["assignment"] == lesson]
    full = sum(1 for r in rows if r["max_score"] and float(r["score"]) == float(r["max_score"]))
    problems = Counter(o.status for o in outcomes if o.status != "ok")
    repaired = sum(1 for o in outcomes if o.repairs)
    lines = [f"{lesson}: {len(outcomes)} student(s) graded, {full} with full marks, {repaired} repaired notebook(s)"]
    lines += [f"  {count} × {status}" for status, count in sorted(problems.items())]
    lines.append(f"grades: {root / GRADES_FILE}; feedback: {root / 'feedback'}/<student>/{lesson}/")
    return "\n".join(lines)
