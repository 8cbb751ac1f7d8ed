"""The grader's look at the submitted source (issue 18, item 4): what it flags, and that it flags nothing ordinary.

Zero false positives is tested on every answer of every lesson's solution and on every correct
variant of every bug zoo; each tampering construct and each way of reaching a forbidden call
(aliases, helpers, bindings) is tested on its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from nbgrader.utils import is_solution

from course_tools.grade import source_scan
from course_tools.grade.source_scan import scan_notebook, scan_sources, student_cells
from course_tools.notebooks import read_notebook
from course_utils.diagnoses import ForbiddenCall, forbidden_calls
from tests import grading_corpus
from tests.helpers import fill_answers, student_answer
from tests.zoos import all_zoos

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
ZOOS = {zoo.lesson: zoo for zoo in all_zoos()}


def release_context(lesson: str) -> list[str]:
    release = read_notebook(ROOT / "notebooks" / lesson / f"{lesson}.ipynb")
    return [c.source for c in release.cells if c.cell_type == "code"]


def assert_clean(result, what: str) -> None:
    assert not result.tampering, f"{what}: expected no finding, found {[str(f) for f in result.tampering]}"
    assert not result.forbidden, f"{what}: expected no forbidden call, found {result.forbidden}"


# --- zero false positives ---------------------------------------------------------------------

@pytest.mark.parametrize("lesson", LESSONS)
def test_no_answer_of_any_solution_is_flagged(lesson):
    source = read_notebook(ROOT / "solutions" / lesson / f"{lesson}.ipynb")
    answers = [(i, student_answer(c)) for i, c in enumerate(source.cells, 1) if c.cell_type == "code" and is_solution(c)]
    assert answers, f"{lesson} has answer cells"
    assert_clean(scan_sources(answers, release_context(lesson), forbidden_calls(lesson)), lesson)


@pytest.mark.parametrize("lesson", sorted(ZOOS))
def test_no_correct_variant_of_any_bug_zoo_is_flagged(lesson):
    context, rules = release_context(lesson), forbidden_calls(lesson)
    assert ZOOS[lesson].correct, f"{lesson}'s zoo has correct variants"
    for variant in ZOOS[lesson].correct:
        assert_clean(scan_sources([(1, variant.source)], context, rules), f"{lesson}: {variant.name}")


ORDINARY = [
    "model.eval()\nmodel.train()",
    "compiled = torch.compile(model)",
    "torch.backends.cudnn.benchmark = True\ntorch.backends.cudnn.deterministic = True",
    "import matplotlib.pyplot as plt\nplt.rcParams['figure.figsize'] = (8, 4)\nplt.rcParams.update({'font.size': 9})",
    "%matplotlib inline\n!pip install tqdm\n%timeit sum(range(10))",
    "get_ipython().run_line_magic('matplotlib', 'inline')",
    "import re\npattern = re.compile(r'\\d+')\nvalue = eval('1 + 1')\nexec('x = 2')",
    "import sys\nprint(sys.version, 'google.colab' in sys.modules)\nsys.path.append('.')",
    "import os\nos.environ.setdefault('X', '1')\nos.makedirs('out', exist_ok=True)",
    "history = []\nhistory.append(1.0)\nresults = {}\nresults.update(loss=1.0)\nresults['acc'] = 0.5",
    "import torch\nx = torch.zeros(3)\nx.add_(1)\nok = torch.allclose(x, x) and torch.equal(x, x)",
    "from course_utils.checks import lesson01\nfrom course_utils.data import make_dataset\nfeatures = make_dataset()",
    "class Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.fc = torch.nn.Linear(2, 2)",
    "def broken(:\n    pass",  # a syntax error: the kernel cannot run it either
]


@pytest.mark.parametrize("source", ORDINARY)
def test_ordinary_code_is_never_flagged(source):
    assert_clean(scan_sources([(1, source)], ["import torch"]), source)


# --- class 1: tampering, with the cell and the line ---------------------------------------------

TAMPERING = [
    (grading_corpus.FORGE_PRE_RUN_CELL, 3, "IPython shell"),
    (grading_corpus.FORGE_RUN_CODE, 5, "built at run time"),
    (grading_corpus.FORGE_SHOWTRACEBACK, 3, "IPython shell"),
    (grading_corpus.FORGE_INPUT_TRANSFORMER, 5, "IPython shell"),
    (grading_corpus.PATCHES, 4, "course's modules"),
    (grading_corpus.PATCHED_BUILTINS, 4, "frames"),
    (grading_corpus.FAKE_INTEGRITY_MODULE, 4, "sys.modules"),
    (grading_corpus.NO_RELOAD, 1, "importlib"),
    (grading_corpus.IGNORE_SIGINT, 2, "signal handler"),
    ("import sys\nsys.settrace(lambda *a: None)", 2, "trace"),
    ("import sys as s\ns.setprofile(print)", 2, "profile"),
    ("import sys\nsys.addaudithook(print)", 2, "audit hook"),
    ("import threading\nthreading.settrace(print)", 2, "trace"),
    ("code = 'x' + '=1'\nexec(code)", 2, "built at run time"),
    ("eval(input())", 1, "built at run time"),
    ("c = compile(src, 'f', 'exec')", 1, "built at run time"),
    ("m = __import__('os')", 1, "__import__"),
    ("from importlib import import_module", 1, "importlib"),
    ("import builtins\nbuiltins.print = None", 2, "builtins"),
    ("import builtins\nsetattr(builtins, 'len', None)", 2, "builtins"),
    ("__builtins__.len = None", 1, "builtins"),
    ("import sys\nsys.modules['torch'] = None", 2, "sys.modules"),
    ("import sys\nsys.modules.pop('course_utils')", 2, "sys.modules"),
    ("import sys\nsys.meta_path.insert(0, object())", 2, "import hook"),
    ("import ctypes", 1, "ctypes"),
    ("import os\nos.fork()", 2, "fork"),
    ("from os import _exit\n_exit(0)", 1, "os._exit"),
    ("import signal\nsignal.setitimer(signal.ITIMER_REAL, 1)", 2, "signal timer"),
    ("import gc\nobjs = gc.get_objects()", 2, "gc.get_objects"),
    ("import gc\ngc.get_referrers(x)", 2, "gc.get_referrers"),
    ("import course_utils.checks.core as core\ncore.check = print", 2, "course's modules"),
    ("from course_utils import integrity\nintegrity.guard = lambda: None", 2, "course's modules"),
    ("import torch\ntorch.allclose = lambda *a, **k: True", 2, "checking functions"),
    ("import torch.testing as tt\ntt.assert_close = print", 2, "torch.testing"),
    ("import torch\ntorch.Tensor.__eq__ = lambda a, b: True", 2, "torch.Tensor"),
    ("ip = get_ipython()\nip.events.register('post_run_cell', print)", 2, "IPython shell"),
    ("get_ipython().input_transformers_cleanup.append(str)", 1, "IPython shell"),
    ("from IPython import get_ipython as g\nshell = g()\nalias = shell\nalias.run_cell = print", 4, "IPython shell"),
    ("import builtins\nvars(builtins)['len'] = None", 2, "builtins"),
]


@pytest.mark.parametrize(("source", "line", "words"), TAMPERING)
def test_each_tampering_construct_is_named_with_its_cell_and_line(source, line, words):
    result = scan_sources([(7, source.strip("\n"))])
    assert result.tampering, f"expected a finding in {source!r}, found none"
    first = result.tampering[0]
    assert (first.cell, first.line) == (7, line) and words in first.what, str(first)
    assert str(first).startswith("cell 7, line ")


def test_magics_are_read_as_the_kernel_runs_them():
    result = scan_sources([(3, "x = 1\n%time import ctypes")])
    assert [str(f) for f in result.tampering] == ["cell 3, line 2: uses ctypes"]
    result = scan_sources([(4, "%%capture\nx = 1\nget_ipython().events.register('pre_run_cell', print)")])
    assert [(f.cell, f.line) for f in result.tampering] == [(4, 3)]


# --- class 2: forbidden calls, through aliases and helpers --------------------------------------

CE = ForbiddenCall("ex1-tests", "cross_entropy", ("torch.nn.functional.cross_entropy", "torch.nn.CrossEntropyLoss"),
                   "uses-library-loss")
SGD = ForbiddenCall("ex2-tests", "ManualSGD", ("torch.optim",), "uses-torch-optim")


@pytest.mark.parametrize(("context", "answer"), [
    ("import torch.nn.functional as F", "def cross_entropy(logits, targets):\n    return F.cross_entropy(logits, targets)"),
    ("import torch", "def cross_entropy(logits, targets):\n    return torch.nn.functional.cross_entropy(logits, targets)"),
    ("from torch import nn", "def cross_entropy(logits, targets):\n    return nn.CrossEntropyLoss()(logits, targets)"),
    ("from torch.nn.functional import cross_entropy as ce", "def cross_entropy(l, t):\n    return ce(l, t)"),
    ("import torch", "F = torch.nn.functional\ndef cross_entropy(l, t):\n    return F.cross_entropy(l, t)"),
    ("import torch", "def cross_entropy(l, t):\n    return getattr(torch.nn.functional, 'cross_entropy')(l, t)"),
    ("import torch.nn.functional as F", "def _helper(l, t):\n    return F.cross_entropy(l, t)\n"
                                        "def cross_entropy(l, t):\n    return _helper(l, t)"),
    ("import torch.nn.functional as F", "cross_entropy = F.cross_entropy"),
])
def test_a_forbidden_call_is_found_through_aliases_and_helpers(context, answer):
    result = scan_sources([(5, answer)], [context], [CE])
    assert set(result.forbidden) == {"ex1-tests"}
    finding = result.forbidden["ex1-tests"]
    assert finding.rule is CE and finding.where.cell == 5 and "inside cross_entropy" in finding.where.what


def test_torch_optim_inside_the_manual_optimizer_is_found_and_elsewhere_is_not():
    manual = ("from torch import optim\n"
              "class ManualSGD:\n    def __init__(self, params, lr):\n        self.params, self.lr = list(params), lr\n"
              "    def step(self):\n        optim.SGD(self.params, lr=self.lr).step()\n")
    result = scan_sources([(2, manual)], [], [SGD])
    assert result.forbidden["ex2-tests"].call == "torch.optim.SGD" and result.forbidden["ex2-tests"].where.line == 6
    elsewhere = "import torch\nclass ManualSGD:\n    def step(self):\n        pass\nreference = torch.optim.SGD([], lr=0.1)"
    assert not scan_sources([(2, elsewhere)], [], [SGD]).forbidden


def test_the_lessons_forbidden_calls_name_catalogued_diagnoses():
    from course_utils.diagnoses import catalogue

    for lesson in LESSONS:
        for rule in forbidden_calls(lesson):
            assert rule.code in catalogue(), f"{lesson}: {rule.code} is not in the catalogue"


# --- which cells are read -----------------------------------------------------------------------

def test_only_the_students_own_cells_are_read():
    lesson = grading_corpus.LESSON
    release = read_notebook(ROOT / "notebooks" / lesson / f"{lesson}.ipynb")
    source = read_notebook(ROOT / "solutions" / lesson / f"{lesson}.ipynb")
    submitted = grading_corpus.after_answers(fill_answers(release, source), grading_corpus.FORGE_RUN_CODE)
    grading_corpus.cell(submitted, "ex1-tests").source += "\nimport ctypes"  # test cells are replaced: never read
    read = student_cells(submitted, release)
    answers = sum(1 for c in release.cells if c.cell_type == "code" and is_solution(c))
    assert len(read) == answers + 1
    result = scan_notebook(submitted, release, lesson)
    assert result.tampering and all("ctypes" not in f.what for f in result.tampering)
    assert {f.cell for f in result.tampering} == {submitted.cells.index(grading_corpus.cell(submitted, "ex1-dataset")) + 2}
    assert_clean(scan_notebook(fill_answers(release, source), release, lesson), "the solution as a submission")


def test_the_scan_imports_nothing_on_import():
    assert not hasattr(source_scan, "_cache")


# --- applied by the score stage -----------------------------------------------------------------

def test_the_score_stage_zeroes_a_forbidden_call_and_marks_tampering(monkeypatch):
    import course_utils.diagnoses as diagnoses
    from course_tools.grade.execute import Executed
    from course_tools.grade.feedback import diagnosis_codes, failure_message
    from course_tools.grade.prepare import load_lesson
    from course_tools.grade.results import Status
    from course_tools.grade.score import apply_source_scan

    lesson_name = grading_corpus.LESSON
    code = next(d.code for d in diagnoses.catalogue().values() if d.lesson == lesson_name)
    rule = ForbiddenCall("ex3-tests", "batch_sizes", ("torch.utils.data.DataLoader",), code)
    monkeypatch.setattr(diagnoses, "forbidden_calls", lambda lesson: (rule,) if lesson == lesson_name else ())
    lesson = load_lesson(ROOT, lesson_name)
    source = read_notebook(ROOT / "solutions" / lesson_name / f"{lesson_name}.ipynb")
    notebook = fill_answers(lesson.release, source)
    grading_corpus.cell(notebook, "ex3-batch-sizes").source = (
        "from torch.utils.data import DataLoader as Loader\n"
        "def batch_sizes(n_samples, batch_size, drop_last=False):\n"
        "    return [len(b) for b in Loader(range(n_samples), batch_size=batch_size, drop_last=drop_last)]")
    run = apply_source_scan(lesson, Executed("alice", notebook, Status.OK))
    message = failure_message(grading_corpus.cell(run.notebook, "ex3-tests"))
    assert run.status is Status.OK and diagnosis_codes(message)[:1] == (code,)
    assert "torch.utils.data.DataLoader" in message and "line 3" in message
    assert not failure_message(grading_corpus.cell(run.notebook, "ex2-tests")), "other exercises keep their points"

    forged = grading_corpus.after_answers(fill_answers(lesson.release, source), grading_corpus.FORGE_RUN_CODE)
    run = apply_source_scan(lesson, Executed("mallory", forged, Status.OK))
    position = forged.cells.index(grading_corpus.cell(forged, "ex1-dataset")) + 2
    assert run.status is Status.TAMPERED and f"cell {position}, line 5" in run.reason, run.reason
    died = apply_source_scan(lesson, Executed("mallory", forged, Status.KERNEL_DIED, "the kernel died"))
    assert died.status is Status.KERNEL_DIED and "reaches into the grading" in died.reason
