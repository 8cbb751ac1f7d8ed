"""Adversarial submissions of lesson 01, built by code from the release and source notebooks.

Each entry makes one student's notebook file (bytes) and says the score it must get. The full
score of lesson 01 is 9: exercises 1-3 are worth 3 each (the quiz is practice and earns no points).
"""

from __future__ import annotations

import json

from collections.abc import Callable
from dataclasses import dataclass

import nbformat
from nbformat import NotebookNode
from nbgrader.utils import is_grade, is_solution

from tests.helpers import fill_answers

LESSON = "01_dataloader_batching"
FULL = 9.0


@dataclass(frozen=True)
class Case:
    student: str
    build: Callable[[NotebookNode, NotebookNode, dict], bytes]
    score: float
    status: str = "ok"
    file_name: str = f"{LESSON}.ipynb"


TAMPERED_OR_OK = "tampered-or-ok"  # when the forgery does not even fool the kernel, there is nothing to detect
# Filling memory 256 MiB at a time ends in a MemoryError within the cell's time limit on a quiet machine, and
# may outlast it on a loaded one: either way the earlier exercises keep their points.
OK_OR_TIMED_OUT = "ok-or-timed-out"


class RawNotebook(str):
    """A notebook's JSON text that nbformat would refuse to write (a hostile file, on purpose)."""


def as_bytes(notebook: NotebookNode) -> bytes:
    if isinstance(notebook, RawNotebook):
        return notebook.encode()
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


# --- forging a verdict from inside the kernel (issue: "a grade no submission can forge") ----------
# Each goes into an otherwise EMPTY notebook: nothing is answered, so nothing may score.

FORGE_PRE_RUN_CELL = '''
import IPython
shell = IPython.get_ipython()
shell.events.register("pre_run_cell", lambda *args: shell.displayhook(3))
shell.events.register("post_run_cell", lambda *args: shell.displayhook(3))
'''

FORGE_LAST_EXPRESSION = '''
class Points:
    def _repr_pretty_(self, printer, cycle):
        printer.text("3")
import IPython
shell = IPython.get_ipython()
shell.events.register("post_run_cell", lambda result: shell.displayhook(Points()))
'''

FORGE_SHOWTRACEBACK = '''
import IPython
shell = IPython.get_ipython()
shell.showtraceback = lambda *args, **kwargs: None
shell._showtraceback = lambda *args, **kwargs: None
'''

FORGE_RUN_CODE = '''
import IPython
shell = IPython.get_ipython()
async def run_code(code_obj, result=None, *, async_=False):
    try:
        exec(code_obj, shell.user_global_ns, shell.user_ns)
    except BaseException:
        pass
    return False
shell.run_code = run_code
'''

FORGE_INPUT_TRANSFORMER = '''
import IPython
shell = IPython.get_ipython()
def last_line_only(lines):
    return lines[-1:] if any("check" in line for line in lines) else lines
shell.input_transformers_post.append(last_line_only)
'''

# --- the tamper guard, bypassed: wrong answers, checks that always pass --------------------------
# Each adds answers that run without raising but are wrong, then disarms the checks.

WRONG_ANSWERS = '''
import torch
from torch.utils.data import DataLoader, Dataset
class CourseDataset(Dataset):
    def __init__(self, features, targets):
        self.features, self.targets = features, targets
    def __len__(self):
        return 1000
    def __getitem__(self, index):
        return self.features[0], self.targets[0]
def make_loader(dataset, batch_size, *, shuffle=True, drop_last=False, seed=None):
    return DataLoader(dataset, batch_size=100)
def batch_sizes(n_samples, batch_size, drop_last=False):
    return [100] * 10
'''

FAKE_CHECKS_NAME = '''
class _Anything:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None
checks = lesson01 = lesson07 = _Anything()
''' + WRONG_ANSWERS

FAKE_INTEGRITY_MODULE = '''
import sys, types
fake = types.ModuleType("course_utils.integrity")
fake.guard = lambda: None
sys.modules["course_utils.integrity"] = fake
import importlib
for name in ("course_utils.checks", "course_utils.checks.core", "course_utils.checks.lesson01", "course_utils.diagnoses"):
    module = importlib.import_module(name)
    for attribute in list(vars(module)):
        if attribute.startswith(("check", "fail", "raise_")):
            setattr(module, attribute, lambda *args, **kwargs: None)
from course_utils import checks
from course_utils.checks import lesson01
''' + WRONG_ANSWERS

