"""Training loops for lesson 07's grader: correct variants in different styles, and a zoo of bugs.

Each entry is the source of one notebook exercise cell (it defines ``train_one_epoch`` or
``evaluate``), so the same code runs both through the library and through the lesson's real grade
cells. A buggy entry names the bug code its failure message must carry (course_utils.loop_grader.BUGS).
"""

from __future__ import annotations

from dataclasses import dataclass
from textwrap import dedent


@dataclass(frozen=True)
class Variant:
    name: str
    function: str  # "train_one_epoch" or "evaluate"
    source: str
    bug: str | None = None  # None for a correct variant


def train(name: str, body: str, bug: str | None = None) -> Variant:
    return Variant(name, "train_one_epoch", dedent(body).strip(), bug)


def evaluation(name: str, body: str, bug: str | None = None) -> Variant:
    return Variant(name, "evaluate", dedent(body).strip(), bug)


CANONICAL_TRAIN = """
def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train()
    total_loss, total_samples = 0.0, 0
    for features, targets in loader:
        features, targets = features.to(device), targets.to(device)
        optimizer.zero_grad()
        loss = criterion(model(features), targets)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(targets)
        total_samples += len(targets)
    return total_loss / total_samples
"""

CANONICAL_EVALUATE = """
def evaluate(model, loader, criterion, device):
    model.eval()
    total_loss, correct, total_samples = 0.0, 0, 0
    with torch.no_grad():
        for features, targets in loader:
            features, targets = features.to(device), targets.to(device)
            logits = model(features)
            total_loss += criterion(logits, targets).item() * len(targets)
            correct += (logits.argmax(dim=1) == targets).sum().item()
            total_samples += len(targets)
    return total_loss / total_samples, correct / total_samples
"""


def mutate(source: str, old: str, new: str) -> str:
    assert old in source, f"mutation target not found: {old!r}"
    return source.replace(old, new)


CORRECT = [
    train("canonical", CANONICAL_TRAIN),
    train("zero-grad-after-step-set-to-none", """
        def train_one_epoch(model, loader, criterion, optimizer, device):
            model.train()
            running, seen = 0.0, 0
            for xb, yb in loader:
                xb = xb.to(device, non_blocking=True)
                yb = yb.to(device, non_blocking=True)
                loss = criterion(model(xb), yb)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                running += loss.item() * yb.size(0)
                seen += yb.size(0)
            return running / seen
    """),
    train("model-zero-grad-and-dataset-length", """
        def train_one_epoch(model, loader, criterion, optimizer, device):
            model.train()
            total = 0.0
            for batch in loader:
                inputs, labels = (t.to(device) for t in batch)
                model.zero_grad()
                outputs = model(inputs)
                loss = criterion(outputs, labels)
                loss.backward()
                optimizer.step()
                total += loss.item() * inputs.shape[0]
            return total / len(loader.dataset)
    """),
    train("grad-none-by-hand-on-device-sum", """
        def train_one_epoch(model, loader, criterion, optimizer, device):
            model.train()
            loss_sum = torch.zeros((), device=device)
            count = 0
            for step, (xb, yb) in enumerate(loader):
                xb, yb = xb.to(device), yb.to(device)
                for parameter in model.parameters():
                    parameter.grad = None
                loss = criterion(model(xb), yb)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach() * len(yb)
                count += len(yb)
            return (loss_sum / count).item()
    """),
    train("helper-function-style", """
        def _one_step(model, xb, yb, criterion, optimizer):
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            return float(loss) * len(yb)

        def train_one_epoch(model, loader, criterion, optimizer, device):
            model.train()
            totals = [_one_step(model, xb.to(device), yb.to(device), criterion, optimizer) for xb, yb in loader]
            return sum(totals) / len(loader.dataset)
    """),
    evaluation("canonical", CANONICAL_EVALUATE),
    evaluation("inference-mode-and-weighted-means", """
        @torch.inference_mode()
        def evaluate(model, loader, criterion, device):
            model.eval()
            losses, hits, sizes = [], [], []
            for xb, yb in loader:
                xb, yb = xb.to(device), yb.to(device)
                logits = model(xb)
                losses.append(criterion(logits, yb).item())
                hits.append((logits.argmax(1) == yb).float().mean().item())
                sizes.append(len(yb))
            n = sum(sizes)
            mean_loss = sum(l * s for l, s in zip(losses, sizes)) / n
            accuracy = sum(h * s for h, s in zip(hits, sizes)) / n
            return float(mean_loss), float(accuracy)
    """),
]

