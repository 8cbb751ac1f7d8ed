"""`course roster import`: Canvas's, Moodle's and Blackboard's own class lists, safe ids that never change."""

from __future__ import annotations

import csv
import subprocess

import pytest

from course_tools.cli import main
from course_tools.grade.collect import valid_student_id
from course_tools.roster import ROSTER_FILE, RosterError, import_roster, load, name_keys, parse, safe_id
from tests.helpers import ROOT
from tests.lms_fixtures import BLACKBOARD_EXPORT, CANVAS_EXPORT, IDS, MOODLE_EXPORT


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_canvas_gradebook_export_is_a_roster(tmp_path):
    import_roster(tmp_path, write(tmp_path, "canvas.csv", CANVAS_EXPORT))
    students = {s.name: s for s in load(tmp_path).students}
    assert "Points Possible" not in " ".join(students), "Canvas's points row is no student"
    mia = students["Jones, Mia"]
    assert (mia.student_id, mia.lms_id, mia.sis_user_id, mia.login, mia.email, mia.section) == (
        "mjones", "10001", "S1001", "mjones@uni.example", "", "Section A")
    assert {students[n].student_id for n in ("Müller, Zoë", "García Márquez, José")} == {"zmuller", "jgarcia"}
    assert students["Student, Test"].student_id == "student-test"


@pytest.mark.parametrize("text", [MOODLE_EXPORT, BLACKBOARD_EXPORT], ids=["moodle", "blackboard"])
def test_moodle_and_blackboard_exports_are_rosters(tmp_path, text):
    import_roster(tmp_path, write(tmp_path, "class.csv", text))
    students = {s.name: s for s in load(tmp_path).students}
    assert {name: s.student_id for name, s in students.items()} == IDS
    assert all(s.sis_user_id.startswith("S100") for s in students.values())


def test_importing_again_keeps_every_id_and_adds_the_newcomers(tmp_path):
    import_roster(tmp_path, write(tmp_path, "canvas.csv", CANVAS_EXPORT))
    before = {s.sis_user_id: s.student_id for s in load(tmp_path).students}
    # Moodle's list of the same class (matched by e-mail) plus one newcomer with a clashing login.
    later = MOODLE_EXPORT + "Maria,Jones,S1004,Uni,CS,mjones@other.example,1791800000\n"
    _, count, added, updated = import_roster(tmp_path, write(tmp_path, "moodle.csv", later))
    after = {s.sis_user_id: s.student_id for s in load(tmp_path).students}
    assert (count, added) == (5, 1) and updated == 3, "the three known students gain Moodle's e-mail"
    assert {k: after[k] for k in before} == before
    assert after["S1004"] == "mjones-2"
    assert all(valid_student_id(s) for s in after.values())


@pytest.mark.parametrize(("text", "expected"), [
    ("Zoë Müller", "zoe-muller"), ("José García Márquez", "jose-garcia-marquez"), ("mjones@uni.example", "mjones"),
    ("  --Ann  O'Neil ", "ann-o-neil"), ("李雷", ""), ("=cmd|calc", "cmd-calc"), ("x" * 80, "x" * 64),
])
def test_safe_ids_from_names_and_logins(text, expected):
    assert safe_id(text) == expected
    assert expected == "" or valid_student_id(expected)


def test_a_name_without_latin_letters_still_gets_a_safe_id(tmp_path):
    import_roster(tmp_path, write(tmp_path, "c.csv", "name,email\n李雷,\n"))
    (student,) = load(tmp_path).students
    assert valid_student_id(student.student_id) and student.name == "李雷"


def test_name_forms_match_in_any_order_and_without_accents():
    assert name_keys("Müller, Zoë") & name_keys("Zoe Muller")
    assert "mullerzoe" in name_keys("Müller, Zoë") and "garciamarquezjose" in name_keys("García Márquez, José")
    assert not name_keys("Mia Jones") & name_keys("Maria Jones")


@pytest.mark.parametrize(("text", "words"), [
    ("", "is empty"), ("Score,Grade\n1,2\n", "none of the columns"), ("Name\n", "lists no students"),
])
def test_bad_rosters_are_refused_with_the_reason(text, words):
    with pytest.raises(RosterError, match=words):
        parse(text)


def test_the_command_imports_and_reports(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "canvas.csv", CANVAS_EXPORT)
    assert main(["roster", "import", "canvas.csv"]) == 0
    assert "4 students (4 added, 0 updated" in capsys.readouterr().out
    with open(tmp_path / ROSTER_FILE, newline="", encoding="utf-8") as handle:
        assert next(csv.reader(handle)) == ["student_id", "name", "lms_id", "login", "email", "sis_user_id", "section"]
    assert main(["roster", "import", "missing.csv"]) == 1
    assert "missing.csv is not a file" in capsys.readouterr().err


def test_the_roster_is_never_committed():
    ignored = subprocess.run(["git", "check-ignore", "-q", ROSTER_FILE], cwd=ROOT)
    assert ignored.returncode == 0, f"{ROSTER_FILE} holds names and e-mails: .gitignore must list it"


def test_the_gradebook_learns_names_for_formgrader(tmp_path, monkeypatch):
    import os
    import sys
    from pathlib import Path

    from nbgrader.api import Gradebook

    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gradebook:
        gradebook.update_or_create_student("zmuller")  # graded before the roster came
    import_roster(tmp_path, write(tmp_path, "canvas.csv", CANVAS_EXPORT))
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gradebook:
        zoe = gradebook.find_student("zmuller")
        assert (zoe.first_name, zoe.last_name, zoe.lms_user_id) == ("Zoë", "Müller", "10002")
        assert len(gradebook.students) == 4
