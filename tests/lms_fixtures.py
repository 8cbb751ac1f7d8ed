"""Realistic learning-platform files, built here (never fetched): class lists and submission zips.

The class: Mia Jones, Zoë Müller and José García Márquez, known to Canvas by user ids 10001-10003,
to Moodle by e-mail and ID number, and to Blackboard by username.
"""

from __future__ import annotations

import zipfile
from datetime import datetime
from pathlib import Path

# Canvas: Gradebook > Export > Export Entire Gradebook (its first columns, the points row, a test student).
CANVAS_EXPORT = """\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,Lesson 1 (555123),Current Score,Final Score
    Points Possible,,,,,9.00,(read only),(read only)
"Jones, Mia",10001,S1001,mjones@uni.example,Section A,,,
"Müller, Zoë",10002,S1002,zmuller@uni.example,Section A,,,
"García Márquez, José",10003,S1003,jgarcia@uni.example,Section B,,,
"Student, Test",10099,,,Section A,,,
"""

# Moodle: Grades > Export > Plain text file (its identity columns), for the same class.
MOODLE_EXPORT = """First name,Last name,ID number,Institution,Department,Email address,Last downloaded from this course
Mia,Jones,S1001,Uni,CS,mjones@uni.example,1791800000
Zoë,Müller,S1002,Uni,CS,zmuller@uni.example,1791800000
José,García Márquez,S1003,Uni,CS,jgarcia@uni.example,1791800000
"""

# Blackboard: Grade Center > Work Offline > Download (tab-separated, as Blackboard writes it).
BLACKBOARD_EXPORT = ("Last Name\tFirst Name\tUsername\tStudent ID\tLast Access\tAvailability\n"
                     "Jones\tMia\tmjones\tS1001\t2026-10-01\tAvailable\n"
                     "Müller\tZoë\tzmuller\tS1002\t2026-10-01\tAvailable\n"
                     "García Márquez\tJosé\tjgarcia\tS1003\t2026-10-01\tAvailable\n")

IDS = {"Mia Jones": "mjones", "Zoë Müller": "zmuller", "José García Márquez": "jgarcia"}
HANDED_IN = (2026, 10, 1, 12, 30, 0)  # the zip members' date


def canvas_names(lesson: str) -> dict[str, str]:
    """Canvas's "Download Submissions" names: sortable name run together, LATE marker, user id, attachment id."""
    return {"mjones": f"jonesmia_10001_777001_{lesson}.ipynb",
            "zmuller": "mullerzoe_LATE_10002_777002_homework-1.ipynb",
            "jgarcia": f"garciamarquezjose_late_10003_777003_{lesson}.ipynb"}


def moodle_names(lesson: str) -> dict[str, str]:
    """Moodle's "Download all submissions" names, flat and "in folders"."""
    return {"mjones": f"Mia Jones_4001_assignsubmission_file_{lesson}.ipynb",
            "zmuller": "Zoë Müller_4002_assignsubmission_file_/homework.ipynb",
            "jgarcia": f"José García Márquez_4003_assignsubmission_file_{lesson}.ipynb"}


def blackboard_names(lesson: str) -> dict[str, str]:
    """Blackboard's "Download Assignment" names: assignment, username, attempt time, file."""
    return {"mjones": f"Lesson 1_mjones_attempt_2026-10-01-12-30-00_{lesson}.ipynb",
            "zmuller": "Lesson 1_zmuller_attempt_2026-10-02-08-15-30_homework.ipynb",
            "jgarcia": f"Lesson 1_jgarcia_attempt_2026-09-30-23-59-59_{lesson}.ipynb"}


def build_zip(path: Path, members: dict[str, bytes], extras: dict[str, bytes] | None = None,
              when: tuple[int, ...] = HANDED_IN) -> Path:
    """A zip as a platform serves it: the notebooks (dated ``when``) and whatever else it adds."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, data in {**members, **(extras or {})}.items():
            info = zipfile.ZipInfo(name, date_time=when)
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, data)
    return path


def utc(*parts: int) -> datetime:
    from datetime import timezone

    return datetime(*parts, tzinfo=timezone.utc)
