"""Lesson 04's bug zoo: student cells for cross_entropy and choose_loss, correct ones and typical mistakes.

Each entry is the source of one exercise cell: tests/test_zoos.py runs it through the lesson's real
grade cells in a kernel, and tests/test_rechecks.py through the grader's re-check.
A buggy entry names the grade cell that must catch it and the diagnosis code its failure message
must carry (course_utils.checks.lesson04). cross_entropy has three grade cells: its values, its
numerical stability, and its weights and label smoothing; each correct cross_entropy is graded by all three.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from tests.zoos import Zoo, mutants, mutate, variant

EX1_CELLS = ("ex1-values-tests", "ex1-stability-tests", "ex1-weights-smoothing-tests")
values = partial(variant, "ex1-values-tests")
stable = partial(variant, "ex1-stability-tests")
weighted = partial(variant, "ex1-weights-smoothing-tests")
chooser = partial(variant, "ex2-tests")


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


# Correct cross_entropy cells in several styles, by name: each is graded by all three of its grade cells.
CORRECT_CE = {
    "canonical": CANONICAL_CE,
    "logsumexp-and-gather": """
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
    """,
    "one-hot-soft-targets": """
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
    """,
    "row-by-row": """
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
    """,
}

CORRECT = [variant(cell, name, source) for name, source in CORRECT_CE.items() for cell in EX1_CELLS] + [
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

# The lines of CANONICAL_CE that most mistakes change.
ROW_MAX = "row_max = logits.max(dim=1, keepdim=True).values"
SHIFT = f"    {ROW_MAX}\n    shifted = logits - row_max\n"
LOG_P = "log_p = shifted - shifted.exp().sum(dim=1, keepdim=True).log()"
TOTAL = "total = (1 - label_smoothing) * (w_y * nll).sum() + label_smoothing / n_classes * smooth.sum()"
RETURN = "return total / w_y.sum()"

BUGGY = [
    # Exercise 1 · values
    values("calls-F-cross-entropy", """
        def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
            return F.cross_entropy(logits, targets, weight=weight, label_smoothing=label_smoothing)
    """, "ce-library-call"),
    values("alias-of-the-library", """
        from torch.nn.functional import cross_entropy as library_cross_entropy

        def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
            return library_cross_entropy(logits, targets, weight=weight, label_smoothing=label_smoothing)
    """, "ce-library-call"),
    values("log-softmax-and-nll", """
        def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
            return F.nll_loss(torch.log_softmax(logits, dim=1), targets, weight=weight)
    """, "ce-library-call"),
    values("module-inside", """
        def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
            return nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)(logits, targets)
    """, "ce-library-call"),
    values("hard-coded", """
        def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
            return torch.tensor(1.2, dtype=logits.dtype, requires_grad=True)
    """, "ce-hard-coded"),
    values("no-reduction", """
        def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
            shifted = logits - logits.max(dim=1, keepdim=True).values
            log_p = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
            return -log_p[torch.arange(len(targets)), targets]
    """, "ce-no-reduction"),
    values("softmax-over-dim0", mutate(mutate(CANONICAL_CE, "logits.max(dim=1, keepdim=True)",
                                              "logits.max(dim=0, keepdim=True)"),
                                       "shifted.exp().sum(dim=1, keepdim=True)",
                                       "shifted.exp().sum(dim=0, keepdim=True)"),
           "ce-dim"),
    values("index-all-rows", """
        def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
            shifted = logits - logits.max(dim=1, keepdim=True).values
            log_p = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
            return -log_p[:, targets].mean()
    """, "ce-index-all-rows"),
    values("mean-over-one-hot-table", """
        def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
            shifted = logits - logits.max(dim=1, keepdim=True).values
            log_p = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
            one_hot = torch.nn.functional.one_hot(targets, logits.shape[1]).to(logits.dtype)
            return -(one_hot * log_p).mean()
    """, "ce-mean-over-classes"),
    values("probability-without-log", """
        def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
            shifted = logits - logits.max(dim=1, keepdim=True).values
            p = shifted.exp() / shifted.exp().sum(dim=1, keepdim=True)
            return -p[torch.arange(len(targets)), targets].mean()
    """, "ce-missing-log"),
    *mutants("ex1-values-tests", CANONICAL_CE, (
        ("sum-reduction", "ce-sum-reduction", RETURN, "return total"),
        ("double-softmax", "ce-double-softmax", f"    {ROW_MAX}", f"    logits = logits.softmax(dim=1)\n    {ROW_MAX}"),
        ("max-over-dim0", "ce-dim", "logits.max(dim=1, keepdim=True)", "logits.max(dim=0, keepdim=True)"),
        ("sign", "ce-sign", "nll = -log_p[", "nll = log_p["),
        ("returns-a-float", "ce-not-tensor", RETURN, "return (total / w_y.sum()).item()"),
        ("float32-always", "ce-dtype", RETURN, "return (total / w_y.sum()).float()"),
        ("detached", "ce-detached", f"    {ROW_MAX}", f"    logits = logits.detach()\n    {ROW_MAX}"),
        ("epsilon-inside-the-log", "ce-epsilon", LOG_P,
         "log_p = (shifted.exp() / shifted.exp().sum(dim=1, keepdim=True) + 1e-7).log()"),
    )),
    # Exercise 1 · numerical stability
    stable("naive-formula", """
        def cross_entropy(logits, targets, weight=None, label_smoothing=0.0):
            n, c = logits.shape
            w = torch.ones(c, dtype=logits.dtype) if weight is None else weight.to(logits.dtype)
            log_p = logits - logits.exp().sum(dim=1, keepdim=True).log()
            nll = -log_p[torch.arange(n), targets]
            smooth = -(log_p * w).sum(dim=1)
            return ((1 - label_smoothing) * (w[targets] * nll).sum() + label_smoothing / c * smooth.sum()) / w[targets].sum()
    """, "ce-no-max-shift"),
    *mutants("ex1-stability-tests", CANONICAL_CE, (
        ("no-max-shift", "ce-no-max-shift", SHIFT, "    shifted = logits\n"),
        ("log-of-softmax", "ce-log-of-softmax", LOG_P,
         "log_p = (shifted.exp() / shifted.exp().sum(dim=1, keepdim=True)).log()"),
        ("torch-softmax-then-log", "ce-log-of-softmax", LOG_P, "log_p = torch.log(torch.softmax(logits, dim=1))"),
        ("global-max", "ce-global-max", ROW_MAX, "row_max = logits.max()"),
        ("clamped-probabilities", "ce-clamped", LOG_P,
         "log_p = (shifted.exp() / shifted.exp().sum(dim=1, keepdim=True)).clamp(min=1e-12).log()"),
        ("epsilon-in-log", "ce-clamped", LOG_P,
         "log_p = (shifted.exp() / shifted.exp().sum(dim=1, keepdim=True) + 1e-9).log()"),
        ("clamped-logits", "ce-clamped-logits", SHIFT, "    shifted = logits.clamp(max=80.0)\n"),
        ("shift-by-the-mean", "ce-no-max-shift", ROW_MAX, "row_max = logits.mean(dim=1, keepdim=True)"),
    )),
    # Exercise 1 · weights and label smoothing
    *mutants("ex1-weights-smoothing-tests", CANONICAL_CE, (
        ("weight-ignored", "ce-weight-ignored", "    weight = weight.to(logits.dtype)\n",
         "    weight = torch.ones(n_classes, dtype=logits.dtype)\n"),
        ("weighted-mean-over-n", "ce-weight-mean", RETURN, "return total / n"),
        ("smoothing-ignored", "ce-smoothing-ignored", TOTAL, "total = (w_y * nll).sum()"),
        ("smoothing-over-3", "ce-smoothing-classes-hard-coded", "label_smoothing / n_classes", "label_smoothing / 3"),
        ("smoothing-not-divided", "ce-smoothing-not-divided", "label_smoothing / n_classes * smooth",
         "label_smoothing * smooth"),
        ("smoothing-unweighted", "ce-smoothing-unweighted", "smooth = -(log_p * weight).sum(dim=1)",
         "smooth = -log_p.sum(dim=1)"),
    )),
    weighted("smoothing-over-n", mutate(mutate(CANONICAL_CE, f"    {TOTAL}\n", ""), RETURN,
                                        "return (1 - label_smoothing) * (w_y * nll).sum() / w_y.sum() "
                                        "+ label_smoothing / n_classes * smooth.mean()"),
             "ce-smoothing-denominator"),
    # Exercise 2 · choose_loss
    *mutants("ex2-tests", CANONICAL_CHOOSE, (
        ("float-class-targets", "loss-float-targets", "nn.CrossEntropyLoss(), torch.int64",
         "nn.CrossEntropyLoss(), torch.float32"),
        ("bce-on-logits", "loss-bce-on-logits", "nn.BCEWithLogitsLoss()", "nn.BCELoss()"),
        ("nll-on-logits", "loss-nll-on-logits", "nn.CrossEntropyLoss()", "nn.NLLLoss()"),
        ("sum-reduction", "loss-reduction-sum", "nn.CrossEntropyLoss()", 'nn.CrossEntropyLoss(reduction="sum")'),
        ("integer-binary-targets", "loss-integer-targets", "nn.BCEWithLogitsLoss(), torch.float32",
         "nn.BCEWithLogitsLoss(), torch.int64"),
        ("l1-for-regression", "loss-wrong-for-task", "nn.MSELoss()", "nn.L1Loss()"),
        # One logit with nn.CrossEntropyLoss: the loss is always 0 (darioizzo/dcgp#86; APPFL/APPFL#60)
        ("cross-entropy-for-binary", "loss-ce-on-one-logit", "nn.BCEWithLogitsLoss(), torch.float32",
         "nn.CrossEntropyLoss(), torch.float32"),
        ("mse-for-binary", "loss-wrong-for-task", "nn.BCEWithLogitsLoss()", "nn.MSELoss()"),
        ("class-not-instance", "loss-not-module", "nn.CrossEntropyLoss()", "nn.CrossEntropyLoss"),
        ("module-only", "loss-not-pair", "nn.CrossEntropyLoss(), torch.int64", "nn.CrossEntropyLoss()"),
    )),
    chooser("shared-instances", """
        LOSSES = {"multiclass": (nn.CrossEntropyLoss(), torch.int64), "regression": (nn.MSELoss(), torch.float32),
                  "binary": (nn.BCEWithLogitsLoss(), torch.float32)}

        def choose_loss(task):
            return LOSSES[task]
    """, "loss-shared-instance"),
]

# Values are right: only the in-kernel check can tell that PyTorch's own cross-entropy did the work.
SAME_VALUES = {"calls-F-cross-entropy", "alias-of-the-library", "module-inside", "log-softmax-and-nll"}
# What the grader's re-check says for some mistakes: the words a student needs to find the fix.
REFUTED_WITH = {"shared-instances": "same loss object"}

ZOO = Zoo("04_loss", tuple(replace(entry, values_show=entry.name not in SAME_VALUES,
                                   refuted_with=REFUTED_WITH.get(entry.name, ""))
                           for entry in CORRECT + BUGGY),
          # the mistakes the old re-check test named one by one, and the library call only the kernel sees
          must_name=frozenset({
              "ce-library-call", "ce-hard-coded", "ce-sum-reduction", "ce-double-softmax", "ce-dim", "ce-sign",
              "ce-not-tensor", "ce-dtype", "ce-detached", "ce-epsilon", "ce-no-max-shift", "ce-log-of-softmax",
              "ce-global-max", "ce-clamped-logits", "ce-weight-ignored", "ce-smoothing-classes-hard-coded",
              "ce-smoothing-unweighted", "loss-float-targets", "loss-bce-on-logits", "loss-wrong-for-task",
              "loss-shared-instance"}))
