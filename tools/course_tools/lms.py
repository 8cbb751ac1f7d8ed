"""Learning platforms' download names: who handed a notebook in, whether it was late, and when.

The names each platform gives the files of its "download all submissions" zip:

- **Canvas:** ``<name>_<LATE_>?<user id>_<attachment id>_<file>``, e.g.
  ``jonesmia_LATE_12345_67890_homework.ipynb`` (``<name>`` is the sortable name run together, and
  ``LATE``, any case, marks work handed in after the due date);
- **Moodle:** ``<Full Name>_<participant id>_assignsubmission_file_<file>``, or a folder
  ``<Full Name>_<participant id>_assignsubmission_file[_]/<file>`` ("download in folders"); the
  participant id is the assignment's, not the user's, so the name identifies the student;
- **Blackboard:** ``<Assignment>_<username>_attempt_<YYYY-MM-DD-HH-MM-SS>_<file>`` (the time of
  the attempt);
- anything else: ``<student>_<anything>.ipynb`` or ``<student>/<anything>.ipynb``.

:func:`parse` reads a name; :func:`identify` finds the student on the course's roster
(:mod:`course_tools.roster`) by the platform's id, the login, or the name (accents, spaces and
the order of first and last names do not matter).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from course_tools.roster import Roster, Student

CANVAS, MOODLE, BLACKBOARD, PLAIN = "Canvas", "Moodle", "Blackboard", "plain"

_CANVAS = re.compile(r"(?P<who>[^_]+)_(?:(?P<late>late)_)?(?P<number>\d+)_(?P<attachment>\d+)_(?P<file>.+)", re.I)
_MOODLE = re.compile(r"(?P<who>.+?)_(?P<number>\d+)_assignsubmission_[a-z]+(?:_(?P<file>.*))?")
_BLACKBOARD = re.compile(r"(?P<who>.+)_attempt_(?P<date>\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})(?:_(?P<file>.+))?")
ROSTER_HINT = "import the class roster first (course roster import FILE)"


@dataclass(frozen=True)
class Member:
    """What a zip member's name says about its submission."""

    lms: str               # CANVAS, MOODLE, BLACKBOARD or PLAIN
    who: str               # the student as the name gives them (Blackboard: "<Assignment>_<username>")
    file_name: str         # the student's own file name
    number: str = ""       # the platform's id in the name (Canvas: user id; Moodle: participant id)
    late: bool = False
    submitted_at: datetime | None = None  # from the name (Blackboard), in UTC

    @property
    def person(self) -> str:
        """The student as shown in a row: the name, or Blackboard's username (the last part, as a guess)."""
        return self.who.rsplit("_", 1)[-1] if self.lms == BLACKBOARD else self.who


def parse(parts: tuple[str, ...]) -> Member | None:
    """What the member path ``parts`` (split on ``/``) says; None when it names no student."""
    name = parts[-1]
    if len(parts) > 1:
        folder = _MOODLE.fullmatch(parts[0])
        if folder is not None:  # "download submissions in folders": the folder says who
            return Member(MOODLE, folder["who"], name, folder["number"])
        return Member(PLAIN, parts[0], name)
    if match := _MOODLE.fullmatch(name):
        return Member(MOODLE, match["who"], match["file"] or name, match["number"])
    if match := _BLACKBOARD.fullmatch(name):
        return Member(BLACKBOARD, match["who"], match["file"] or name, submitted_at=_attempt_time(match["date"]))
    if match := _CANVAS.fullmatch(name):
        return Member(CANVAS, match["who"], match["file"], match["number"], late=match["late"] is not None)
    if "_" in name:
        return Member(PLAIN, name.split("_", 1)[0], name)
    return None


def _attempt_time(text: str) -> datetime | None:
    """Blackboard's attempt time (read as UTC); None when the name holds an impossible date."""
    try:
        return datetime.strptime(text, "%Y-%m-%d-%H-%M-%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _blackboard_logins(who: str) -> list[str]:
    """The usernames ``<Assignment>_<username>`` may end with, shortest first (usernames may hold '_')."""
    pieces = who.split("_")
    return ["_".join(pieces[i:]) for i in range(len(pieces) - 1, 0, -1)]


def _distinct(found: list[Student]) -> list[Student]:
    return list({s.student_id: s for s in found}.values())


def identify(member: Member, roster: Roster) -> tuple[str | None, str]:
    """The student id ``member`` belongs to, or None and why it cannot be told.

    Without a roster, a plain name's ``<student>`` is the id as it stands (and a platform's name
    is refused with a hint to import the roster); with one, every name must match exactly one
    student on it.
    """
    label = _label(member)
    if not roster:
        if member.lms == PLAIN:
            return member.who, ""
        return None, f"{label} is a {member.lms} download name; {ROSTER_HINT} so that it maps to a student id"
    if member.lms == CANVAS:
        searches = [roster.by_number(member.number), roster.by_name(member.who)]
    elif member.lms == MOODLE:
        searches = [roster.by_name(member.who), roster.by_number(member.number)]
    elif member.lms == BLACKBOARD:
        searches = [roster.by_login(login) for login in _blackboard_logins(member.who)]
    else:
        searches = [roster.by_login(member.who), roster.by_number(member.who), roster.by_name(member.who)]
    for found in searches:
        found = _distinct(found)
        if len(found) == 1:
            return found[0].student_id, ""
        if len(found) > 1:
            ids = ", ".join(sorted(s.student_id for s in found))
            return None, (f"{label} matches {len(found)} students on the roster ({ids}); rename the file "
                          f"<student_id>_{member.file_name} with the right one and grade again")
    return None, (f"{label} is not on the roster (roster.csv): add the student with course roster import "
                  "FILE, or rename the file <student_id>_<anything>.ipynb, and grade again")


def _label(member: Member) -> str:
    return f"'{member.person}'" + (f" ({member.lms} id {member.number})" if member.lms == CANVAS else "")
