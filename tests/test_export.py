"""`course export`: the gradebook (manual grades and late penalties included) in each platform's import
format, compared field by field with the columns each platform documents."""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from course_tools.cli import main
from course_tools.export import CANVAS_COLUMNS, MOODLE_COLUMNS, ExportError, export
from course_tools.roster import import_roster
from tests.lms_fixtures import CANVAS_EXPORT, MOODLE_EXPORT

LESSONS = ("01_dataloader_batching", "02_normalization")
CELLS = {"ex1": 3.0, "ex2": 6.0}  # 9 points per lesson


def read(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


@pytest.fixture
def course(tmp_path, monkeypatch):
    """A course whose gradebook holds two lessons: an autograde, a formgrader override, a late penalty."""
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    root = tmp_path / "course"
    root.mkdir()
    (tmp_path / "canvas.csv").write_text(CANVAS_EXPORT, encoding="utf-8")
    (tmp_path / "moodle.csv").write_text(MOODLE_EXPORT, encoding="utf-8")
    import_roster(root, tmp_path / "canvas.csv")
    import_roster(root, tmp_path / "moodle.csv")  # the same class, now with e-mails
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        for lesson in LESSONS:
            gradebook.add_assignment(lesson)
            gradebook.add_notebook(lesson, lesson)
            for cell, points in CELLS.items():
                gradebook.add_grade_cell(cell, lesson, lesson, max_score=points, cell_type="code")
        for student in ("mjones", "zmuller", "jgarcia", "walkin"):
            gradebook.update_or_create_student(student)
        graded = {("mjones", LESSONS[0]): (3, 3), ("zmuller", LESSONS[0]): (3, 0), ("jgarcia", LESSONS[0]): (0, 6),
                  ("mjones", LESSONS[1]): (3, 6), ("walkin", LESSONS[0]): (3, 6)}
        for (student, lesson), scores in graded.items():
            gradebook.add_submission(lesson, student)
            for cell, score in zip(CELLS, scores):
                gradebook.find_grade(cell, lesson, lesson, student).auto_score = score
        gradebook.find_grade("ex2", LESSONS[0], LESSONS[0], "zmuller").manual_score = 4.5  # formgrader
        gradebook.find_grade("ex1", LESSONS[0], LESSONS[0], "zmuller").extra_credit = 1.0
        gradebook.find_submission_notebook(LESSONS[0], LESSONS[0], "jgarcia").late_submission_penalty = 2.0
        gradebook.db.commit()
    return root


EXPECTED = {"mjones": ("6", "9"), "zmuller": ("8.5", ""), "jgarcia": ("4", ""), "student-test": ("", "")}


def test_canvas_gradebook_csv(course):
    done = export(course, "canvas", assignment_ids={LESSONS[0]: "555123"})
    rows = read(done.path)
    assert rows[0] == CANVAS_COLUMNS + [f"{LESSONS[0]} (555123)", LESSONS[1]]
    assert rows[1] == ["    Points Possible", "", "", "", "", "9", "9"], "Canvas's own points row"
    by_id = {row[1]: dict(zip(rows[0], row)) for row in rows[2:]}
    assert set(by_id) == {"10001", "10002", "10003", "10099"}
    mia, zoe = by_id["10001"], by_id["10002"]
    assert (mia["Student"], mia["SIS User ID"], mia["SIS Login ID"], mia["Section"]) == (
        "Mia Jones", "S1001", "mjones@uni.example", "Section A")
    assert (zoe[f"{LESSONS[0]} (555123)"], zoe[LESSONS[1]]) == ("8.5", ""), "override + extra credit, no 0 for nothing"
    assert by_id["10003"][f"{LESSONS[0]} (555123)"] == "4", "6 minus the late penalty"
    assert done.left_out == [("walkin", "not on the roster (roster.csv), so canvas cannot match the row")]


def test_moodle_grade_import_csv(course):
    done = export(course, "moodle", [LESSONS[0]])
    rows = read(done.path)
    assert rows[0] == MOODLE_COLUMNS + [LESSONS[0]]
    by_email = {row[3]: dict(zip(rows[0], row)) for row in rows[1:]}
    assert set(by_email) == {"mjones@uni.example", "zmuller@uni.example", "jgarcia@uni.example"}
    zoe = by_email["zmuller@uni.example"]
    assert (zoe["First name"], zoe["Last name"], zoe["ID number"], zoe[LESSONS[0]]) == ("Zoë", "Müller", "S1002", "8.5")
    assert [s for s, _ in done.left_out] == ["walkin", "student-test"], "no identifier Moodle can match"


def test_plain_csv_has_everyone_the_gradebook_knows(course):
    rows = read(export(course, "csv").path)
    table = {row[0]: dict(zip(rows[0], row)) for row in rows[1:]}
    assert {s: (table[s][LESSONS[0]], table[s][LESSONS[1]]) for s in EXPECTED} == EXPECTED
    assert table["walkin"][LESSONS[0]] == "9" and table["mjones"][f"{LESSONS[0]} max"] == "9"


def test_the_command_and_its_errors(course, monkeypatch, capsys):
    monkeypatch.chdir(course)
    assert main(["export", "--to", "canvas", LESSONS[0], "--assignment-id", f"{LESSONS[0]}=555123"]) == 0
    out = capsys.readouterr()
    assert "exports/canvas-grades.csv (4 students)" in out.out and "left out walkin" in out.err
    assert main(["export", "--to", "csv", "03_forward_pass"]) == 1
    assert "no lesson 03_forward_pass" in capsys.readouterr().err
    assert main(["export", "--to", "canvas", "--assignment-id", "lesson1"]) == 1
    assert "write LESSON=ID" in capsys.readouterr().err


def test_without_a_gradebook_or_a_roster(tmp_path):
    with pytest.raises(ExportError, match="needs the class roster"):
        export(tmp_path, "canvas")
    with pytest.raises(ExportError, match="grade a lesson first"):
        export(tmp_path, "csv")
