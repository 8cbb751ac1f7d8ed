"""Attempts: every notebook a student hands in for a lesson is kept, read-only, with its time; the newest is graded.

Whatever lands in ``submitted/<student>/<lesson>/`` (``nbgrader collect``, the zip route, a hand
copy, under any file name) beside the notebook ``course grade`` wrote there itself is a new
attempt. It moves, with the ``timestamp.txt`` and the LMS late marker (``.lms-late``) that came
with it, into a folder of its own, ``.attempts/<UTC time>/``, whose files are made read-only.
Nothing a student handed in is ever overwritten or deleted; a byte-identical copy of the newest
attempt is no new attempt (it is kept there already).

The attempt's time is the ``timestamp.txt`` that came with it (nbgrader writes one on ``submit``
and ``collect``; the zip route writes the zip member's date), else the file's modification time.
The graded attempt's time is written back as ``timestamp.txt`` beside the graded notebook, in
nbgrader's format, so nbgrader's own late-submission machinery and formgrader see it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ATTEMPTS = ".attempts"
LEGACY_ORIGINALS = ".original"   # where earlier versions kept the one original they graded
STATE = "graded.json"            # under .attempts/: what course grade itself wrote beside the attempts
TIMESTAMP = "timestamp.txt"
LATE_MARKER = ".lms-late"        # written by the zip route when the LMS file name says the upload was late
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"  # nbgrader's own (CourseDirectory.timestamp_format)
_FOLDER_FORMAT = "%Y-%m-%dT%H-%M-%S.%fZ"


@dataclass(frozen=True)
class Attempt:
    """One kept attempt: its folder under ``.attempts/`` and when it was handed in (UTC)."""

    folder: Path
    submitted_at: datetime

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def late_marker(self) -> bool:
        """The LMS named this upload late (``.lms-late`` came with it)."""
        return (self.folder / LATE_MARKER).is_file()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def format_timestamp(moment: datetime) -> str:
    """``moment`` as nbgrader writes ``timestamp.txt``."""
    return moment.astimezone(timezone.utc).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> datetime | None:
    """A ``timestamp.txt``'s time as an aware UTC datetime (None when it cannot be read)."""
    from nbgrader.utils import parse_utc

    try:
        naive = parse_utc(text.strip())
    except (ValueError, OverflowError, TypeError):
        return None
    return naive.replace(tzinfo=timezone.utc) if naive is not None else None


def _read_state(folder: Path) -> dict[str, str]:
    try:
        data = json.loads((folder / ATTEMPTS / STATE).read_text())
        return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_state(folder: Path, **values: str) -> None:
    state = {**_read_state(folder), **values}
    path = folder / ATTEMPTS / STATE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=1))
    temporary.replace(path)


