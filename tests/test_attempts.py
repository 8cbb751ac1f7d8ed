"""Attempts: every hand-in is kept read-only with its time, the newest is graded, nothing is overwritten."""

from __future__ import annotations

import os
import stat
from datetime import datetime, timezone

from course_tools.grade.attempts import (
    ATTEMPTS, LATE_MARKER, attempts, format_timestamp, parse_timestamp, remember_repaired,
)
from course_tools.grade.collect import collect

LESSON = "01_dataloader_batching"
NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def hand_in(root, student, name, data, timestamp=None, late=False):
    folder = root / "submitted" / student / LESSON
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    if timestamp is not None:
        (folder / "timestamp.txt").write_text(timestamp)
    if late:
        (folder / LATE_MARKER).write_text("")
    return folder


def graded_by_course(folder):
    """What prepare does: write the repaired notebook in place; the pipeline remembers it."""
    for path in folder.glob("*.ipynb"):
        path.unlink()
    (folder / f"{LESSON}.ipynb").write_bytes(NOTEBOOK + b"  repaired")
    remember_repaired(folder, folder / f"{LESSON}.ipynb")


def test_a_resubmission_under_any_name_is_a_new_attempt_and_the_old_one_is_kept(tmp_path):
    folder = hand_in(tmp_path, "leo", f"{LESSON}.ipynb", NOTEBOOK, "2026-11-20 10:00:00.000000 UTC")
    [first] = collect(tmp_path, LESSON)
    assert first.new_attempt and first.submitted_at == datetime(2026, 11, 20, 10, tzinfo=timezone.utc)
    graded_by_course(folder)
    [same] = collect(tmp_path, LESSON)
    assert not same.new_attempt and same.attempt == first.attempt, "the repaired notebook is no hand-in"

    hand_in(tmp_path, "leo", "my homework (2).ipynb", NOTEBOOK + b" v2")  # a hand copy: its time is its mtime
    [second] = collect(tmp_path, LESSON)
    assert second.new_attempt and second.attempt != first.attempt
    assert second.notebook.read_bytes() == NOTEBOOK + b" v2"
    kept = attempts(folder)
    assert [a.name for a in kept] == [first.attempt, second.attempt]
    assert (kept[0].folder / f"{LESSON}.ipynb").read_bytes() == NOTEBOOK, "the first attempt is untouched"
    for attempt in kept:
        for path in attempt.folder.iterdir():
            assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), f"{path} is writable"
    assert (folder / "timestamp.txt").read_text() == format_timestamp(kept[1].submitted_at)


def test_nbgrader_collect_over_the_repaired_notebook_is_a_new_attempt_with_its_timestamp(tmp_path):
    folder = hand_in(tmp_path, "mia", f"{LESSON}.ipynb", NOTEBOOK, "2026-11-20 10:00:00.000000 UTC")
    collect(tmp_path, LESSON)
    graded_by_course(folder)
    hand_in(tmp_path, "mia", f"{LESSON}.ipynb", NOTEBOOK + b" late", "2026-11-22 12:30:00.000000 UTC", late=True)
    [item] = collect(tmp_path, LESSON)
    assert item.new_attempt and item.late_marker
    assert item.submitted_at == datetime(2026, 11, 22, 12, 30, tzinfo=timezone.utc)
    assert (attempts(folder)[-1].folder / "timestamp.txt").is_file() and not (folder / LATE_MARKER).exists()


def test_the_same_notebook_again_is_no_new_attempt_and_nothing_is_lost(tmp_path):
    folder = hand_in(tmp_path, "ana", "a.ipynb", NOTEBOOK)
    collect(tmp_path, LESSON)
    graded_by_course(folder)
    hand_in(tmp_path, "ana", "b.ipynb", NOTEBOOK)
    [item] = collect(tmp_path, LESSON)
    assert not item.new_attempt and len(attempts(folder)) == 1
    assert (attempts(folder)[0].folder / "a.ipynb").read_bytes() == NOTEBOOK


def test_a_folder_graded_by_an_earlier_version_keeps_its_original_as_the_first_attempt(tmp_path):
    folder = tmp_path / "submitted" / "old" / LESSON
    (folder / ".original").mkdir(parents=True)
    (folder / ".original" / "x.ipynb").write_bytes(NOTEBOOK)
    (folder / ".original" / "timestamp.txt").write_text("2026-10-01 08:00:00.000000 UTC")
    [item] = collect(tmp_path, LESSON)
    assert item.notebook.read_bytes() == NOTEBOOK and item.notebook.parent.parent.name == ATTEMPTS
    assert item.submitted_at == datetime(2026, 10, 1, 8, tzinfo=timezone.utc)


def test_only_the_named_students_are_collected(tmp_path):
    for student in ("a", "b", "c"):
        hand_in(tmp_path, student, "x.ipynb", NOTEBOOK + student.encode())
    assert [i.student for i in collect(tmp_path, LESSON, students=("a", "c"))] == ["a", "c"]
    assert (tmp_path / "submitted" / "b" / LESSON / "x.ipynb").is_file(), "the others are left as they are"


def test_timestamps_read_and_write_in_nbgrader_format():
    moment = parse_timestamp("2026-11-21 09:00:00.000000 UTC")
    assert moment == datetime(2026, 11, 21, 9, tzinfo=timezone.utc)
    assert parse_timestamp(format_timestamp(moment)) == moment
    assert parse_timestamp("not a time") is None
    assert os.sep not in format_timestamp(moment)
