"""Lesson 05's bug zoo: correct answers in several styles, and typical mistakes with their codes.

Each entry is the source of one notebook exercise cell, so the same code runs through the check
functions (tests/test_checks_lesson05.py) and through the lesson's real grade cells
(tests/test_zoo_lesson05.py). A buggy entry names the code its failure message must carry
(course_utils.checks.lesson05.DIAGNOSES).
"""

from __future__ import annotations

from dataclasses import dataclass
from textwrap import dedent

GRADE_CELL = {"ex1": "ex1-tests", "ex2": "ex2-tests", "ex3": "ex3-tests"}
ANSWER_CELL = {"ex1": "ex1-gradient-check", "ex2": "ex2-ce-grad", "ex3": "ex3-accumulate"}


@dataclass(frozen=True)
class Variant:
    name: str
    exercise: str  # "ex1", "ex2" or "ex3"
    source: str
    bug: str | None = None  # None for a correct variant


def mutate(source: str, old: str, new: str) -> str:
    assert old in source, f"mutation target not found: {old!r}"
    return source.replace(old, new)


NUMERICAL_GRADIENT = """
def numerical_gradient(f, x, eps=1e-6):
    point = x.detach().to(torch.float64).clone()
    grad = torch.zeros_like(point)
    flat_point, flat_grad = point.view(-1), grad.view(-1)
    for i in range(flat_point.numel()):
        original = flat_point[i].item()
        flat_point[i] = original + eps
        plus = float(f(point))
        flat_point[i] = original - eps
        minus = float(f(point))
        flat_point[i] = original
        flat_grad[i] = (plus - minus) / (2 * eps)
    return grad
"""

RELATIVE_ERROR = """
def relative_error(a, b):
    a64, b64 = a.detach().double(), b.detach().double()
    scale = max((a64.abs() + b64.abs()).max().item(), torch.finfo(torch.float64).tiny)
    return (a64 - b64).abs().max().item() / scale
"""

EX1 = dedent(NUMERICAL_GRADIENT).strip() + "\n\n\n" + dedent(RELATIVE_ERROR).strip()

CROSS_ENTROPY_GRAD = """
def cross_entropy_grad(logits, targets):
    probabilities = torch.softmax(logits, dim=1)
    one_hot = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
    return (probabilities - one_hot) / len(targets)
"""

ACCUMULATED_GRAD = """
def accumulated_grad(loss_fn, w, times):
    leaf = w.detach().clone().requires_grad_(True)
    for _ in range(times):
        loss_fn(leaf).backward()
    return leaf.grad
"""


def ex1(name: str, source: str, bug: str | None = None) -> Variant:
    return Variant(name, "ex1", dedent(source).strip(), bug)


def ex2(name: str, source: str, bug: str | None = None) -> Variant:
    return Variant(name, "ex2", dedent(source).strip(), bug)


def ex3(name: str, source: str, bug: str | None = None) -> Variant:
    return Variant(name, "ex3", dedent(source).strip(), bug)


def numgrad_bug(name: str, old: str, new: str, bug: str) -> Variant:
    return ex1(name, mutate(EX1, old, new), bug)


def relerr_bug(name: str, old: str, new: str, bug: str) -> Variant:
    return ex1(name, mutate(EX1, old, new), bug)


