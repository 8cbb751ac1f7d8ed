"""Lesson 07's bug zoo: student cells for train_one_epoch, evaluate and fit, correct ones and typical mistakes.

Each entry is the source of one exercise cell: tests/test_zoos.py runs it through the lesson's real
grade cells in a kernel, and tests/test_rechecks.py through the grader's re-check. A buggy entry
names the diagnosis code its failure message must carry first (course_utils.checks.lesson07). A
``fit`` entry calls ``train_one_epoch`` and ``evaluate`` by their global names and finds ``trange``
where the lesson's setup cell imports it.

The canonical loop is a student's answer in the lesson's own style; the grader's reference loop
(course_tools.grade.judges.lesson07.reference_epoch) is the same loop on purpose, on the other side.
"""

from __future__ import annotations

from functools import partial

from tests.zoos import Zoo, mutants, mutate, variant

trainer = partial(variant, "ex1-tests")
evaluator = partial(variant, "ex2-tests")
fitter = partial(variant, "ex3-tests")


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

# The most common mistake of Exercise 1: gradients never zeroed.
NO_ZERO_GRAD = mutate(CANONICAL_TRAIN, "        optimizer.zero_grad()\n", "").strip()


CORRECT = [
    trainer("canonical", CANONICAL_TRAIN),
    trainer("zero-grad-after-step-set-to-none", """
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
    trainer("model-zero-grad-and-dataset-length", """
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
    trainer("grad-none-by-hand-on-device-sum", """
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
    trainer("helper-function-style", """
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
    trainer("enumerate-detach-item-and-numel", """
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
    trainer("model-moved-again-and-float-of-detached", """
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
    trainer("takes-every-batch-first", """
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
    evaluator("canonical", CANONICAL_EVALUATE),
    evaluator("inference-mode-and-weighted-means", """
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
    evaluator("concatenate-then-score-once", """
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
    evaluator("concatenate-on-the-cpu-inference-mode", """
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
    evaluator("one-forward-over-the-whole-set", """
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
    evaluator("no-grad-decorator-enumerate-eq", """
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
    fitter("canonical", CANONICAL_FIT),
    fitter("tqdm-imported-inside-and-reassigned-model", """
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
    fitter("manual-bar-with-postfix-and-keywords", """
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
    fitter("module-attribute-trange-and-enumerate", """
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
    # fit is judged on its own: a correct fit keeps its points beside a broken train_one_epoch
    fitter("correct-beside-a-broken-train-one-epoch", NO_ZERO_GRAD + "\n" + CANONICAL_FIT),
]


def _raised_at(function: str, line: str) -> dict:
    """A crash's details: the kernel's failure quotes the learner's line that raised, from the cell (issue 17)."""
    return {"says": (f"{function} raised an error", f"of {function}: {line}")}


# Right values, wrong behaviour: the re-check's values cannot show a device move on the CPU, the mode
# of a model without dropout, gradient tracking, a kept graph, the criterion's origin, or fit's device
# move and progress bar. Those stay with the kernel's checks (and the grader's source scan).
SAME_VALUES = {"values_show": False}

TRAIN_MISTAKES = mutants("ex1-tests", CANONICAL_TRAIN, (
    ("no-zero-grad", "accumulated-gradients", "        optimizer.zero_grad()\n", ""),
    ("zero-grad-between-backward-and-step", "cleared-before-step",
     "        optimizer.zero_grad()\n        loss = criterion(model(features), targets)\n        loss.backward()\n",
     "        loss = criterion(model(features), targets)\n        loss.backward()\n        optimizer.zero_grad()\n"),
    ("step-before-backward", "step-before-backward",
     "        loss.backward()\n        optimizer.step()\n", "        optimizer.step()\n        loss.backward()\n"),
    ("no-backward", "no-backward", "        loss.backward()\n", ""),
    ("no-step", "optimizer-ignored", "        optimizer.step()\n", "",
     {"says": ("stepped 0 times for 3 batches",)}),
    ("own-optimizer", "optimizer-ignored", "    model.train()\n",
     "    model.train()\n    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"),
    ("two-steps-per-batch", "steps-per-batch", "        optimizer.step()\n",
     "        optimizer.step()\n        optimizer.step()\n",
     {"says": ("optimizer.step() ran 6 times for 3 batches (2 per batch)",)}),
    ("inputs-not-moved", "inputs-not-moved", "features, targets = features.to(device), targets.to(device)",
     "targets = targets.to(device)", SAME_VALUES),
    ("targets-not-moved", "targets-not-moved", "features, targets = features.to(device), targets.to(device)",
     "features = features.to(device)", SAME_VALUES),
    ("no-train-mode", "train-mode", "    model.train()\n", "", SAME_VALUES),
    ("softmax-before-loss", "softmax-before-loss", "criterion(model(features), targets)",
     "criterion(torch.softmax(model(features), dim=1), targets)"),
    ("skips-the-last-batch", "skipped-batches",
     "        features, targets = features.to(device), targets.to(device)\n",
     "        if len(targets) < 100:\n            break\n"
     "        features, targets = features.to(device), targets.to(device)\n"),
    ("returns-a-tensor", "not-a-float", "total_loss += loss.item() * len(targets)",
     "total_loss += loss.detach() * len(targets)"),
    ("returns-the-sum", "wrong-mean", "return total_loss / total_samples", "return total_loss"),
    ("training-under-no-grad", "train-no-grad", "        loss = criterion(model(features), targets)\n",
     "        with torch.no_grad():\n            logits = model(features)\n"
     "        loss = criterion(logits, targets)\n"),
    ("builds-its-own-loss", "criterion-ignored", "criterion(model(features), targets)",
     "torch.nn.functional.cross_entropy(model(features), targets)", SAME_VALUES),
    ("sigmoid-before-loss", "not-raw-logits", "criterion(model(features), targets)",
     "criterion(torch.sigmoid(model(features)), targets)"),
    ("returns-the-last-batch-loss", "wrong-mean", "return total_loss / total_samples", "return loss.item()"),
    ("nothing-moved", "inputs-not-moved", "        features, targets = features.to(device), targets.to(device)\n", "",
     SAME_VALUES),
    ("three-steps-per-batch", "steps-per-batch", "        optimizer.step()\n",
     "        for _ in range(3):\n            optimizer.step()\n"),
    # the hidden tests' single-sample case lives in the re-check: a loop that needs two batches fails it
    ("zero-loss-for-a-single-sample", "wrong-mean", "    return total_loss / total_samples",
     "    return total_loss / (total_samples - 1) * (total_samples - 1) / total_samples if total_samples > 1 else 0.0",
     {"refuted_with": "single sample"}),
    # issue 17: the device rule the text states, crashes that say where
    ("model-moved-every-batch", "model-moved-every-batch", "        optimizer.zero_grad()\n",
     "        model.to(device)\n        optimizer.zero_grad()\n", SAME_VALUES),
    ("float-targets-crash", "train-crashed", "criterion(model(features), targets)",
     "criterion(model(features), targets.float())",
     {**_raised_at("train_one_epoch", "loss = criterion(model(features), targets.float())"),
      "refuted_with": "raised RuntimeError"}),
    # real-world loop mistakes: indentation, and batch means divided by the number of samples (pytorch/tutorials
    # issues 179 and 1486, Justin-A/DeepLearning101 issues 14 and 16, whose evaluate also returns (accuracy, loss))
    ("return-inside-the-loop", "returned-in-loop", "    return total_loss / total_samples",
     "        return total_loss / total_samples", {"refuted_with": "parameters"}),
    ("batch-means-divided-by-samples", "loss-divided-twice", "total_loss += loss.item() * len(targets)",
     "total_loss += loss.item()", {"refuted_with": "mean loss per sample"}),
    ("cuda-hard-coded", "hard-coded-device", "features.to(device), targets.to(device)",
     "features.cuda(), targets.cuda()"),
    ("gradients-divided-by-the-batch-size", "grad-modified", "        loss.backward()\n",
     "        loss.backward()\n        for parameter in model.parameters():\n"
     "            parameter.grad /= len(targets)\n"),
    ("gradients-clipped", "grad-modified", "        loss.backward()\n",
     "        loss.backward()\n        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.01)\n"),
    ("backward-on-the-batch-sum", "scaled-loss", "        loss.backward()\n",
     "        (loss * len(targets)).backward()\n"),
    ("learning-rate-changed-inside", "optimizer-changed", "    model.train()\n",
     "    model.train()\n    for group in optimizer.param_groups:\n        group['lr'] = 0.01\n"),
    ("visits-the-batches-backwards", "trajectory", "for features, targets in loader:",
     "for features, targets in reversed(list(loader)):"),
))

EVALUATE_MISTAKES = mutants("ex2-tests", CANONICAL_EVALUATE, (
    ("no-eval-mode", "eval-mode", "    model.eval()\n", "", SAME_VALUES),
    ("tracks-gradients", "eval-grad", "    with torch.no_grad():\n", "    if True:\n", SAME_VALUES),
    ("trains-while-evaluating", "eval-changed-parameters", "            logits = model(features)\n",
     "            with torch.enable_grad():\n                criterion(model(features), targets).backward()\n"
     "            with torch.no_grad():\n                for p in model.parameters():\n"
     "                    p -= 0.1 * p.grad\n"
     "            logits = model(features)\n"),
    ("evaluate-softmax-before-loss", "softmax-before-loss", "total_loss += criterion(logits, targets).item()",
     "total_loss += criterion(logits.softmax(dim=1), targets).item()"),
    ("evaluate-inputs-not-moved", "inputs-not-moved", "features, targets = features.to(device), targets.to(device)",
     "targets = targets.to(device)", {**SAME_VALUES, "says": ("3 of 3 forward passes",)}),
    ("evaluate-targets-not-moved", "targets-not-moved",
     "features, targets = features.to(device), targets.to(device)", "features = features.to(device)", SAME_VALUES),
    ("evaluate-skips-the-last-batch", "skipped-batches",
     "            features, targets = features.to(device), targets.to(device)\n",
     "            if len(targets) < loader.batch_size:\n                continue\n"
     "            features, targets = features.to(device), targets.to(device)\n"),
    ("evaluate-returns-a-tensor-accuracy", "eval-return", "correct += (logits.argmax(dim=1) == targets).sum().item()",
     "correct += (logits.argmax(dim=1) == targets).sum()"),
    ("evaluate-accuracy-in-percent", "eval-accuracy", "correct / total_samples", "100 * correct / total_samples"),
    ("evaluate-builds-its-own-loss", "criterion-ignored", "criterion(logits, targets)",
     "torch.nn.functional.cross_entropy(logits, targets)", SAME_VALUES),
    ("evaluate-model-moved-every-batch", "eval-model-moved-every-batch", "            logits = model(features)\n",
     "            logits = model.to(device)(features)\n", SAME_VALUES),
    ("evaluate-returns-accuracy-then-loss", "eval-swapped",
     "return total_loss / total_samples, correct / total_samples",
     "return correct / total_samples, total_loss / total_samples", {"refuted_with": "swapped"}),
    ("argmax-over-the-batch-crash", "eval-crashed", "logits.argmax(dim=1)", "logits.argmax(dim=0)",
     {"says": (*_raised_at("evaluate", "correct += (logits.argmax(dim=0) == targets).sum().item()")["says"],
               "RuntimeError raised at line")}),
    ("evaluate-return-inside-the-loop", "eval-returned-in-loop",
     "    return total_loss / total_samples, correct / total_samples",
     "            return total_loss / total_samples, correct / total_samples"),
    ("evaluate-batch-means-divided-by-samples", "eval-loss-divided-twice",
     "total_loss += criterion(logits, targets).item() * len(targets)",
     "total_loss += criterion(logits, targets).item()"),
    ("evaluate-cuda-string", "eval-hard-coded-device", "features.to(device), targets.to(device)",
     'features.to("cuda"), targets.to("cuda")'),
))

FIT_MISTAKES = mutants("ex3-tests", CANONICAL_FIT, (
    ("fit-never-moves-the-model", "fit-model-not-moved", "    model.to(device)\n", "", SAME_VALUES),
    ("fit-plain-range", "fit-no-progress-bar", 'trange(1, epochs + 1, desc="epochs", leave=False)',
     "range(1, epochs + 1)", SAME_VALUES),
    ("fit-epochs-from-zero", "fit-history", "trange(1, epochs + 1,", "trange(epochs,"),
    ("fit-one-epoch-too-many", "fit-history", "trange(1, epochs + 1,", "trange(1, epochs + 2,"),
    ("fit-evaluates-the-training-data", "fit-val-loader", "evaluate(model, val_loader,",
     "evaluate(model, train_loader,"),
    ("fit-swaps-the-losses", "fit-values", '"loss": loss, "val_loss": val_loss', '"loss": val_loss, "val_loss": loss'),
    ("fit-evaluates-before-training", "fit-order",
     "        loss = train_one_epoch(model, train_loader, criterion, optimizer, device)\n"
     "        val_loss, accuracy = evaluate(model, val_loader, criterion, device)\n",
     "        val_loss, accuracy = evaluate(model, val_loader, criterion, device)\n"
     "        loss = train_one_epoch(model, train_loader, criterion, optimizer, device)\n"),
    ("fit-makes-a-new-optimizer", "fit-arguments", "    history = []\n",
     "    history = []\n    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"),
    ("fit-moves-the-model-every-epoch", "fit-model-moved-every-epoch", "        loss = train_one_epoch(",
     "        model.to(device)\n        loss = train_one_epoch(", SAME_VALUES),
    ("fit-unpacks-three-values-crash", "fit-crashed", "val_loss, accuracy = evaluate(",
     "val_loss, accuracy, _ = evaluate(",
     _raised_at("fit", "val_loss, accuracy, _ = evaluate(model, val_loader, criterion, device)")),
))

# Mistakes of two changes to a canonical cell, and cells written from scratch.
OTHER_MISTAKES = [
    trainer("mean-of-batch-means", mutate(mutate(CANONICAL_TRAIN, "total_loss += loss.item() * len(targets)",
            "total_loss += loss.item()"), "return total_loss / total_samples", "return total_loss / len(loader)"),
            "mean-of-batch-means"),
    trainer("keeps-the-graph", mutate(mutate(CANONICAL_TRAIN, "total_loss += loss.item() * len(targets)",
            "total_loss += loss * len(targets)"), "return total_loss / total_samples",
            "return total_loss.item() / total_samples"), "graph-kept", **SAME_VALUES),
    trainer("step-after-the-loop", mutate(mutate(CANONICAL_TRAIN, "        optimizer.step()\n        total_loss",
            "        total_loss"), "    return total_loss", "    optimizer.step()\n    return total_loss"),
            "step-after-loop", refuted_with="parameters"),
    evaluator("accuracy-mean-of-batches", mutate(mutate(CANONICAL_EVALUATE,
              "correct += (logits.argmax(dim=1) == targets).sum().item()",
              "correct += (logits.argmax(dim=1) == targets).float().mean().item()"),
              "correct / total_samples", "correct / len(loader)"), "eval-accuracy"),
    evaluator("evaluate-mean-of-batch-means", mutate(mutate(CANONICAL_EVALUATE,
              "total_loss += criterion(logits, targets).item() * len(targets)",
              "total_loss += criterion(logits, targets).item()"),
              "return total_loss / total_samples", "return total_loss / len(loader)"), "eval-loss",
              says=("the plain mean of the 3 batch losses",)),
    evaluator("concatenate-then-softmax", """
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
    fitter("fit-moves-the-model-after-training", mutate(mutate(CANONICAL_FIT, "    model.to(device)\n", ""),
           "    return history", "    model.to(device)\n    return history"), "fit-model-not-moved", **SAME_VALUES),
    fitter("fit-bar-never-updated", mutate(mutate(CANONICAL_FIT, "    history = []\n",
           "    history = []\n    from tqdm.auto import tqdm\n    bar = tqdm(total=epochs)\n"),
           'trange(1, epochs + 1, desc="epochs", leave=False)', "range(1, epochs + 1)"), "fit-no-progress-bar",
           **SAME_VALUES),
    fitter("fit-records-the-first-loss-every-epoch", mutate(mutate(mutate(CANONICAL_FIT, "    history = []\n",
           "    history, first = [], None\n"), '"loss": loss,', '"loss": first or loss,'),
           "        history.append", "        first = first or loss\n        history.append"), "fit-values"),
    fitter("fit-evaluates-once-at-the-end", """
        def fit(model, train_loader, val_loader, criterion, optimizer, device, epochs):
            model.to(device)
            losses = [train_one_epoch(model, train_loader, criterion, optimizer, device)
                      for _ in trange(epochs)]
            val_loss, accuracy = evaluate(model, val_loader, criterion, device)
            return [{"epoch": e, "loss": l, "val_loss": val_loss, "accuracy": accuracy}
                    for e, l in enumerate(losses, 1)]
    """, "fit-calls-per-epoch"),
]

BUGGY = [*TRAIN_MISTAKES, *EVALUATE_MISTAKES, *FIT_MISTAKES, *OTHER_MISTAKES]

ZOO = Zoo("07_epoch_loop_gpu", tuple(CORRECT + BUGGY), min_correct=4)
