"""The machine a result was measured on: CPU model and cores, torch and Python versions."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo; elsewhere what platform reports)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def describe() -> dict[str, Any]:
    """A JSON-ready description of this machine and software."""
    import torch

    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 1,
        "usable_cores": usable_cores(),
        "gpu": cuda,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.machine()}",
    }


def summary(machine: dict[str, Any]) -> str:
    """One line, e.g. ``"AMD EPYC 7B13, 2 cores (2 usable), torch 2.13.0, Python 3.11.2"``."""
    cores = f"{machine.get('cores')} cores ({machine.get('usable_cores')} usable)"
    gpu = f", {machine['gpu']}" if machine.get("gpu") else ""
    return (
        f"{machine.get('cpu')}, {cores}{gpu}, torch {machine.get('torch')}, "
        f"Python {machine.get('python')}"
    )
