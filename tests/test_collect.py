"""Collecting submissions: a hostile zip never writes outside submitted/, never stops the class."""

from __future__ import annotations

import os
import stat
import struct
import zipfile
from pathlib import Path

import pytest

from course_tools.grade.attempts import ATTEMPTS, attempts
from course_tools.grade.collect import (
    ORIGINALS, REFUSALS_FILE, Collected, CollectError, ZipLimits, collect, pick_notebook, unpack_zip,
    valid_student_id,
)

LESSON = "01_dataloader_batching"
NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def files_outside_submitted(root: Path) -> list[str]:
    """Files written anywhere but submitted/ (the zip itself and the remembered refusals aside)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and "submitted" not in p.relative_to(root).parts and p.suffix != ".zip"
                  and p.name != REFUSALS_FILE)


def make_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return path


def by_student(items: list[Collected]) -> dict[str, Collected]:
    return {item.student: item for item in items}


def test_plain_submissions_are_collected_in_order(tmp_path):
    for student in ("bob", "alice"):
        folder = tmp_path / "submitted" / student / LESSON
        folder.mkdir(parents=True)
        (folder / f"{LESSON}.ipynb").write_bytes(NOTEBOOK + student.encode())
    (tmp_path / "submitted" / "carol").mkdir()  # no folder for this lesson: not a submission of it
    items = collect(tmp_path, LESSON)
    assert [i.student for i in items] == ["alice", "bob"]
    assert all(i.problem == "" and i.notebook.parent.parent.name == ATTEMPTS and i.new_attempt for i in items)
    assert items[0].notebook == tmp_path / "submitted" / "alice" / LESSON / ATTEMPTS / items[0].attempt / f"{LESSON}.ipynb"


@pytest.mark.parametrize("student", ["alice", "a.b-c_d", "S123", "x" * 64])
def test_safe_ids(student):
    assert valid_student_id(student)


@pytest.mark.parametrize("student", ["a,b", "=cmd", "-rf", "+1", "@x", ".hidden", "a b", "a\x1b[31m", "x" * 65, "é", ""])
def test_unsafe_ids(student):
    assert not valid_student_id(student)


def test_a_folder_with_a_comma_is_invalid_and_never_hides_another_student(tmp_path):
    for student in ("a,b", "b", "=HYPERLINK(1)"):
        folder = tmp_path / "submitted" / student / LESSON
        folder.mkdir(parents=True)
        (folder / "x.ipynb").write_bytes(NOTEBOOK)
    items = by_student(collect(tmp_path, LESSON))
    assert items["b"].problem == "" and items["b"].notebook is not None
    assert "not a safe id" in items["a,b"].problem and items["a,b"].notebook is None
    assert "not a safe id" in items["=HYPERLINK(1)"].problem


def test_zip_names_folders_and_junk(tmp_path):
    archive = make_zip(tmp_path / "downloads.zip", {
        f"alice_{LESSON}.ipynb": NOTEBOOK, "bob/homework.ipynb": NOTEBOOK + b" ", "readme.txt": b"no",
        "__MACOSX/._alice.ipynb": b"junk", "bob/.ipynb_checkpoints/homework-checkpoint.ipynb": b"old",
        "nounderscore.ipynb": NOTEBOOK,
    })
    unpacked = unpack_zip(tmp_path, LESSON, archive)
    assert unpacked.students == ["alice", "bob"] and unpacked.problems == {}
    assert [name for name, _ in unpacked.rejected] == ["nounderscore.ipynb"]
    assert (tmp_path / "submitted" / "alice" / LESSON / f"alice_{LESSON}.ipynb").read_bytes() == NOTEBOOK
    assert unpack_zip(tmp_path, LESSON, archive).students == [], "the same upload twice changes nothing"
    items = collect(tmp_path, LESSON)
    assert [(i.student, i.problem) for i in items] == [("alice", ""), ("bob", "")]
    unpack_zip(tmp_path, LESSON, archive)
    again = collect(tmp_path, LESSON)
    assert not any(i.new_attempt for i in again), "nor is it a new attempt after the originals were kept"
    assert [len(attempts(tmp_path / "submitted" / s / LESSON)) for s in ("alice", "bob")] == [1, 1]
    assert files_outside_submitted(tmp_path) == []


@pytest.mark.parametrize(("name", "words"), [
    ("/abs/mallory_x.ipynb", "absolute"),
    ("\\abs\\mallory_x.ipynb", "absolute"),
    ("C:/mallory_x.ipynb", "absolute"),
    ("mallory/../../escape_x.ipynb", "'..'"),
    ("../mallory_x.ipynb", "'..'"),
    ("mallory/" + "n" * 300 + ".ipynb", "over 255 bytes"),
    ("mallory/" + "é" * 130 + ".ipynb", "over 255 bytes"),
    ("mallory/x\x1b[2J.ipynb", "control characters"),
])
def test_hostile_member_names_are_refused_and_nothing_escapes(tmp_path, name, words):
    root = tmp_path / "course"
    root.mkdir()
    archive = make_zip(tmp_path / "hostile.zip", {name: NOTEBOOK, "bob_x.ipynb": NOTEBOOK})
    unpacked = unpack_zip(root, LESSON, archive)
    assert unpacked.students == ["bob"]
    assert len(unpacked.rejected) == 1 and words in unpacked.rejected[0][1]
    assert files_outside_submitted(root) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["course", "hostile.zip"]
    assert not Path("/abs").exists()
    items = by_student(collect(root, LESSON, archive))
    assert items["bob"].problem == ""


def test_a_refused_member_of_a_named_student_makes_that_student_invalid(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"mallory/" + "n" * 300 + ".ipynb": NOTEBOOK, "bob_x.ipynb": NOTEBOOK})
    items = by_student(collect(tmp_path, LESSON, archive))
    assert "over 255 bytes" in items["mallory"].problem and items["mallory"].notebook is None
    assert items["bob"].problem == ""


def test_symlink_members_are_refused(tmp_path):
    archive = tmp_path / "links.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        link = zipfile.ZipInfo("mallory/x.ipynb")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        bundle.writestr(link, "/etc/passwd")
        bundle.writestr("bob_x.ipynb", NOTEBOOK)
    unpacked = unpack_zip(tmp_path, LESSON, archive)
    assert "symbolic link" in unpacked.problems["mallory"]
    assert not (tmp_path / "submitted" / "mallory").exists()


def test_unsafe_student_ids_from_a_zip_are_reported_not_written(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"a,b/x.ipynb": NOTEBOOK, "=cmd|calc_x.ipynb": NOTEBOOK, "b_x.ipynb": NOTEBOOK})
    items = by_student(collect(tmp_path, LESSON, archive))
    assert items["b"].problem == ""
    assert "not a safe id" in items["a,b"].problem and "not a safe id" in items["=cmd|calc"].problem
    assert sorted(p.name for p in (tmp_path / "submitted").iterdir()) == ["b"]


def test_a_member_over_the_size_limit_is_never_written(tmp_path):
    archive = make_zip(tmp_path / "big.zip", {"mallory_x.ipynb": b"\0" * (40 * 2**20), "bob_x.ipynb": NOTEBOOK})
    assert archive.stat().st_size < 2**20
    unpacked = unpack_zip(tmp_path, LESSON, archive)
    assert "mallory" in unpacked.problems and unpacked.students == ["bob"]
    assert not (tmp_path / "submitted" / "mallory").exists()


def test_a_high_compression_ratio_is_refused(tmp_path):
    archive = make_zip(tmp_path / "bomb.zip", {"mallory_x.ipynb": b" " * (4 * 2**20)})
    assert "zip bomb" in unpack_zip(tmp_path, LESSON, archive).problems["mallory"]


def _lie_about_size(archive: Path, declared: int) -> None:
    """Patch the central directory so the first member claims ``declared`` unpacked bytes."""
    data = bytearray(archive.read_bytes())
    central = data.find(b"PK\x01\x02")
    data[central + 24:central + 28] = struct.pack("<I", declared)
    local = data.find(b"PK\x03\x04")
    data[local + 22:local + 26] = struct.pack("<I", declared)
    archive.write_bytes(bytes(data))


def test_a_lying_header_is_caught_while_streaming(tmp_path):
    archive = make_zip(tmp_path / "liar.zip", {"mallory_x.ipynb": os.urandom(3 * 2**20)})
    _lie_about_size(archive, 1000)
    unpacked = unpack_zip(tmp_path, LESSON, archive, ZipLimits(member_bytes=2**20))
    assert "mallory" in unpacked.problems
    assert not any((tmp_path / "submitted").rglob("*.ipynb"))


def test_a_declared_3_gib_member_is_refused_from_its_header(tmp_path):
    archive = make_zip(tmp_path / "huge.zip", {"mallory_x.ipynb": os.urandom(4096)})
    _lie_about_size(archive, 3 * 2**30)
    assert "over" in unpack_zip(tmp_path, LESSON, archive).problems["mallory"]


def test_the_total_unpacked_size_is_capped(tmp_path):
    members = {f"s{n}_x.ipynb": os.urandom(300_000) for n in range(5)}
    archive = make_zip(tmp_path / "many.zip", members, compression=zipfile.ZIP_STORED)
    unpacked = unpack_zip(tmp_path, LESSON, archive, ZipLimits(total_bytes=1_000_000))
    assert unpacked.students == ["s0", "s1", "s2"]
    assert all("in all" in unpacked.problems[s] for s in ("s3", "s4"))


@pytest.mark.parametrize("content", [b"not a zip", b""])
def test_an_unreadable_archive_stops_collecting(tmp_path, content):
    archive = tmp_path / "x.zip"
    archive.write_bytes(content)
    with pytest.raises(CollectError, match="not a readable zip"):
        collect(tmp_path, LESSON, archive)


def test_two_different_notebooks_are_a_conflict(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {f"alice_{LESSON}.ipynb": NOTEBOOK, "alice/copy.ipynb": NOTEBOOK + b"\n"})
    items = by_student(collect(tmp_path, LESSON, archive))
    assert items["alice"].notebook is None and "2 different notebooks" in items["alice"].problem


def test_the_same_name_twice_in_one_zip_is_a_conflict_not_an_overwrite(tmp_path):
    archive = tmp_path / "dup.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("alice/x.ipynb", NOTEBOOK)
        with pytest.warns(UserWarning):
            bundle.writestr("alice/x.ipynb", NOTEBOOK + b" ")
    items = by_student(collect(tmp_path, LESSON, archive))
    assert "2 different notebooks" in items["alice"].problem


def test_identical_copies_checkpoints_and_an_untouched_release_are_no_conflict(tmp_path):
    release = tmp_path / "notebooks" / LESSON / f"{LESSON}.ipynb"
    release.parent.mkdir(parents=True)
    release.write_bytes(b"blank")
    folder = tmp_path / "submitted" / "alice" / LESSON
    folder.mkdir(parents=True)
    (folder / f"{LESSON}.ipynb").write_bytes(NOTEBOOK)
    (folder / "Copy of lesson.ipynb").write_bytes(NOTEBOOK)
    (folder / "lesson-checkpoint.ipynb").write_bytes(b"old")
    (folder / "blank again.ipynb").write_bytes(b"blank")
    [item] = collect(tmp_path, LESSON)
    assert item.problem == "" and item.notebook.name == f"{LESSON}.ipynb"


def test_symlinked_notebooks_and_folders_are_not_followed(tmp_path):
    secret = tmp_path / "secret.ipynb"
    secret.write_bytes(b"solutions")
    folder = tmp_path / "submitted" / "alice" / LESSON
    folder.mkdir(parents=True)
    (folder / "x.ipynb").symlink_to(secret)
    (tmp_path / "submitted" / "bob").mkdir()
    (tmp_path / "submitted" / "bob" / LESSON).symlink_to(folder)
    items = by_student(collect(tmp_path, LESSON))
    assert items["alice"].notebook is None and "no notebook" in items["alice"].problem
    assert "symbolic link" in items["bob"].problem
    assert secret.read_bytes() == b"solutions"


def test_a_new_upload_keeps_the_earlier_original(tmp_path):
    make_zip(tmp_path / "one.zip", {"alice_x.ipynb": NOTEBOOK})
    [first] = collect(tmp_path, LESSON, tmp_path / "one.zip")
    make_zip(tmp_path / "two.zip", {"alice_x.ipynb": NOTEBOOK + b"\n"})
    [second] = collect(tmp_path, LESSON, tmp_path / "two.zip")
    assert second.problem == "" and second.notebook.read_bytes() == NOTEBOOK + b"\n" and second.new_attempt
    assert first.notebook.read_bytes() == NOTEBOOK, "the earlier attempt is kept as it was"
    assert [a.name for a in attempts(tmp_path / "submitted" / "alice" / LESSON)] == [first.attempt, second.attempt]


def test_an_oversized_notebook_in_submitted_is_invalid(tmp_path, monkeypatch):
    monkeypatch.setattr("course_tools.grade.collect.MAX_NOTEBOOK_BYTES", 10)
    folder = tmp_path / "submitted" / "alice" / LESSON
    folder.mkdir(parents=True)
    (folder / "x.ipynb").write_bytes(NOTEBOOK)
    assert "MiB" in pick_notebook(folder, LESSON)[1]


def test_undecodable_and_control_names_are_made_safe(tmp_path):
    for name in (b"caf\xe9", b"ok"):
        folder = os.path.join(os.fsencode(tmp_path), b"submitted", name, LESSON.encode())
        os.makedirs(folder)
        with open(os.path.join(folder, b"n\xff\x1b.ipynb"), "wb") as handle:
            handle.write(NOTEBOOK)
    items = by_student(collect(tmp_path, LESSON))
    assert items["ok"].notebook.name == "n__.ipynb" and items["ok"].notebook.read_bytes() == NOTEBOOK
    [unsafe] = [s for s in items if s != "ok"]
    assert unsafe == "caf\\udce9" and "not a safe id" in items[unsafe].problem
    assert all(ord(c) >= 32 for c in items[unsafe].problem)