NO_RELOAD = '''
import importlib
importlib.reload = lambda module: module
import importlib
for name in ("course_utils.checks", "course_utils.checks.core", "course_utils.checks.lesson01", "course_utils.diagnoses"):
    module = importlib.import_module(name)
    for attribute in list(vars(module)):
        if attribute.startswith(("check", "fail", "raise_")):
            setattr(module, attribute, lambda *args, **kwargs: None)
from course_utils import checks
from course_utils.checks import lesson01
''' + WRONG_ANSWERS

PATCHED_BUILTINS = '''
import builtins, sys
_isinstance, _all = builtins.isinstance, builtins.all
def _from_checks():
    return sys._getframe(2).f_globals.get("__name__", "").startswith("course_utils")
builtins.isinstance = lambda obj, kind: True if _from_checks() else _isinstance(obj, kind)
builtins.all = lambda iterable: True if _from_checks() else _all(iterable)
''' + WRONG_ANSWERS

# --- harm through the feedback, and the limits per submission ------------------------------------

HOSTILE_OUTPUT = '''
from IPython.display import HTML, Javascript, Markdown, display
display(HTML("<script>document.title = 'pwned-by-html'</script><img src=x onerror=\\"document.title='pwned-onerror'\\">"))
display(Markdown("<script>document.title = 'pwned-by-markdown'</script>"))
display(Javascript("document.title = 'pwned-by-js'"))
import os
print(dict(os.environ))
'''

COMM_FLOOD = '''
import ipywidgets
box = ipywidgets.Textarea()
for _ in range(400):
    box.value = "x" * 2**20 + str(_)
'''

DISK_AND_TMP = '''
import os, subprocess, sys
script = "import os\\nfor i in range(40):\\n    try:\\n        open(f'/tmp/fill-{os.getpid()}-{i}', 'wb').write(os.urandom(2**20) * 60)\\n    except OSError:\\n        break"
children = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(2)]
for child in children:
    child.wait()
for i in range(40):
    try:
        open(f"fill-{i}", "wb").write(b"0" * 60 * 2**20)
    except OSError:
        break
'''


# --- issue 18, items 5 and 6: hostile values and text never hurt the grader; feedback calls nothing ----
# Each beside the correct control ("correct" above), which must still be graded in the same run.

SURROGATE_MARK = "SURROGATE-HERE"  # replaced by the JSON escape \ud800 in the file's text

SURROGATE_CELL = f'''
note = "{SURROGATE_MARK}"
print("a lone surrogate printed by the kernel: \\udc80")
'''

WRONG_SIZES = '''
def batch_sizes(n_samples, batch_size, drop_last=False):
    return [batch_size] * (n_samples // batch_size)
'''


def repr_bomb_line(levels: int = 45) -> str:
    """A re-check line whose values, 2 KB of pickle, are a DAG of shared lists with 2^levels leaves when printed."""
    import base64
    import io

    import torch

    bomb: list = []
    for _ in range(levels):
        bomb = [bomb, bomb]
    buffer = io.BytesIO()
    torch.save({"error": bomb, "sizes": bomb}, buffer)
    return f"COURSE-VERDICT ex3-tests {base64.b64encode(buffer.getvalue()).decode()}"


def repr_bomb_cell() -> str:
    """A wrong batch_sizes whose notebook appends the bomb line after the probe's own line (no hook needed)."""
    return WRONG_SIZES + f'''
import sys
class _Tail:
    def __init__(self, out):
        self.out = out
    def write(self, text):
        self.out.write(text)
        if "COURSE-VERDICT ex3-tests" in text:
            self.out.write("\\n{repr_bomb_line()}\\n")
        return len(text)
    def flush(self):
        self.out.flush()
    def __getattr__(self, name):
        return getattr(self.out, name)
sys.stdout = _Tail(sys.stdout)
'''