def _attempt_time(name: str) -> datetime | None:
    try:
        return datetime.strptime(name.split("+")[0], _FOLDER_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def attempts(folder: Path) -> list[Attempt]:
    """The kept attempts of one submission folder, oldest first."""
    top = Path(folder) / ATTEMPTS
    if not top.is_dir() or top.is_symlink():
        return []
    found = []
    for path in top.iterdir():
        moment = _attempt_time(path.name)
        if moment is not None and path.is_dir() and not path.is_symlink():
            found.append(Attempt(path, moment))
    return sorted(found, key=lambda a: (a.submitted_at, a.name))


def _new_folder(top: Path, moment: datetime) -> Path:
    base = moment.astimezone(timezone.utc).strftime(_FOLDER_FORMAT)
    candidate, number = top / base, 2
    while candidate.exists():
        candidate, number = top / f"{base}+{number}", number + 1
    candidate.mkdir(parents=True)
    return candidate


def _read_only(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def safe_file_name(name: str) -> str:
    """``name`` with undecodable bytes and control characters replaced, so it can be shown and written anywhere."""
    return "".join("_" if 0xD800 <= ord(c) <= 0xDFFF or ord(c) < 32 or ord(c) == 127 else c for c in name)


def _free(path: Path) -> Path:
    number, candidate = 2, path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem} ({number}){path.suffix}")
        number += 1
    return candidate


def _keep(folder: Path, files: list[Path], moment: datetime) -> Attempt:
    """Move ``files`` into a new attempt folder stamped ``moment`` and make them read-only."""
    target = _new_folder(folder / ATTEMPTS, moment)
    for path in files:
        shutil.move(str(path), str(_free(target / safe_file_name(path.name))))
    _read_only(target)
    return Attempt(target, moment)


def _incoming(folder: Path, repaired: str) -> list[Path]:
    """Notebooks in ``folder`` that ``course grade`` did not write itself: a new hand-in."""
    found = []
    for path in sorted(folder.glob("*.ipynb")):
        if path.is_symlink() or not path.is_file():
            continue  # never followed: a link out of the submission is no hand-in
        if repaired and _sha256(path) == repaired:
            continue
        found.append(path)
    return found


def _migrate_legacy(folder: Path) -> None:
    """A folder graded by an earlier version keeps its one original in ``.original/``: make it the first attempt."""
    legacy = folder / LEGACY_ORIGINALS
    if legacy.is_symlink() or not legacy.is_dir() or attempts(folder) or not any(legacy.glob("*.ipynb")):
        return
    stamp = legacy / TIMESTAMP
    moment = parse_timestamp(stamp.read_text()) if stamp.is_file() else None
    files = [p for p in legacy.iterdir() if p.is_file() and not p.is_symlink()]
    moment = moment or datetime.fromtimestamp(max(p.stat().st_mtime for p in files), timezone.utc)
    _keep(folder, files, moment)
    _write_state(folder, repaired=_sha256(folder / f"{folder.name}.ipynb")
                 if (folder / f"{folder.name}.ipynb").is_file() else "")


def take_new_attempt(folder: Path) -> Attempt | None:
    """Keep whatever was handed in since the last run as a new attempt; return it (None when nothing new).

    ``folder`` is ``submitted/<student>/<lesson>``. The attempt's time comes from a
    ``timestamp.txt`` that arrived with it, else from the newest notebook's modification time.
    """
    folder = Path(folder)
    (folder / ATTEMPTS).mkdir(exist_ok=True)
    _migrate_legacy(folder)
    state = _read_state(folder)
    incoming = _incoming(folder, state.get("repaired", ""))
    if not incoming:
        return None
    earlier = attempts(folder)
    if earlier:
        kept = {_sha256(p) for p in earlier[-1].folder.glob("*.ipynb") if p.is_file()}
        if all(_sha256(p) in kept for p in incoming):
            for path in incoming:  # byte for byte what the newest attempt already keeps: nothing is lost
                path.unlink()
            return None
    stamp = folder / TIMESTAMP
    stamp_text = stamp.read_text() if stamp.is_file() and not stamp.is_symlink() else ""
    ours = stamp_text.strip() and stamp_text.strip() == state.get("timestamp", "").strip()
    moment = None if ours or not stamp_text else parse_timestamp(stamp_text)
    if moment is None:
        moment = datetime.fromtimestamp(max(p.stat().st_mtime for p in incoming), timezone.utc)
    files = list(incoming)
    if stamp_text and not ours:
        files.append(stamp)
    if (folder / LATE_MARKER).is_file() and not (folder / LATE_MARKER).is_symlink():
        files.append(folder / LATE_MARKER)
    return _keep(folder, files, moment)


def mark_graded(folder: Path, attempt: Attempt) -> None:
    """Write the graded attempt's time beside the graded notebook, in nbgrader's format, and remember it."""
    text = format_timestamp(attempt.submitted_at)
    stamp = Path(folder) / TIMESTAMP
    if stamp.is_symlink():
        stamp.unlink()
    stamp.write_text(text)
    _write_state(Path(folder), timestamp=text, attempt=attempt.name)


def remember_repaired(folder: Path, notebook: Path) -> None:
    """Remember the notebook ``course grade`` wrote itself, so it is never taken for a new hand-in."""
    if notebook.is_file():
        _write_state(Path(folder), repaired=_sha256(notebook))

