"""The ``report`` verb of the ``course`` command: ``course report [LESSON]``, run from the course root."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def run_report(args: argparse.Namespace) -> int:
    """Write the reports asked for and print their paths; a missing grading is one line on stderr."""
    # Imported here: matplotlib and the catalogue load only when a report is written, not for `course --help`.
    from course_tools.report.write import ReportError, write_lessons

    root = Path.cwd()
    try:
        written = write_lessons(root, [args.lesson] if args.lesson else None)
    except ReportError as error:
        print(f"course report: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {_relative(path, root)}")
    return 0


def add_report_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``course report [LESSON]`` on the ``course`` command's subparsers; return its parser."""
    parser = subparsers.add_parser(
        "report", help="write reports/LESSON.html: what the class got wrong, as pictures (and LESSON.json)",
        description="Turn the results of `course grade` into one self-contained HTML page per lesson "
                    "(scores, why points were lost per exercise, the most costly confusions, students who may "
                    "need help) and a JSON file of the same numbers. With several lessons graded, also "
                    "reports/course.html: one line per student and each family of mistakes across lessons.")
    parser.add_argument("lesson", nargs="?",
                        help="the lesson folder, e.g. 07_epoch_loop_gpu (default: every graded lesson)")
    parser.set_defaults(run=run_report)
    return parser