ENAME_FLOOD = '''
def batch_sizes(n_samples, batch_size, drop_last=False):
    raise type("E" * 20_000_000, (Exception,), {})("a class name of 20 MB")
'''

ERROR_FLOOD = '''
for _ in range(600):
    try:
        raise ValueError("x" * 40_000)
    except ValueError:
        get_ipython().showtraceback()
'''

TERMINAL_ESCAPES = '''
def batch_sizes(n_samples, batch_size, drop_last=False):
    name = "\\x1b]0;owned-title\\x07\\x1b[2J\\x1b[H\\x1b[31mEscaped"
    raise type(name, (Exception,), {})("\\x1b[5mblinking\\x1b[0m \\x1b]8;;http://evil/\\x07link\\x1b]8;;\\x07")
'''


def remote_image(port: int) -> str:
    return f'''
from IPython.display import HTML, Markdown, display
display(HTML('<img src="http://127.0.0.1:{port}/beacon.png" alt="beacon">'))
display(Markdown("![beacon](http://127.0.0.1:{port}/markdown.png)"))
'''


def with_surrogate(notebook) -> RawNotebook:
    """The notebook's JSON with a ``\\ud800`` escape where the mark is: valid JSON, unencodable once read."""
    return RawNotebook(nbformat.writes(notebook).replace(SURROGATE_MARK, "\\ud800"))


HOSTILE_VALUE_STUDENTS = ("surrogate", "repr-bomb", "ename-flood", "error-flood", "terminal-escapes", "remote-image")


def hostile_value_cases(port: int, answered_with) -> list[Case]:
    """Issue 18's hostile values and text: each is graded, and the class with it."""
    return [
        Case("surrogate", answered_with(lambda nb: with_surrogate(after_answers(nb, SURROGATE_CELL))), FULL),
        Case("repr-bomb", answered_with(lambda nb: _replace(nb, "ex3-batch-sizes", repr_bomb_cell())), 6.0,
             TAMPERED_OR_OK),
        Case("ename-flood", answered_with(lambda nb: _replace(nb, "ex3-batch-sizes", ENAME_FLOOD)), 6.0),
        Case("error-flood", answered_with(lambda nb: after_answers(nb, ERROR_FLOOD)), FULL),
        Case("terminal-escapes", answered_with(lambda nb: _replace(nb, "ex3-batch-sizes", TERMINAL_ESCAPES)), 6.0),
        Case("remote-image", answered_with(lambda nb: after_answers(nb, remote_image(port))), FULL),
    ]


def corpus(course_root: str, port: int, secret_folder: str = "/nonexistent") -> list[Case]:
    """The cases; ``port`` is a TCP port on 127.0.0.1 where the test listens for escapes."""
    root = course_root
    read_secrets = f'''
import pathlib
import json
solution = json.loads(pathlib.Path("{root}/solutions/{LESSON}/{LESSON}.ipynb").read_text())
exec("".join(next(c["source"] for c in solution["cells"] if c.get("id") == "ex3-batch-sizes")))
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

    read_home = f'''
import pathlib
for path in [pathlib.Path("{secret_folder}") / "secret.txt", *pathlib.Path("/home").glob("*/*")]:
    try:
        print("LEAKED", path.read_text()[:100])
    except OSError as error:
        print("hidden:", type(error).__name__)