CORRECT = [
    ex1("canonical", EX1),
    ex1("unit-vectors-and-torch-stack", """
        def numerical_gradient(f, x, eps=1e-6):
            base = x.detach().double()
            columns = []
            for i in range(base.numel()):
                step = torch.zeros(base.numel(), dtype=torch.float64)
                step[i] = eps
                step = step.view(base.shape)
                up, down = f(base + step), f(base - step)
                columns.append((torch.as_tensor(up, dtype=torch.float64) - torch.as_tensor(down, dtype=torch.float64))
                               / (2 * eps))
            return torch.stack(columns).reshape(base.shape)


        def relative_error(a, b):
            a, b = a.double(), b.double()
            denominator = torch.clamp((a.abs() + b.abs()).max(), min=torch.finfo(torch.float64).tiny)
            return float((a - b).abs().max() / denominator)
    """),
    ex1("ndindex-and-no-grad", """
        import itertools


        @torch.no_grad()
        def numerical_gradient(f, x, eps=1e-6):
            point = x.detach().clone().to(dtype=torch.float64)
            grad = torch.empty_like(point)
            for index in itertools.product(*(range(size) for size in point.shape)):
                saved = point[index].item()
                point[index] = saved + eps
                f_plus = f(point)
                point[index] = saved - eps
                f_minus = f(point)
                point[index] = saved
                grad[index] = (float(f_plus) - float(f_minus)) / (2 * eps)
            return grad


        def relative_error(a, b):
            difference = (a.double() - b.double()).abs().max().item()
            scale = (a.double().abs() + b.double().abs()).max().item()
            return difference / scale if scale > 0 else 0.0
    """),
    ex2("canonical", CROSS_ENTROPY_GRAD),
    ex2("scatter-and-detach", """
        def cross_entropy_grad(logits, targets):
            n, classes = logits.shape
            grad = torch.softmax(logits.detach(), dim=-1).clone()
            grad[torch.arange(n), targets] -= 1
            return grad / n
    """),
    ex2("exp-minus-max", """
        def cross_entropy_grad(logits, targets):
            shifted = logits - logits.max(dim=1, keepdim=True).values
            p = shifted.exp() / shifted.exp().sum(dim=1, keepdim=True)
            y = torch.zeros_like(p)
            y[range(len(targets)), targets] = 1.0
            return (p - y) / logits.shape[0]
    """),
    ex3("canonical", ACCUMULATED_GRAD),
    ex3("retain-graph", """
        def accumulated_grad(loss_fn, w, times):
            copy = w.detach().clone()
            copy.requires_grad = True
            loss = loss_fn(copy)
            for call in range(times):
                loss.backward(retain_graph=True)
            return copy.grad.detach()
    """),
    ex3("while-loop-and-clone", """
        def accumulated_grad(loss_fn, w, times):
            leaf = torch.tensor(w.detach().cpu().numpy(), dtype=w.dtype, requires_grad=True)
            done = 0
            while done < times:
                loss = loss_fn(leaf)
                loss.backward()
                done += 1
            return leaf.grad.clone()
    """),
]

