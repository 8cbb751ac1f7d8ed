"""The README's term walk-through, run as written: every command of its block, in order, in a fresh course.

release -> roster -> collect and grade a Canvas zip -> review in formgrader (a manual grade given through
formgrader's own API) -> export for Canvas and as a plain CSV, with the export files checked field by field
against the gradebook and each platform's documented columns.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from course_tools.export import CANVAS_COLUMNS
from course_tools.grade.attempts import attempts
from course_tools.grade.collect import TIMESTAMP_FILE
from course_tools.grade.report import GRADES_FILE
from course_tools.notebooks import read_notebook
from course_tools.sandbox import sandbox_problem
from tests.helpers import ROOT, copy_course, fill_answers
from tests.lms_fixtures import CANVAS_EXPORT, build_zip, canvas_names

pytestmark = pytest.mark.pipeline

LESSON = "01_dataloader_batching"
HEADING = "### A term, step by step"
ROSTER_DOWNLOAD, SUBMISSIONS = "canvas-gradebook.csv", "submissions.zip"  # the files the README's commands name
TOKEN = "term-walk-token"


def term_commands() -> list[str]:
    """The commands of the README's walk-through block, comments removed, in order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert HEADING in readme, f"README.md has no '{HEADING}' section (the Instructors' term walk-through)"
    block = re.search(r"```bash\n(.*?)```", readme.split(HEADING, 1)[1], re.S)
    assert block, f"the '{HEADING}' section has no bash block"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.split("#", 1)[0].strip()]


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])  # an active venv
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _api(port: int, path: str, body: dict | None = None) -> object:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="PUT" if body is not None else "GET",
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        text = response.read().decode()
    return json.loads(text) if path.startswith("/formgrader/api") or path.startswith("/api") else text


