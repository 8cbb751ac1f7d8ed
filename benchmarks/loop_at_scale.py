"""Samples per second of lesson 08's loops, and the wall time and peak memory of the lesson's notebook.

Rows, all on the running example's model (10 -> 32 -> 3) and data, one epoch each, median of ``--repeat`` runs:

- 1 process, batches of 100 (lesson 07's loop);
- gradient accumulation, 4 micro-batches of 25 per step;
- bfloat16 autocast on the CPU, batches of 100;
- 2 DDP ranks on the CPU (gloo on 127.0.0.1), 50 samples per rank per step;
- on a machine with CUDA: 1 process on the GPU, and float16 autocast with a GradScaler on the GPU.

Run with ``make benchmark`` or ``python benchmarks/loop_at_scale.py [--samples N] [--repeat N] [--no-notebook]``.
The model is tiny, so these rows measure the loop's overhead (Python, synchronisation, process
communication), which is what the lesson's techniques add; they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from course_utils.data import RAW_MAX, make_course_data
from course_utils.distributed import run_distributed
from course_utils.recipe import default_model, default_optimizer

ROOT = Path(__file__).resolve().parents[1]
LESSON = "08_loop_at_scale"
NOTEBOOK_TARGET_SECONDS = 30.0


def dataset(samples: int) -> TensorDataset:
    features, targets = make_course_data(samples, seed=0)
    return TensorDataset(features / RAW_MAX, targets)


def epoch(model: nn.Module, loader: DataLoader, device: torch.device, *, accumulation: int = 1,
          amp_dtype: torch.dtype | None = None, scaler: torch.amp.GradScaler | None = None) -> None:
    """One training epoch: optional accumulation, autocast and gradient scaling."""
    optimizer = default_optimizer(model)
    criterion = nn.CrossEntropyLoss()
    model.train()
    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype else contextlib.nullcontext
    scaler = scaler or torch.amp.GradScaler(device.type, enabled=False)
    for i, (features, targets) in enumerate(loader):
        features, targets = features.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        with autocast():
            loss = criterion(model(features), targets) / accumulation
        scaler.scale(loss).backward()
        if (i + 1) % accumulation == 0 or i + 1 == len(loader):
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()


def rate(run: Callable[[], None], samples: int, repeat: int) -> float:
    """Median samples per second of ``run`` (one epoch over ``samples``), after one warm-up run."""
    run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return samples / statistics.median(times)


def _ddp_rank(rank: int, world_size: int, samples: int, repeat: int) -> float:
    data = dataset(samples)
    sampler = DistributedSampler(data, num_replicas=world_size, rank=rank, shuffle=True, seed=0)
    loader = DataLoader(data, batch_size=50, sampler=sampler)
    model = DistributedDataParallel(default_model())
    times = []
    for number in range(repeat + 1):  # the first epoch warms up
        sampler.set_epoch(number)
        dist.barrier()
        start = time.perf_counter()
        epoch(model, loader, torch.device("cpu"))
        dist.barrier()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def measure(samples: int = 10_000, repeat: int = 3) -> dict[str, float]:
    """Samples per second of every row (CUDA rows only where a GPU exists)."""
    data = dataset(samples)
    cpu = torch.device("cpu")
    loader = DataLoader(data, batch_size=100, shuffle=True, generator=torch.Generator().manual_seed(0))
    micro = DataLoader(data, batch_size=25, shuffle=True, generator=torch.Generator().manual_seed(0))
    results = {
        "1 process, CPU (batch 100)": rate(lambda: epoch(default_model(), loader, cpu), samples, repeat),
        "accumulation, CPU (4 x 25)": rate(lambda: epoch(default_model(), micro, cpu, accumulation=4), samples, repeat),
        "bf16 autocast, CPU (batch 100)": rate(lambda: epoch(default_model(), loader, cpu, amp_dtype=torch.bfloat16),
                                              samples, repeat),
    }
    ranks = run_distributed(_ddp_rank, 2, (samples, repeat), backend="gloo", timeout=600)
    results["2 DDP ranks, CPU gloo (2 x 50)"] = samples / max(r.value for r in ranks)
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        results["1 process, CUDA (batch 100)"] = rate(lambda: epoch(default_model().to(gpu), loader, gpu), samples, repeat)
        results["fp16 autocast + GradScaler, CUDA (batch 100)"] = rate(
            lambda: epoch(default_model().to(gpu), loader, gpu, amp_dtype=torch.float16,
                          scaler=torch.amp.GradScaler("cuda")), samples, repeat)
    return results


def notebook_cost(repeat: int = 1) -> tuple[float, float]:
    """Median wall seconds and peak kernel MiB of executing the lesson's solution notebook headless."""
    spec = importlib.util.spec_from_file_location("lesson_notebooks", Path(__file__).with_name("lesson_notebooks.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    runs = [module.run_once(ROOT / "solutions" / LESSON / f"{LESSON}.ipynb") for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000, help="samples per epoch")
    parser.add_argument("--repeat", type=int, default=3, help="timed epochs per row; the median is reported")
    parser.add_argument("--no-notebook", action="store_true", help="skip executing the lesson's notebook")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA GPU: the CUDA rows are skipped")
    print(f"{'loop':<46} {'samples/s':>12}")
    for name, value in measure(args.samples, args.repeat).items():
        print(f"{name:<46} {value:>12,.0f}")
    if args.no_notebook:
        return 0
    wall, peak = notebook_cost()
    met = wall <= NOTEBOOK_TARGET_SECONDS
    print(f"\n{LESSON} notebook: {wall:.1f} s wall, {peak:.0f} MiB peak kernel memory "
          f"({'met' if met else 'MISSED'}: <= {NOTEBOOK_TARGET_SECONDS:.0f} s; the DDP ranks and torchrun run in "
          f"their own processes, not counted in the kernel's memory)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
