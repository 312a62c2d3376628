"""One training run of a study, from a plain JSON-able configuration.

A trial's configuration names its contender (``label``) and everything its run
depends on (problem, optimizer and its hyperparameters, schedule, seed, budget,
threads); it becomes a :class:`optimlab.run.RunConfig` and is built by
:func:`optimlab.run.build_run`, as ``optimlab train`` builds its run. The run's identity
(with the label) names its directory: the same configuration always maps to the same
run directory, and rerunning it there resumes from the last checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from optimlab.run import RunConfig, build_run
from optimlab.train import Callback


def run_config(config: dict[str, Any]) -> RunConfig:
    """The :class:`RunConfig` of a study's trial configuration."""
    return RunConfig.from_study_entry(
        problem=config["problem"],
        optimizer=config["optimizer"],
        params=config["params"],
        schedule=config.get("schedule"),
        regularize=config.get("regularize"),
        budget=config["budget"],
        batch_size=config.get("batch_size"),
        seed=config["seed"],
        threads=config.get("threads"),
        fold=config.get("fold"),
        run=config.get("run"),
    )


def run_key(config: dict[str, Any]) -> str:
    """A short stable hash of the trial: its run's identity and its contender's label
    (two contenders never share a run directory)."""
    text = json.dumps(
        {"run": run_config(config).identity(), "label": config["label"]}, sort_keys=True
    )
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def selection_metric(task: str, metric: str | None, mode: str | None) -> tuple[str, str]:
    """The metric a study selects on and whether higher is better."""
    if metric is None:
        metric = "val_accuracy" if task == "classification" else "val_loss"
    if mode is None:
        mode = "min" if "loss" in metric or "error" in metric else "max"
    return metric, mode


class _EpochHook(Callback):
    """Forwards each epoch's logs to the runner (heartbeat, pruning)."""

    def __init__(self, hook: Callable[[int, dict[str, Any]], bool]) -> None:
        super().__init__()
        self.hook = hook
        self.pruned = False

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self.hook(epoch, logs):
            self.pruned = True
            self.trainer.stop_training = True


def run_trial(
    config: dict[str, Any],
    run_dir: Path,
    *,
    on_epoch: Callable[[int, dict[str, Any]], bool] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Train one configuration in ``run_dir``; returns the run's record.

    ``on_epoch(epoch, logs) -> prune?`` is called after every epoch. Exceptions are
    caught and recorded (status "failed", with the error), never raised.
    """
    start = time.perf_counter()
    record: dict[str, Any] = {"status": "failed", "history": [], "final": {}, "error": None}
    try:
        hook = _EpochHook(on_epoch) if on_epoch else None
        run = build_run(
            run_config(config).replace(out=str(run_dir)),
            callbacks=[hook] if hook else [],
            progress=progress,
        )
        result = run.fit()
        record["status"] = "pruned" if hook and hook.pruned else result.status
        record["history"] = _history(result.history)
        record["step_log"] = result.step_log[-200:]
        record["final"] = _last_finite(record["history"])
    except Exception as err:  # a failed trial is a result; the study goes on
        record["error"] = f"{type(err).__name__}: {err}"
        record["traceback"] = traceback.format_exc(limit=8)
    record["wall_time"] = time.perf_counter() - start
    return record


def _history(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Time made cumulative, for learning curves (epochs count from 1, as everywhere)."""
    out, elapsed = [], 0.0
    for row in rows:
        elapsed += float(row.get("time", 0.0))
        out.append({**_finite_or_none(row), "time": elapsed})
    return out


def _finite_or_none(row: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN/inf: diverged values become None."""
    clean = {}
    for k, v in row.items():
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        clean[k] = v
    return clean


def _last_finite(history: list[dict[str, Any]]) -> dict[str, Any]:
    for row in reversed(history):
        if row.get("loss") is not None:
            return row
    return {}
