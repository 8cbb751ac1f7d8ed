"""Collect: find each student's submitted notebook for a lesson, from ``submitted/`` or a zip of downloads.

nbgrader's layout is ``submitted/<student>/<lesson>/*.ipynb``. A zip of downloaded notebooks
is unpacked into it first: ``<student>_<anything>.ipynb`` or ``<student>/<anything>.ipynb``, or
the download names of Canvas, Moodle and Blackboard (:mod:`course_tools.lms`), which the class
roster (``roster.csv``, :mod:`course_tools.roster`) maps to student ids. Beside each notebook it
places, the zip route writes nbgrader's ``timestamp.txt`` (the platform's attempt time when the
name has one, else the zip member's date, read as UTC) and, when the name carries a late marker,
an empty ``.lms-late``. A refused upload is remembered (``.course-grade/<lesson>/zip-refusals.json``)
and keeps its ``invalid`` row on every later run until that student's next accepted upload.
Every hand-in is kept, read-only and with its time, as an attempt under ``.attempts/<UTC time>/``
(:mod:`course_tools.grade.attempts`), and the newest attempt is graded.

The zip is hostile input. A member is refused (and, when it names a student, that student's row
says why) when its name is absolute or has ``..``, control characters or a component over 255
bytes; when it is a link or anything but a plain file; when it is encrypted; when its declared
or actual size is over :data:`ZIP_LIMITS`, or it expands more than the allowed ratio. Members are
read as streams with a cap, so a lying header never fills the disk, and nothing is written
outside ``<root>/submitted``.

Student ids must match :data:`STUDENT_ID` (letters, digits, ``.``, ``_``, ``-``; no commas, so an
id can never name two students on nbgrader's command line, and no leading ``= + - @``). A folder
with another name is reported as ``invalid``, never graded.

Which notebook is graded when the newest attempt holds several:

- Jupyter checkpoints (``*-checkpoint.ipynb``, ``.ipynb_checkpoints/``) and hidden files are ignored;
- files with byte-identical content count once, and an untouched copy of the release is ignored;
- one notebook left: that one; several that differ: a conflict, reported, none chosen. The
  instructor copies the right one into ``submitted/<student>/<lesson>/`` (a new attempt) and grades again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from course_tools import lms
from course_tools.grade.attempts import ATTEMPTS, attempts, mark_graded, take_new_attempt
from course_tools.roster import STUDENT_ID, Roster, RosterError
from course_tools.roster import load as load_roster

ORIGINALS = ".original"  # earlier versions kept the graded original here; see course_tools.grade.attempts
TIMESTAMP_FILE = "timestamp.txt"   # nbgrader's own: the submission time, read by its late-penalty step
LATE_MARKER = ".lms-late"          # empty; the learning platform marked the upload late
REFUSALS_FILE = "zip-refusals.json"
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"  # nbgrader's Exchange.timestamp_format; nbgrader.utils.parse_utc reads it
MAX_NAME_BYTES = 255       # one path component, as most file systems allow
MAX_PATH_BYTES = 1024
MAX_NOTEBOOK_BYTES = 32 * 2**20  # a notebook larger than this is not graded (and not unpacked)
_CHUNK = 2**20

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ZipLimits:
    """What one zip of submissions may hold."""

    member_bytes: int = MAX_NOTEBOOK_BYTES   # one notebook, unpacked
    total_bytes: int = 512 * 2**20           # every notebook of the zip, unpacked
    ratio: float = 100.0                     # unpacked / compressed, for members over ratio_floor bytes
    ratio_floor: int = 2**20
    members: int = 10_000


ZIP_LIMITS = ZipLimits()


class CollectError(RuntimeError):
    """The submissions cannot be collected at all (not one student's problem); the message says why."""


@dataclass(frozen=True)
class Collected:
    """One student's submission of the lesson: the notebook to grade, or the problem that makes it invalid."""

    student: str
    notebook: Path | None
    problem: str = ""
    attempt: str = ""                   # the graded attempt's folder under .attempts/ ("" when none)
    submitted_at: datetime | None = None  # when that attempt was handed in (UTC)
    late_marker: bool = False           # the LMS named that upload late
    new_attempt: bool = False           # it arrived since the last run


@dataclass
class Unpacked:
    """What :func:`unpack_zip` did: students with a new notebook, students refused, members skipped."""

    students: list[str] = field(default_factory=list)        # a notebook was written (new or changed)
    problems: dict[str, str] = field(default_factory=dict)   # student -> why (a part of) their upload was refused
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (member name, why), every refusal


def valid_student_id(student: str) -> bool:
    """Whether ``student`` is a safe student id (see :data:`STUDENT_ID`)."""
    return STUDENT_ID.fullmatch(student) is not None


def _printable(text: str, limit: int = 80) -> str:
    """A name as it may be shown in a reason: control characters escaped, length capped."""
    shown = text.encode("unicode_escape", errors="backslashreplace").decode("ascii", errors="replace")
    return shown if len(shown) <= limit else shown[:limit] + "..."


def _member_problem(member: zipfile.ZipInfo, parts: tuple[str, ...]) -> str:
    """Why a zip member may not be unpacked ("" when it may), from its header alone."""
    raw = member.filename
    if len(raw.encode("utf-8", errors="surrogateescape")) > MAX_PATH_BYTES:
        return f"its name is over {MAX_PATH_BYTES} bytes"
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        return "its name has control characters"
    if raw.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", raw):
        return "its path is absolute"
    if ".." in parts:
        return "its path goes up ('..')"
    if any(len(p.encode("utf-8", errors="surrogateescape")) > MAX_NAME_BYTES for p in parts):
        return f"a part of its name is over {MAX_NAME_BYTES} bytes"
    kind = stat.S_IFMT(member.external_attr >> 16)
    if member.create_system == 3 and kind not in (0, stat.S_IFREG):
        return "it is a symbolic link" if kind == stat.S_IFLNK else "it is not a plain file"
    if member.flag_bits & 0x1:
        return "it is encrypted"
    return ""


def _split(member: zipfile.ZipInfo) -> tuple[str, ...]:
    # Windows zips may separate with backslashes; an empty or "." component means nothing.
    return tuple(p for p in member.filename.replace("\\", "/").split("/") if p not in ("", "."))


def _skipped_quietly(parts: tuple[str, ...]) -> bool:
    """Not a submission at all: folders, non-notebooks, macOS resource forks, checkpoints, hidden files."""
    return (not parts or not parts[-1].endswith(".ipynb") or "__MACOSX" in parts
            or any(p.startswith(".") for p in parts) or parts[-1].endswith("-checkpoint.ipynb"))


def _student_of(parts: tuple[str, ...], roster: Roster) -> tuple[str | None, str, lms.Member | None]:
    """Who a member belongs to: (student id, "", its name read) or (None, why not, its name read or None).

    See :mod:`course_tools.lms` for the names read; with a roster every name must match one
    student on it.
    """
    member = lms.parse(parts)
    if member is None:
        return None, "no student id (name it <student>_<anything>.ipynb)", None
    student, why = lms.identify(member, roster)
    return student, why, member


def _stored_name(parts: tuple[str, ...], member: lms.Member | None) -> str:
    """The file name a notebook gets in the submission folder: the student's own, when the platform kept it."""
    own = member.file_name if member is not None else ""
    return own if own.endswith(".ipynb") and not own.startswith(".") else parts[-1]


def _member_time(member: zipfile.ZipInfo, read: lms.Member | None) -> datetime:
    """When the notebook was handed in: the platform's time in its name, else the zip member's date (as UTC)."""
    if read is not None and read.submitted_at is not None:
        return read.submitted_at
    try:
        return datetime(*member.date_time, tzinfo=timezone.utc)
    except ValueError:  # a zero or corrupt DOS date
        return datetime(1980, 1, 1, tzinfo=timezone.utc)


def _read_capped(bundle: zipfile.ZipFile, member: zipfile.ZipInfo, cap: int) -> bytes | None:
    """The member's bytes, or None when it unpacks to more than ``cap`` (whatever its header says)."""
    chunks, size = [], 0
    with bundle.open(member) as stream:
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            if size > cap:
                return None
            chunks.append(chunk)
    return b"".join(chunks)


def _inside(path: Path, top: Path) -> bool:
    return os.path.realpath(path).startswith(os.path.realpath(top) + os.sep)


def _write_new(folder: Path, name: str, data: bytes) -> None:
    """Write ``folder/name`` through a temporary file, replacing (never following) whatever is there."""
    temporary = folder / f".incoming-{os.getpid()}-{hashlib.sha256(name.encode()).hexdigest()[:12]}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(temporary, folder / name)


def unpack_zip(root: Path, lesson: str, archive: Path, limits: ZipLimits = ZIP_LIMITS) -> Unpacked:
    """Put each notebook of ``archive`` in ``submitted/<student>/<lesson>/``, with its ``timestamp.txt``.

    Member names are read as :mod:`course_tools.lms` says and mapped to student ids through the
    course's roster when there is one. Raises :class:`CollectError` only when the archive (or
    the roster) cannot be read at all. Every refused member is in ``rejected``; when it names a
    student (a valid id, or a name the roster does not know), that student's ``problems`` entry
    says why, and it is remembered for :func:`remembered_refusals`. Files that are not notebooks
    are skipped without a word.
    """
    root = Path(root)
    submitted = root / "submitted"
    result = Unpacked()
    try:
        roster = load_roster(root)
    except RosterError as error:
        raise CollectError(str(error)) from None
    try:
        bundle = zipfile.ZipFile(archive)
    except (OSError, zipfile.BadZipFile, ValueError) as error:
        raise CollectError(f"{archive} is not a readable zip file ({error})") from None
    accepted: set[str] = set()                        # students with an upload stored (or stored before)
    handed_in: dict[str, tuple[datetime, bool]] = {}  # student -> (latest time, marked late) of what was written
    with bundle:
        members = bundle.infolist()
        if len(members) > limits.members:
            raise CollectError(f"{archive} has {len(members)} members; at most {limits.members} are unpacked")
        total = 0
        written: dict[Path, str] = {}  # target -> sha256, to find one student's two different uploads

        def refuse(member_name: str, student: str | None, why: str) -> None:
            result.rejected.append((member_name, why))
            log.warning("zip member %s refused: %s", _printable(member_name), why)
            if student is not None:
                earlier = result.problems.get(student)
                text = f"{_printable(PurePosixPath(member_name).name or member_name)}: {why}"
                result.problems[student] = f"{earlier}; {text}" if earlier else f"zip upload refused: {text}"

        for member in members:
            if member.is_dir():
                continue
            parts = _split(member)
            problem = _member_problem(member, parts)
            if not problem and _skipped_quietly(parts):
                continue
            student, unknown, read = _student_of(parts, roster) if parts else (None, "", None)
            if problem:
                refuse(member.filename, student if student and valid_student_id(student) else None, problem)
                continue
            if student is not None and not valid_student_id(student):
                refuse(member.filename, None, f"student id '{_printable(student)}' is not a safe id")
                result.problems.setdefault(_printable(student, 64), f"student id '{_printable(student)}' "
                                           "is not a safe id (letters, digits, '.', '_', '-'; at most 64)")
                continue
            if student is None:
                refuse(member.filename, None, unknown)
                if read is not None:  # a name that says who, but not whom on the roster: that person's row
                    result.problems.setdefault(_printable(read.person, 64), f"zip upload refused: {unknown}")
                continue
            if member.file_size > limits.member_bytes:
                refuse(member.filename, student, f"it unpacks to {member.file_size} bytes, over {limits.member_bytes}")
                continue
            if member.file_size > limits.ratio_floor and member.file_size > limits.ratio * max(member.compress_size, 1):
                refuse(member.filename, student, f"it expands over {limits.ratio:.0f} times (a zip bomb?)")
                continue
            cap = min(limits.member_bytes, limits.total_bytes - total)
            try:
                data = _read_capped(bundle, member, cap)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError, ValueError) as error:
                refuse(member.filename, student, f"it cannot be unpacked ({type(error).__name__}: {error})")
                continue
            if data is None:
                why = (f"it unpacks to more than {limits.member_bytes} bytes" if cap == limits.member_bytes
                       else f"the zip unpacks to more than {limits.total_bytes} bytes in all")
                refuse(member.filename, student, why)
                continue
            if len(data) > limits.ratio_floor and len(data) > limits.ratio * max(member.compress_size, 1):
                refuse(member.filename, student, f"it expands over {limits.ratio:.0f} times (a zip bomb?)")
                continue
            total += len(data)
            try:
                changed = _place(submitted, student, lesson, _stored_name(parts, read), data, written)
            except OSError as error:
                refuse(member.filename, student, f"it cannot be stored ({type(error).__name__}: {error})")
                continue
            accepted.add(student)
            if read is not None:  # also clears a row kept under the name, from before the roster knew it
                accepted.add(_printable(read.person, 64))
            if changed:
                result.students.append(student)
                when, late = _member_time(member, read), read is not None and read.late
                earlier_when, earlier_late = handed_in.get(student, (when, late))
                handed_in[student] = (max(when, earlier_when), late or earlier_late)
    for student, (when, late) in handed_in.items():
        try:
            _stamp(submitted / student / lesson, when, late)
        except OSError as error:
            result.problems.setdefault(student, f"zip upload refused: its time cannot be stored ({error})")
    result.students = sorted(set(result.students))
    _remember_refusals(root, lesson, accepted, result.problems)
    return result


