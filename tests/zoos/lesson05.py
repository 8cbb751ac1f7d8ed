"""Lesson 05's bug zoo: student cells for numerical_gradient and relative_error, cross_entropy_grad and
accumulated_grad, correct ones in several styles and typical mistakes.

Each entry is the source of one exercise cell: tests/test_zoos.py runs it through the lesson's real
grade cells in a kernel, tests/test_rechecks.py through the grader's re-check, and
tests/test_lesson05_checks.py through the check functions on both stored seeds. A buggy entry names
the diagnosis code its failure message must carry (course_utils.checks.lesson05).
"""

from __future__ import annotations

from functools import partial
from textwrap import dedent

from tests.zoos import Zoo, mutants, variant

gradient_checker = partial(variant, "ex1-tests")
ce_grad = partial(variant, "ex2-tests")
accumulator = partial(variant, "ex3-tests")

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


def exercise_1(numerical_gradient: str = NUMERICAL_GRADIENT, relative_error: str = RELATIVE_ERROR) -> str:
    """An Exercise 1 cell: both functions (the canonical one where only the other is given)."""
    return dedent(numerical_gradient).strip() + "\n\n\n" + dedent(relative_error).strip()


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

# Values are right: only the in-kernel check can tell that autograd did the work.
AUTOGRAD_DID_IT = {"values_show": False}

