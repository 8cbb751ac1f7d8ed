"""The ``course`` command: instructor and contributor tasks that run from the course root."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_utils.notebooks import NotebookError, dirty_reasons, write_clean
from course_utils.release import RELEASE_DIR, SOURCE_DIR, ReleaseError, release


def _release(args: argparse.Namespace) -> int:
    written = release(Path.cwd(), args.lessons)
    for path in written:
        print(f"released {path.relative_to(Path.cwd().resolve())}")
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
    commands.add_parser("clean", help="strip outputs and execution counts from every committed notebook").set_defaults(run=_clean)
    commands.add_parser("check", help="fail if any committed notebook holds outputs or is not in clean form").set_defaults(run=_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``course`` command; errors are printed in one line, not as a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ReleaseError, NotebookError) as error:
        print(f"course {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
