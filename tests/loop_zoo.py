"""Training loops for lesson 07's grader: correct variants in different styles, and a zoo of bugs.

Each entry is the source of one notebook exercise cell (it defines ``train_one_epoch``,
``evaluate`` or ``fit``), so the same code runs both through the library and through the lesson's
real grade cells. A buggy entry names the bug code its failure message must carry
(course_utils.loop_grader.BUGS). A ``fit`` entry calls ``train_one_epoch`` and ``evaluate`` by
their global names and finds ``trange`` where the lesson's setup cell imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from textwrap import dedent


@dataclass(frozen=True)
class Variant:
    name: str
    function: str  # "train_one_epoch", "evaluate" or "fit"
    source: str
    bug: str | None = None  # None for a correct variant


def train(name: str, body: str, bug: str | None = None) -> Variant:
    return Variant(name, "train_one_epoch", dedent(body).strip(), bug)


def evaluation(name: str, body: str, bug: str | None = None) -> Variant:
    return Variant(name, "evaluate", dedent(body).strip(), bug)


def fitting(name: str, body: str, bug: str | None = None) -> Variant:
    return Variant(name, "fit", dedent(body).strip(), bug)


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


CANONICAL_FIT = """
def fit(model, train_loader, val_loader, criterion, optimizer, device, epochs):
    model.to(device)
    history = []
    for epoch in trange(1, epochs + 1, desc="epochs", leave=False):
        loss = train_one_epoch(model, train_loader, criterion, optimizer, device)
        val_loss, accuracy = evaluate(model, val_loader, criterion, device)
        history.append({"epoch": epoch, "loss": loss, "val_loss": val_loss, "accuracy": accuracy})
    return history
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
            return loss.item() * len(yb)

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
    train("enumerate-detach-item-and-numel", """
        def train_one_epoch(model, loader, criterion, optimizer, device):
            model.train(True)
            optimizer.zero_grad()
            running_loss, n = 0.0, 0
            for i, (inputs, labels) in enumerate(loader):
                inputs = inputs.to(device=device)
                labels = labels.to(device=device)
                outputs = model(inputs)
                loss = criterion(outputs, labels)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                running_loss += loss.detach().item() * labels.numel()
                n += labels.numel()
            return running_loss / n
    """),
    train("model-moved-again-and-float-of-detached", """
        def train_one_epoch(model, loader, criterion, optimizer, device):
            model.to(device).train()
            losses, sizes = [], []
            for xb, yb in loader:
                xb, yb = xb.to(device), yb.to(device)
                optimizer.zero_grad(set_to_none=False)
                logits = model(xb)
                loss = criterion(logits, yb)
                loss.backward()
                optimizer.step()
                losses.append(float(loss.detach()))
                sizes.append(len(yb))
            return sum(l * s for l, s in zip(losses, sizes)) / sum(sizes)
    """),
    train("takes-every-batch-first", """
        def train_one_epoch(model, loader, criterion, optimizer, device):
            model.train()
            batches = [(xb.to(device), yb.to(device)) for xb, yb in loader]
            total = 0.0
            for xb, yb in batches:
                optimizer.zero_grad()
                loss = criterion(model(xb), yb)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(yb)
            return total / sum(len(yb) for _, yb in batches)
    """),
    evaluation("concatenate-then-score-once", """
        def evaluate(model, loader, criterion, device):
            model.eval()
            all_logits, all_targets = [], []
            with torch.no_grad():
                for xb, yb in loader:
                    all_logits.append(model(xb.to(device)))
                    all_targets.append(yb.to(device))
            logits, targets = torch.cat(all_logits), torch.cat(all_targets)
            loss = criterion(logits, targets).item()
            accuracy = (logits.argmax(dim=1) == targets).float().mean().item()
            return loss, accuracy
    """),
    evaluation("concatenate-on-the-cpu-inference-mode", """
        def evaluate(model, loader, criterion, device):
            model.train(False)
            outputs, labels = [], []
            with torch.inference_mode():
                for inputs, targets in loader:
                    inputs, targets = inputs.to(device), targets.to(device)
                    outputs.append(model(inputs).cpu())
                    labels.append(targets.cpu())
                outputs, labels = torch.cat(outputs), torch.cat(labels)
                loss = criterion(outputs, labels)
            _, predicted = torch.max(outputs, 1)
            return loss.item(), (predicted == labels).sum().item() / labels.size(0)
    """),
    evaluation("one-forward-over-the-whole-set", """
        def evaluate(model, loader, criterion, device):
            model.eval()
            batches = [(xb.to(device), yb.to(device)) for xb, yb in loader]
            inputs = torch.cat([xb for xb, _ in batches])
            targets = torch.cat([yb for _, yb in batches])
            with torch.no_grad():
                logits = model(inputs)
                loss = criterion(logits, targets)
            return float(loss), float((logits.argmax(1) == targets).sum()) / len(targets)
    """),
    evaluation("no-grad-decorator-enumerate-eq", """
        @torch.no_grad()
        def evaluate(model, loader, criterion, device):
            model.eval()
            loss_sum, hits, seen = 0.0, 0, 0
            for step, (xb, yb) in enumerate(loader):
                xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
                out = model(xb)
                loss_sum += criterion(out, yb).item() * yb.shape[0]
                hits += out.argmax(-1).eq(yb).sum().item()
                seen += yb.shape[0]
            return loss_sum / seen, hits / seen
    """),
    fitting("canonical", CANONICAL_FIT),
    fitting("tqdm-imported-inside-and-reassigned-model", """
        def fit(model, train_loader, val_loader, criterion, optimizer, device, epochs):
            from tqdm.auto import tqdm
            model = model.to(device)
            history = []
            for epoch in tqdm(range(1, epochs + 1), desc="training"):
                train_loss = train_one_epoch(model, train_loader, criterion, optimizer, device)
                val_loss, val_acc = evaluate(model, val_loader, criterion, device)
                history.append(dict(epoch=epoch, loss=train_loss, val_loss=val_loss, accuracy=val_acc))
            return history
    """),
    fitting("manual-bar-with-postfix-and-keywords", """
        def fit(model, train_loader, val_loader, criterion, optimizer, device, epochs):
            from tqdm.auto import tqdm
            model.to(device=device)
            history = []
            with tqdm(total=epochs, desc="epochs") as bar:
                for epoch in range(1, epochs + 1):
                    loss = train_one_epoch(model=model, loader=train_loader, criterion=criterion,
                                           optimizer=optimizer, device=device)
                    val_loss, accuracy = evaluate(model=model, loader=val_loader, criterion=criterion, device=device)
                    history.append({"epoch": epoch, "loss": loss, "val_loss": val_loss, "accuracy": accuracy})
                    bar.set_postfix(loss=f"{loss:.3f}", accuracy=f"{accuracy:.2f}")
                    bar.update(1)
            return history
    """),
    fitting("module-attribute-trange-and-enumerate", """
        def fit(model, train_loader, val_loader, criterion, optimizer, device, epochs):
            import tqdm.auto
            model.to(device)
            history = []
            for index, _ in enumerate(tqdm.auto.trange(epochs)):
                record = {"epoch": index + 1}
                record["loss"] = train_one_epoch(model, train_loader, criterion, optimizer, device)
                record["val_loss"], record["accuracy"] = evaluate(model, val_loader, criterion, device)
                history.append(record)
            return history
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
    train("builds-its-own-loss", mutate(CANONICAL_TRAIN, "criterion(model(features), targets)",
          "torch.nn.functional.cross_entropy(model(features), targets)"), "criterion-ignored"),
    train("sigmoid-before-loss", mutate(CANONICAL_TRAIN, "criterion(model(features), targets)",
          "criterion(torch.sigmoid(model(features)), targets)"), "not-raw-logits"),
    train("returns-the-last-batch-loss", mutate(CANONICAL_TRAIN, "return total_loss / total_samples",
          "return loss.item()"), "wrong-mean"),
    train("nothing-moved", mutate(CANONICAL_TRAIN, "        features, targets = features.to(device), targets.to(device)\n", ""),
          "inputs-not-moved"),
    train("three-steps-per-batch", mutate(CANONICAL_TRAIN, "        optimizer.step()\n",
          "        for _ in range(3):\n            optimizer.step()\n"), "steps-per-batch"),
    evaluation("evaluate-inputs-not-moved", mutate(CANONICAL_EVALUATE,
               "features, targets = features.to(device), targets.to(device)", "targets = targets.to(device)"),
               "inputs-not-moved"),
    evaluation("evaluate-targets-not-moved", mutate(CANONICAL_EVALUATE,
               "features, targets = features.to(device), targets.to(device)", "features = features.to(device)"),
               "targets-not-moved"),
    evaluation("evaluate-skips-the-last-batch", mutate(CANONICAL_EVALUATE,
               "            features, targets = features.to(device), targets.to(device)\n",
               "            if len(targets) < loader.batch_size:\n                continue\n"
               "            features, targets = features.to(device), targets.to(device)\n"), "skipped-batches"),
    evaluation("evaluate-mean-of-batch-means", mutate(mutate(CANONICAL_EVALUATE,
               "total_loss += criterion(logits, targets).item() * len(targets)", "total_loss += criterion(logits, targets).item()"),
               "return total_loss / total_samples", "return total_loss / len(loader)"), "eval-loss"),
    evaluation("evaluate-returns-a-tensor-accuracy", mutate(CANONICAL_EVALUATE,
               "correct += (logits.argmax(dim=1) == targets).sum().item()", "correct += (logits.argmax(dim=1) == targets).sum()"),
               "eval-return"),
    evaluation("evaluate-accuracy-in-percent", mutate(CANONICAL_EVALUATE, "correct / total_samples",
               "100 * correct / total_samples"), "eval-accuracy"),
    evaluation("evaluate-builds-its-own-loss", mutate(CANONICAL_EVALUATE, "criterion(logits, targets)",
               "torch.nn.functional.cross_entropy(logits, targets)"), "criterion-ignored"),
    evaluation("concatenate-then-softmax", """
        def evaluate(model, loader, criterion, device):
            model.eval()
            all_logits, all_targets = [], []
            with torch.no_grad():
                for xb, yb in loader:
                    all_logits.append(model(xb.to(device)))
                    all_targets.append(yb.to(device))
            probabilities, targets = torch.cat(all_logits).softmax(dim=1), torch.cat(all_targets)
            loss = criterion(probabilities, targets).item()
            return loss, (probabilities.argmax(dim=1) == targets).float().mean().item()
    """, "softmax-before-loss"),
    fitting("fit-never-moves-the-model", mutate(CANONICAL_FIT, "    model.to(device)\n", ""), "fit-model-not-moved"),
    fitting("fit-moves-the-model-after-training", mutate(mutate(CANONICAL_FIT, "    model.to(device)\n", ""),
            "    return history", "    model.to(device)\n    return history"), "fit-model-not-moved"),
    fitting("fit-plain-range", mutate(CANONICAL_FIT, 'trange(1, epochs + 1, desc="epochs", leave=False)',
            "range(1, epochs + 1)"), "fit-no-progress-bar"),
    fitting("fit-bar-never-updated", mutate(mutate(CANONICAL_FIT, "    history = []\n",
            "    history = []\n    from tqdm.auto import tqdm\n    bar = tqdm(total=epochs)\n"),
            'trange(1, epochs + 1, desc="epochs", leave=False)', "range(1, epochs + 1)"), "fit-no-progress-bar"),
    fitting("fit-epochs-from-zero", mutate(CANONICAL_FIT, "trange(1, epochs + 1,", "trange(epochs,"), "fit-history"),
    fitting("fit-one-epoch-too-many", mutate(CANONICAL_FIT, "trange(1, epochs + 1,", "trange(1, epochs + 2,"),
            "fit-history"),
    fitting("fit-evaluates-the-training-data", mutate(CANONICAL_FIT, "evaluate(model, val_loader,",
            "evaluate(model, train_loader,"), "fit-val-loader"),
    fitting("fit-swaps-the-losses", mutate(CANONICAL_FIT, '"loss": loss, "val_loss": val_loss',
            '"loss": val_loss, "val_loss": loss'), "fit-values"),
    fitting("fit-records-the-first-loss-every-epoch", mutate(mutate(CANONICAL_FIT, "    history = []\n",
            "    history, first = [], None\n"), '"loss": loss,', '"loss": first or loss,').replace(
            "        history.append", "        first = first or loss\n        history.append"), "fit-values"),
    fitting("fit-evaluates-before-training", mutate(CANONICAL_FIT,
            "        loss = train_one_epoch(model, train_loader, criterion, optimizer, device)\n"
            "        val_loss, accuracy = evaluate(model, val_loader, criterion, device)\n",
            "        val_loss, accuracy = evaluate(model, val_loader, criterion, device)\n"
            "        loss = train_one_epoch(model, train_loader, criterion, optimizer, device)\n"), "fit-order"),
    fitting("fit-makes-a-new-optimizer", mutate(CANONICAL_FIT, "    history = []\n",
            "    history = []\n    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"), "fit-arguments"),
    fitting("fit-evaluates-once-at-the-end", """
        def fit(model, train_loader, val_loader, criterion, optimizer, device, epochs):
            model.to(device)
            losses = [train_one_epoch(model, train_loader, criterion, optimizer, device)
                      for _ in trange(epochs)]
            val_loss, accuracy = evaluate(model, val_loader, criterion, device)
            return [{"epoch": e, "loss": l, "val_loss": val_loss, "accuracy": accuracy}
                    for e, l in enumerate(losses, 1)]
    """, "fit-calls-per-epoch"),
    # issue 17: the device rule the text states, a swapped return, crashes that say where
    train("model-moved-every-batch", mutate(CANONICAL_TRAIN, "        optimizer.zero_grad()\n",
          "        model.to(device)\n        optimizer.zero_grad()\n"), "model-moved-every-batch"),
    evaluation("evaluate-model-moved-every-batch", mutate(CANONICAL_EVALUATE, "            logits = model(features)\n",
               "            logits = model.to(device)(features)\n"), "eval-model-moved-every-batch"),
    fitting("fit-moves-the-model-every-epoch", mutate(CANONICAL_FIT, "        loss = train_one_epoch(",
            "        model.to(device)\n        loss = train_one_epoch("), "fit-model-moved-every-epoch"),
    evaluation("evaluate-returns-accuracy-then-loss", mutate(CANONICAL_EVALUATE,
               "return total_loss / total_samples, correct / total_samples",
               "return correct / total_samples, total_loss / total_samples"), "eval-swapped"),
    train("float-targets-crash", mutate(CANONICAL_TRAIN, "criterion(model(features), targets)",
          "criterion(model(features), targets.float())"), "train-crashed"),
    evaluation("argmax-over-the-batch-crash", mutate(CANONICAL_EVALUATE, "logits.argmax(dim=1)", "logits.argmax(dim=0)"),
               "eval-crashed"),
    fitting("fit-unpacks-three-values-crash", mutate(CANONICAL_FIT, "val_loss, accuracy = evaluate(",
            "val_loss, accuracy, _ = evaluate("), "fit-crashed"),
    # real-world loop mistakes: indentation, and batch means divided by the number of samples (pytorch/tutorials
    # issues 179 and 1486, Justin-A/DeepLearning101 issues 14 and 16, whose evaluate also returns (accuracy, loss))
    train("return-inside-the-loop", mutate(CANONICAL_TRAIN, "    return total_loss / total_samples",
          "        return total_loss / total_samples"), "returned-in-loop"),
    evaluation("evaluate-return-inside-the-loop", mutate(CANONICAL_EVALUATE,
               "    return total_loss / total_samples, correct / total_samples",
               "            return total_loss / total_samples, correct / total_samples"), "eval-returned-in-loop"),
    train("step-after-the-loop", mutate(CANONICAL_TRAIN, "        optimizer.step()\n        total_loss",
          "        total_loss").replace("    return total_loss", "    optimizer.step()\n    return total_loss"),
          "step-after-loop"),
    train("batch-means-divided-by-samples", mutate(CANONICAL_TRAIN, "total_loss += loss.item() * len(targets)",
          "total_loss += loss.item()"), "loss-divided-twice"),
    evaluation("evaluate-batch-means-divided-by-samples", mutate(CANONICAL_EVALUATE,
               "total_loss += criterion(logits, targets).item() * len(targets)",
               "total_loss += criterion(logits, targets).item()"), "eval-loss-divided-twice"),
    train("cuda-hard-coded", mutate(CANONICAL_TRAIN, "features.to(device), targets.to(device)",
          "features.cuda(), targets.cuda()"), "hard-coded-device"),
    evaluation("evaluate-cuda-string", mutate(CANONICAL_EVALUATE, "features.to(device), targets.to(device)",
               'features.to("cuda"), targets.to("cuda")'), "eval-hard-coded-device"),
    train("gradients-divided-by-the-batch-size", mutate(CANONICAL_TRAIN, "        loss.backward()\n",
          "        loss.backward()\n        for parameter in model.parameters():\n"
          "            parameter.grad /= len(targets)\n"), "grad-modified"),
    train("gradients-clipped", mutate(CANONICAL_TRAIN, "        loss.backward()\n",
          "        loss.backward()\n        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.01)\n"),
          "grad-modified"),
    train("backward-on-the-batch-sum", mutate(CANONICAL_TRAIN, "        loss.backward()\n",
          "        (loss * len(targets)).backward()\n"), "scaled-loss"),
    train("learning-rate-changed-inside", mutate(CANONICAL_TRAIN, "    model.train()\n",
          "    model.train()\n    for group in optimizer.param_groups:\n        group['lr'] = 0.01\n"), "optimizer-changed"),
    train("visits-the-batches-backwards", mutate(CANONICAL_TRAIN, "for features, targets in loader:",
          "for features, targets in reversed(list(loader)):"), "trajectory"),
]
