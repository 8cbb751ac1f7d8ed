"""Lesson 04's bug zoo: student cells for cross_entropy and choose_loss, correct ones and typical mistakes.

Each entry is the source of one exercise cell, so the same code runs through the check functions
(tests/test_zoo_lesson04.py, in process) and through the lesson's real grade cells (in a kernel).
A buggy entry names the grade cell that must catch it and the diagnosis code its failure message
must carry (course_utils.checks.lesson04). cross_entropy has three grade cells: its values, its
numerical stability, and its weights and label smoothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from textwrap import dedent


@dataclass(frozen=True)
class Variant:
    name: str
    exercise: str  # the grade id of the test cell that must catch the bug (any cell of the function if correct)
    source: str
    bug: str | None = None  # None for a correct variant


def loss(name: str, body: str, bug: str | None = None, cell: str = "ex1-values-tests") -> Variant:
    return Variant(name, cell, dedent(body).strip(), bug)


def chooser(name: str, body: str, bug: str | None = None) -> Variant:
    return Variant(name, "ex2-tests", dedent(body).strip(), bug)


CANONICAL_CE = """
def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
    n, n_classes = logits.shape
    if weight is None:
        weight = torch.ones(n_classes, dtype=logits.dtype)
    weight = weight.to(logits.dtype)
    row_max = logits.max(dim=1, keepdim=True).values
    shifted = logits - row_max
    log_p = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
    nll = -log_p[torch.arange(n), targets]
    w_y = weight[targets]
    smooth = -(log_p * weight).sum(dim=1)
    total = (1 - label_smoothing) * (w_y * nll).sum() + label_smoothing / n_classes * smooth.sum()
    return total / w_y.sum()
"""

CANONICAL_CHOOSE = """
def choose_loss(task):
    if task == "multiclass":
        return nn.CrossEntropyLoss(), torch.int64
    if task == "regression":
        return nn.MSELoss(), torch.float32
    if task == "binary":
        return nn.BCEWithLogitsLoss(), torch.float32
    raise ValueError(f"unknown task {task!r}")
