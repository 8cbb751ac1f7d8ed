"""Collect: find each student's submitted notebook for a lesson, from ``submitted/`` or a zip of downloads.

nbgrader's layout is ``submitted/<student>/<lesson>/*.ipynb``. A zip of downloaded notebooks
(``<student>_<anything>.ipynb`` or ``<student>/<anything>.ipynb``) is unpacked into it first.
Each submission's original is kept under ``.original/`` before anything else touches it.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

ORIGINALS = ".original"


class CollectError(RuntimeError):
    """The submissions cannot be collected at all (not one student's problem); the message says why."""


def unpack_zip(root: Path, lesson: str, archive: Path) -> list[str]:
    """Put each ``<student>_<anything>.ipynb`` (or ``<student>/<anything>.ipynb``) of ``archive`` in place.

    The student id is the part before the first underscore of the file name, or the top folder.
    Returns the student ids found; files that are not notebooks are skipped.
    """
    if not zipfile.is_zipfile(archive):
        raise CollectError(f"{archive} is not a zip file")
    students = []
    with zipfile.ZipFile(archive) as bundle:
        for member in bundle.infolist():
            name = Path(member.filename)
            if member.is_dir() or name.suffix != ".ipynb" or "__MACOSX" in name.parts:
                continue
            student = name.parts[0] if len(name.parts) > 1 else name.name.split("_", 1)[0]
            loose_without_id = len(name.parts) == 1 and "_" not in name.name
            if not student or student.startswith(".") or loose_without_id:
                continue
            folder = root / "submitted" / student / lesson
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / name.name
            if target.exists() and target.read_bytes() == bundle.read(member):
                continue
            if (folder / ORIGINALS).exists():
                _keep_earlier_upload(folder)
            target.write_bytes(bundle.read(member))
            students.append(student)
    return sorted(set(students))


def _keep_earlier_upload(folder: Path) -> None:
    """A new upload replaces the graded one: move the earlier original and its repair aside, losing nothing."""
    earlier = folder / f".earlier-{len(list(folder.glob('.earlier-*'))) + 1}"
    earlier.mkdir()
    shutil.move(str(folder / ORIGINALS), str(earlier / ORIGINALS))
    for path in folder.glob("*.ipynb"):
        shutil.move(str(path), str(earlier / path.name))


def find_students(root: Path, lesson: str) -> list[str]:
    """Students with a submission folder for ``lesson``."""
    submitted = root / "submitted"
    if not submitted.is_dir():
        return []
    return sorted(p.name for p in submitted.iterdir() if (p / lesson).is_dir() and not p.name.startswith("."))


def original_notebook(folder: Path, lesson: str) -> Path | None:
    """Move the submitted notebook(s) aside once; return the one to grade."""
    originals = folder / ORIGINALS
    loose = sorted(folder.glob("*.ipynb"))
    if not originals.exists():
        originals.mkdir()
        for path in loose:
            shutil.move(str(path), str(originals / path.name))
    candidates = sorted(originals.glob("*.ipynb"))
    preferred = [p for p in candidates if p.name == f"{lesson}.ipynb"]
    return (preferred or candidates or [None])[0]
