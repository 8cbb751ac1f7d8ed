"""Adversarial submissions of lesson 01, built by code from the release and source notebooks.

Each entry makes one student's notebook file (bytes) and says the score it must get. The full
score of lesson 01 is 12: exercises 1-3 are worth 3 each, the three quiz questions 1 each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import nbformat
from nbformat import NotebookNode
from nbgrader.utils import is_grade, is_solution

from tests.helpers import fill_answers

LESSON = "01_dataloader_batching"
FULL = 12.0


@dataclass(frozen=True)
class Case:
    student: str
    build: Callable[[NotebookNode, NotebookNode, dict], bytes]
    score: float
    status: str = "ok"
    file_name: str = f"{LESSON}.ipynb"


def as_bytes(notebook: NotebookNode) -> bytes:
    return nbformat.writes(notebook).encode()


def answered(release, source):
    return fill_answers(release, source)


def cell(notebook, grade_id):
    return next(c for c in notebook.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id)


def prepend(notebook, grade_id, code):
    target = cell(notebook, grade_id)
    target.source = code + "\n" + target.source
    return notebook


def after_answers(notebook, code):
    """Add a student cell with ``code`` right after the first exercise."""
    index = notebook.cells.index(cell(notebook, "ex1-dataset")) + 1
    notebook.cells.insert(index, nbformat.v4.new_code_cell(code))
    return notebook


def tagged(release, source, ctx):
    notebook = nbformat.from_dict(release)
    for c in notebook.cells:
        if is_grade(c) and not is_solution(c):
            c.metadata.setdefault("tags", []).append("skip-execution")
    return as_bytes(notebook)


ALWAYS_EQUAL = '''
class AlwaysEqual:
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = object.__hash__

def batch_sizes(n_samples, batch_size, drop_last=False):
    return [AlwaysEqual()] * 16

FAKE_ANSWERS = {"q1": AlwaysEqual(), "q2": AlwaysEqual(), "q3": AlwaysEqual()}
'''

PATCHES = '''
import torch, torch.testing
import course_utils.checks as fake_checks
for name in ("check", "check_equal", "check_type", "check_shape", "check_close", "check_raises", "check_choice", "fail"):
    setattr(fake_checks, name, lambda *args, **kwargs: None)
torch.allclose = lambda *args, **kwargs: True
torch.testing.assert_close = lambda *args, **kwargs: None
'''

HARD_CODED = '''
def batch_sizes(n_samples, batch_size, drop_last=False):
    if (n_samples, batch_size) == (1000, 100):
        return [100] * 10
    if (n_samples, batch_size) == (1000, 64):
        return [64] * 15 if drop_last else [64] * 15 + [40]
    raise ValueError("bad arguments")
'''

IGNORE_SIGINT = '''
import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    pass
'''

MEMORY_BOMB = '''
def grab():
    blocks = []
    while True:
        blocks.append(bytearray(2**28))
grab()
'''


def corpus(course_root: str, port: int) -> list[Case]:
    """The cases; ``port`` is a TCP port on 127.0.0.1 where the test listens for escapes."""
    root = course_root
    read_secrets = f'''
import pathlib
answers = pathlib.Path("{root}/solutions/{LESSON}/{LESSON}.ipynb").read_text()
quiz_answers = {{"q1": "b", "q2": "c", "q3": "c"}} if "quiz_answers" in answers else {{}}
'''
    write_gradebook = f'''
import sqlite3
connection = sqlite3.connect("{root}/gradebook.db")
connection.execute("update grade set manual_score = 100")
connection.commit()
'''
    delete_files = f'''
import shutil, os
shutil.rmtree("{root}/solutions", ignore_errors=True)
shutil.rmtree("{root}/notebooks", ignore_errors=True)
for name in ("nbgrader_config.py", "gradebook.db"):
    try:
        os.remove("{root}/" + name)
    except OSError:
        pass
'''
    network = f'''
import socket
with socket.create_connection(("127.0.0.1", {port}), timeout=3) as connection:
    connection.sendall(b"escaped")
'''

    def answered_with(fn):
        return lambda release, source, ctx: as_bytes(fn(answered(release, source)))

    def strip_metadata(notebook):
        for c in notebook.cells:
            c.metadata = {}
        return notebook

    def change_metadata(notebook):
        for c in notebook.cells:
            meta = c.get("metadata", {}).get("nbgrader")
            if meta and meta.get("solution"):
                meta["grade_id"] = "renamed-" + meta["grade_id"]
            elif meta and meta.get("grade"):
                meta["points"] = 100
        return notebook

    def delete_test_cell(notebook):
        notebook.cells = [c for c in notebook.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") != "ex1-tests"]
        return notebook

    def edit_test_cell(notebook):
        cell(notebook, "ex2-tests").source = "pass"
        return notebook

    def reorder(notebook):
        first, second = cell(notebook, "ex1-dataset"), cell(notebook, "ex3-batch-sizes")
        i, j = notebook.cells.index(first), notebook.cells.index(second)
        notebook.cells[i], notebook.cells[j] = second, first
        return notebook

    def stderr_warnings(notebook):
        target = cell(notebook, "ex3-batch-sizes")
        target.source = target.source.replace(
            '"""The size of every batch in one epoch over `n_samples` samples."""',
            '"""The size of every batch in one epoch over `n_samples` samples."""\n'
            '    import sys, warnings\n    warnings.warn("deprecated", FutureWarning)\n    print("note", file=sys.stderr)')
        return notebook

    def truncated(release, source, ctx):
        return as_bytes(answered(release, source))[:2000]

    return [
        Case("correct", answered_with(lambda nb: nb), FULL),
        Case("empty", lambda release, source, ctx: as_bytes(release), 0.0),
        Case("skip-tags", tagged, 0.0),
        Case("always-equal", answered_with(lambda nb: _replace(_replace(nb, "ex3-batch-sizes", ALWAYS_EQUAL),
                                                               "quiz-answers", "quiz_answers = FAKE_ANSWERS")), 6.0),
        Case("patched-checks", lambda release, source, ctx: as_bytes(after_answers(nbformat.from_dict(release), PATCHES)), 0.0),
        Case("hard-coded", answered_with(lambda nb: _replace(nb, "ex3-batch-sizes", HARD_CODED)), 9.0),
        Case("sys-exit", answered_with(lambda nb: prepend(nb, "quiz-answers", "import sys\nsys.exit(1)")), 9.0),
        Case("os-exit", answered_with(lambda nb: prepend(nb, "ex3-batch-sizes", "import os\nos._exit(1)")), 6.0, "kernel-died"),
        Case("ignores-sigint", answered_with(lambda nb: prepend(nb, "ex3-batch-sizes", IGNORE_SIGINT)), 6.0, "timed-out"),
        Case("memory-bomb", answered_with(lambda nb: prepend(nb, "ex3-batch-sizes", MEMORY_BOMB)), 9.0),
        Case("reads-solutions", answered_with(lambda nb: _replace(nb, "quiz-answers", read_secrets)), 9.0),
        Case("writes-gradebook", answered_with(lambda nb: after_answers(nb, write_gradebook)), FULL),
        Case("deletes-files", answered_with(lambda nb: after_answers(nb, delete_files)), FULL),
        Case("network", answered_with(lambda nb: _replace(nb, "quiz-answers", network + '\nquiz_answers = {"q1": "b", "q2": "c", "q3": "c"}')), 9.0),
        Case("edited-test", lambda release, source, ctx: as_bytes(edit_test_cell(nbformat.from_dict(release))), 0.0),
        Case("deleted-test", lambda release, source, ctx: as_bytes(delete_test_cell(nbformat.from_dict(release))), 0.0),
        Case("stripped", answered_with(strip_metadata), FULL),
        Case("changed-metadata", answered_with(change_metadata), FULL),
        Case("reordered", answered_with(reorder), FULL),
        Case("renamed", answered_with(lambda nb: nb), FULL, file_name="my homework (1).ipynb"),
        Case("truncated", truncated, 0.0, "invalid"),
        Case("huge-output", answered_with(lambda nb: after_answers(nb, "print('x' * 20_000_000)")), FULL),
        Case("stderr", answered_with(stderr_warnings), FULL),
    ]


def _replace(notebook, grade_id, code):
    cell(notebook, grade_id).source = code
    return notebook