CORRECT = (
    gradient_checker("canonical", exercise_1()),
    gradient_checker("unit-vectors-and-torch-stack", """
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
    gradient_checker("ndindex-and-no-grad", """
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
    ce_grad("canonical", CROSS_ENTROPY_GRAD),
    ce_grad("scatter-and-detach", """
        def cross_entropy_grad(logits, targets):
            n, classes = logits.shape
            grad = torch.softmax(logits.detach(), dim=-1).clone()
            grad[torch.arange(n), targets] -= 1
            return grad / n
    """),
    ce_grad("exp-minus-max", """
        def cross_entropy_grad(logits, targets):
            shifted = logits - logits.max(dim=1, keepdim=True).values
            p = shifted.exp() / shifted.exp().sum(dim=1, keepdim=True)
            y = torch.zeros_like(p)
            y[range(len(targets)), targets] = 1.0
            return (p - y) / logits.shape[0]
    """),
    accumulator("canonical", ACCUMULATED_GRAD),
    accumulator("retain-graph", """
        def accumulated_grad(loss_fn, w, times):
            copy = w.detach().clone()
            copy.requires_grad = True
            loss = loss_fn(copy)
            for call in range(times):
                loss.backward(retain_graph=True)
            return copy.grad.detach()
    """),
    accumulator("while-loop-and-clone", """
        def accumulated_grad(loss_fn, w, times):
            leaf = torch.tensor(w.detach().cpu().numpy(), dtype=w.dtype, requires_grad=True)
            done = 0
            while done < times:
                loss = loss_fn(leaf)
                loss.backward()
                done += 1
            return leaf.grad.clone()
    """),
)

BUGGY = (
    # --- numerical_gradient: (name, code, what the canonical cell says, what the mistake says)
    *mutants("ex1-tests", exercise_1(), (
        ("float32-nudges", "numgrad-float32",
         "point = x.detach().to(torch.float64).clone()", "point = x.detach().clone()"),
        # x itself, nudged in place: a float64 x (checked first) shows it, a float32 one would also show float32 nudges
        ("nudges-x-itself-float32", "numgrad-nudged-x",
         "point = x.detach().to(torch.float64).clone()", "point = x.detach()"),
        # Issue 17: x.double() is x itself for a float64 x; put back exactly, x ends unchanged, yet f saw it move
        ("double-without-clone-put-back", "numgrad-nudged-x",
         "point = x.detach().to(torch.float64).clone()", "point = x.detach().double()"),
        ("one-sided", "numgrad-one-sided",
         "flat_point[i] = original - eps\n        minus = float(f(point))",
         "flat_point[i] = original\n        minus = float(f(point))"),
        ("one-sided-divided-by-eps", "numgrad-one-sided",
         "flat_grad[i] = (plus - minus) / (2 * eps)", "flat_grad[i] = (plus - float(f(point))) / eps"),
        ("divides-by-eps", "numgrad-divide-by-eps", "(plus - minus) / (2 * eps)", "(plus - minus) / eps"),
        ("hard-coded-eps", "numgrad-eps-ignored",
         "        flat_point[i] = original + eps\n", "        eps = 1e-4\n        flat_point[i] = original + eps\n"),
        ("default-eps-too-large", "numgrad-default-eps",
         "def numerical_gradient(f, x, eps=1e-6):", "def numerical_gradient(f, x, eps=1e-2):"),
        ("default-eps-too-small", "numgrad-default-eps",
         "def numerical_gradient(f, x, eps=1e-6):", "def numerical_gradient(f, x, eps=1e-13):"),
        ("returns-x-dtype", "numgrad-dtype", "    return grad\n", "    return grad.to(x.dtype)\n"),
        ("returns-flat", "numgrad-shape", "    return grad\n", "    return flat_grad\n"),
        ("not-put-back", "numgrad-all-at-once", "        flat_point[i] = original\n", ""),
        ("item-on-python-float", "numgrad-raised", "plus = float(f(point))", "plus = f(point).item()"),
    )),
    gradient_checker("double-without-clone-and-drift", exercise_1("""
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
    """), "numgrad-nudged-x"),
    gradient_checker("nudges-x-and-drifts", exercise_1("""
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
    """), "numgrad-changed-x"),
    gradient_checker("all-at-once", exercise_1("""
        def numerical_gradient(f, x, eps=1e-6):
            point = x.detach().double()
            value = (float(f(point + eps)) - float(f(point - eps))) / (2 * eps)
            return torch.full_like(point, value)
    """), "numgrad-all-at-once"),
    gradient_checker("autograd", exercise_1("""
        def numerical_gradient(f, x, eps=1e-6):
            leaf = x.detach().double().requires_grad_(True)
            f(leaf).backward()
            return leaf.grad
    """), "numgrad-autograd", **AUTOGRAD_DID_IT),
    gradient_checker("autograd-functional", exercise_1("""
        def numerical_gradient(f, x, eps=1e-6):
            return torch.autograd.functional.jacobian(lambda t: torch.as_tensor(f(t)), x.detach().double())
    """), "numgrad-autograd", **AUTOGRAD_DID_IT),
    gradient_checker("hard-coded", exercise_1("""
        def numerical_gradient(f, x, eps=1e-6):
            return 3 * x.detach().double() ** 2
    """), "numgrad-f-never-called"),
    # --- relative_error
    *mutants("ex1-tests", exercise_1(), (
        ("returns-tensor", "relerr-not-a-float",
         "return (a64 - b64).abs().max().item() / scale", "return (a64 - b64).abs().max() / scale"),
        ("no-tiny", "relerr-zero-division",
         "scale = max((a64.abs() + b64.abs()).max().item(), torch.finfo(torch.float64).tiny)",
         "scale = (a64.abs() + b64.abs()).max().item()"),
        ("float32", "relerr-float32",
         "a64, b64 = a.detach().double(), b.detach().double()", "a64, b64 = a.detach().float(), b.detach().float()"),
        ("no-abs", "relerr-no-abs",
         "return (a64 - b64).abs().max().item() / scale", "return (a64 - b64).max().item() / scale"),
        ("relative-to-b", "relerr-scale",
         "scale = max((a64.abs() + b64.abs()).max().item(), torch.finfo(torch.float64).tiny)",
         "scale = max(b64.abs().max().item(), torch.finfo(torch.float64).tiny)"),
    )),
    gradient_checker("mean-not-max", exercise_1(relative_error="""
        def relative_error(a, b):
            a64, b64 = a.double(), b.double()
            return ((a64 - b64).abs().mean() / (a64.abs() + b64.abs()).mean().clamp(min=1e-300)).item()
    """), "relerr-not-max"),
    gradient_checker("elementwise", exercise_1(relative_error="""
        def relative_error(a, b):
            a64, b64 = a.double(), b.double()
            return ((a64 - b64).abs() / (a64.abs() + b64.abs()).clamp(min=1e-300)).max().item()
    """), "relerr-elementwise"),
    # --- cross_entropy_grad
    ce_grad("autograd", """
        def cross_entropy_grad(logits, targets):
            leaf = logits.detach().clone().requires_grad_(True)
            F.cross_entropy(leaf, targets).backward()
            return leaf.grad
    """, "cegrad-autograd", **AUTOGRAD_DID_IT),
    ce_grad("autograd-enable-grad", """
        def cross_entropy_grad(logits, targets):
            with torch.enable_grad():
                leaf = logits.detach().clone().requires_grad_(True)
                return torch.autograd.grad(F.cross_entropy(leaf, targets), leaf)[0]
    """, "cegrad-autograd", **AUTOGRAD_DID_IT),
    *mutants("ex2-tests", CROSS_ENTROPY_GRAD, (
        ("no-mean", "cegrad-no-mean", " / len(targets)", ""),
        ("sign", "cegrad-sign", "(probabilities - one_hot)", "(one_hot - probabilities)"),
        ("softmax-dim-0", "cegrad-softmax-dim", "dim=1", "dim=0"),
        ("no-softmax", "cegrad-no-softmax", "torch.softmax(logits, dim=1)", "logits"),
        ("log-softmax", "cegrad-log-softmax", "torch.softmax", "torch.log_softmax"),
        ("naive-exp", "cegrad-overflow",
         "torch.softmax(logits, dim=1)", "logits.exp() / logits.exp().sum(dim=1, keepdim=True)"),
        ("one-hot-without-classes", "cegrad-one-hot-classes",
         "F.one_hot(targets, logits.shape[1])", "F.one_hot(targets)"),
        ("divides-by-classes", "cegrad-divide-by-classes", "/ len(targets)", "/ logits.shape[1]"),
    )),
    ce_grad("float32-result", """
        def cross_entropy_grad(logits, targets):
            probabilities = torch.softmax(logits, dim=1)
            one_hot = F.one_hot(targets, logits.shape[1]).float()
            return ((probabilities - one_hot) / len(targets)).float()
    """, "cegrad-dtype"),
    ce_grad("in-place-shift", """
        def cross_entropy_grad(logits, targets):
            logits -= logits.max(dim=1, keepdim=True).values
            probabilities = logits.exp() / logits.exp().sum(dim=1, keepdim=True)
            one_hot = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
            return (probabilities - one_hot) / len(targets)
    """, "cegrad-changed-logits"),
    # --- accumulated_grad
    accumulator("one-graph-twice", """
        def accumulated_grad(loss_fn, w, times):
            leaf = w.detach().clone().requires_grad_(True)
            loss = loss_fn(leaf)
            for _ in range(times):
                loss.backward()
            return leaf.grad
    """, "accgrad-graph-freed"),
    accumulator("works-on-w", """
        def accumulated_grad(loss_fn, w, times):
            w.grad = None
            for _ in range(times):
                loss_fn(w).backward()
            return w.grad.clone()
    """, "accgrad-touched-w"),
    accumulator("multiplied", """
        def accumulated_grad(loss_fn, w, times):
            leaf = w.detach().clone().requires_grad_(True)
            loss_fn(leaf).backward()
            return times * leaf.grad
    """, "accgrad-multiplied", refuted_with="backward"),
    *mutants("ex3-tests", ACCUMULATED_GRAD, (
        # Public bug reports: "element 0 of tensors does not require grad and does not have a grad_fn"
        ("copy-without-requires-grad", "accgrad-no-requires-grad", ".requires_grad_(True)", ""),
        ("clone-without-detach", "accgrad-not-a-leaf", "w.detach().clone()", "w.clone()"),
        ("zeroed-each-time", "accgrad-zeroed",
         "        loss_fn(leaf).backward()", "        leaf.grad = None\n        loss_fn(leaf).backward()"),
        ("off-by-one", "accgrad-wrong-count", "range(times)", "range(1, times)"),
        ("returns-copy", "accgrad-returned-weights", "return leaf.grad", "return leaf"),
        ("float32-copy", "accgrad-dtype", "w.detach().clone()", "w.detach().float().clone()"),
    )),
)

ZOO = Zoo("05_backward", CORRECT + BUGGY)
