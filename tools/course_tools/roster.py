"""The class roster: who is who on the learning platform, and each student's safe id in the course.

``course roster import FILE`` reads a CSV exported from the platform and stores the class in
``roster.csv`` in the course root (git-ignored: it holds names and e-mail addresses). Recognised
columns (case and spacing ignored; any others are ignored):

- Canvas's gradebook export: ``Student`` ("Last, First"), ``ID`` (the Canvas user id that its
  submission downloads carry), ``SIS User ID``, ``SIS Login ID``, ``Section``;
- Moodle's exports: ``First name``, ``Last name`` (or ``Surname``), ``ID number``, ``Email address``,
  ``Username``, ``id`` (user bulk download);
- Blackboard's Grade Center download: ``Last Name``, ``First Name``, ``Username``, ``Student ID``;
- a plain file: ``student_id`` (this course's id), ``name``, ``lms_id``, ``login``, ``email``.

Every student gets a safe id (:data:`STUDENT_ID`, the rule collect applies): the ``student_id``
column when it is safe, else the login (an e-mail login loses its domain), else the name, with
accents and spaces folded ("Zoë Müller" -> ``zoe-muller``); clashes get ``-2``, ``-3``. Importing
again keeps every id already given (a student is recognised by LMS id, login or e-mail), so
``submitted/`` and the gradebook never have to be renamed. When the gradebook exists, its students
get their names, e-mails and LMS ids too, so formgrader and ``nbgrader export`` show them.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

ROSTER_FILE = "roster.csv"
GRADEBOOK = "gradebook.db"
MAX_ROSTER_BYTES = 8 * 2**20
# A safe student id: letters, digits, '.', '_', '-', at most 64, starting with a letter or digit (no commas,
# so an id never names two students on nbgrader's command line; no leading = + - @). collect.STUDENT_ID is this.
STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class RosterError(ValueError):
    """The roster file cannot be read or used; the message says why and what to do."""


@dataclass(frozen=True)
class Student:
    """One student: this course's id and what the learning platform knows them by."""

    student_id: str
    name: str = ""
    lms_id: str = ""
    login: str = ""
    email: str = ""
    sis_user_id: str = ""
    section: str = ""


COLUMNS = [f.name for f in fields(Student)]

# Normalised header (lower case, single spaces) -> field. First names and last names are joined.
_HEADERS: dict[str, str] = {
    "student_id": "student_id",
    "student": "name", "name": "name", "full name": "name", "fullname": "name", "student name": "name",
    "id": "lms_id", "lms_id": "lms_id", "lms id": "lms_id", "user id": "lms_id", "userid": "lms_id",
    "canvas user id": "lms_id",
    "sis login id": "login", "login": "login", "login id": "login", "username": "login", "user name": "login",
    "email": "email", "email address": "email", "e-mail": "email", "e-mail address": "email", "mail": "email",
    "sis user id": "sis_user_id", "id number": "sis_user_id", "idnumber": "sis_user_id",
    "student id": "sis_user_id", "student number": "sis_user_id", "sis_user_id": "sis_user_id",
    "section": "section", "sections": "section", "group": "section", "groups": "section",
    "first name": "first", "firstname": "first", "given name": "first",
    "last name": "last", "lastname": "last", "surname": "last", "family name": "last",
}
# Rows of Canvas's export that are not students.
_NOT_STUDENTS = {"points possible", "muted", "manual posting"}


def folded(text: str) -> str:
    """``text`` without accents, in lower case, with runs of anything but letters and digits as one space."""
    plain = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in plain if not unicodedata.combining(c)).casefold()
    return " ".join(re.findall(r"[^\W_]+", plain))


