"""A look at the submitted source, in the grader's process, where the student cannot change what is seen.

The kernel's view of a notebook is the student's to alter (input transformers, ``raw_cell`` hooks,
``run_code``), so this reads the submitted cells themselves: every code cell that is not verbatim
a release cell (answer cells and any cell the student added; test cells are replaced by the
lesson's own before running, so their submitted text never runs), after IPython's own
``TransformerManager().transform_cell`` (magics become calls), parsed with :mod:`ast`. Two kinds
of finding:

1. **Tampering**: constructs a beginner's notebook has no use for, which reach into the grading
   machinery: IPython event hooks, input transformers and other ``get_ipython()`` registrations or
   attribute writes; ``sys.settrace``/``setprofile``/``addaudithook``, ``threading.settrace``;
   ``exec``/``eval``/``compile`` of anything but a string literal; ``__import__`` and
   ``importlib``; writes to ``builtins``, ``__builtins__`` or ``sys.modules`` (and import hooks);
   ``ctypes``; ``os.fork``/``os._exit``; signal handlers; ``gc.get_objects``/``get_referrers``;
   writes to attributes of the course's modules or of PyTorch's comparison functions. Each marks the
   submission ``tampered``, naming the cell and the line.
2. **Forbidden calls**: a library call an exercise asks the student to write themselves
   (:class:`course_utils.diagnoses.ForbiddenCall`, declared beside the lesson's catalogue), found
   inside the named function or class, also through the student's own helper functions and
   through import aliases (``import torch.nn.functional as F``, ``from torch import optim``).
   That exercise scores 0 with the catalogue's diagnosis.

Ordinary code is never flagged: ``model.eval()``, ``torch.compile``, ``torch.backends.cudnn.x =
...``, ``plt.rcParams[...] = ...``, magics such as ``%matplotlib inline`` or ``!pip install``.
Importing this module has no side effects.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache

from course_utils.diagnoses import ForbiddenCall

# --- what counts as tampering -------------------------------------------------------------------

TAMPERING_CALLS = {
    "sys.settrace": "sets a trace function (sys.settrace)",
    "sys.setprofile": "sets a profile function (sys.setprofile)",
    "sys.addaudithook": "adds an audit hook (sys.addaudithook)",
    "sys._getframe": "reads the interpreter's frames (sys._getframe)",
    "threading.settrace": "sets a trace function for threads (threading.settrace)",
    "threading.setprofile": "sets a profile function for threads (threading.setprofile)",
    "os.fork": "forks the kernel (os.fork)",
    "os.forkpty": "forks the kernel (os.forkpty)",
    "os._exit": "ends the kernel's process (os._exit)",
    "posix.fork": "forks the kernel (posix.fork)",
    "posix._exit": "ends the kernel's process (posix._exit)",
    "signal.signal": "installs a signal handler (signal.signal)",
    "signal.setitimer": "sets a signal timer (signal.setitimer)",
    "signal.alarm": "sets a signal alarm (signal.alarm)",
    "signal.set_wakeup_fd": "redirects signals (signal.set_wakeup_fd)",
    "gc.get_objects": "searches the interpreter's objects (gc.get_objects)",
    "gc.get_referrers": "searches the interpreter's objects (gc.get_referrers)",
    "gc.get_referents": "searches the interpreter's objects (gc.get_referents)",
    "builtins.__import__": "imports through __import__",
    "__import__": "imports through __import__",
}
TAMPERING_MODULES = {
    "importlib": "imports through importlib",
    "ctypes": "uses ctypes",
    "_ctypes": "uses ctypes",
    "cffi": "uses cffi",
    "sys.monitoring": "registers interpreter monitoring (sys.monitoring)",
}
DYNAMIC_CODE = {"exec", "eval", "compile", "builtins.exec", "builtins.eval", "builtins.compile"}
PROTECTED_ROOTS = {  # writing to these (attributes, items, setattr) reaches the grading machinery
    "builtins": "writes to builtins",
    "__builtins__": "writes to builtins",
    "sys.modules": "writes to sys.modules",
    "sys.meta_path": "installs an import hook (sys.meta_path)",
    "sys.path_hooks": "installs an import hook (sys.path_hooks)",
    "sys.excepthook": "replaces sys.excepthook",
    "sys.displayhook": "replaces sys.displayhook",
    "course_utils": "writes to the course's modules",
    "torch.testing": "writes to PyTorch's checking functions (torch.testing)",
    "torch.Tensor": "writes to torch.Tensor",
}
TORCH_CHECKS = {"allclose", "isclose", "equal", "eq", "ne", "all", "any", "is_tensor", "testing"}
SHELL_REGISTRIES = {  # get_ipython() attributes where something is registered to run on every cell
    "events", "input_transformers_post", "input_transformers_cleanup", "input_transformer_manager",
    "ast_transformers", "register_magic_function", "register_magics", "set_custom_exc", "set_hook",
    "register_post_execute", "ast_node_interactivity", "display_formatter", "display_pub", "displayhook",
}
MUTATORS = {"append", "extend", "insert", "register", "update", "setdefault", "__setitem__", "__setattr__",
            "pop", "popitem", "clear", "__delitem__"}


@dataclass(frozen=True)
class Finding:
    """One construct found in one cell: where, and what it does, in words."""

    cell: int    # 1-based position of the cell in the submitted notebook
    line: int    # 1-based line inside the cell
    what: str

    def __str__(self) -> str:
        return f"cell {self.cell}, line {self.line}: {self.what}"


@dataclass(frozen=True)
class ForbiddenFinding:
    """A forbidden library call found where an exercise's answer makes it."""

    rule: ForbiddenCall
    where: Finding
    call: str  # the call as resolved, e.g. "torch.nn.functional.cross_entropy"