'''

    def answered_with(fn):
        return lambda release, source, ctx: as_bytes(fn(answered(release, source)))

    def empty_with(code):
        return lambda release, source, ctx: as_bytes(after_answers(nbformat.from_dict(release), code))

    def set_raw(notebook, grade_id, key, value):
        data = json.loads(nbformat.writes(notebook))
        for raw in data["cells"]:
            if raw.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
                raw[key] = value
        return RawNotebook(json.dumps(data))

    def set_points(notebook, points):
        for c in notebook.cells:
            meta = c.get("metadata", {}).get("nbgrader")
            if meta and meta.get("grade") and not meta.get("solution"):
                meta["points"] = points
        return notebook

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
        Case("always-equal", answered_with(lambda nb: _replace(nb, "ex3-batch-sizes", ALWAYS_EQUAL)), 6.0),
        Case("patched-checks", lambda release, source, ctx: as_bytes(after_answers(nbformat.from_dict(release), PATCHES)), 0.0,
             "tampered"),
        Case("hard-coded", answered_with(lambda nb: _replace(nb, "ex3-batch-sizes", HARD_CODED)), 6.0),
        Case("sys-exit", answered_with(lambda nb: prepend(nb, "ex3-batch-sizes", "import sys\nsys.exit(1)")), 6.0),
        Case("os-exit", answered_with(lambda nb: prepend(nb, "ex3-batch-sizes", "import os\nos._exit(1)")), 6.0, "kernel-died"),
        Case("ignores-sigint", answered_with(lambda nb: prepend(nb, "ex3-batch-sizes", IGNORE_SIGINT)), 6.0, "timed-out"),
        Case("memory-bomb", answered_with(lambda nb: prepend(nb, "ex3-batch-sizes", MEMORY_BOMB)), 6.0, OK_OR_TIMED_OUT),
        Case("reads-solutions", answered_with(lambda nb: _replace(nb, "ex3-batch-sizes", read_secrets)), 6.0,
             "tampered"),  # exec of a built string: the grader's source scan names it (issue 18, item 4)
        Case("writes-gradebook", answered_with(lambda nb: after_answers(nb, write_gradebook)), FULL),
        Case("deletes-files", answered_with(lambda nb: after_answers(nb, delete_files)), FULL),
        Case("network", answered_with(lambda nb: prepend(nb, "ex3-batch-sizes", network)), 6.0),
        Case("edited-test", lambda release, source, ctx: as_bytes(edit_test_cell(nbformat.from_dict(release))), 0.0),
        Case("deleted-test", lambda release, source, ctx: as_bytes(delete_test_cell(nbformat.from_dict(release))), 0.0),
        Case("stripped", answered_with(strip_metadata), FULL),
        Case("changed-metadata", answered_with(change_metadata), FULL),
        Case("reordered", answered_with(reorder), FULL),
        Case("renamed", answered_with(lambda nb: nb), FULL, file_name="my homework (1).ipynb"),
        Case("truncated", truncated, 0.0, "invalid"),
        Case("huge-output", answered_with(lambda nb: after_answers(nb, "print('x' * 20_000_000)")), FULL),
        Case("stderr", answered_with(stderr_warnings), FULL),
        # forging a verdict for an EMPTY notebook: never scores
        Case("forge-pre-run-cell", empty_with(FORGE_PRE_RUN_CELL), 0.0, TAMPERED_OR_OK),
        Case("forge-last-expression", empty_with(FORGE_LAST_EXPRESSION), 0.0, TAMPERED_OR_OK),
        Case("forge-showtraceback", empty_with(FORGE_SHOWTRACEBACK), 0.0, "tampered"),
        Case("forge-run-code", empty_with(FORGE_RUN_CODE), 0.0, "tampered"),
        Case("forge-input-transformer", empty_with(FORGE_INPUT_TRANSFORMER), 0.0, "tampered"),
        # the guard bypassed: wrong answers never score
        Case("fake-checks-name", empty_with(FAKE_CHECKS_NAME), 0.0, "tampered"),
        Case("fake-integrity-module", empty_with(FAKE_INTEGRITY_MODULE), 0.0, "tampered"),
        Case("no-reload", empty_with(NO_RELOAD), 0.0, "tampered"),
        Case("patched-builtins", empty_with(PATCHED_BUILTINS), 0.0, TAMPERED_OR_OK),
        # one file never stops the class
        Case("source-is-a-number", answered_with(lambda nb: set_raw(nb, "ex1-dataset", "source", 42)), 0.0, "invalid"),
        Case("source-is-a-dict", answered_with(lambda nb: set_raw(nb, "ex2-loader", "source", {"a": 1})), 0.0, "invalid"),
        Case("nbgrader-metadata-string", answered_with(lambda nb: set_raw(nb, "ex1-tests", "metadata", {"nbgrader": "x"})),
             FULL, "ok"),
        Case("points-above-maximum", answered_with(lambda nb: set_points(nb, 1000)), FULL),
        # feedback that would harm its reader; limits per submission
        Case("hostile-output", answered_with(lambda nb: after_answers(nb, HOSTILE_OUTPUT)), FULL),
        Case("comm-flood", answered_with(lambda nb: after_answers(nb, COMM_FLOOD)), FULL),
        Case("disk-and-tmp", answered_with(lambda nb: after_answers(nb, DISK_AND_TMP)), FULL),
        Case("reads-home", answered_with(lambda nb: after_answers(nb, read_home)), FULL),
        *hostile_value_cases(port, answered_with),
        # issue 18: nothing secret and no free answer in the kernel (the class's course copy has an
        # instructor-style hidden test, INSTRUCTOR_HIDDEN_TEST, in HIDDEN_TEST_CELL: see tests/test_grading.py)
        Case("empty-notebook-recipe",
             lambda release, source, ctx: as_bytes(empty_with_recipe(nbformat.from_dict(release), "ex1-dataset")),
             0.0, "tampered"),
        *(Case(name, (lambda code, where: answered_with(lambda nb: prepend(nb, where, code)))(code, where), FULL,
               "tampered" if name in EXFILTRATIONS_THE_SCAN_NAMES else "ok")
          for name, (code, where) in EXFILTRATIONS.items()),
    ]


def _replace(notebook, grade_id, code):
    cell(notebook, grade_id).source = code
    return notebook


# --- issue 18 (h18k): nothing secret and no free answer inside the student's kernel -----------------
# The empty-notebook recipe of issue 18, as it scored 9/9 on lesson 01 and 10/10 on lesson 07: a
# pre_run_cell hook reads the seed from the probe's source (the raw cell, In/_ih, linecache), rebuilds
# the scenario with the course's own builders, computes the answer with the course's references (or a
# DataLoader), a post_run_cell hook prints a COURSE-VERDICT line after the probe's, and a replaced
# run_code swallows every error and prints the test cell's token, so the kernel claims a pass. The
# notebook defines none of the exercises' names: it must score 0, flagged as tampered.

EMPTY_NOTEBOOK_RECIPE = r'''
import IPython, linecache, re
shell = IPython.get_ipython()
_SEEDS, _LAST = {}, {"cell": ""}
_PROBE = re.compile(r"(?:emit|probe_line)\(\s*'([^']+)',\s*'([^']+)',\s*(?:globals\(\),\s*)?(\d+)\)")
_TOKEN = re.compile(r"print\('([0-9a-f]{32})', end=''\)\s*$")