def name_keys(name: str) -> set[str]:
    """The forms a learning platform may write ``name`` in, folded: words in any order, or run together.

    "Jones, Mia" and "Mia Jones" share ``jones mia`` (sorted words); Canvas's download name
    ``jonesmia`` matches the run-together forms of both orders.
    """
    words = folded(name).split()
    if not words:
        return set()
    keys = {" ".join(sorted(words)), "".join(words), "".join(reversed(words))}
    if "," in name:  # "Last, First Middle": also First Middle Last run together
        last, _, first = name.partition(",")
        keys.add("".join(folded(first).split() + folded(last).split()))
    return keys


def safe_id(text: str) -> str:
    """A safe student id made from ``text`` (a login, an e-mail or a name); "" when nothing is left."""
    if "@" in text:
        text = text.split("@", 1)[0]
    plain = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in plain if not unicodedata.combining(c)).encode("ascii", "ignore").decode().lower()
    plain = re.sub(r"[^a-z0-9._-]+", "-", plain).strip("-._")
    plain = re.sub(r"-{2,}", "-", plain)[:64].rstrip("-._")
    return plain if STUDENT_ID.fullmatch(plain) else ""


@dataclass(frozen=True)
class Roster:
    """The class, with lookups by the names and numbers a learning platform uses."""

    students: tuple[Student, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.students)

    def by_number(self, value: str) -> list[Student]:
        """Students whose LMS id or SIS user id is ``value``."""
        value = value.strip()
        return [s for s in self.students if value and value in (s.lms_id, s.sis_user_id)]

    def by_login(self, value: str) -> list[Student]:
        """Students whose course id, login or e-mail (or its part before ``@``) is ``value``, case ignored."""
        value = value.strip().casefold()
        if not value:
            return []
        return [s for s in self.students
                if value in {s.student_id.casefold(), s.login.casefold(), s.email.casefold(),
                             s.login.casefold().split("@")[0], s.email.casefold().split("@")[0]} - {""}]

    def by_name(self, value: str) -> list[Student]:
        """Students whose name matches ``value`` in any of the forms of :func:`name_keys`."""
        wanted = name_keys(value)
        return [s for s in self.students if wanted & name_keys(s.name)]


def _sniff(text: str) -> csv.Dialect | type[csv.Dialect]:
    first = text.split("\n", 1)[0]
    try:
        return csv.Sniffer().sniff(first, delimiters=",;\t")
    except csv.Error:
        return csv.excel