@dataclass
class ScanResult:
    """What the scan found in a submission's own cells."""

    tampering: list[Finding] = field(default_factory=list)
    forbidden: dict[str, ForbiddenFinding] = field(default_factory=dict)  # grade id -> the first one found
    unparsed: list[int] = field(default_factory=list)  # cells the kernel could not have run either


# --- names: what an expression refers to, through imports and simple aliases --------------------

class Aliases:
    """Names bound to modules or library objects, from ``import`` statements and ``x = a.b`` assignments.

    Flow-insensitive over every code cell of the notebook (a name imported in one cell is used in
    another): a name may stand for several things, and every one of them is checked.
    """

    def __init__(self) -> None:
        self.names: dict[str, set[str]] = {}
        self.shells: set[str] = set()  # names bound to get_ipython()

    def add(self, name: str, target: str) -> None:
        self.names.setdefault(name, set()).add(target)

    def learn(self, tree: ast.AST) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.add(alias.asname, alias.name)
                    else:
                        self.add(alias.name.split(".")[0], alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    self.add(alias.asname or alias.name, f"{node.module}.{alias.name}")
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if _is_shell_call(node.value, self) or (isinstance(node.value, ast.Name)
                                                        and node.value.id in self.shells):
                    self.shells.update(names)
                elif isinstance(node.value, (ast.Name, ast.Attribute)):
                    for resolved in self.resolve(node.value):
                        for name in names:
                            if name != resolved:
                                self.add(name, resolved)

    def resolve(self, node: ast.AST) -> set[str]:
        """The qualified names ``node`` (a name or an attribute chain) may stand for; empty when unknown."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Call) and _is_getattr_call(node):
            return {f"{base}.{node.args[1].value}" + "".join(f".{p}" for p in reversed(parts))
                    for base in self.resolve(node.args[0])}
        if not isinstance(node, ast.Name):
            return set()
        tail = "".join(f".{p}" for p in reversed(parts))
        bases = self.names.get(node.id) or {node.id}
        return {base + tail for base in bases}


def _is_getattr_call(node: ast.Call) -> bool:
    return (isinstance(node.func, ast.Name) and node.func.id == "getattr" and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str))


def _is_shell_call(node: ast.AST, aliases: Aliases) -> bool:
    """``get_ipython()`` (or ``IPython.get_ipython()``), however it was imported."""
    return isinstance(node, ast.Call) and any(name.split(".")[-1] == "get_ipython" for name in aliases.resolve(node.func))


def _shell_root(node: ast.AST, aliases: Aliases) -> list[str] | None:
    """For an attribute chain on the IPython shell, the attribute names after the shell; else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if _is_shell_call(node, aliases) or (isinstance(node, ast.Name) and node.id in aliases.shells):
        return list(reversed(parts))
    return None


def _under(name: str, prefixes: Iterable[str]) -> str | None:
    for prefix in prefixes:
        if name == prefix or name.startswith(prefix + "."):
            return prefix
    return None


# --- class 1: tampering -------------------------------------------------------------------------

def _protected(name: str) -> str | None:
    """Why writing to ``name`` (a qualified name) is tampering; None when it is ordinary."""
    root = _under(name, PROTECTED_ROOTS)
    if root is not None:
        return PROTECTED_ROOTS[root]
    parts = name.split(".")
    if parts[0] == "torch" and len(parts) >= 2 and parts[1] in TORCH_CHECKS:
        return f"writes to PyTorch's checking functions (torch.{parts[1]})"
    return None


def _write_targets(node: ast.AST) -> Iterator[ast.AST]:
    """The expressions an assignment or deletion writes into (attributes and items, unpacked)."""
    targets: list[ast.AST] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        targets = [node.target]
    elif isinstance(node, ast.Delete):
        targets = list(node.targets)
    while targets:
        target = targets.pop()
        if isinstance(target, (ast.Tuple, ast.List)):
            targets.extend(target.elts)
        elif isinstance(target, ast.Starred):
            targets.append(target.value)
        elif isinstance(target, (ast.Attribute, ast.Subscript)):
            yield target


def _container(node: ast.AST) -> ast.AST:
    """``a.b[c]`` -> ``a.b``; ``a.b.c`` -> ``a.b``: what is written into."""
    if isinstance(node, ast.Subscript):
        return node.value
    if isinstance(node, ast.Attribute):
        return node.value
    return node


def _vars_of(node: ast.AST) -> ast.AST:
    """``vars(x)`` / ``x.__dict__`` -> ``x`` (writing into an object's namespace is writing to it)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "vars" and node.args:
        return node.args[0]
    if isinstance(node, ast.Attribute) and node.attr == "__dict__":
        return node.value
    return node


def _written_object_reason(node: ast.AST, aliases: Aliases) -> str | None:
    """Why writing into ``node`` (``node.x = ...``, ``node[k] = ...``, ``setattr(node, ...)``) is tampering."""
    target = _vars_of(node)
    shell = _shell_root(target, aliases)
    if shell is not None:
        return ("writes to the IPython shell's " + ".".join(shell)) if shell else "writes to the IPython shell"
    for name in aliases.resolve(target) if isinstance(target, (ast.Name, ast.Attribute)) else set():
        reason = _protected(name)
        if reason:
            return reason
    return None


def _tampering_in(tree: ast.AST, aliases: Aliases) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = _under(alias.name, TAMPERING_MODULES)
                if root:
                    yield line, TAMPERING_MODULES[root]
        elif isinstance(node, ast.ImportFrom) and node.module:
            root = _under(node.module, TAMPERING_MODULES)
            if root:
                yield line, TAMPERING_MODULES[root]
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in TAMPERING_CALLS:
                    yield line, TAMPERING_CALLS[full]
        elif isinstance(node, ast.Name) and node.id == "__builtins__":
            yield line, "uses __builtins__"
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            for target in _write_targets(node):
                # ``torch.allclose = ...`` is judged by the whole name, ``sys.modules[k] = ...`` by its container
                whole = _written_object_reason(target, aliases) if isinstance(target, ast.Attribute) else None
                reason = whole or _written_object_reason(_container(target), aliases)
                if reason:
                    yield line, reason
        elif isinstance(node, ast.Call):
            yield from ((line, reason) for reason in _call_reasons(node, aliases))


def _call_reasons(node: ast.Call, aliases: Aliases) -> Iterator[str]:
    names = aliases.resolve(node.func)
    for name in names:
        if name in TAMPERING_CALLS:
            yield TAMPERING_CALLS[name]
        elif _under(name, TAMPERING_MODULES):
            yield TAMPERING_MODULES[_under(name, TAMPERING_MODULES)]
        elif name in DYNAMIC_CODE and not (node.args and isinstance(node.args[0], ast.Constant)
                                           and isinstance(node.args[0].value, str)):
            yield f"runs code built at run time ({name.split('.')[-1]} of something other than a string literal)"
    if isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr") and node.args:
        reason = _written_object_reason(node.args[0], aliases)
        if reason:
            yield reason
    if isinstance(node.func, ast.Attribute):
        shell = _shell_root(node.func, aliases)
        if shell and (shell[0] in SHELL_REGISTRIES or (len(shell) > 1 and shell[-1] in MUTATORS)):
            yield f"registers with the IPython shell (get_ipython().{'.'.join(shell)})"
        if node.func.attr in MUTATORS:
            reason = _written_object_reason(node.func.value, aliases)
            if reason and "shell" not in reason:
                yield reason


# --- class 2: forbidden calls ------------------------------------------------------------------

def _definitions(trees: Iterable[tuple[int, ast.AST]]) -> dict[str, list[tuple[int, ast.AST]]]:
    """The student's functions, classes and methods (``Class.method``) by name, and ``name = value`` bindings."""
    found: dict[str, list[tuple[int, ast.AST]]] = {}
    for cell, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found.setdefault(node.name, []).append((cell, node))
                if isinstance(node, ast.ClassDef):
                    for item in node.body:
                        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                            found.setdefault(f"{node.name}.{item.name}", []).append((cell, item))
            elif isinstance(node, ast.Assign):  # ``cross_entropy = F.cross_entropy``: the answer is the library's
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        found.setdefault(target.id, []).append((cell, node.value))
    return found


def _references(definition: ast.AST) -> Iterator[ast.AST]:
    """What a definition uses: the callees of a function or class; every name in a ``name = value`` binding."""
    code = isinstance(definition, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    for node in ast.walk(definition):
        if code and isinstance(node, ast.Call):
            yield node.func
        elif not code and isinstance(node, (ast.Name, ast.Attribute)):
            yield node


def _forbidden_call(rule: ForbiddenCall, definitions: dict[str, list[tuple[int, ast.AST]]],
                    aliases: Aliases) -> tuple[int, int, str] | None:
    """The first forbidden call inside ``rule.inside`` (and the student's helpers it calls): cell, line, name."""
    pending, seen = [rule.inside], set()
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        seen.add(name)
        for cell, definition in definitions.get(name, []):
            for ref in _references(definition):
                for resolved in aliases.resolve(ref):
                    if _under(resolved, rule.calls):
                        return cell, getattr(ref, "lineno", 0), resolved
                if isinstance(ref, ast.Name) and ref.id in definitions:
                    pending.append(ref.id)  # the student's own helper: its calls are this answer's calls
    return None


# --- the scan ----------------------------------------------------------------------------------

@cache
def _transformer() -> object:
    """IPython's own input transformer, made once (it is stateless between cells)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


CODE_MAGICS = {"time", "timeit", "prun", "capture", "debug", "pdb"}  # magics that run their text as Python


def parse_cell(source: str, depth: int = 0) -> ast.Module | None:
    """A cell as the kernel would compile it; None if it cannot be compiled.

    IPython's magics become calls first (``TransformerManager().transform_cell``), and the text
    of a magic that runs Python (``%time ...``, ``%%capture``) is parsed in place of the call's
    line, so code cannot hide inside a magic's string.
    """
    try:
        tree = ast.parse(_transformer().transform_cell(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if depth < 3:
        for node in list(ast.walk(tree)):
            inner = _magic_code(node)
            if inner is not None:
                text, offset = inner
                sub = parse_cell(text, depth + 1)
                if sub is not None:
                    ast.increment_lineno(sub, node.lineno - 1 + offset)
                    tree.body.extend(sub.body)  # only read, never run: where it sits does not matter
    return tree


def _magic_code(node: ast.AST) -> tuple[str, int] | None:
    """For ``get_ipython().run_line_magic('time', code)`` / ``run_cell_magic('time', line, body)``: the code, its offset."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args
            and isinstance(node.args[0], ast.Constant) and node.args[0].value in CODE_MAGICS
            and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args)):
        return None
    if node.func.attr == "run_line_magic" and len(node.args) == 2:
        return node.args[1].value, 0
    if node.func.attr == "run_cell_magic" and len(node.args) == 3:
        return node.args[2].value, 1  # the body starts on the cell's second line
    return None


