"""Lesson 08's zoo: correct loops in several styles, and one buggy loop per mistake the grader names.

Each entry is the source of one notebook exercise cell; the names it uses (torch, nn, dist, DDP,
DistributedSampler, DataLoader, contextlib) are those the lesson's setup cell imports. A buggy
entry names the diagnosis code its grade cell's first failure line must carry
(course_utils.checks.lesson08.DIAGNOSES).
"""

from __future__ import annotations

from dataclasses import dataclass
from textwrap import dedent


@dataclass(frozen=True)
class Variant:
    name: str
    function: str
    source: str
    bug: str | None = None  # None for a correct variant


GRADE_CELL = {"train_one_epoch_accumulated": "ex1-tests", "fit_scheduled": "ex2-tests",
              "train_one_epoch_amp": "ex3-tests", "train_ddp": "ex4-tests"}


def variant(function: str, name: str, body: str, bug: str | None = None) -> Variant:
    return Variant(name, function, dedent(body).strip(), bug)


def mutate(source: str, old: str, new: str) -> str:
    assert old in source, f"mutation target not found: {old!r}"
    return source.replace(old, new)


ACCUMULATED = '''
def train_one_epoch_accumulated(model, loader, criterion, optimizer, device, accumulation_steps):
    """One epoch with gradient accumulation; return the mean loss per sample."""
    model.train()
    total_loss, total_samples = 0.0, 0
    n_batches = len(loader)
    optimizer.zero_grad()
    for i, (features, targets) in enumerate(loader):
        features, targets = features.to(device), targets.to(device)
        loss = criterion(model(features), targets)
        (loss / accumulation_steps).backward()
        if (i + 1) % accumulation_steps == 0 or i + 1 == n_batches:
            optimizer.step()
            optimizer.zero_grad()
        total_loss += loss.item() * len(targets)
        total_samples += len(targets)
    return total_loss / total_samples
'''

FIT_SCHEDULED = '''
def fit_scheduled(model, loader, criterion, optimizer, scheduler, device, epochs, max_norm, interval="batch"):
    """Train with gradient clipping and a learning-rate schedule; return the mean loss of each epoch."""
    model.to(device)
    losses = []
    for epoch in range(epochs):
        model.train()
        total_loss, total_samples = 0.0, 0
        for features, targets in loader:
            features, targets = features.to(device), targets.to(device)
            optimizer.zero_grad()
            loss = criterion(model(features), targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            optimizer.step()
            if interval == "batch":
                scheduler.step()
            total_loss += loss.item() * len(targets)
            total_samples += len(targets)
        if interval == "epoch":
            scheduler.step()
        losses.append(total_loss / total_samples)
    return losses
'''

AMP = '''
def train_one_epoch_amp(model, loader, criterion, optimizer, scaler, device, max_norm, amp_dtype):
    """One epoch under autocast with a gradient scaler and clipping; return the mean loss per sample."""
    model.train()
    total_loss, total_samples = 0.0, 0
    for features, targets in loader:
        features, targets = features.to(device), targets.to(device)
        optimizer.zero_grad()
        with torch.autocast(device_type=device.type, dtype=amp_dtype):
            loss = criterion(model(features), targets)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        scaler.step(optimizer)
        scaler.update()
        total_loss += loss.item() * len(targets)
        total_samples += len(targets)
    return total_loss / total_samples
'''

DDP_LOOP = '''
def train_ddp(rank, world_size, model, dataset, criterion, device, config):
    """One rank's share of data-parallel training; return the history reduced over all ranks."""
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=config.seed)
    loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler)
    model = model.to(device)
    ddp_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.SGD(ddp_model.parameters(), lr=config.learning_rate, momentum=config.momentum)
    k, n_batches = config.accumulation_steps, len(loader)
    history = []
    for epoch in range(1, config.epochs + 1):
        sampler.set_epoch(epoch)
        ddp_model.train()
        sums = torch.zeros(3, device=device)  # loss x samples, correct predictions, samples
        for i, (features, targets) in enumerate(loader):
            features, targets = features.to(device), targets.to(device)
            step_now = (i + 1) % k == 0 or i + 1 == n_batches
            with contextlib.nullcontext() if step_now else ddp_model.no_sync():
                logits = ddp_model(features)
                loss = criterion(logits, targets)
                (loss / k).backward()
            if step_now:
                optimizer.step()
                optimizer.zero_grad()
            sums += torch.stack([loss.detach() * len(targets), (logits.argmax(dim=1) == targets).sum(),
                                 torch.tensor(len(targets), device=device)])
        dist.all_reduce(sums)
        record = {"epoch": epoch, "loss": (sums[0] / sums[2]).item(), "accuracy": (sums[1] / sums[2]).item()}
        history.append(record)
        if rank == 0:
            print(f"epoch {epoch}: loss {record['loss']:.4f}, accuracy {record['accuracy']:.3f}")
            torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict()},
                       config.checkpoint_path)
    return history
'''

