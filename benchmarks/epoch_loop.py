"""Samples per second of lesson 07's naive loop and of the improved one, on the same model and data.

Run ``python benchmarks/epoch_loop.py`` (CPU here; CUDA too where there is a GPU). The data is the
running example repeated to ``--samples`` rows so an epoch lasts long enough to time. Variants:

- naive: DataLoader of CPU tensors, ``.to(device)`` per batch, ``loss.item()`` per batch;
- pinned: as naive with ``pin_memory=True`` and ``non_blocking=True`` (CUDA only);
- on-device: the whole dataset moved once, batches indexed on the device, one ``.item()`` per epoch;
- on-device, batch 1000: the same with ten times larger batches.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils.data import RAW_MAX, make_course_data
from course_utils.devices import describe_device
from course_utils.recipe import DEFAULT_RECIPE, default_model, default_optimizer


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def naive_epoch(model, dataset, device, batch_size, pin_memory=False) -> float:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, pin_memory=pin_memory,
                        generator=torch.Generator().manual_seed(0))
    optimizer, criterion = default_optimizer(model), nn.CrossEntropyLoss()
    total = 0.0
    for xb, yb in loader:
        xb, yb = xb.to(device, non_blocking=pin_memory), yb.to(device, non_blocking=pin_memory)
        optimizer.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(yb)
    return total / len(dataset)


def on_device_epoch(model, features, targets, batch_size) -> float:
    optimizer, criterion = default_optimizer(model), nn.CrossEntropyLoss()
    order = torch.randperm(len(targets), device=features.device)
    total = torch.zeros((), device=features.device)
    for start in range(0, len(targets), batch_size):
        index = order[start:start + batch_size]
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(features[index]), targets[index])
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(index)
    return (total / len(targets)).item()


def samples_per_second(run: Callable[[], float], samples: int, device: torch.device, repeat: int) -> float:
    run()  # warm-up: allocator, kernels, caches
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeat):
        run()
    synchronize(device)
    return samples * repeat / (time.perf_counter() - start)


def measure(device: torch.device, samples: int, repeat: int) -> dict[str, float]:
    features, targets = make_course_data(1000)
    copies = -(-samples // 1000)
    features, targets = (features / RAW_MAX).repeat(copies, 1)[:samples], targets.repeat(copies)[:samples]
    dataset = TensorDataset(features, targets)
    model = default_model(DEFAULT_RECIPE).to(device)
    on_device = features.to(device), targets.to(device)
    variants = {
        "naive (batch 100)": lambda: naive_epoch(model, dataset, device, 100),
        "on-device (batch 100)": lambda: on_device_epoch(model, *on_device, 100),
        "on-device (batch 1000)": lambda: on_device_epoch(model, *on_device, 1000),
    }
    if device.type == "cuda":
        variants["pinned (batch 100)"] = lambda: naive_epoch(model, dataset, device, 100, pin_memory=True)
    return {name: samples_per_second(run, samples, device, repeat) for name, run in variants.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50_000, help="rows per epoch (default 50000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed epochs per variant (default 3)")
    args = parser.parse_args(argv)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for device in devices:
        results = measure(device, args.samples, args.repeat)
        baseline = results["naive (batch 100)"]
        print(f"\n{describe_device(device)}: {args.samples} samples per epoch, {args.repeat} timed epochs")
        for name, rate in results.items():
            print(f"  {name:<24} {rate:>12,.0f} samples/s   {rate / baseline:5.2f}x naive")
    if not torch.cuda.is_available():
        print("\n(no CUDA GPU here: run this on a GPU machine for the CUDA figures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