def scan_sources(cells: list[tuple[int, str]], context: Iterable[str] = (),
                 forbidden: Iterable[ForbiddenCall] = ()) -> ScanResult:
    """Scan the student's own cells (``(position, source)``); ``context`` (the release's cells) only lends aliases."""
    result = ScanResult()
    aliases = Aliases()
    for source in context:
        tree = parse_cell(source)
        if tree is not None:
            aliases.learn(tree)
    trees: list[tuple[int, ast.AST]] = []
    for position, source in cells:
        tree = parse_cell(source)
        if tree is None:
            result.unparsed.append(position)
            continue
        aliases.learn(tree)
        trees.append((position, tree))
    for position, tree in trees:
        seen: set[tuple[int, str]] = set()
        for line, what in _tampering_in(tree, aliases):
            if (line, what) not in seen:
                seen.add((line, what))
                result.tampering.append(Finding(position, line, what))
    result.tampering.sort(key=lambda f: (f.cell, f.line))
    definitions = _definitions(trees)
    for rule in forbidden:
        if rule.grade_id in result.forbidden:
            continue
        hit = _forbidden_call(rule, definitions, aliases)
        if hit is not None:
            cell, line, call = hit
            result.forbidden[rule.grade_id] = ForbiddenFinding(
                rule, Finding(cell, line, f"calls {call} inside {rule.inside}"), call)
    return result


def _text(source: object) -> str:
    return "".join(source) if isinstance(source, list) else str(source or "")


def student_cells(notebook: object, release: object) -> list[tuple[int, str]]:
    """The submission's code cells that are not verbatim release cells and not test cells, with their positions."""
    from course_tools.nbgrader_hooks import is_test_cell

    released = {_text(c.source).strip() for c in release.cells if c.cell_type == "code"}
    return [(index, _text(cell.source)) for index, cell in enumerate(notebook.cells, start=1)
            if cell.cell_type == "code" and not is_test_cell(cell) and _text(cell.source).strip() not in released]


def scan_notebook(notebook: object, release: object, lesson: str) -> ScanResult:
    """Scan a submitted notebook against its lesson's release and the lesson's forbidden calls."""
    from course_utils.diagnoses import forbidden_calls

    context = [_text(c.source) for c in release.cells if c.cell_type == "code"]
    return scan_sources(student_cells(notebook, release), context, forbidden_calls(lesson))
