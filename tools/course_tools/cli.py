"""The ``course`` command: instructor and contributor tasks that run from the course root."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_tools.export import FORMATS, ExportError
from course_tools.grade.pipeline import GradingError, Options, grade
from course_tools.grade.report import summary
from course_tools.notebooks import NotebookError, dirty_reasons, write_clean
from course_tools.publish import PublishError
from course_tools.release import RELEASE_DIR, SOURCE_DIR, ReleaseError, release
from course_tools.report.write import ReportError
from course_tools.roster import ROSTER_FILE, RosterError


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


def _roster_import(args: argparse.Namespace) -> int:
    from course_tools.roster import import_roster

    path, count, added, updated = import_roster(Path.cwd(), args.file)
    print(f"{path.name}: {count} students ({added} added, {updated} updated; ids already given are kept)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from course_tools.export import export, parse_assignment_ids

    done = export(Path.cwd(), args.to, args.lessons, args.output, parse_assignment_ids(args.assignment_id))
    for student, why in done.left_out:
        print(f"left out {student}: {why}", file=sys.stderr)
    print(f"wrote {done.path} ({done.rows} students)")
    return 0


def _add_lms_commands(commands: argparse._SubParsersAction) -> None:
    """The learning-platform round trip: ``course roster import`` and ``course export``."""
    roster_cmd = commands.add_parser("roster", help=f"the class list from your learning platform ({ROSTER_FILE})")
    roster_verbs = roster_cmd.add_subparsers(dest="roster_command", required=True)
    import_cmd = roster_verbs.add_parser(
        "import", help=f"read a class list CSV into {ROSTER_FILE} (Canvas's and Moodle's own exports recognised)",
        description=f"Read a class list exported from Canvas (gradebook export), Moodle or Blackboard, or a CSV "
                    f"with name, lms_id, login and email columns, into {ROSTER_FILE} in the course root "
                    "(git-ignored). Each student gets a safe id; importing again keeps the ids already given.")
    import_cmd.add_argument("file", type=Path, metavar="FILE", help="the CSV exported from your learning platform")
    import_cmd.set_defaults(run=_roster_import)
    export_cmd = commands.add_parser(
        "export", help="write the gradebook's scores as the CSV your learning platform imports",
        description="Write the gradebook's scores (manual grades and extra credit from formgrader included, late "
                    "penalties taken off) as Canvas's gradebook CSV, Moodle's grade import CSV or a plain CSV, "
                    "into exports/<format>-grades.csv.")
    export_cmd.add_argument("lessons", nargs="*", help="lesson folders (default: every lesson in the gradebook)")
    export_cmd.add_argument("--to", required=True, choices=FORMATS, help="the platform whose import format to write")
    export_cmd.add_argument("--output", type=Path, metavar="FILE", help="write here instead of exports/")
    export_cmd.add_argument("--assignment-id", action="append", default=[], metavar="LESSON=ID",
                            help="Canvas: the assignment the lesson's column fills (the number in its address); "
                                 "without it Canvas creates a new assignment")
    export_cmd.set_defaults(run=_export)


def _publish(args: argparse.Namespace) -> int:
    from course_tools.publish import publish

    target = Path(args.directory)
    written = publish(Path.cwd(), target)
    print(f"published {len(written)} files into {target.resolve()}: commit and push them to the students' repository")
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
    _add_lms_commands(commands)
    expected_cmd = commands.add_parser(
        "expected", help="recompute the visible checks' stored expected results from the grader's references")
    expected_cmd.add_argument("lessons", nargs="*", help="lesson folders (default: all)")
    expected_cmd.set_defaults(run=_expected)
    publish_cmd = commands.add_parser(
        "publish", help="write the students' repository: release notebooks, course_utils, README, Binder and Colab set-up",
        description="Write the student-facing tree into DIRECTORY (the students' public repository): notebooks/, "
                    "course_utils/, a README with the Binder and Colab badges of that repository, environment.yml, "
                    "postBuild, constraints.txt and pyproject.toml. Nothing of solutions/, the hidden tests or "
                    "tools/ is written; the tree is checked for every answer and hidden-test line.")
    publish_cmd.add_argument("directory", help="the students' repository (a folder outside this course)")
    publish_cmd.set_defaults(run=_publish)
    commands.add_parser("clean", help="strip outputs and execution counts from every committed notebook").set_defaults(run=_clean)
    commands.add_parser("check", help="fail if any committed notebook holds outputs or is not in clean form").set_defaults(run=_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``course`` command; errors are printed in one line, not as a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ReleaseError, NotebookError, GradingError, ReportError, RosterError, ExportError, PublishError) as error:
        print(f"course {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