def _read_seeds(info=None):
    texts = [getattr(info, "raw_cell", "") or ""]
    texts += [str(text) for text in shell.user_ns.get("_ih", [])]
    texts += ["".join(entry[2]) for entry in list(linecache.cache.values()) if len(entry) > 2 and entry[2]]
    for text in texts:
        for lesson, grade_id, seed in _PROBE.findall(text):
            _SEEDS[grade_id] = (lesson, int(seed))
    _LAST["cell"] = getattr(info, "raw_cell", "") or ""


def _references():
    """The course's own answers, wherever they can be found."""
    for place in ("course_utils.verdict_probes", "course_utils.checks.lesson07", "course_tools.grade.judges.lesson07"):
        try:
            module = __import__(place, fromlist=["reference_epoch"])
            return module.reference_epoch, module.reference_evaluate
        except (ImportError, AttributeError):
            continue
    return None


def _namespace(lesson):
    import torch
    from torch.utils.data import DataLoader, Dataset, TensorDataset
    if lesson.startswith("01"):
        class _Dataset(Dataset):
            def __init__(self, features, targets):
                self.features, self.targets = features, targets
            def __len__(self):
                return len(self.features)
            def __getitem__(self, index):
                return self.features[index], self.targets[index]
        def _loader(dataset, batch_size, *, shuffle=True, drop_last=False, seed=None):
            return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                              generator=torch.Generator().manual_seed(seed))
        def _sizes(n, size, drop_last=False):
            return [len(b[0]) for b in DataLoader(TensorDataset(torch.arange(n)), batch_size=size, drop_last=drop_last)]
        return {"CourseDataset": _Dataset, "make_loader": _loader, "batch_sizes": _sizes}
    found = _references()
    if found is None:
        return {}
    epoch, evaluate = found
    def _fit(model, train_loader, val_loader, criterion, optimizer, device, epochs):
        history = []
        for number in range(1, epochs + 1):
            loss = epoch(model, train_loader, criterion, optimizer, device)
            val_loss, accuracy = evaluate(model, val_loader, criterion, device)
            history.append({"epoch": number, "loss": loss, "val_loss": val_loss, "accuracy": accuracy})
        return history
    return {"train_one_epoch": epoch, "evaluate": evaluate, "fit": _fit}


