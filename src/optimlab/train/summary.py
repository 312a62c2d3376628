"""The run summary: status, budget used, best and final metrics, wall time."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from optimlab.errors import OptimlabError
from optimlab.train.loggers import _json_value
from optimlab.train.monitor import resolve_mode


def best_epoch(history: list[dict[str, Any]], monitor: str, mode: str = "auto") -> dict[str, Any]:
    """The history record with the best finite ``monitor`` value (the first on ties);
    empty when no record has one."""
    try:
        direction = resolve_mode(monitor, mode)
    except OptimlabError:
        direction = "min"
    best: dict[str, Any] = {}
    for record in history:
        value = record.get(monitor)
        if not isinstance(value, int | float) or not math.isfinite(value):
            continue
        if not best:
            best = record
        elif (value < best[monitor]) if direction == "min" else (value > best[monitor]):
            best = record
    return best


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _message(trainer: Any, status: str) -> str:
    done = f"{_count(trainer.epoch, 'epoch')} ({_count(trainer.step, 'step')})"
    if status == "completed":
        return f"completed {done}"
    if status == "early_stopped":
        return f"stopped early after {done}"
    if status == "time_budget":
        return f"time budget of {trainer.seconds:g} s used up after {done}"
    where = trainer.diverged_at or {}
    text = (
        f"the training loss became {where.get('loss')} in epoch {where.get('epoch')} "
        f"at step {where.get('step')}; "
    )
    saved = trainer.last_saved
    if saved is None and trainer.resumed_from is not None:
        saved = {**trainer.resumed_from, "path": trainer._resume_path()}
    if trainer.out_dir is None:
        text += "no checkpoint was written (no output directory)"
    elif saved is None:
        text += "no checkpoint had been written yet"
    else:
        path = Path(saved["path"])
        if path.is_relative_to(trainer.out_dir):
            path = path.relative_to(trainer.out_dir)
        text += (
            f"the last good checkpoint (after {saved['epoch']} epochs, step {saved['step']}) "
            f"is kept in {path.as_posix()}"
        )
    return text


def build_summary(trainer: Any) -> dict[str, Any]:
    """The summary of a finished (or diverged) run as a JSON-ready dict.

    ``optimizer`` is the registry name, as the run's settings (``config``) spell it, or
    None for a run given no settings; ``optimizer_class`` is the optimizer's class."""
    status = trainer.status or "completed"
    history = trainer.history
    best = best_epoch(history, trainer.monitor)
    return {
        "status": status,
        "message": _message(trainer, status),
        "problem": trainer.setup.name,
        "optimizer": (trainer.config or {}).get("optimizer"),
        "optimizer_class": type(trainer.optimizer).__name__,
        "epochs": trainer.epoch,
        "steps": trainer.step,
        "wall_time": trainer.elapsed,
        "monitor": trainer.monitor,
        "best": dict(best),
        "final": dict(history[-1]) if history else {},
        "restored_epoch": trainer.restored_epoch,
        "diverged_at": trainer.diverged_at,
        "seed": trainer.seed,
    }


def summary_json(summary: dict[str, Any]) -> str:
    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return _json_value(v)

    return json.dumps(clean(summary), indent=2) + "\n"
