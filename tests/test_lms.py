"""Zips from Canvas, Moodle and Blackboard: each download name mapped to a safe id through the roster, its
time in nbgrader's timestamp.txt, its late marker kept, and a name no one answers to an invalid row that stays."""

from __future__ import annotations

import pytest
from nbgrader.utils import parse_utc

from course_tools import lms
from course_tools.grade.attempts import attempts
from course_tools.grade.collect import LATE_MARKER, TIMESTAMP_FILE, collect, remembered_refusals, unpack_zip
from course_tools.roster import import_roster
from tests.lms_fixtures import (
    CANVAS_EXPORT, HANDED_IN, blackboard_names, build_zip, canvas_names, moodle_names, utc,
)

LESSON = "01_dataloader_batching"
NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def notebook_of(student: str) -> bytes:
    return NOTEBOOK.replace(b"{}", f'{{"author": "{student}"}}'.encode())


@pytest.fixture
def course(tmp_path):
    root = tmp_path / "course"
    root.mkdir()
    (tmp_path / "canvas.csv").write_text(CANVAS_EXPORT, encoding="utf-8")
    import_roster(root, tmp_path / "canvas.csv")
    return root


@pytest.mark.parametrize(("parts", "expected"), [
    (("jonesmia_10001_777001_homework.ipynb",), lms.Member(lms.CANVAS, "jonesmia", "homework.ipynb", "10001")),
    (("mullerzoe_LATE_10002_777002_a_b.ipynb",), lms.Member(lms.CANVAS, "mullerzoe", "a_b.ipynb", "10002", True)),
    (("Mia Jones_4001_assignsubmission_file_x.ipynb",), lms.Member(lms.MOODLE, "Mia Jones", "x.ipynb", "4001")),
    (("Zoë Müller_4002_assignsubmission_file_", "h.ipynb"), lms.Member(lms.MOODLE, "Zoë Müller", "h.ipynb", "4002")),
    (("Zoë Müller_4002_assignsubmission_file", "h.ipynb"), lms.Member(lms.MOODLE, "Zoë Müller", "h.ipynb", "4002")),
    (("Lesson 1_mj_x_attempt_2026-10-02-08-15-30_h.ipynb",),
     lms.Member(lms.BLACKBOARD, "Lesson 1_mj_x", "h.ipynb", submitted_at=utc(2026, 10, 2, 8, 15, 30))),
    (("L1_mj_attempt_2026-13-45-99-00-00_h.ipynb",), lms.Member(lms.BLACKBOARD, "L1_mj", "h.ipynb")),
    (("alice_01_dataloader_batching.ipynb",), lms.Member(lms.PLAIN, "alice", "alice_01_dataloader_batching.ipynb")),
    (("bob", "homework.ipynb"), lms.Member(lms.PLAIN, "bob", "homework.ipynb")),
    (("nounderscore.ipynb",), None),
])
def test_download_names_are_read(parts, expected):
    assert lms.parse(parts) == expected


@pytest.mark.parametrize("names", [canvas_names, moodle_names, blackboard_names], ids=["canvas", "moodle", "blackboard"])
def test_each_platforms_zip_lands_under_the_roster_ids(course, tmp_path, names):
    members = {name: notebook_of(student) for student, name in names(LESSON).items()}
    extras = {"Lesson 1_mjones_attempt_2026-10-01-12-30-00.txt": b"Name: Mia Jones",
              "Mia Jones_4001_assignsubmission_onlinetext_onlinetext.html": b"<p>hi</p>"}
    unpacked = unpack_zip(course, LESSON, build_zip(tmp_path / "downloads.zip", members, extras))
    assert (unpacked.students, unpacked.problems, unpacked.rejected) == (["jgarcia", "mjones", "zmuller"], {}, [])
    items = {item.student: item for item in collect(course, LESSON)}
    assert sorted(items) == ["jgarcia", "mjones", "zmuller"] and all(not i.problem for i in items.values())
    for student, item in items.items():
        assert item.notebook.read_bytes() == notebook_of(student)
        assert item.notebook.name in (f"{LESSON}.ipynb", "homework.ipynb", "homework-1.ipynb"), "the student's own name"