BUGGY = [
    train("no-zero-grad", mutate(CANONICAL_TRAIN, "        optimizer.zero_grad()\n", ""), "accumulated-gradients"),
    train("zero-grad-between-backward-and-step", mutate(CANONICAL_TRAIN,
          "        optimizer.zero_grad()\n        loss = criterion(model(features), targets)\n        loss.backward()\n",
          "        loss = criterion(model(features), targets)\n        loss.backward()\n        optimizer.zero_grad()\n"),
          "cleared-before-step"),
    train("step-before-backward", mutate(CANONICAL_TRAIN,
          "        loss.backward()\n        optimizer.step()\n", "        optimizer.step()\n        loss.backward()\n"),
          "step-before-backward"),
    train("no-backward", mutate(CANONICAL_TRAIN, "        loss.backward()\n", ""), "no-backward"),
    train("no-step", mutate(CANONICAL_TRAIN, "        optimizer.step()\n", ""), "optimizer-ignored"),
    train("own-optimizer", mutate(CANONICAL_TRAIN, "    model.train()\n",
          "    model.train()\n    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"), "optimizer-ignored"),
    train("two-steps-per-batch", mutate(CANONICAL_TRAIN, "        optimizer.step()\n",
          "        optimizer.step()\n        optimizer.step()\n"), "steps-per-batch"),
    train("inputs-not-moved", mutate(CANONICAL_TRAIN, "features, targets = features.to(device), targets.to(device)",
          "targets = targets.to(device)"), "inputs-not-moved"),
    train("targets-not-moved", mutate(CANONICAL_TRAIN, "features, targets = features.to(device), targets.to(device)",
          "features = features.to(device)"), "targets-not-moved"),
    train("no-train-mode", mutate(CANONICAL_TRAIN, "    model.train()\n", ""), "train-mode"),
    train("softmax-before-loss", mutate(CANONICAL_TRAIN, "criterion(model(features), targets)",
          "criterion(torch.softmax(model(features), dim=1), targets)"), "softmax-before-loss"),
    train("skips-the-last-batch", mutate(CANONICAL_TRAIN, "        features, targets = features.to(device), targets.to(device)\n",
          "        if len(targets) < 100:\n            break\n        features, targets = features.to(device), targets.to(device)\n"),
          "skipped-batches"),
    train("mean-of-batch-means", mutate(mutate(CANONICAL_TRAIN, "total_loss += loss.item() * len(targets)", "total_loss += loss.item()"),
          "return total_loss / total_samples", "return total_loss / len(loader)"), "mean-of-batch-means"),
    train("returns-a-tensor", mutate(CANONICAL_TRAIN, "total_loss += loss.item() * len(targets)",
          "total_loss += loss.detach() * len(targets)"), "not-a-float"),
    train("keeps-the-graph", mutate(mutate(CANONICAL_TRAIN, "total_loss += loss.item() * len(targets)", "total_loss += loss * len(targets)"),
          "return total_loss / total_samples", "return total_loss.item() / total_samples"), "graph-kept"),
    train("returns-the-sum", mutate(CANONICAL_TRAIN, "return total_loss / total_samples", "return total_loss"), "wrong-mean"),
    train("training-under-no-grad", mutate(CANONICAL_TRAIN, "        loss = criterion(model(features), targets)\n",
          "        with torch.no_grad():\n            logits = model(features)\n        loss = criterion(logits, targets)\n"),
          "train-no-grad"),
    evaluation("no-eval-mode", mutate(CANONICAL_EVALUATE, "    model.eval()\n", ""), "eval-mode"),
    evaluation("tracks-gradients", mutate(CANONICAL_EVALUATE, "    with torch.no_grad():\n", "    if True:\n"), "eval-grad"),
    evaluation("trains-while-evaluating", mutate(CANONICAL_EVALUATE, "            logits = model(features)\n",
               "            with torch.enable_grad():\n                criterion(model(features), targets).backward()\n"
               "            with torch.no_grad():\n                for p in model.parameters():\n                    p -= 0.1 * p.grad\n"
               "            logits = model(features)\n"), "eval-changed-parameters"),
    evaluation("accuracy-mean-of-batches", mutate(mutate(CANONICAL_EVALUATE,
               "correct += (logits.argmax(dim=1) == targets).sum().item()",
               "correct += (logits.argmax(dim=1) == targets).float().mean().item()"),
               "correct / total_samples", "correct / len(loader)"), "eval-accuracy"),
    evaluation("evaluate-softmax-before-loss", mutate(CANONICAL_EVALUATE, "total_loss += criterion(logits, targets).item()",
               "total_loss += criterion(logits.softmax(dim=1), targets).item()"), "softmax-before-loss"),
]
