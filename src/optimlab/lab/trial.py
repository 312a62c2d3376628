"""One training run of a study, from a plain JSON-able configuration.

A configuration names everything the run depends on (problem, optimizer and its
hyperparameters, schedule, seed, budget), so its hash is the run's identity: the
same configuration always maps to the same run directory, and rerunning it there
resumes from the last checkpoint (``Trainer(resume="auto")``).
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

from optimlab.train import Callback, Trainer


def run_key(config: dict[str, Any]) -> str:
    """A short stable hash of the configuration: the run's identity."""
    text = json.dumps(config, sort_keys=True, default=str)
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


def _schedule(spec: dict[str, Any] | None, lr: float, total_steps: int):
    if not spec:
        return None
    from optimlab.schedules import create
    from optimlab.schedules.registry import run_params

    # the schedule's shape starts from the tuned learning rate and spans the run
    params = run_params(spec["name"], spec.get("params", {}), lr=lr, total_steps=total_steps)
    return create(spec["name"], **params)


def _fold(problem: Any, fold: dict[str, int]) -> Any:
    """The problem with its train/val split replaced by fold ``index`` of ``k``."""
    import dataclasses

    from optimlab.data.folds import kfold_splits

    folds = kfold_splits(problem.splits, fold["k"], seed=fold["seed"])
    return dataclasses.replace(problem, splits=folds[fold["index"]])


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
    import torch

    from optimlab.optim import create as create_optimizer
    from optimlab.problems import build

    start = time.perf_counter()
    record: dict[str, Any] = {"status": "failed", "history": [], "final": {}, "error": None}
    try:
        torch.manual_seed(config["seed"])
        problem = build(config["problem"], seed=config["seed"])
        if config.get("fold"):
            problem = _fold(problem, config["fold"])
        params = dict(config["params"])
        budget = config["budget"]
        batch_size = config.get("batch_size") or problem.batch_size
        n_train = len(problem.splits.train.x) if problem.splits is not None else batch_size
        per_epoch = max(1, math.ceil(n_train / batch_size))
        epochs = budget.get("epochs")
        total = budget.get("steps") or (epochs or problem.epochs) * per_epoch
        schedule = _schedule(config.get("schedule"), params.get("lr", 1e-3), int(total))
        if schedule is not None:
            params["lr"] = schedule  # our optimizers take a schedule as their lr
        optimizer = create_optimizer(config["optimizer"], problem.model.parameters(), **params)
        hook = _EpochHook(on_epoch) if on_epoch else None
        kwargs: dict[str, Any] = {
            "epochs": epochs,
            "steps": budget.get("steps"),
            "seconds": budget.get("seconds"),
            "batch_size": batch_size,
            "seed": config["seed"],
            "callbacks": [hook] if hook else [],
        }
        if config.get("regularize"):
            from optimlab.regularize.options import apply

            problem, kwargs = apply(
                config["regularize"], problem, kwargs, optimizer=optimizer, total_steps=int(total)
            )
        trainer = Trainer(
            problem,
            optimizer,
            out_dir=run_dir,
            resume="auto",
            config=config,
            progress=progress,
            **kwargs,
        )
        result = trainer.run()
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
    """Epochs counted from 1 and time made cumulative, for learning curves."""
    out, elapsed = [], 0.0
    for row in rows:
        elapsed += float(row.get("time", 0.0))
        out.append({**_finite_or_none(row), "epoch": int(row["epoch"]) + 1, "time": elapsed})
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