BUGGY = [
    # --- numerical_gradient
    numgrad_bug("float32-nudges", "point = x.detach().to(torch.float64).clone()", "point = x.detach().clone()",
                "numgrad-float32"),
    # x itself, nudged in place: a float64 x (checked first) shows it, a float32 one would also show float32 nudges
    numgrad_bug("nudges-x-itself-float32", "point = x.detach().to(torch.float64).clone()", "point = x.detach()",
                "numgrad-nudged-x"),
    # Issue 17: x.double() is x itself for a float64 x; put back exactly, x ends unchanged, yet f saw it move
    numgrad_bug("double-without-clone-put-back", "point = x.detach().to(torch.float64).clone()",
                "point = x.detach().double()", "numgrad-nudged-x"),
    numgrad_bug("one-sided", "flat_point[i] = original - eps\n        minus = float(f(point))",
                "flat_point[i] = original\n        minus = float(f(point))", "numgrad-one-sided"),
    numgrad_bug("one-sided-divided-by-eps", "flat_grad[i] = (plus - minus) / (2 * eps)",
                "flat_grad[i] = (plus - float(f(point))) / eps", "numgrad-one-sided"),
    numgrad_bug("divides-by-eps", "(plus - minus) / (2 * eps)", "(plus - minus) / eps", "numgrad-divide-by-eps"),
    numgrad_bug("hard-coded-eps", "        flat_point[i] = original + eps\n",
                "        eps = 1e-4\n        flat_point[i] = original + eps\n", "numgrad-eps-ignored"),
    numgrad_bug("default-eps-too-large", "def numerical_gradient(f, x, eps=1e-6):",
                "def numerical_gradient(f, x, eps=1e-2):", "numgrad-default-eps"),
    numgrad_bug("default-eps-too-small", "def numerical_gradient(f, x, eps=1e-6):",
                "def numerical_gradient(f, x, eps=1e-13):", "numgrad-default-eps"),
    numgrad_bug("returns-x-dtype", "    return grad\n", "    return grad.to(x.dtype)\n", "numgrad-dtype"),
    numgrad_bug("returns-flat", "    return grad\n", "    return flat_grad\n", "numgrad-shape"),
    ex1("double-without-clone-and-drift", """
        def numerical_gradient(f, x, eps=1e-6):
            point = x.detach().double()          # x itself when x is float64
            grad = torch.zeros_like(point)
            flat_point, flat_grad = point.view(-1), grad.view(-1)
            for i in range(flat_point.numel()):
                flat_point[i] += eps
                plus = float(f(point))
                flat_point[i] -= 2 * eps
                minus = float(f(point))
                flat_point[i] += eps             # not always back to the same float
                flat_grad[i] = (plus - minus) / (2 * eps)
            return grad
    """ + RELATIVE_ERROR, "numgrad-nudged-x"),
    ex1("nudges-x-and-drifts", """
        def numerical_gradient(f, x, eps=1e-6):
            grad = torch.zeros(x.shape, dtype=torch.float64)
            flat = x.detach().view(-1)           # x's own memory: the nudges below change x
            for i in range(flat.numel()):
                flat[i] += eps
                plus = float(f(x.detach().double().clone()))
                flat[i] -= 2 * eps
                minus = float(f(x.detach().double().clone()))
                flat[i] += eps                   # not always back to the same float
                grad.view(-1)[i] = (plus - minus) / (2 * eps)
            return grad
    """ + RELATIVE_ERROR, "numgrad-changed-x"),
    ex1("not-put-back", mutate(EX1, "        flat_point[i] = original\n", ""), "numgrad-all-at-once"),
    ex1("all-at-once", """
        def numerical_gradient(f, x, eps=1e-6):
            point = x.detach().double()
            value = (float(f(point + eps)) - float(f(point - eps))) / (2 * eps)
            return torch.full_like(point, value)
    """ + RELATIVE_ERROR, "numgrad-all-at-once"),
    ex1("autograd", """
        def numerical_gradient(f, x, eps=1e-6):
            leaf = x.detach().double().requires_grad_(True)
            f(leaf).backward()
            return leaf.grad
    """ + RELATIVE_ERROR, "numgrad-autograd"),
    ex1("autograd-functional", """
        def numerical_gradient(f, x, eps=1e-6):
            return torch.autograd.functional.jacobian(lambda t: torch.as_tensor(f(t)), x.detach().double())
    """ + RELATIVE_ERROR, "numgrad-autograd"),
    ex1("hard-coded", """
        def numerical_gradient(f, x, eps=1e-6):
            return 3 * x.detach().double() ** 2
    """ + RELATIVE_ERROR, "numgrad-f-never-called"),
    numgrad_bug("item-on-python-float", "plus = float(f(point))", "plus = f(point).item()", "numgrad-raised"),
    # --- relative_error
    relerr_bug("returns-tensor", "return (a64 - b64).abs().max().item() / scale", "return (a64 - b64).abs().max() / scale",
               "relerr-not-a-float"),
    relerr_bug("no-tiny", "scale = max((a64.abs() + b64.abs()).max().item(), torch.finfo(torch.float64).tiny)",
               "scale = (a64.abs() + b64.abs()).max().item()", "relerr-zero-division"),
    relerr_bug("float32", "a64, b64 = a.detach().double(), b.detach().double()",
               "a64, b64 = a.detach().float(), b.detach().float()", "relerr-float32"),
    relerr_bug("no-abs", "return (a64 - b64).abs().max().item() / scale", "return (a64 - b64).max().item() / scale",
               "relerr-no-abs"),
    ex1("mean-not-max", EX1.replace(dedent(RELATIVE_ERROR).strip(), dedent("""
        def relative_error(a, b):
            a64, b64 = a.double(), b.double()
            return ((a64 - b64).abs().mean() / (a64.abs() + b64.abs()).mean().clamp(min=1e-300)).item()
    """).strip()), "relerr-not-max"),
    ex1("elementwise", EX1.replace(dedent(RELATIVE_ERROR).strip(), dedent("""
        def relative_error(a, b):
            a64, b64 = a.double(), b.double()
            return ((a64 - b64).abs() / (a64.abs() + b64.abs()).clamp(min=1e-300)).max().item()
    """).strip()), "relerr-elementwise"),
    relerr_bug("relative-to-b", "scale = max((a64.abs() + b64.abs()).max().item(), torch.finfo(torch.float64).tiny)",
               "scale = max(b64.abs().max().item(), torch.finfo(torch.float64).tiny)", "relerr-scale"),
    # --- cross_entropy_grad
    ex2("autograd", """
        def cross_entropy_grad(logits, targets):
            leaf = logits.detach().clone().requires_grad_(True)
            F.cross_entropy(leaf, targets).backward()
            return leaf.grad
    """, "cegrad-autograd"),
    ex2("autograd-enable-grad", """
        def cross_entropy_grad(logits, targets):
            with torch.enable_grad():
                leaf = logits.detach().clone().requires_grad_(True)
                return torch.autograd.grad(F.cross_entropy(leaf, targets), leaf)[0]
    """, "cegrad-autograd"),
    ex2("no-mean", mutate(CROSS_ENTROPY_GRAD, " / len(targets)", ""), "cegrad-no-mean"),
    ex2("sign", mutate(CROSS_ENTROPY_GRAD, "(probabilities - one_hot)", "(one_hot - probabilities)"), "cegrad-sign"),
    ex2("softmax-dim-0", mutate(CROSS_ENTROPY_GRAD, "dim=1", "dim=0"), "cegrad-softmax-dim"),
    ex2("no-softmax", mutate(CROSS_ENTROPY_GRAD, "torch.softmax(logits, dim=1)", "logits"), "cegrad-no-softmax"),
    ex2("log-softmax", mutate(CROSS_ENTROPY_GRAD, "torch.softmax", "torch.log_softmax"), "cegrad-log-softmax"),
    ex2("naive-exp", mutate(CROSS_ENTROPY_GRAD, "torch.softmax(logits, dim=1)",
                            "logits.exp() / logits.exp().sum(dim=1, keepdim=True)"), "cegrad-overflow"),
    ex2("one-hot-without-classes", mutate(CROSS_ENTROPY_GRAD, "F.one_hot(targets, logits.shape[1])", "F.one_hot(targets)"),
        "cegrad-one-hot-classes"),
    ex2("float32-result", mutate(CROSS_ENTROPY_GRAD, ".to(logits.dtype)", ".float()").replace(
        "return (probabilities - one_hot) / len(targets)", "return ((probabilities - one_hot) / len(targets)).float()"),
        "cegrad-dtype"),
    ex2("in-place-shift", """
        def cross_entropy_grad(logits, targets):
            logits -= logits.max(dim=1, keepdim=True).values
            probabilities = logits.exp() / logits.exp().sum(dim=1, keepdim=True)
            one_hot = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
            return (probabilities - one_hot) / len(targets)
    """, "cegrad-changed-logits"),
    ex2("divides-by-classes", mutate(CROSS_ENTROPY_GRAD, "/ len(targets)", "/ logits.shape[1]"), "cegrad-divide-by-classes"),
    # --- accumulated_grad
    ex3("one-graph-twice", """
        def accumulated_grad(loss_fn, w, times):
            leaf = w.detach().clone().requires_grad_(True)
            loss = loss_fn(leaf)
            for _ in range(times):
                loss.backward()
            return leaf.grad
    """, "accgrad-graph-freed"),
    # Public bug reports: "element 0 of tensors does not require grad and does not have a grad_fn"
    ex3("copy-without-requires-grad", mutate(ACCUMULATED_GRAD, ".requires_grad_(True)", ""), "accgrad-no-requires-grad"),
    ex3("clone-without-detach", mutate(ACCUMULATED_GRAD, "w.detach().clone()", "w.clone()"), "accgrad-not-a-leaf"),
    ex3("works-on-w", """
        def accumulated_grad(loss_fn, w, times):
            w.grad = None
            for _ in range(times):
                loss_fn(w).backward()
            return w.grad.clone()
    """, "accgrad-touched-w"),
    ex3("multiplied", """
        def accumulated_grad(loss_fn, w, times):
            leaf = w.detach().clone().requires_grad_(True)
            loss_fn(leaf).backward()
            return times * leaf.grad
    """, "accgrad-multiplied"),
    ex3("zeroed-each-time", mutate(ACCUMULATED_GRAD, "        loss_fn(leaf).backward()",
                                   "        leaf.grad = None\n        loss_fn(leaf).backward()"), "accgrad-zeroed"),
    ex3("off-by-one", mutate(ACCUMULATED_GRAD, "range(times)", "range(1, times)"), "accgrad-wrong-count"),
    ex3("returns-copy", mutate(ACCUMULATED_GRAD, "return leaf.grad", "return leaf"), "accgrad-returned-weights"),
    ex3("float32-copy", mutate(ACCUMULATED_GRAD, "w.detach().clone()", "w.detach().float().clone()"), "accgrad-dtype"),
]
