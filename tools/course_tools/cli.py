"""The ``course`` command: instructor and contributor tasks that run from the course root."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_tools.grade.pipeline import GradingError, Options, grade
from course_tools.grade.report import summary
from course_tools.notebooks import NotebookError, dirty_reasons, write_clean
from course_tools.release import RELEASE_DIR, SOURCE_DIR, ReleaseError, release
from course_tools.report.write import ReportError


def _release(args: argparse.Namespace) -> int:
    written = release(Path.cwd(), args.lessons)
    for path in written:
        print(f"released {path.relative_to(Path.cwd().resolve())}")
    return 0


def _grade(args: argparse.Namespace) -> int:
    root = Path.cwd().resolve()
    options = Options(jobs=args.jobs, cluster=args.cluster, force=args.force, archive=args.zip,
                      allow_unsandboxed=args.no_sandbox, students=tuple(args.student))
    results = grade(root, args.lesson, options)
    print(summary(results, args.lesson, root))
    if results:
        from course_tools.report import write_report

        print(f"class report: {write_report(root, args.lesson)}")
    return 0


def _expected(args: argparse.Namespace) -> int:
    from course_tools.expected import write

    for path in write(args.lessons or None):
        print(f"wrote {path}")
    return 0


def _committed_notebooks(root: Path) -> list[Path]:
    return sorted(
        p for folder in (SOURCE_DIR, RELEASE_DIR) for p in (root / folder).glob("*/*.ipynb")
        if ".ipynb_checkpoints" not in p.parts
    )


def _clean(args: argparse.Namespace) -> int:
    for path in _committed_notebooks(Path.cwd()):
        if write_clean(path):
            print(f"cleaned {path}")
    return 0


def _check(args: argparse.Namespace) -> int:
    problems = [f"{path}: {reason}" for path in _committed_notebooks(Path.cwd()) for reason in dirty_reasons(path)]
    print("\n".join(problems) if problems else "all notebooks are clean")
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``course`` command."""
    parser = argparse.ArgumentParser(prog="course", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    release_cmd = commands.add_parser("release", help="regenerate notebooks/ from solutions/ through nbgrader")
    release_cmd.add_argument("lessons", nargs="*", help="lesson folders such as 01_dataloader_batching (default: all)")
    release_cmd.set_defaults(run=_release)
    grade_cmd = commands.add_parser(
        "grade", help="grade every submission of a lesson: sandboxed, repaired, in parallel, into course-grades.csv",
        description="Grade the newest attempt of every student in submitted/<student>/<lesson>/ (or in a zip of "
                    "downloaded notebooks) in sandboxed kernels and score it with nbgrader. Writes: "
                    "course-grades.csv (every graded lesson), the gradebook (gradebook.db), feedback/<student>/<lesson>/, "
                    "autograded/<student>/<lesson>/, reports/<lesson>.html and .json (the class report), and "
                    ".course-grade/<lesson>/ (results and the sandboxed runs). Every hand-in is kept read-only under "
                    "submitted/<student>/<lesson>/.attempts/. nbgrader's own `nbgrader export` writes grades.csv, "
                    "which course grade never touches.")
    grade_cmd.add_argument("lesson", help="the lesson folder, e.g. 01_dataloader_batching")
    grade_cmd.add_argument("--zip", type=Path, metavar="FILE", help="unpack this zip of notebooks into submitted/ first")
    grade_cmd.add_argument("--jobs", type=int, default=1, metavar="N", help="grade N submissions at a time (default 1)")
    grade_cmd.add_argument("--cluster", metavar="ADDRESS",
                           help="run each submission as a task on this Dask scheduler (e.g. tcp://10.0.0.5:8786) "
                                "instead of local processes")
    grade_cmd.add_argument("--student", action="append", default=[], metavar="ID",
                           help="grade only this student (repeatable); --force then re-runs only them")
    grade_cmd.add_argument("--force", action="store_true", help="grade again even submissions that did not change")
    grade_cmd.add_argument("--no-sandbox", action="store_true",
                           help="grade even where no sandbox can be made (student code runs with your rights)")
    grade_cmd.set_defaults(run=_grade)
    from course_tools.report.command import add_report_command

    add_report_command(commands)
    expected_cmd = commands.add_parser(
        "expected", help="recompute the visible checks' stored expected results from the grader's references")
    expected_cmd.add_argument("lessons", nargs="*", help="lesson folders (default: all)")
    expected_cmd.set_defaults(run=_expected)
    commands.add_parser("clean", help="strip outputs and execution counts from every committed notebook").set_defaults(run=_clean)
    commands.add_parser("check", help="fail if any committed notebook holds outputs or is not in clean form").set_defaults(run=_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``course`` command; errors are printed in one line, not as a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ReleaseError, NotebookError, GradingError, ReportError) as error:
        print(f"course {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