CORRECT = [
    variant("train_one_epoch_accumulated", "canonical", ACCUMULATED),
    variant("train_one_epoch_accumulated", "group-loss-one-backward", '''
        def train_one_epoch_accumulated(model, loader, criterion, optimizer, device, accumulation_steps):
            model.train()
            batches = list(loader)
            total, seen = 0.0, 0
            for start in range(0, len(batches), accumulation_steps):
                group = batches[start:start + accumulation_steps]
                optimizer.zero_grad(set_to_none=True)
                group_loss = 0.0
                for xb, yb in group:
                    xb, yb = xb.to(device), yb.to(device)
                    loss = criterion(model(xb), yb)
                    group_loss = group_loss + loss / len(group)
                    total += loss.item() * yb.size(0)
                    seen += yb.size(0)
                group_loss.backward()
                optimizer.step()
            return total / seen
    '''),
    variant("fit_scheduled", "canonical", FIT_SCHEDULED),
    variant("fit_scheduled", "model-zero-grad-clip-helper", '''
        from torch.nn.utils import clip_grad_norm_

        def fit_scheduled(model, loader, criterion, optimizer, scheduler, device, epochs, max_norm, interval="batch"):
            model = model.to(device)
            history = []
            for _ in range(epochs):
                model.train()
                running = torch.zeros(())
                for xb, yb in loader:
                    xb, yb = xb.to(device), yb.to(device)
                    loss = criterion(model(xb), yb)
                    loss.backward()
                    clip_grad_norm_(model.parameters(), max_norm=max_norm)
                    optimizer.step()
                    model.zero_grad()
                    if interval == "batch":
                        scheduler.step()
                    running += loss.detach() * len(yb)
                if interval == "epoch":
                    scheduler.step()
                history.append(float(running / len(loader.dataset)))
            return history
    '''),
    variant("train_one_epoch_amp", "canonical", AMP),
    variant("train_one_epoch_amp", "backward-outside-zero-grad-after", '''
        def train_one_epoch_amp(model, loader, criterion, optimizer, scaler, device, max_norm, amp_dtype):
            model.train()
            total, count = 0.0, 0
            for xb, yb in loader:
                xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=amp_dtype):
                    logits = model(xb)
                    loss = criterion(logits, yb)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), max_norm)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                total += loss.item() * len(yb)
                count += len(yb)
            return total / count
    '''),
    variant("train_ddp", "canonical", DDP_LOOP),
    variant("train_ddp", "sync-flag-and-float-sums", '''
        def train_ddp(rank, world_size, model, dataset, criterion, device, config):
            sampler = DistributedSampler(dataset, world_size, rank, seed=config.seed)
            loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler)
            net = DDP(model.to(device))
            optimizer = torch.optim.SGD(net.parameters(), lr=config.learning_rate, momentum=config.momentum)
            history = []
            for epoch in range(config.epochs):
                sampler.set_epoch(epoch)
                net.train()
                loss_sum, correct, count = 0.0, 0, 0
                batches = len(loader)
                for i, (xb, yb) in enumerate(loader):
                    xb, yb = xb.to(device), yb.to(device)
                    last_of_group = (i + 1) % config.accumulation_steps == 0 or i == batches - 1
                    net.require_backward_grad_sync = last_of_group
                    out = net(xb)
                    loss = criterion(out, yb)
                    (loss / config.accumulation_steps).backward()
                    if last_of_group:
                        optimizer.step()
                        optimizer.zero_grad()
                    loss_sum += loss.item() * len(yb)
                    correct += (out.argmax(1) == yb).sum().item()
                    count += len(yb)
                totals = torch.tensor([loss_sum, correct, count], dtype=torch.float64, device=device)
                dist.all_reduce(totals, op=dist.ReduceOp.SUM)
                history.append({"epoch": epoch + 1, "loss": float(totals[0] / totals[2]),
                                "accuracy": float(totals[1] / totals[2])})
                if dist.get_rank() == 0:
                    print(history[-1])
                    state = {"epoch": epoch + 1, "model": net.module.state_dict(), "optimizer": optimizer.state_dict()}
                    torch.save(state, config.checkpoint_path)
            return history
    '''),
]