def test_times_and_late_markers_are_kept_as_nbgrader_reads_them(course, tmp_path):
    for names in (canvas_names, blackboard_names):
        root = tmp_path / names.__name__
        root.mkdir()
        (root / "roster.csv").write_bytes((course / "roster.csv").read_bytes())
        members = {name: notebook_of(student) for student, name in names(LESSON).items()}
        unpack_zip(root, LESSON, build_zip(tmp_path / f"{names.__name__}.zip", members))
        folder = {s: root / "submitted" / s / LESSON for s in ("mjones", "zmuller", "jgarcia")}
        times = {s: parse_utc((f / TIMESTAMP_FILE).read_text()) for s, f in folder.items()}
        late = {s for s, f in folder.items() if (f / LATE_MARKER).is_file()}
        if names is canvas_names:  # the zip member's date; LATE in either case
            assert times == dict.fromkeys(folder, utc(*HANDED_IN).replace(tzinfo=None))
            assert late == {"zmuller", "jgarcia"}
        else:  # Blackboard's attempt time in the name; no late marker in its names
            assert times["zmuller"] == utc(2026, 10, 2, 8, 15, 30).replace(tzinfo=None)
            assert times["jgarcia"] == utc(2026, 9, 30, 23, 59, 59).replace(tzinfo=None)
            assert late == set()


def test_a_later_upload_on_time_replaces_the_late_marker_and_keeps_the_earlier_time(course, tmp_path):
    late = {"mullerzoe_LATE_10002_777002_homework.ipynb": notebook_of("first")}
    unpack_zip(course, LESSON, build_zip(tmp_path / "a.zip", late))
    collect(course, LESSON)  # graded once: the upload kept as the first attempt, with its marker and time
    again = {"mullerzoe_10002_777009_homework.ipynb": notebook_of("second")}
    unpack_zip(course, LESSON, build_zip(tmp_path / "b.zip", again, when=(2026, 10, 3, 9, 0, 0)))
    folder = course / "submitted" / "zmuller" / LESSON
    assert not (folder / LATE_MARKER).exists()
    assert parse_utc((folder / TIMESTAMP_FILE).read_text()) == utc(2026, 10, 3, 9, 0, 0).replace(tzinfo=None)
    (earlier,) = attempts(folder)
    assert earlier.late_marker and parse_utc((earlier.folder / TIMESTAMP_FILE).read_text()).day == 1


def test_an_unknown_name_is_an_invalid_row_that_never_disappears(course, tmp_path):
    members = {"doejane_10077_777077_x.ipynb": NOTEBOOK, "Ann Other_4009_assignsubmission_file_x.ipynb": NOTEBOOK,
               "jonesmia_10001_777001_x.ipynb": notebook_of("mjones")}
    items = {i.student: i for i in collect(course, LESSON, build_zip(tmp_path / "a.zip", members))}
    assert "is not on the roster" in items["doejane"].problem and "10077" in items["doejane"].problem
    assert "'Ann Other' is not on the roster" in items["Ann Other"].problem
    assert items["mjones"].problem == ""
    assert not (course / "submitted" / "doejane").exists()
    unrelated = build_zip(tmp_path / "b.zip", {"garciamarquezjose_10003_777003_x.ipynb": notebook_of("jgarcia")})
    for archive in (None, unrelated):  # a run without a zip, then one with another student's upload
        items = {i.student: i for i in collect(course, LESSON, archive)}
        assert "is not on the roster" in items["doejane"].problem and "Ann Other" in items
    assert [s for s, _ in remembered_refusals(course, LESSON)] == ["Ann Other", "doejane"]