def _forge(result=None):
    from course_utils import verdict_probes
    for grade_id, (lesson, seed) in list(_SEEDS.items()):
        namespace = _namespace(lesson)
        if namespace:
            print(verdict_probes.probe_line(lesson, grade_id, namespace, seed))


async def _run_code(code_obj, result=None, *, async_=False):
    try:
        exec(code_obj, shell.user_global_ns, shell.user_ns)
    except BaseException:
        token = _TOKEN.search(_LAST["cell"])
        if token:
            print(token.group(1), end="")
    return False


shell.events.register("pre_run_cell", _read_seeds)
shell.events.register("post_run_cell", _forge)
shell.run_code = _run_code
'''


def empty_with_recipe(release: NotebookNode, first_answer: str) -> NotebookNode:
    """The lesson's release, unanswered, with the recipe in a cell of its own after the first answer cell."""
    notebook = nbformat.from_dict(release)
    index = notebook.cells.index(cell(notebook, first_answer)) + 1
    notebook.cells.insert(index, nbformat.v4.new_code_cell(EMPTY_NOTEBOOK_RECIPE))
    return notebook


# Four ways an instructor's hidden test is read from inside the kernel (issue 18). Each prints every
# line that holds the hidden test's mark, plainly, reversed and in hex: none may reach the feedback.
HIDDEN_MARK = "7f3a91"
HIDDEN_TEST_CELL = "ex2-tests"  # not ex1's: the class's fake-check forgeries must still claim their ex1 pass
INSTRUCTOR_HIDDEN_TEST = f'''
instructor_note = "hidden-check-{HIDDEN_MARK}: the instructor's own test"
import torch
from torch.utils.data import TensorDataset
assert len(make_loader(TensorDataset(torch.zeros(7, 2)), 2, seed=0)) == 4, "instructor hidden check {HIDDEN_MARK}"
'''
_LEAK = f'''
def _leak(text):
    for line in str(text).splitlines():
        if "{HIDDEN_MARK[:3]}" + "{HIDDEN_MARK[3:]}" in line:  # split, so the student's own source never holds the mark
            print(line)
            print(line[::-1])
            print(line.encode().hex())
'''
# A hook or a trace function is a construct the grader's source scan names (tampered); reading _ih or linecache is
# not, and finds nothing secret either way: feedback never shows the instructor's hidden test.
EXFILTRATIONS_THE_SCAN_NAMES = {"leak-raw-cell-hook", "leak-settrace"}
EXFILTRATIONS = {  # name -> (code, the answer cell it opens: ex1's runs before the hidden test, ex3's after it)
    "leak-raw-cell-hook": (_LEAK + "get_ipython().events.register('pre_run_cell', lambda info: _leak(info.raw_cell))\n",
                           "ex1-dataset"),
    "leak-ih": (_LEAK + "for _text in _ih:\n    _leak(_text)\n", "ex3-batch-sizes"),
    "leak-linecache": (_LEAK + "import linecache\nfor _entry in list(linecache.cache.values()):\n"
                               "    _leak(''.join(_entry[2]) if len(_entry) > 2 and _entry[2] else '')\n", "ex3-batch-sizes"),
    "leak-settrace": (_LEAK + "import linecache, sys\n"
                              "def _tracer(frame, event, arg):\n"
                              "    if event == 'call' and 'ipykernel' in frame.f_code.co_filename:\n"
                              "        _leak(''.join(linecache.getlines(frame.f_code.co_filename)))\n"
                              "    return None\n"
                              "sys.settrace(_tracer)\n", "ex1-dataset"),
}
