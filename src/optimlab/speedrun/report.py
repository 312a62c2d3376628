"""Speedrun results: the summary over seeds, the printed table and the JSON file."""

from __future__ import annotations

import json
import os
import platform
import statistics
from pathlib import Path
from typing import Any

import torch

from optimlab.train.denormals import threads_flushing


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (None where there are too few values)."""
    if not values:
        return None, None
    std = statistics.stdev(values) if len(values) > 1 else None
    return statistics.fmean(values), std


def summarize(runs: list[dict[str, Any]], target: float) -> dict[str, Any]:
    """Mean and sample std of time-to-target (over the seeds that reached the target)
    and of final accuracy (over all seeds), and how many seeds reached the target."""
    times = [r["time_to_target"] for r in runs if r["time_to_target"] is not None]
    finals = [r["final_accuracy"] for r in runs if r["final_accuracy"] is not None]
    t_mean, t_std = _mean_std(times)
    a_mean, a_std = _mean_std(finals)
    return {
        "target": target,
        "seeds": len(runs),
        "reached": len(times),
        "time_to_target_mean": t_mean,
        "time_to_target_std": t_std,
        "final_accuracy_mean": a_mean,
        "final_accuracy_std": a_std,
        "total_time_mean": _mean_std([r["total_time"] for r in runs])[0],
    }


def _fmt(value: float | None, spec: str, scale: float = 1.0) -> str:
    return "-" if value is None else format(value * scale, spec)


def format_table(runs: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    """A per-seed table and the mean +- std lines, as printed by ``optimlab speedrun``."""
    pct = f"{summary['target'] * 100:g}%"
    head = f"to {pct} s"
    lines = [f"{'seed':>4}  {'load s':>6}  {head:>10}  {'final acc %':>11}  {'total s':>7}"]
    for r in runs:
        lines.append(
            f"{r['seed']:>4}  {r['load_time']:>6.2f}  {_fmt(r['time_to_target'], '.1f'):>10}  "
            f"{_fmt(r['final_accuracy'], '.2f', 100):>11}  {r['total_time']:>7.1f}"
        )
    s = summary
    lines.append(
        f"reached {pct}: {s['reached']}/{s['seeds']} seeds; time to target "
        f"{_fmt(s['time_to_target_mean'], '.1f')} +- {_fmt(s['time_to_target_std'], '.1f')} s "
        "(mean +- sample std over the seeds that reached it)"
    )
    lines.append(
        f"final accuracy {_fmt(s['final_accuracy_mean'], '.2f', 100)} +- "
        f"{_fmt(s['final_accuracy_std'], '.2f', 100)} %"
    )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "flush_denormal": threads_flushing(),
    }
    if hasattr(os, "getloadavg"):
        info["load_average"] = list(os.getloadavg())
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def write_json(path: str | Path, result: dict[str, Any]) -> Path:
    """Write the results atomically (a killed run never leaves a half-written file)."""
    from optimlab.io import atomic_write_text

    return atomic_write_text(path, json.dumps(result, indent=2) + "\n")