"""


def mutate(source: str, old: str, new: str) -> str:
    assert old in source, f"mutation target not found: {old!r}"
    return source.replace(old, new)


CORRECT = [
    loss("canonical", CANONICAL_CE),
    loss("logsumexp-and-gather", """
        def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weight=None, label_smoothing: float = 0.0):
            n_classes = logits.shape[1]
            log_p = logits - torch.logsumexp(logits, dim=1, keepdim=True)
            if weight is None:
                weight = torch.ones(n_classes, dtype=logits.dtype, device=logits.device)
            weight = weight.to(logits)
            nll = -log_p.gather(1, targets.long().unsqueeze(1)).squeeze(1)
            w_y = weight[targets]
            smooth = -(log_p * weight).sum(dim=1)
            per_sample = (1 - label_smoothing) * w_y * nll + label_smoothing / n_classes * smooth
            return per_sample.sum() / w_y.sum()
    """),
    loss("one-hot-soft-targets", """
        def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
            n, c = logits.shape
            m = logits.amax(dim=1, keepdim=True)
            log_p = logits - m - torch.log(torch.exp(logits - m).sum(dim=1, keepdim=True))
            one_hot = torch.zeros_like(logits)
            one_hot[torch.arange(n), targets] = 1.0
            soft = one_hot * (1 - label_smoothing) + label_smoothing / c
            w = torch.ones(c, dtype=logits.dtype) if weight is None else weight.to(logits.dtype)
            per_sample = -(soft * w * log_p).sum(dim=1)
            return per_sample.sum() / w[targets].sum()
    """),
    loss("row-by-row", """
        def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
            n_classes = logits.shape[1]
            weights = torch.ones(n_classes, dtype=logits.dtype) if weight is None else weight.to(logits.dtype)
            numerators, denominators = [], []
            for row, target in zip(logits, targets):
                top = torch.max(row)
                log_p = row - top - torch.log(torch.sum(torch.exp(row - top)))
                true_part = (1 - label_smoothing) * weights[target] * -log_p[target]
                spread_part = label_smoothing / n_classes * torch.sum(weights * -log_p)
                numerators.append(true_part + spread_part)
                denominators.append(weights[target])
            return torch.stack(numerators).sum() / torch.stack(denominators).sum()
    """),
    chooser("canonical", CANONICAL_CHOOSE),
    chooser("match-statement", """
        def choose_loss(task):
            match task:
                case "multiclass":
                    loss_fn, dtype = nn.CrossEntropyLoss(reduction="mean"), torch.int64
                case "regression":
                    loss_fn, dtype = nn.MSELoss(), torch.float32
                case "binary":
                    loss_fn, dtype = nn.BCEWithLogitsLoss(), torch.float32
                case _:
                    raise ValueError(task)
            return (loss_fn, dtype)
    """),
    chooser("dictionary-of-factories", """
        def choose_loss(task: str) -> tuple[nn.Module, torch.dtype]:
            table = {
                "multiclass": (nn.CrossEntropyLoss, torch.long),
                "regression": (nn.MSELoss, torch.float),
                "binary": (nn.BCEWithLogitsLoss, torch.float32),
            }
            make, dtype = table[task]
            return make(reduction="mean"), dtype
    """),
]

BUGGY = [
    # Exercise 1 · values
    loss("calls-F-cross-entropy", """
        def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
            return F.cross_entropy(logits, targets, weight=weight, label_smoothing=label_smoothing)
    """, "ce-library-call"),
    loss("alias-of-the-library", """
        from torch.nn.functional import cross_entropy as library_cross_entropy

        def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
            return library_cross_entropy(logits, targets, weight=weight, label_smoothing=label_smoothing)
    """, "ce-library-call"),
    loss("log-softmax-and-nll", """
        def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
            return F.nll_loss(torch.log_softmax(logits, dim=1), targets, weight=weight)
    """, "ce-library-call"),
    loss("module-inside", """
        def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
            return nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)(logits, targets)
    """, "ce-library-call"),
    loss("hard-coded", """
        def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
            return torch.tensor(1.2, dtype=logits.dtype, requires_grad=True)
    """, "ce-hard-coded"),
    loss("sum-reduction", mutate(CANONICAL_CE, "return total / w_y.sum()", "return total"), "ce-sum-reduction"),
    loss("no-reduction", """
        def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
            shifted = logits - logits.max(dim=1, keepdim=True).values
            log_p = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
            return -log_p[torch.arange(len(targets)), targets]
    """, "ce-no-reduction"),
    loss("double-softmax", mutate(CANONICAL_CE, "    row_max = logits.max(dim=1, keepdim=True).values",
                                  "    logits = logits.softmax(dim=1)\n    row_max = logits.max(dim=1, keepdim=True).values"),
         "ce-double-softmax"),
    loss("softmax-over-dim0", mutate(mutate(CANONICAL_CE, "logits.max(dim=1, keepdim=True)", "logits.max(dim=0, keepdim=True)"),
                                     "shifted.exp().sum(dim=1, keepdim=True)", "shifted.exp().sum(dim=0, keepdim=True)"),
         "ce-dim"),
    loss("max-over-dim0", mutate(CANONICAL_CE, "logits.max(dim=1, keepdim=True)", "logits.max(dim=0, keepdim=True)"),
         "ce-dim"),
    loss("sign", mutate(CANONICAL_CE, "nll = -log_p[", "nll = log_p["), "ce-sign"),
    loss("index-all-rows", """
        def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
            shifted = logits - logits.max(dim=1, keepdim=True).values
            log_p = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
            return -log_p[:, targets].mean()
    """, "ce-index-all-rows"),
    loss("mean-over-one-hot-table", """
        def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
            shifted = logits - logits.max(dim=1, keepdim=True).values
            log_p = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
            one_hot = torch.nn.functional.one_hot(targets, logits.shape[1]).to(logits.dtype)
            return -(one_hot * log_p).mean()
    """, "ce-mean-over-classes"),
    loss("probability-without-log", """
        def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
            shifted = logits - logits.max(dim=1, keepdim=True).values
            p = shifted.exp() / shifted.exp().sum(dim=1, keepdim=True)
            return -p[torch.arange(len(targets)), targets].mean()
    """, "ce-missing-log"),
    loss("returns-a-float", mutate(CANONICAL_CE, "return total / w_y.sum()", "return (total / w_y.sum()).item()"),
         "ce-not-tensor"),
    loss("float32-always", mutate(CANONICAL_CE, "return total / w_y.sum()", "return (total / w_y.sum()).float()"),
         "ce-dtype"),
    loss("detached", mutate(CANONICAL_CE, "    row_max = logits.max", "    logits = logits.detach()\n    row_max = logits.max"),
         "ce-detached"),
    loss("epsilon-inside-the-log", mutate(CANONICAL_CE, "log_p = shifted - shifted.exp().sum(dim=1, keepdim=True).log()",
                                          "log_p = (shifted.exp() / shifted.exp().sum(dim=1, keepdim=True) + 1e-7).log()"),
         "ce-epsilon"),
    # Exercise 1 · numerical stability
    loss("no-max-shift", mutate(CANONICAL_CE, "    row_max = logits.max(dim=1, keepdim=True).values\n    shifted = logits - row_max\n",
                                "    shifted = logits\n"),
         "ce-no-max-shift", "ex1-stability-tests"),
    loss("naive-formula", """
        def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
            n, c = logits.shape
            w = torch.ones(c, dtype=logits.dtype) if weight is None else weight.to(logits.dtype)
            log_p = logits - logits.exp().sum(dim=1, keepdim=True).log()
            nll = -log_p[torch.arange(n), targets]
            smooth = -(log_p * w).sum(dim=1)
            return ((1 - label_smoothing) * (w[targets] * nll).sum() + label_smoothing / c * smooth.sum()) / w[targets].sum()
    """, "ce-no-max-shift", "ex1-stability-tests"),
    loss("log-of-softmax", mutate(CANONICAL_CE, "log_p = shifted - shifted.exp().sum(dim=1, keepdim=True).log()",
                                  "log_p = (shifted.exp() / shifted.exp().sum(dim=1, keepdim=True)).log()"),
         "ce-log-of-softmax", "ex1-stability-tests"),
    loss("torch-softmax-then-log", mutate(CANONICAL_CE, "log_p = shifted - shifted.exp().sum(dim=1, keepdim=True).log()",
                                          "log_p = torch.log(torch.softmax(logits, dim=1))"),
         "ce-log-of-softmax", "ex1-stability-tests"),
    loss("global-max", mutate(CANONICAL_CE, "row_max = logits.max(dim=1, keepdim=True).values", "row_max = logits.max()"),
         "ce-global-max", "ex1-stability-tests"),
    loss("clamped-probabilities", mutate(CANONICAL_CE, "log_p = shifted - shifted.exp().sum(dim=1, keepdim=True).log()",
                                         "log_p = (shifted.exp() / shifted.exp().sum(dim=1, keepdim=True)).clamp(min=1e-12).log()"),
         "ce-clamped", "ex1-stability-tests"),
    loss("epsilon-in-log", mutate(CANONICAL_CE, "log_p = shifted - shifted.exp().sum(dim=1, keepdim=True).log()",
                                  "log_p = (shifted.exp() / shifted.exp().sum(dim=1, keepdim=True) + 1e-9).log()"),
         "ce-clamped", "ex1-stability-tests"),
    loss("clamped-logits", mutate(CANONICAL_CE, "    row_max = logits.max(dim=1, keepdim=True).values\n    shifted = logits - row_max\n",
                                  "    shifted = logits.clamp(max=80.0)\n"),
         "ce-clamped-logits", "ex1-stability-tests"),
    loss("shift-by-the-mean", mutate(CANONICAL_CE, "row_max = logits.max(dim=1, keepdim=True).values",
                                     "row_max = logits.mean(dim=1, keepdim=True)"),
         "ce-no-max-shift", "ex1-stability-tests"),
    # Exercise 1 · weights and label smoothing
    loss("weight-ignored", mutate(CANONICAL_CE, "    weight = weight.to(logits.dtype)\n",
                                  "    weight = torch.ones(n_classes, dtype=logits.dtype)\n"),
         "ce-weight-ignored", "ex1-weights-smoothing-tests"),
    loss("weighted-mean-over-n", mutate(CANONICAL_CE, "return total / w_y.sum()", "return total / n"),
         "ce-weight-mean", "ex1-weights-smoothing-tests"),
    loss("smoothing-ignored", mutate(CANONICAL_CE, "total = (1 - label_smoothing) * (w_y * nll).sum() + label_smoothing / n_classes * smooth.sum()",
                                     "total = (w_y * nll).sum()"),
         "ce-smoothing-ignored", "ex1-weights-smoothing-tests"),
    loss("smoothing-over-3", mutate(CANONICAL_CE, "label_smoothing / n_classes", "label_smoothing / 3"),
         "ce-smoothing-classes-hard-coded", "ex1-weights-smoothing-tests"),
    loss("smoothing-not-divided", mutate(CANONICAL_CE, "label_smoothing / n_classes * smooth", "label_smoothing * smooth"),
         "ce-smoothing-not-divided", "ex1-weights-smoothing-tests"),
    loss("smoothing-unweighted", mutate(CANONICAL_CE, "smooth = -(log_p * weight).sum(dim=1)", "smooth = -log_p.sum(dim=1)"),
         "ce-smoothing-unweighted", "ex1-weights-smoothing-tests"),
    loss("smoothing-over-n", mutate(mutate(CANONICAL_CE, "    total = (1 - label_smoothing) * (w_y * nll).sum() + label_smoothing / n_classes * smooth.sum()\n",
                                           ""),
                                    "return total / w_y.sum()",
                                    "return (1 - label_smoothing) * (w_y * nll).sum() / w_y.sum() + label_smoothing / n_classes * smooth.mean()"),
         "ce-smoothing-denominator", "ex1-weights-smoothing-tests"),
    # Exercise 2 · choose_loss
    chooser("float-class-targets", mutate(CANONICAL_CHOOSE, "nn.CrossEntropyLoss(), torch.int64",
                                          "nn.CrossEntropyLoss(), torch.float32"), "loss-float-targets"),
    chooser("bce-on-logits", mutate(CANONICAL_CHOOSE, "nn.BCEWithLogitsLoss()", "nn.BCELoss()"), "loss-bce-on-logits"),
    chooser("nll-on-logits", mutate(CANONICAL_CHOOSE, "nn.CrossEntropyLoss()", "nn.NLLLoss()"), "loss-nll-on-logits"),
    chooser("sum-reduction", mutate(CANONICAL_CHOOSE, "nn.CrossEntropyLoss()", 'nn.CrossEntropyLoss(reduction="sum")'),
            "loss-reduction-sum"),
    chooser("integer-binary-targets", mutate(CANONICAL_CHOOSE, "nn.BCEWithLogitsLoss(), torch.float32",
                                             "nn.BCEWithLogitsLoss(), torch.int64"), "loss-integer-targets"),
    chooser("l1-for-regression", mutate(CANONICAL_CHOOSE, "nn.MSELoss()", "nn.L1Loss()"), "loss-wrong-for-task"),
    # One logit with nn.CrossEntropyLoss: the loss is always 0 (darioizzo/dcgp#86; APPFL/APPFL#60)
    chooser("cross-entropy-for-binary", mutate(CANONICAL_CHOOSE, "nn.BCEWithLogitsLoss(), torch.float32",
                                               "nn.CrossEntropyLoss(), torch.float32"), "loss-ce-on-one-logit"),
    chooser("mse-for-binary", mutate(CANONICAL_CHOOSE, "nn.BCEWithLogitsLoss()", "nn.MSELoss()"), "loss-wrong-for-task"),
    chooser("class-not-instance", mutate(CANONICAL_CHOOSE, "nn.CrossEntropyLoss()", "nn.CrossEntropyLoss"),
            "loss-not-module"),
    chooser("module-only", mutate(CANONICAL_CHOOSE, "nn.CrossEntropyLoss(), torch.int64", "nn.CrossEntropyLoss()"),
            "loss-not-pair"),
    chooser("shared-instances", """
        LOSSES = {"multiclass": (nn.CrossEntropyLoss(), torch.int64), "regression": (nn.MSELoss(), torch.float32),
                  "binary": (nn.BCEWithLogitsLoss(), torch.float32)}

        def choose_loss(task):
            return LOSSES[task]
    """, "loss-shared-instance"),
]