BUGGY = [
    # --- exercise 1 ---
    variant("train_one_epoch_accumulated", "loss-not-divided",
            mutate(ACCUMULATED, "(loss / accumulation_steps).backward()", "loss.backward()"), "accum-loss-not-divided"),
    variant("train_one_epoch_accumulated", "last-group-dropped",
            mutate(ACCUMULATED, "if (i + 1) % accumulation_steps == 0 or i + 1 == n_batches:",
                   "if (i + 1) % accumulation_steps == 0:"), "accum-last-group-dropped"),
    variant("train_one_epoch_accumulated", "steps-every-micro-batch",
            mutate(ACCUMULATED, "if (i + 1) % accumulation_steps == 0 or i + 1 == n_batches:", "if True:"),
            "accum-step-every-batch"),
    variant("train_one_epoch_accumulated", "zero-grad-every-micro-batch",
            mutate(ACCUMULATED, "        loss = criterion(model(features), targets)\n",
                   "        optimizer.zero_grad()\n        loss = criterion(model(features), targets)\n"),
            "accum-zeroed-every-micro-batch"),
    variant("train_one_epoch_accumulated", "never-zeroed",
            mutate(ACCUMULATED, "            optimizer.step()\n            optimizer.zero_grad()\n",
                   "            optimizer.step()\n"), "accum-never-zeroed"),
    variant("train_one_epoch_accumulated", "reports-divided-loss",
            mutate(ACCUMULATED, "(loss / accumulation_steps).backward()",
                   "loss = loss / accumulation_steps\n        loss.backward()"), "accum-reported-scaled-loss"),
    # issue 17; as in public reports (zero_grad() at the top of an accumulate() block, before step())
    variant("train_one_epoch_accumulated", "zero-grad-before-step",
            mutate(ACCUMULATED, "            optimizer.step()\n            optimizer.zero_grad()\n",
                   "            optimizer.zero_grad()\n            optimizer.step()\n"), "accum-zeroed-before-step"),
    variant("train_one_epoch_accumulated", "off-by-one-step",
            mutate(ACCUMULATED, "if (i + 1) % accumulation_steps == 0 or i + 1 == n_batches:",
                   "if i % accumulation_steps == 0 or i + 1 == n_batches:"), "accum-step-positions"),
    # --- exercise 2 ---
    variant("fit_scheduled", "clip-after-step",
            mutate(FIT_SCHEDULED, "            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)\n            optimizer.step()\n",
                   "            optimizer.step()\n            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)\n"),
            "clip-after-step"),
    variant("fit_scheduled", "no-clipping",
            mutate(FIT_SCHEDULED, "            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)\n", ""),
            "clip-missing"),
    variant("fit_scheduled", "clip-to-a-constant",
            mutate(FIT_SCHEDULED, "clip_grad_norm_(model.parameters(), max_norm)", "clip_grad_norm_(model.parameters(), 0.05)"),
            "clip-wrong-norm"),
    variant("fit_scheduled", "clip-by-value",  # issue 17: clipped, by value, so clip-wrong-norm, not clip-missing
            mutate(FIT_SCHEDULED, "clip_grad_norm_(model.parameters(), max_norm)",
                   "clip_grad_value_(model.parameters(), max_norm)"), "clip-wrong-norm"),
    variant("fit_scheduled", "parameters-generator-used-up",  # a generator is empty after the first clip
            mutate(mutate(FIT_SCHEDULED, "    for epoch in range(epochs):\n",
                          "    params = model.parameters()\n    for epoch in range(epochs):\n"),
                   "clip_grad_norm_(model.parameters(), max_norm)", "clip_grad_norm_(params, max_norm)"),
            "clip-params-used-up"),
    variant("fit_scheduled", "zero-grad-before-step",
            mutate(mutate(FIT_SCHEDULED, "            optimizer.zero_grad()\n", ""), "            optimizer.step()\n",
                   "            optimizer.zero_grad()\n            optimizer.step()\n"), "clip-zeroed-before-step"),
    variant("fit_scheduled", "batch-schedule-stepped-per-epoch",
            mutate(mutate(FIT_SCHEDULED, "            if interval == \"batch\":\n                scheduler.step()\n", ""),
                   "        if interval == \"epoch\":\n            scheduler.step()\n", "        scheduler.step()\n"),
            "sched-per-epoch"),
    variant("fit_scheduled", "epoch-schedule-stepped-per-batch",
            mutate(mutate(FIT_SCHEDULED, "            if interval == \"batch\":\n                scheduler.step()\n",
                          "            scheduler.step()\n"),
                   "        if interval == \"epoch\":\n            scheduler.step()\n", ""),
            "sched-per-batch"),
    variant("fit_scheduled", "scheduler-before-optimizer",
            mutate(FIT_SCHEDULED, "            optimizer.step()\n            if interval == \"batch\":\n                scheduler.step()\n",
                   "            if interval == \"batch\":\n                scheduler.step()\n            optimizer.step()\n"),
            "sched-before-step"),
    variant("fit_scheduled", "scheduler-never-stepped",
            mutate(mutate(FIT_SCHEDULED, "            if interval == \"batch\":\n                scheduler.step()\n", ""),
                   "        if interval == \"epoch\":\n            scheduler.step()\n", ""),
            "sched-not-stepped"),
    # --- exercise 3 ---
    variant("train_one_epoch_amp", "clips-scaled-gradients",
            mutate(AMP, "        scaler.unscale_(optimizer)\n        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)\n",
                   "        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)\n"), "amp-clip-scaled"),
    variant("train_one_epoch_amp", "scaler-step-then-optimizer-step",
            mutate(AMP, "        scaler.step(optimizer)\n", "        scaler.step(optimizer)\n        optimizer.step()\n"),
            "amp-double-step"),
    variant("train_one_epoch_amp", "optimizer-step-instead-of-scaler",
            mutate(AMP, "        scaler.step(optimizer)\n", "        optimizer.step()\n"), "amp-scaler-bypassed"),
    variant("train_one_epoch_amp", "no-autocast",
            mutate(AMP, "        with torch.autocast(device_type=device.type, dtype=amp_dtype):\n            loss =",
                   "        if True:\n            loss ="), "amp-no-autocast"),
    variant("train_one_epoch_amp", "autocast-default-dtype",
            mutate(AMP, "torch.autocast(device_type=device.type, dtype=amp_dtype)", "torch.autocast(device_type=device.type, dtype=torch.float16)"),
            "amp-wrong-dtype"),
    variant("train_one_epoch_amp", "backward-on-unscaled-loss",
            mutate(AMP, "scaler.scale(loss).backward()", "loss.backward()"), "amp-loss-not-scaled"),
    variant("train_one_epoch_amp", "no-scaler-update",
            mutate(AMP, "        scaler.update()\n", ""), "amp-no-update"),
    variant("train_one_epoch_amp", "loss-outside-autocast",  # issue 17: the text says forward and loss inside
            mutate(AMP, "            loss = criterion(model(features), targets)\n",
                   "            logits = model(features)\n        loss = criterion(logits, targets)\n"),
            "amp-loss-outside-autocast"),
    variant("train_one_epoch_amp", "update-skipped-on-overflow",  # issue 17: no update on the path with inf
            mutate(AMP, "        scaler.update()\n",
                   "        if all(torch.isfinite(p.grad).all() for p in model.parameters()):\n"
                   "            scaler.update()\n"), "amp-no-update"),
    variant("train_one_epoch_amp", "update-skipped-on-overflow-no-clip",  # the same; scaler.step() raises first
            mutate(mutate(AMP, "        scaler.unscale_(optimizer)\n        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)\n", ""),
                   "        scaler.update()\n",
                   "        if scaler.get_scale() > 0 and not scaler._found_inf_per_device(optimizer):\n"
                   "            scaler.update()\n"), "amp-no-update"),
    # --- exercise 4 ---
    variant("train_ddp", "no-set-epoch", mutate(DDP_LOOP, "        sampler.set_epoch(epoch)\n", ""), "ddp-no-set-epoch"),
    variant("train_ddp", "sampler-shuffle-off",  # issue 17: set_epoch is called, the sampler does not shuffle
            mutate(DDP_LOOP, "shuffle=True, seed=config.seed", "shuffle=False, seed=config.seed"), "ddp-no-shuffle"),
    variant("train_ddp", "no-sync-on-every-micro-batch",  # the synchronising backward forgotten
            mutate(DDP_LOOP, "with contextlib.nullcontext() if step_now else ddp_model.no_sync():",
                   "with ddp_model.no_sync():"), "ddp-never-synced"),
    variant("train_ddp", "sync-on-first-micro-batch",  # the group's first backward synchronises, not its last
            mutate(DDP_LOOP, "with contextlib.nullcontext() if step_now else ddp_model.no_sync():",
                   "with contextlib.nullcontext() if i % k == 0 else ddp_model.no_sync():"), "ddp-sync-positions"),
    variant("train_ddp", "loader-shuffle-and-sampler",  # a common first try: DataLoader raises ValueError
            mutate(DDP_LOOP, "DataLoader(dataset, batch_size=config.batch_size, sampler=sampler)",
                   "DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, shuffle=True)"),
            "ddp-loader-shuffle"),
    variant("train_ddp", "optimizer-default-settings",  # lr and momentum typed in, not taken from config
            mutate(DDP_LOOP, "lr=config.learning_rate, momentum=config.momentum", "lr=0.01"), "ddp-optimizer-settings"),
    variant("train_ddp", "no-sampler",
            mutate(DDP_LOOP, "loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler)",
                   "loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, "
                   "generator=torch.Generator().manual_seed(config.seed))"), "ddp-no-sampler"),
    variant("train_ddp", "no-no-sync",
            mutate(DDP_LOOP, "with contextlib.nullcontext() if step_now else ddp_model.no_sync():",
                   "with contextlib.nullcontext():"), "ddp-no-no-sync"),
    variant("train_ddp", "loss-not-divided", mutate(DDP_LOOP, "(loss / k).backward()", "loss.backward()"),
            "ddp-loss-not-divided"),
    variant("train_ddp", "last-group-dropped",
            mutate(DDP_LOOP, "step_now = (i + 1) % k == 0 or i + 1 == n_batches", "step_now = (i + 1) % k == 0"),
            "ddp-last-group-dropped"),
    variant("train_ddp", "metrics-not-reduced", mutate(DDP_LOOP, "        dist.all_reduce(sums)\n", ""),
            "ddp-metrics-not-reduced"),
    variant("train_ddp", "sample-count-not-reduced",
            mutate(DDP_LOOP, "        dist.all_reduce(sums)\n", "        dist.all_reduce(sums[:2])\n"), "ddp-metrics-wrong"),
    variant("train_ddp", "every-rank-saves",
            mutate(DDP_LOOP, "            torch.save({\"epoch\": epoch,", "        if True:\n            torch.save({\"epoch\": epoch,"),
            "ddp-every-rank-saves"),
    variant("train_ddp", "saves-wrapper-state",
            mutate(DDP_LOOP, '"model": model.state_dict()', '"model": ddp_model.state_dict()'), "ddp-checkpoint-wrapper-keys"),
    variant("train_ddp", "every-rank-prints",
            mutate(DDP_LOOP, "        if rank == 0:\n            print(", "        print(f\"rank {rank}\")\n        if rank == 0:\n            print("),
            "ddp-every-rank-logs"),
    variant("train_ddp", "not-wrapped",
            mutate(DDP_LOOP, 'ddp_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)',
                   "ddp_model = model\n    ddp_model.no_sync = contextlib.nullcontext"), "ddp-not-wrapped"),
    variant("train_ddp", "wrapped-before-move",
            mutate(mutate(DDP_LOOP, "    model = model.to(device)\n", ""),
                   'ddp_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)',
                   "ddp_model = DDP(model).to(device)"), "ddp-wrapped-before-move"),
    variant("train_ddp", "all-reduce-on-rank-0-only",
            mutate(DDP_LOOP, "        dist.all_reduce(sums)\n", "        if rank == 0:\n            dist.all_reduce(sums)\n"),
            "ddp-hang"),
]