def review_in_formgrader(course: Path, args: list[str], review: dict) -> None:
    """Start the README's server (plus only a port, a token, no browser and, as root, --allow-root), then do
    what an instructor does in formgrader: look at the submissions and give one exercise a manual grade."""
    port = _free_port()
    extra = [f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}", "--no-browser"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        extra.append("--allow-root")
    log = course / "jupyter-server.log"
    with open(log, "w") as output:
        server = subprocess.Popen(args + extra, cwd=course, env=_environment(), stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                _api(port, "/api/status")
                break
            except OSError:
                assert server.poll() is None, f"jupyter server stopped:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"jupyter server did not answer in 180 s:\n{log.read_text()[-3000:]}"
                time.sleep(1)
        review["page"] = _api(port, "/formgrader")
        review["assignments"] = [a["name"] for a in _api(port, "/formgrader/api/assignments")]
        submissions = {s["student"]: s for s in _api(port, f"/formgrader/api/submitted_notebooks/{LESSON}/{LESSON}")}
        review["students"] = sorted(submissions)
        grades = _api(port, f"/formgrader/api/grades?submission_id={submissions['zmuller']['id']}")
        first = grades[0]
        changed = _api(port, f"/formgrader/api/grade/{first['id']}", {"manual_score": 2.0, "extra_credit": 0.5})
        review["override"] = (changed["manual_score"], changed["extra_credit"])
        after = {s["student"]: s for s in _api(port, f"/formgrader/api/submitted_notebooks/{LESSON}/{LESSON}")}
        review["zmuller"] = (submissions["zmuller"]["score"], first["auto_score"], after["zmuller"]["score"])
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    """A fresh course, the platform's files a new instructor downloads, and every README command run in order."""
    commands = term_commands()
    for name in (ROSTER_DOWNLOAD, SUBMISSIONS):
        assert any(name in shlex.split(c) for c in commands), f"the README's walk-through no longer uses {name}"
    course = copy_course(tmp_path_factory.mktemp("term") / "course", [LESSON])
    (course / ROSTER_DOWNLOAD).write_text(CANVAS_EXPORT, encoding="utf-8")
    release = read_notebook(course / "notebooks" / LESSON / f"{LESSON}.ipynb")
    source = read_notebook(course / "solutions" / LESSON / f"{LESSON}.ipynb")
    import nbformat

    solved, blank = (nbformat.writes(n).encode() for n in (fill_answers(release, source), release))
    names = canvas_names(LESSON)  # Mia on time, Zoë (blank notebook) and José LATE, one stranger
    build_zip(course / SUBMISSIONS, {names["mjones"]: solved, names["zmuller"]: blank, names["jgarcia"]: solved,
                                     "doejane_10077_777077_homework.ipynb": solved})
    outputs, review = {}, {}
    for command in commands:
        args = shlex.split(command)
        if args[:2] == ["jupyter", "server"]:
            review_in_formgrader(course, args, review)
            continue
        if args[:2] == ["course", "grade"] and sandbox_problem() is not None:
            args.append("--no-sandbox")  # the README: the sandbox needs Linux, bubblewrap and root
        done = subprocess.run(args, cwd=course, env=_environment(), capture_output=True, text=True, timeout=1200)
        assert done.returncode == 0, f"README command failed: {command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        outputs[command] = done.stdout + done.stderr
    return course, outputs, review


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def gradebook_scores(course: Path) -> dict[str, str]:
    """What the gradebook holds, counted as nbgrader export counts it: score minus late penalty."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        return {s.student.id: f"{round(max(0.0, s.score - s.late_submission_penalty), 2):g}"
                for s in gradebook.assignment_submissions(LESSON)}


def test_the_walk_through_covers_the_term():
    steps = [" ".join(shlex.split(c)[:2]) for c in term_commands()]
    assert steps == ["course release", "course roster", "course grade", "jupyter server", "course export",
                     "course export"], steps
    assert "--to canvas" in term_commands()[4]


def test_grading_the_canvas_zip_maps_every_download_name(term):
    course, *_ = term
    with open(course / GRADES_FILE, newline="") as handle:
        rows = {r["student_id"]: r for r in csv.DictReader(handle) if r["assignment"] == LESSON}
    assert {s: (rows[s]["score"], rows[s]["status"]) for s in ("mjones", "jgarcia")} == {
        "mjones": ("9", "ok"), "jgarcia": ("9", "ok")}
    assert rows["zmuller"]["status"] == "ok" and float(rows["zmuller"]["score"]) == 0
    assert rows["doejane"]["status"] == "invalid" and "not on the roster" in rows["doejane"]["reason"]
    folders = {s: course / "submitted" / s / LESSON for s in ("mjones", "zmuller", "jgarcia")}
    assert all((f / TIMESTAMP_FILE).is_file() for f in folders.values())
    # each upload is kept as an attempt, with the late marker its download name carried
    assert {s for s, f in folders.items() if attempts(f)[-1].late_marker} == {"zmuller", "jgarcia"}


def test_formgrader_shows_the_graded_class_and_takes_a_manual_grade(term):
    _, _, review = term
    assert LESSON in review["assignments"] and review["students"] == ["jgarcia", "mjones", "zmuller"]
    assert "formgrader" in review["page"].lower()
    before, auto, after = review["zmuller"]
    assert review["override"] == (2.0, 0.5) and after == pytest.approx(before - auto + 2.0 + 0.5)


def test_the_canvas_export_is_canvas_s_gradebook_csv(term):
    course, outputs, review = term
    rows = read_csv(course / "exports" / "canvas-grades.csv")
    assert rows[0] == CANVAS_COLUMNS + [LESSON]
    assert rows[1] == ["    Points Possible", "", "", "", "", "9"]
    by_id = {row[1]: dict(zip(rows[0], row)) for row in rows[2:]}
    expected = gradebook_scores(course)
    people = {"10001": ("Jones, Mia", "S1001", "mjones@uni.example", "Section A", "mjones"),
              "10002": ("Müller, Zoë", "S1002", "zmuller@uni.example", "Section A", "zmuller"),
              "10003": ("García Márquez, José", "S1003", "jgarcia@uni.example", "Section B", "jgarcia"),
              "10099": ("Student, Test", "", "", "Section A", None)}
    assert set(by_id) == set(people)
    for canvas_id, (name, sis, login, section, student) in people.items():
        row = by_id[canvas_id]
        assert (row["Student"], row["SIS User ID"], row["SIS Login ID"], row["Section"]) == (name, sis, login, section)
        assert row[LESSON] == (expected[student] if student else ""), canvas_id
    assert by_id["10001"][LESSON] == "9"
    assert float(by_id["10002"][LESSON]) == pytest.approx(review["zmuller"][2]), "formgrader's grade is exported"


def test_the_plain_export_has_every_roster_field_and_the_score(term):
    course, *_ = term
    rows = read_csv(course / "exports" / "csv-grades.csv")
    table = {row[0]: dict(zip(rows[0], row)) for row in rows[1:]}
    expected = gradebook_scores(course)
    assert {s: table[s][LESSON] for s in expected} == expected and table["student-test"][LESSON] == ""
    assert (table["zmuller"]["name"], table["zmuller"]["lms_id"], table["zmuller"][f"{LESSON} max"]) == (
        "Müller, Zoë", "10002", "9")
