"""Lesson 06's bug zoo: student cells for ManualSGD and train_step, correct ones in several styles and
typical mistakes.

Each entry is the source of one exercise cell: tests/test_zoos.py runs it through the lesson's real
grade cells in a kernel, tests/test_rechecks.py through the grader's re-check, and
tests/test_lesson06_checks.py through the check functions on both stored seeds. A buggy entry names
the diagnosis code its failure message must carry (course_utils.checks.lesson06).
"""

from __future__ import annotations

from functools import partial

from tests.zoos import Zoo, mutants, mutate, variant

manual_sgd = partial(variant, "ex1-tests")
train_step = partial(variant, "ex2-tests")

MANUAL_SGD = """
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
"""

TRAIN_STEP = """
def train_step(model, xb, yb, criterion, optimizer):
    optimizer.zero_grad()
    loss = criterion(model(xb), yb)
    loss.backward()
    optimizer.step()
    return loss.item()
"""

# Values are right: only the in-kernel check can tell that torch.optim, or another loss function, did the work.
LIBRARY_DID_IT = {"values_show": False}

CORRECT = (
    manual_sgd("canonical", MANUAL_SGD),
    manual_sgd("in-place-buffers-dict-and-zeros", """
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
    manual_sgd("lr-inside-buffer-and-data", """
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
    train_step("canonical", TRAIN_STEP),
    train_step("zero-grad-at-the-end-of-a-fresh-start", """
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
    train_step("zero-grad-right-after-step", """
        def train_step(model, xb, yb, criterion, optimizer):
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            return loss.item()
    """),
    # Public bug reports (rll/deepul#12, milesial/Pytorch-UNet#378): zero_grad after the forward pass is right too
    train_step("zero-grad-after-the-forward-pass", """
        def train_step(model, xb, yb, criterion, optimizer):
            loss = criterion(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss.item()
    """),
    train_step("model-zero-grad-and-detach", """
        def train_step(model, xb, yb, criterion, optimizer):
            model.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            return loss.detach().item()
    """),
)

BUGGY = (
    # --- ManualSGD: (name, code, what the canonical cell says, what the mistake says)
    *mutants("ex1-tests", MANUAL_SGD, (
        ("rebinds-parameter", "sgd-parameters-unchanged", "p -= self.lr * d_p", "p = p - self.lr * d_p"),
        ("no-torch-no-grad", "sgd-no-torch-no-grad", "        with torch.no_grad():\n", "        if True:\n"),
        ("wraps-torch-sgd", "sgd-wraps-torch-optim", "        self.buffers = [None] * len(self.params)\n",
         "        self.buffers = [None] * len(self.params)\n"
         "        self.inner = torch.optim.SGD(self.params, lr=lr, momentum=momentum, weight_decay=weight_decay)\n",
         LIBRARY_DID_IT),
    )),
    manual_sgd("subclasses-torch-sgd", """
        class ManualSGD(torch.optim.SGD):
            def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
                super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    """, "sgd-wraps-torch-optim", **LIBRARY_DID_IT),
    *mutants("ex1-tests", MANUAL_SGD, (
        ("wraps-inside-step", "sgd-wraps-torch-optim", "    def step(self):\n",
         "    def step(self):\n"
         "        if not hasattr(self, \"inner\"):\n"
         "            self.inner = torch.optim.SGD(self.params, lr=self.lr, momentum=self.momentum,\n"
         "                                         weight_decay=self.weight_decay)\n"
         "        self.inner.step()\n"
         "        return\n", LIBRARY_DID_IT),
        ("none-grad-not-skipped", "sgd-none-grad",
         "                if p.grad is None:\n                    continue\n", ""),
        ("ascent", "sgd-ascent", "p -= self.lr * d_p", "p += self.lr * d_p"),
        ("momentum-buffer-unused", "sgd-momentum-ignored", "                    d_p = self.buffers[index]\n", ""),
        ("buffer-aliases-grad", "sgd-buffer-aliases-grad",
         "self.buffers[index] = d_p.clone()\n"
         "                    else:\n"
         "                        self.buffers[index] = self.momentum * self.buffers[index] + d_p",
         "self.buffers[index] = p.grad if self.weight_decay == 0 else d_p\n"
         "                    else:\n"
         "                        self.buffers[index].mul_(self.momentum).add_(d_p)"),
        ("dampened", "sgd-momentum-dampened", "self.momentum * self.buffers[index] + d_p",
         "self.momentum * self.buffers[index] + (1 - self.momentum) * d_p"),
        ("nesterov", "sgd-momentum-nesterov", "                    d_p = self.buffers[index]\n",
         "                    d_p = d_p + self.momentum * self.buffers[index]\n"),
        ("weight-decay-ignored", "sgd-weight-decay-ignored", "d_p = p.grad + self.weight_decay * p", "d_p = p.grad"),
        ("weight-decay-decoupled", "sgd-weight-decay-decoupled", "d_p = p.grad + self.weight_decay * p\n",
         "d_p = p.grad\n                p -= self.lr * self.weight_decay * p\n"),
        ("weight-decay-sign", "sgd-weight-decay-sign", "d_p = p.grad + self.weight_decay * p",
         "d_p = p.grad - self.weight_decay * p"),
        ("weight-decay-into-grad", "sgd-weight-decay-changed-grad", "d_p = p.grad + self.weight_decay * p",
         "d_p = p.grad.add_(self.weight_decay * p)"),
        ("zero-grad-does-nothing", "sgd-zero-grad", "            p.grad = None", "            grad = None"),
        # Public bug reports (jcjohnson/pytorch-examples#4, #7): .grad is None before the first backward
        ("zero-grad-without-none-check", "sgd-zero-grad-none",
         "            p.grad = None", "            p.grad.zero_()"),
        ("half-step", "sgd-trajectory", "p -= self.lr * d_p", "p -= 0.5 * self.lr * d_p"),
    )),
    manual_sgd("keeps-generator", mutate(mutate(mutate(
        MANUAL_SGD, "self.params = list(params)", "self.params = params"),
        "self.buffers = [None] * len(self.params)", "self.buffers = {}"),
        "if self.buffers[index] is None:", "if index not in self.buffers:"), "sgd-params-generator"),
    manual_sgd("one-buffer-for-all", mutate(mutate(
        MANUAL_SGD, "self.buffers[index]", "self.buffer", count=-1),
        "self.buffers = [None] * len(self.params)", "self.buffer = None"), "sgd-shared-buffer"),
    manual_sgd("buffers-on-the-class", mutate(mutate(mutate(
        MANUAL_SGD, "self.buffers = [None] * len(self.params)", ""),
        "class ManualSGD:", "class ManualSGD:\n    buffers = {}"),
        "if self.buffers[index] is None:", "if index not in self.buffers:"), "sgd-buffer-shared-between-optimizers"),
    manual_sgd("stale-buffer", """
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
    # --- train_step
    *mutants("ex2-tests", TRAIN_STEP, (
        ("no-zero-grad", "trainstep-no-zero-grad", "    optimizer.zero_grad()\n", ""),
        ("step-before-backward", "trainstep-step-before-backward", "    loss.backward()\n    optimizer.step()\n",
         "    optimizer.step()\n    loss.backward()\n"),
        ("no-backward", "trainstep-no-backward", "    loss.backward()\n", ""),
        ("two-steps", "trainstep-steps-per-call", "    optimizer.step()\n",
         "    optimizer.step()\n    optimizer.step()\n"),
        ("own-criterion", "trainstep-criterion-ignored", "criterion(model(xb), yb)",
         "nn.functional.cross_entropy(model(xb), yb)", LIBRARY_DID_IT),
        ("returns-tensor", "trainstep-not-a-float", "return loss.item()", "return loss"),
        ("loss-after-step", "trainstep-loss-after-step", "return loss.item()", "return criterion(model(xb), yb).item()",
         {"refuted_with": "before the step"}),
        # Copied from a gradient-accumulation loop: the loss divided before backward, in a loop that steps every batch
        ("loss-divided-before-backward", "trainstep-backward-scaled", "    loss.backward()\n",
         "    (loss / 4).backward()\n"),
        # Nothing specific to name: the step is right, then the parameters are changed again (the last resort)
        ("clamps-parameters-after-step", "trainstep-trajectory", "    optimizer.step()\n",
         "    optimizer.step()\n    with torch.no_grad():\n        for p in model.parameters():\n"
         "            p.clamp_(-0.2, 0.2)\n"),
        ("sum-reduction-returned", "trainstep-wrong-loss", "return loss.item()", "return loss.item() * len(yb)"),
    )),
    train_step("zero-grad-between-backward-and-step", """
        def train_step(model, xb, yb, criterion, optimizer):
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.zero_grad()
            optimizer.step()
            return loss.item()
    """, "trainstep-cleared-before-step"),
    train_step("forward-under-no-grad", """
        def train_step(model, xb, yb, criterion, optimizer):
            optimizer.zero_grad()
            with torch.no_grad():
                loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            return loss.item()
    """, "trainstep-no-grad"),
    # Public bug reports: loss.requires_grad = True "fixes" the no_grad error, and the model never learns
    train_step("loss-requires-grad-workaround", """
        def train_step(model, xb, yb, criterion, optimizer):
            optimizer.zero_grad()
            with torch.no_grad():
                loss = criterion(model(xb), yb)
            loss.requires_grad = True
            loss.backward()
            optimizer.step()
            return loss.item()
    """, "trainstep-no-grad"),
    train_step("own-optimizer", """
        def train_step(model, xb, yb, criterion, optimizer):
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            opt.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            opt.step()
            return loss.item()
    """, "trainstep-optimizer-ignored", **LIBRARY_DID_IT),
    train_step("global-model", """
        def train_step(net, x, y, loss_fn, opt):
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            return loss.item()
    """, "trainstep-model-ignored"),
    train_step("global-batch", """
        def train_step(net, x, y, loss_fn, opt):
            opt.zero_grad()
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
            return loss.item()
    """, "trainstep-batch-ignored"),
    # Issue 17: the training forward tracked gradients; only the returned loss came from a second pass.
    train_step("loss-recomputed-after-step-under-no-grad", """
        def train_step(model, xb, yb, criterion, optimizer):
            optimizer.zero_grad()
            criterion(model(xb), yb).backward()
            optimizer.step()
            with torch.no_grad():
                return criterion(model(xb), yb).item()
    """, "trainstep-loss-after-step"),
)

ZOO = Zoo("06_optimizer_step", CORRECT + BUGGY)
