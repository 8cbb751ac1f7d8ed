"""Device selection: CUDA, then Apple's MPS, then the CPU, with an environment-variable override."""

from __future__ import annotations

import os

import torch

DEVICE_ENV_VAR = "COURSE_DEVICE"
_KNOWN_KINDS = ("cpu", "cuda", "mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _is_available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return _mps_available()
    return True


def _parse(spec: str, source: str) -> torch.device:
    try:
        device = torch.device(spec.strip())
    except (RuntimeError, ValueError):
        raise ValueError(
            f"{source} asks for device {spec!r}, which is not a device name; "
            f"use one of {', '.join(_KNOWN_KINDS)} (optionally with an index, like 'cuda:1')"
        ) from None
    if device.type not in _KNOWN_KINDS:
        raise ValueError(f"{source} asks for device {spec!r}; use one of {', '.join(_KNOWN_KINDS)}")
    if not _is_available(device.type):
        raise RuntimeError(
            f"{source} asks for device {spec!r}, but this machine has no {device.type.upper()} "
            f"available to PyTorch; unset it or choose 'cpu'"
        )
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise RuntimeError(
            f"{source} asks for {spec!r}, but only {torch.cuda.device_count()} CUDA device(s) exist"
        )
    return device


def pick_device(preferred: str | torch.device | None = None) -> torch.device:
    """Return the device lessons should use.

    Order: ``preferred`` if given, then the ``COURSE_DEVICE`` environment variable, then the first
    available of CUDA, MPS and CPU. Asking for a device that is not there raises a clear error
    instead of silently falling back, so a typo never hides a slow CPU run.
    """
    if preferred is not None:
        if isinstance(preferred, torch.device):
            preferred = str(preferred)
        if not isinstance(preferred, str):
            raise TypeError(f"preferred must be a device name or torch.device, got {type(preferred).__name__}")
        return _parse(preferred, "pick_device(preferred=...)")
    override = os.environ.get(DEVICE_ENV_VAR, "").strip()
    if override:
        return _parse(override, f"the environment variable {DEVICE_ENV_VAR}")
    for kind in ("cuda", "mps"):
        if _is_available(kind):
            return torch.device(kind)
    return torch.device("cpu")


def describe_device(device: torch.device) -> str:
    """Return a one-line, human description of ``device`` (the GPU's name where there is one)."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return "cpu"
