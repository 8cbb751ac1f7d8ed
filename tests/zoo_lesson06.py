"""Lesson 06's bug zoo: correct answers in several styles, and typical mistakes with their codes.

Each entry is the source of one notebook exercise cell (it defines ``ManualSGD`` or ``train_step``),
so the same code runs through the check functions (tests/test_checks_lesson06.py) and through the
lesson's real grade cells (tests/test_zoo_lesson06.py). A buggy entry names the code its failure
message must carry (course_utils.checks.lesson06.DIAGNOSES).
"""

from __future__ import annotations

from dataclasses import dataclass
from textwrap import dedent

GRADE_CELL = {"ex1": "ex1-tests", "ex2": "ex2-tests"}
ANSWER_CELL = {"ex1": "ex1-manual-sgd", "ex2": "ex2-train-step"}


@dataclass(frozen=True)
class Variant:
    name: str
    exercise: str  # "ex1" or "ex2"
    source: str
    bug: str | None = None  # None for a correct variant


def mutate(source: str, old: str, new: str) -> str:
    assert old in source, f"mutation target not found: {old!r}"
    return source.replace(old, new)


MANUAL_SGD = dedent("""
    class ManualSGD:
        def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
            self.params = list(params)
            self.lr = lr
            self.momentum = momentum
            self.weight_decay = weight_decay
            self.buffers = [None] * len(self.params)

        def step(self):
            with torch.no_grad():
                for index, p in enumerate(self.params):
                    if p.grad is None:
                        continue
                    d_p = p.grad + self.weight_decay * p
                    if self.momentum != 0:
                        if self.buffers[index] is None:
                            self.buffers[index] = d_p.clone()
                        else:
                            self.buffers[index] = self.momentum * self.buffers[index] + d_p
                        d_p = self.buffers[index]
                    p -= self.lr * d_p

        def zero_grad(self):
            for p in self.params:
                p.grad = None
""").strip()

TRAIN_STEP = dedent("""
    def train_step(model, xb, yb, criterion, optimizer):
        optimizer.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()
        return loss.item()
""").strip()


def ex1(name: str, source: str, bug: str | None = None) -> Variant:
    return Variant(name, "ex1", dedent(source).strip(), bug)


def ex2(name: str, source: str, bug: str | None = None) -> Variant:
    return Variant(name, "ex2", dedent(source).strip(), bug)


def sgd_bug(name: str, old: str, new: str, bug: str) -> Variant:
    return ex1(name, mutate(MANUAL_SGD, old, new), bug)


def step_bug(name: str, old: str, new: str, bug: str) -> Variant:
    return ex2(name, mutate(TRAIN_STEP, old, new), bug)


CORRECT = [
    ex1("canonical", MANUAL_SGD),
    ex1("in-place-buffers-dict-and-zeros", """
        class ManualSGD:
            def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
                self.params = [p for p in params]
                self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
                self.state = {}

            @torch.no_grad()
            def step(self):
                for p in self.params:
                    if p.grad is None:
                        continue
                    grad = p.grad.add(p, alpha=self.weight_decay) if self.weight_decay else p.grad
                    if self.momentum:
                        buf = self.state.setdefault(id(p), torch.zeros_like(p))
                        buf.mul_(self.momentum).add_(grad)   # from zeros: the first step gives buf = grad
                        grad = buf
                    p.sub_(self.lr * grad)

            def zero_grad(self):
                for p in self.params:
                    if p.grad is not None:
                        p.grad.zero_()
    """),
    ex1("lr-inside-buffer-and-data", """
        class ManualSGD:
            def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
                self.params = list(params)
                self.lr = lr
                self.momentum = momentum
                self.weight_decay = weight_decay
                self.velocity = [torch.zeros_like(p) for p in self.params]

            def step(self):
                with torch.no_grad():
                    for p, v in zip(self.params, self.velocity):
                        if p.grad is not None:
                            v.mul_(self.momentum).add_(p.grad + self.weight_decay * p)
                            p.data.add_(v, alpha=-self.lr)

            def zero_grad(self):
                for p in self.params:
                    p.grad = None
    """),
    ex2("canonical", TRAIN_STEP),
    ex2("zero-grad-at-the-end-of-a-fresh-start", """
        def train_step(model, xb, yb, criterion, optimizer):
            for p in model.parameters():
                p.grad = None
            output = model(xb)
            loss = criterion(output, yb)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return float(loss)
    """),
    # Lesson 07 recommends it too: the gradients are cleared as soon as the step has used them.
    ex2("zero-grad-right-after-step", """
        def train_step(model, xb, yb, criterion, optimizer):
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            return loss.item()
    """),
    # Public bug reports (rll/deepul#12, milesial/Pytorch-UNet#378): zero_grad after the forward pass is right too
    ex2("zero-grad-after-the-forward-pass", """
        def train_step(model, xb, yb, criterion, optimizer):
            loss = criterion(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss.item()
    """),
    ex2("model-zero-grad-and-detach", """
        def train_step(model, xb, yb, criterion, optimizer):
            model.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            return loss.detach().item()
    """),
]