def _stamp(folder: Path, when: datetime, late: bool) -> None:
    """Write nbgrader's ``timestamp.txt`` beside the upload, and the platform's late marker (or remove a stale one)."""
    _write_new(folder, TIMESTAMP_FILE, when.astimezone(timezone.utc).strftime(TIMESTAMP_FORMAT).encode())
    marker = folder / LATE_MARKER
    if late:
        _write_new(folder, LATE_MARKER, b"")
    elif marker.is_file() or marker.is_symlink():
        marker.unlink()


def _refusals_path(root: Path, lesson: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", lesson):
        raise CollectError(f"'{_printable(lesson)}' is not a lesson folder name")
    return Path(root) / ".course-grade" / lesson / REFUSALS_FILE


def _read_refusals(path: Path) -> dict[str, str]:
    try:
        stored = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in stored.items()} if isinstance(stored, dict) else {}


def _remember_refusals(root: Path, lesson: str, accepted: set[str], problems: dict[str, str]) -> None:
    """Keep refusals on disk: a new one replaces that student's earlier one, an accepted upload clears it."""
    path = _refusals_path(root, lesson)
    stored = _read_refusals(path)
    if not problems and not (accepted & stored.keys()):
        return
    for student in accepted:
        stored.pop(student, None)
    stored.update(problems)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{REFUSALS_FILE}.{os.getpid()}")
    temporary.write_text(json.dumps(dict(sorted(stored.items())), indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(temporary, path)


def remembered_refusals(root: Path, lesson: str) -> list[tuple[str, str]]:
    """Every zip upload of ``lesson`` refused so far and not since replaced by an accepted one: (student, why).

    ``student`` is the student id, or the name as the upload gave it when it matched no one;
    :func:`collect` lists each as an ``invalid`` row.
    """
    return sorted(_read_refusals(_refusals_path(root, lesson)).items())


def _place(submitted: Path, student: str, lesson: str, name: str, data: bytes, written: dict[Path, str]) -> bool:
    """Store one notebook in ``submitted/<student>/<lesson>/``; return whether anything changed."""
    folder = submitted / student / lesson
    for level in (submitted, submitted / student, folder):
        if level.is_symlink():
            raise OSError(f"{level} is a symbolic link")
    folder.mkdir(parents=True, exist_ok=True)
    if not _inside(folder, submitted):
        raise OSError(f"{folder} is outside {submitted}")
    target = folder / name
    digest = hashlib.sha256(data).hexdigest()
    if target in written:  # the same name twice in one zip: keep both, let collect report the conflict
        if written[target] == digest:
            return False
        stem = target.stem
        number = 2
        while (folder / f"{stem} ({number}).ipynb") in written:
            number += 1
        target = folder / f"{stem} ({number}).ipynb"
    elif any(p.is_file() and not p.is_symlink() and p.stat().st_size == len(data) and p.read_bytes() == data
             for p in (target, folder / ORIGINALS / name)):
        written[target] = digest  # the same upload again
        return False
    _write_new(folder, target.name, data)
    written[target] = digest
    return True


def find_students(root: Path, lesson: str) -> list[str]:
    """Folders under ``submitted/`` with a submission folder for ``lesson`` (valid ids or not)."""
    submitted = Path(root) / "submitted"
    if not submitted.is_dir():
        return []
    return sorted(p.name for p in submitted.iterdir() if (p / lesson).is_dir() and not p.name.startswith("."))


def _is_candidate(path: Path) -> bool:
    return (path.is_file() and not path.is_symlink() and not path.name.startswith(".")
            and not path.name.endswith("-checkpoint.ipynb"))


def pick_notebook(attempt: Path, lesson: str, release: Path | None = None) -> tuple[Path | None, str]:
    """The notebook to grade among those of one attempt folder, or None and the problem.

    See the module docstring for the rules; ``release`` (the committed student notebook) lets an
    untouched copy of it be ignored. Nothing is moved or changed.
    """
    candidates = [p for p in sorted(attempt.glob("*.ipynb")) if _is_candidate(p)]
    if not candidates:
        return None, "no notebook in the submission"
    blank = hashlib.sha256(release.read_bytes()).hexdigest() if release is not None and release.is_file() else None
    distinct: dict[str, Path] = {}
    for path in candidates:
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return None, (f"{_printable(path.name)} is {path.stat().st_size / 2**20:.1f} MiB; "
                          f"at most {MAX_NOTEBOOK_BYTES // 2**20} MiB is graded")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        preferred = path.name == f"{lesson}.ipynb"
        if digest not in distinct or preferred:
            distinct[digest] = path
    if len(distinct) > 1 and blank in distinct:
        del distinct[blank]  # an untouched copy of the release beside the real work
    if len(distinct) > 1:
        names = ", ".join(f"'{_printable(p.name)}'" for p in sorted(distinct.values()))
        return None, (f"{len(distinct)} different notebooks were submitted ({names}); copy the one to grade "
                      f"into submitted/<student>/{lesson}/ (a new attempt) and grade again")
    return next(iter(distinct.values())), ""


def _collect_one(root: Path, lesson: str, student: str) -> Collected:
    if not valid_student_id(student):
        return Collected(_printable(student, 64), None, f"student id '{_printable(student)}' is not a safe id "
                         "(letters, digits, '.', '_', '-'; at most 64): not graded")
    folder = root / "submitted" / student / lesson
    if (root / "submitted" / student).is_symlink() or folder.is_symlink() or (folder / ATTEMPTS).is_symlink():
        return Collected(student, None, "the submission folder is a symbolic link")
    new = take_new_attempt(folder)
    kept = attempts(folder)
    if not kept:
        return Collected(student, None, "no notebook in the submission")
    newest = kept[-1]
    mark_graded(folder, newest)
    release = root / "notebooks" / lesson / f"{lesson}.ipynb"
    notebook, problem = pick_notebook(newest.folder, lesson, release)
    return Collected(student, notebook, problem, newest.name, newest.submitted_at, newest.late_marker,
                     new is not None and new.name == newest.name)


def collect(root: Path, lesson: str, archive: Path | None = None,
            students: tuple[str, ...] | None = None) -> list[Collected]:
    """Every student's submission of ``lesson`` (after unpacking ``archive`` into ``submitted/``), sorted.

    One entry per student folder (and per student whose zip upload was refused); a non-empty
    ``problem`` makes that student's row ``invalid`` with it as the reason. ``students`` (when
    given) limits collecting to those student ids; the others are left as they are. Raises
    :class:`CollectError` only when nothing can be collected (an unreadable archive).
    """
    root = Path(root)
    if archive is not None:
        unpack_zip(root, lesson, Path(archive))
    found: dict[str, Collected] = {}
    for student in find_students(root, lesson):
        if students is not None and student not in students:
            continue
        try:
            item = _collect_one(root, lesson, student)
        except OSError as error:
            item = Collected(_printable(student, 64), None, f"the submission cannot be read ({type(error).__name__}: {error})")
        found[item.student] = item
    for student, problem in remembered_refusals(root, lesson):  # this run's and every earlier run's
        if students is None or student in students:
            found[student] = Collected(student, None, problem)
    return [found[s] for s in sorted(found)]