def parse(text: str, source: str = "the roster") -> list[Student]:
    """The students of a roster CSV's text (ids not yet given: ``student_id`` may be "")."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")), _sniff(text.lstrip("\ufeff")))
    header = next(reader, None)
    if not header:
        raise RosterError(f"{source} is empty: export the class list from your learning platform as CSV")
    columns = {i: _HEADERS.get(" ".join(h.strip().lower().split())) for i, h in enumerate(header)}
    known = {field for field in columns.values() if field}
    if not known & {"name", "first", "last", "lms_id", "login", "email", "student_id", "sis_user_id"}:
        shown = ", ".join(repr(h) for h in header[:8])
        raise RosterError(f"{source} has none of the columns a roster needs (a name, an LMS id, a login or an "
                          f"e-mail; Canvas's and Moodle's own exports are recognised); its header is {shown}")
    students = []
    for row in reader:
        values: dict[str, str] = {}
        for i, cell in enumerate(row):
            field = columns.get(i)
            if field and cell.strip() and field not in values:
                values[field] = " ".join(cell.split())
        if values.get("name", "").strip().lower() in _NOT_STUDENTS:
            continue
        if "name" not in values and ("first" in values or "last" in values):
            values["name"] = " ".join(v for v in (values.get("first", ""), values.get("last", "")) if v)
        values.pop("first", None)
        values.pop("last", None)
        if not any(values.get(f) for f in ("name", "lms_id", "login", "email", "student_id", "sis_user_id")):
            continue
        students.append(Student(**{"student_id": "", **values}))
    if not students:
        raise RosterError(f"{source} lists no students")
    return students


def _same_person(a: Student, b: Student) -> bool:
    return any(getattr(a, f) and getattr(a, f) == getattr(b, f) for f in ("lms_id", "login", "email", "sis_user_id"))


def merge(existing: list[Student], incoming: list[Student]) -> tuple[list[Student], int, int]:
    """``existing`` updated with ``incoming``: ids kept, new students given fresh ids; also (added, updated)."""
    merged = list(existing)
    taken = {s.student_id.casefold() for s in merged}
    added = updated = 0
    for new in incoming:
        index = next((i for i, old in enumerate(merged) if _same_person(old, new)), None)
        if index is not None:
            old = merged[index]
            changes = {f: getattr(new, f) for f in COLUMNS if f != "student_id" and getattr(new, f)}
            if any(getattr(old, f) != v for f, v in changes.items()):
                merged[index] = replace(old, **changes)
                updated += 1
            continue
        wanted = new.student_id if STUDENT_ID.fullmatch(new.student_id) else ""
        base = wanted or safe_id(new.login) or safe_id(new.email) or safe_id(new.name) or \
            safe_id(f"student-{new.lms_id or new.sis_user_id}") or "student"
        candidate, number = base, 2
        while candidate.casefold() in taken:
            suffix = f"-{number}"
            candidate, number = base[:64 - len(suffix)] + suffix, number + 1
        taken.add(candidate.casefold())
        merged.append(replace(new, student_id=candidate))
        added += 1
    return merged, added, updated


def load(root: Path) -> Roster:
    """The course's roster (empty when ``roster.csv`` does not exist)."""
    path = Path(root) / ROSTER_FILE
    if not path.is_file():
        return Roster()
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise RosterError(f"{path} cannot be read ({error}); import the class list again: "
                          "course roster import FILE") from None
    return Roster(tuple(Student(**{f: row.get(f) or "" for f in COLUMNS}) for row in rows
                        if STUDENT_ID.fullmatch(row.get("student_id") or "")))


def save(root: Path, students: list[Student]) -> Path:
    """Write ``roster.csv`` atomically (through a temporary file)."""
    path = Path(root) / ROSTER_FILE
    temporary = path.with_suffix(".csv.tmp")
    with open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(asdict(s) for s in students)
    temporary.replace(path)
    return path


def split_name(name: str) -> tuple[str, str]:
    """(first, last) of "Last, First" or "First Last" (a single word is a first name)."""
    if "," in name:
        last, _, first = name.partition(",")
        return first.strip(), last.strip()
    first, _, last = name.strip().rpartition(" ")
    return (first, last) if first else (last, "")


def register_in_gradebook(root: Path, students: list[Student]) -> bool:
    """Give the gradebook's students their names, e-mails and LMS ids (formgrader and ``nbgrader export``
    show them); only when the gradebook exists (``course release`` or ``course grade`` makes it)."""
    database = Path(root) / GRADEBOOK
    if not database.is_file():
        return False
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{database}") as gradebook:
        for student in students:
            first, last = split_name(student.name)
            gradebook.update_or_create_student(student.student_id, first_name=first or None, last_name=last or None,
                                               email=student.email or None, lms_user_id=student.lms_id or None)
    return True


def import_roster(root: Path, source: Path) -> tuple[Path, int, int, int]:
    """Read ``source`` into the course's roster; return (path, students in all, added, updated)."""
    source = Path(source)
    if not source.is_file():
        raise RosterError(f"{source} is not a file: give the CSV exported from your learning platform")
    if source.stat().st_size > MAX_ROSTER_BYTES:
        raise RosterError(f"{source} is over {MAX_ROSTER_BYTES // 2**20} MiB: is it really a class list?")
    raw = source.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")  # Excel on Windows saves "CSV" in the local code page
    merged, added, updated = merge(list(load(root).students), parse(text, str(source)))
    path = save(root, merged)
    register_in_gradebook(root, merged)
    return path, len(merged), added, updated