BUGGY = [
    # --- ManualSGD
    sgd_bug("rebinds-parameter", "p -= self.lr * d_p", "p = p - self.lr * d_p", "sgd-parameters-unchanged"),
    sgd_bug("no-torch-no-grad", """        with torch.no_grad():
            for index, p in enumerate(self.params):""", """        if True:
            for index, p in enumerate(self.params):""", "sgd-no-torch-no-grad"),
    sgd_bug("wraps-torch-sgd", """        self.buffers = [None] * len(self.params)
""", """        self.buffers = [None] * len(self.params)
        self.inner = torch.optim.SGD(self.params, lr=lr, momentum=momentum, weight_decay=weight_decay)
""", "sgd-wraps-torch-optim"),
    ex1("subclasses-torch-sgd", """
        class ManualSGD(torch.optim.SGD):
            def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
                super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    """, "sgd-wraps-torch-optim"),
    ex1("wraps-inside-step", mutate(MANUAL_SGD, """    def step(self):
        with torch.no_grad():""", """    def step(self):
        if not hasattr(self, "inner"):
            self.inner = torch.optim.SGD(self.params, lr=self.lr, momentum=self.momentum,
                                         weight_decay=self.weight_decay)
        self.inner.step()
        return
        with torch.no_grad():"""), "sgd-wraps-torch-optim"),
    ex1("keeps-generator", MANUAL_SGD.replace("self.params = list(params)", "self.params = params").replace(
        "self.buffers = [None] * len(self.params)", "self.buffers = {}").replace(
        "if self.buffers[index] is None:", "if index not in self.buffers:"), "sgd-params-generator"),
    sgd_bug("none-grad-not-skipped", """                if p.grad is None:
                    continue
""", "", "sgd-none-grad"),
    sgd_bug("ascent", "p -= self.lr * d_p", "p += self.lr * d_p", "sgd-ascent"),
    sgd_bug("momentum-buffer-unused", "                    d_p = self.buffers[index]\n", "", "sgd-momentum-ignored"),
    ex1("one-buffer-for-all", MANUAL_SGD.replace("self.buffers[index]", "self.buffer").replace(
        "self.buffers = [None] * len(self.params)", "self.buffer = None"), "sgd-shared-buffer"),
    ex1("buffers-on-the-class", MANUAL_SGD.replace("self.buffers = [None] * len(self.params)", "").replace(
        "class ManualSGD:", "class ManualSGD:\n    buffers = {}").replace(
        "if self.buffers[index] is None:", "if index not in self.buffers:"), "sgd-buffer-shared-between-optimizers"),
    sgd_bug("buffer-aliases-grad", """                    if self.buffers[index] is None:
                        self.buffers[index] = d_p.clone()
                    else:
                        self.buffers[index] = self.momentum * self.buffers[index] + d_p""",
            """                    if self.buffers[index] is None:
                        self.buffers[index] = p.grad if self.weight_decay == 0 else d_p
                    else:
                        self.buffers[index].mul_(self.momentum).add_(d_p)""", "sgd-buffer-aliases-grad"),
    sgd_bug("dampened", "self.momentum * self.buffers[index] + d_p",
            "self.momentum * self.buffers[index] + (1 - self.momentum) * d_p", "sgd-momentum-dampened"),
    sgd_bug("nesterov", "                    d_p = self.buffers[index]\n",
            "                    d_p = d_p + self.momentum * self.buffers[index]\n", "sgd-momentum-nesterov"),
    ex1("stale-buffer", """
        class ManualSGD:
            def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
                self.params = list(params)
                self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
                self.buffers = [torch.zeros_like(p) for p in self.params]

            def step(self):
                with torch.no_grad():
                    for i, p in enumerate(self.params):
                        if p.grad is None:
                            continue
                        d_p = p.grad + self.weight_decay * p
                        if self.momentum == 0:
                            p -= self.lr * d_p
                            continue
                        p -= self.lr * self.buffers[i]
                        self.buffers[i] = self.momentum * self.buffers[i] + d_p

            def zero_grad(self):
                for p in self.params:
                    p.grad = None
    """, "sgd-momentum-stale"),
    sgd_bug("weight-decay-ignored", "d_p = p.grad + self.weight_decay * p", "d_p = p.grad", "sgd-weight-decay-ignored"),
    sgd_bug("weight-decay-decoupled", "d_p = p.grad + self.weight_decay * p\n", "d_p = p.grad\n                "
            "p -= self.lr * self.weight_decay * p\n", "sgd-weight-decay-decoupled"),
    sgd_bug("weight-decay-sign", "d_p = p.grad + self.weight_decay * p", "d_p = p.grad - self.weight_decay * p",
            "sgd-weight-decay-sign"),
    sgd_bug("weight-decay-into-grad", "d_p = p.grad + self.weight_decay * p",
            "d_p = p.grad.add_(self.weight_decay * p)", "sgd-weight-decay-changed-grad"),
    sgd_bug("zero-grad-does-nothing", """        for p in self.params:
            p.grad = None""", """        for p in self.params:
            grad = None""", "sgd-zero-grad"),
    # Public bug reports (jcjohnson/pytorch-examples#4, #7): .grad is None before the first backward
    sgd_bug("zero-grad-without-none-check", "            p.grad = None", "            p.grad.zero_()",
            "sgd-zero-grad-none"),
    sgd_bug("half-step", "p -= self.lr * d_p", "p -= 0.5 * self.lr * d_p", "sgd-trajectory"),
    # --- train_step
    step_bug("no-zero-grad", "    optimizer.zero_grad()\n", "", "trainstep-no-zero-grad"),
    step_bug("step-before-backward", "    loss.backward()\n    optimizer.step()\n",
             "    optimizer.step()\n    loss.backward()\n", "trainstep-step-before-backward"),
    ex2("zero-grad-between-backward-and-step", """
        def train_step(model, xb, yb, criterion, optimizer):
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.zero_grad()
            optimizer.step()
            return loss.item()
    """, "trainstep-cleared-before-step"),
    step_bug("no-backward", "    loss.backward()\n", "", "trainstep-no-backward"),
    ex2("forward-under-no-grad", """
        def train_step(model, xb, yb, criterion, optimizer):
            optimizer.zero_grad()
            with torch.no_grad():
                loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            return loss.item()
    """, "trainstep-no-grad"),
    # Public bug reports: loss.requires_grad = True "fixes" the no_grad error, and the model never learns
    ex2("loss-requires-grad-workaround", """
        def train_step(model, xb, yb, criterion, optimizer):
            optimizer.zero_grad()
            with torch.no_grad():
                loss = criterion(model(xb), yb)
            loss.requires_grad = True
            loss.backward()
            optimizer.step()
            return loss.item()
    """, "trainstep-no-grad"),
    ex2("own-optimizer", """
        def train_step(model, xb, yb, criterion, optimizer):
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            opt.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            opt.step()
            return loss.item()
    """, "trainstep-optimizer-ignored"),
    step_bug("two-steps", "    optimizer.step()\n", "    optimizer.step()\n    optimizer.step()\n",
             "trainstep-steps-per-call"),
    ex2("global-model", """
        def train_step(net, x, y, loss_fn, opt):
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            return loss.item()
    """, "trainstep-model-ignored"),
    step_bug("own-criterion", "criterion(model(xb), yb)", "nn.functional.cross_entropy(model(xb), yb)",
             "trainstep-criterion-ignored"),
    ex2("global-batch", """
        def train_step(net, x, y, loss_fn, opt):
            opt.zero_grad()
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
            return loss.item()
    """, "trainstep-batch-ignored"),
    step_bug("returns-tensor", "return loss.item()", "return loss", "trainstep-not-a-float"),
    step_bug("loss-after-step", "return loss.item()", "return criterion(model(xb), yb).item()",
             "trainstep-loss-after-step"),
    # Issue 17: the training forward tracked gradients; only the returned loss came from a second pass.
    ex2("loss-recomputed-after-step-under-no-grad", """
        def train_step(model, xb, yb, criterion, optimizer):
            optimizer.zero_grad()
            criterion(model(xb), yb).backward()
            optimizer.step()
            with torch.no_grad():
                return criterion(model(xb), yb).item()
    """, "trainstep-loss-after-step"),
    # Copied from a gradient-accumulation loop: the loss divided before backward, in a loop that steps every batch
    step_bug("loss-divided-before-backward", "    loss.backward()\n", "    (loss / 4).backward()\n",
             "trainstep-backward-scaled"),
    # Nothing specific to name: the step is right, then the parameters are changed again (the last resort)
    step_bug("clamps-parameters-after-step", "    optimizer.step()\n", "    optimizer.step()\n"
             "    with torch.no_grad():\n        for p in model.parameters():\n            p.clamp_(-0.2, 0.2)\n",
             "trainstep-trajectory"),
    step_bug("sum-reduction-returned", "return loss.item()", "return loss.item() * len(yb)", "trainstep-wrong-loss"),
]