def test_a_refused_upload_stays_until_that_students_next_accepted_one(course, tmp_path):
    bomb = {"jonesmia_10001_777001_x.ipynb": b" " * (4 * 2**20)}
    assert "zip bomb" in {i.student: i for i in collect(course, LESSON, build_zip(tmp_path / "a.zip", bomb))}[
        "mjones"].problem
    assert "zip bomb" in {i.student: i for i in collect(course, LESSON)}["mjones"].problem
    fixed = {"jonesmia_10001_777002_x.ipynb": notebook_of("mjones")}
    items = {i.student: i for i in collect(course, LESSON, build_zip(tmp_path / "b.zip", fixed))}
    assert items["mjones"].problem == "" and remembered_refusals(course, LESSON) == []


def test_a_platform_name_without_a_roster_says_to_import_it(tmp_path):
    archive = build_zip(tmp_path / "a.zip", {"Mia Jones_4001_assignsubmission_file_x.ipynb": NOTEBOOK,
                                             "bob_x.ipynb": NOTEBOOK})
    items = {i.student: i for i in collect(tmp_path, LESSON, archive)}
    assert "Moodle download name" in items["Mia Jones"].problem
    assert "course roster import" in items["Mia Jones"].problem and items["bob"].problem == ""


def test_two_students_of_one_name_are_never_guessed(course, tmp_path):
    (course / "roster.csv").write_text((course / "roster.csv").read_text(encoding="utf-8")
                                       + "mjones-b,Mia Jones,20001,,,,\n", encoding="utf-8")
    archive = build_zip(tmp_path / "a.zip", {"Mia Jones_4001_assignsubmission_file_x.ipynb": NOTEBOOK})
    problem = {i.student: i for i in collect(course, LESSON, archive)}["Mia Jones"].problem
    assert "matches 2 students on the roster (mjones, mjones-b)" in problem
    assert not (course / "submitted").exists() or not any((course / "submitted").iterdir())


def test_with_a_roster_plain_names_must_be_on_it(course, tmp_path):
    archive = build_zip(tmp_path / "a.zip", {"mjones_x.ipynb": notebook_of("mjones"), "zz9_x.ipynb": NOTEBOOK})
    items = {i.student: i for i in collect(course, LESSON, archive)}
    assert items["mjones"].problem == "" and "'zz9' is not on the roster" in items["zz9"].problem


def test_an_unreadable_roster_stops_collecting_with_the_fix(course, tmp_path):
    from course_tools.grade.collect import CollectError

    (course / "roster.csv").write_bytes(b"student_id,name\n\xff\xfe\x00broken")
    with pytest.raises(CollectError, match="course roster import FILE"):
        collect(course, LESSON, build_zip(tmp_path / "a.zip", {"mjones_x.ipynb": NOTEBOOK}))


def test_an_unknown_blackboard_username_is_its_own_row(course, tmp_path):
    archive = build_zip(tmp_path / "a.zip", {"Lesson 1_ghost_attempt_2026-10-01-12-30-00_x.ipynb": NOTEBOOK})
    items = {i.student: i for i in collect(course, LESSON, archive)}
    assert list(items) == ["ghost"] and "'ghost' is not on the roster" in items["ghost"].problem


def test_once_the_roster_knows_the_name_its_row_gives_way_to_the_student(course, tmp_path):
    archive = build_zip(tmp_path / "a.zip", {"Ann Other_4009_assignsubmission_file_x.ipynb": NOTEBOOK})
    assert "not on the roster" in {i.student: i for i in collect(course, LESSON, archive)}["Ann Other"].problem
    (tmp_path / "late-enrolment.csv").write_text("First name,Last name,Email address\nAnn,Other,aother@uni.example\n")
    import_roster(course, tmp_path / "late-enrolment.csv")
    items = {i.student: i for i in collect(course, LESSON, archive)}
    assert sorted(items) == ["aother"] and items["aother"].problem == ""
