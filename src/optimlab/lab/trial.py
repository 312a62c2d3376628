"""One training run of a study, from a plain JSON-able configuration.

A trial's configuration names its contender as the study file's ``[[optimizers]]``
entry does (``label``, and ``name``, the optimizer's registry name) and everything its
run depends on (problem, hyperparameters ``params``, schedule, regularization, seed,
budget, threads); it becomes a :class:`optimlab.run.RunConfig` and is built by
:func:`optimlab.run.build_run`, as ``optimlab train`` builds its run. The run's identity
(with the label) names its directory: the same configuration always maps to the same
run directory, and rerunning it there resumes from the last checkpoint.

A trial whose run needs several processes (a launched ``parallel`` method such as
``sync`` with ``nproc = 2``, or ``hogwild``) starts them as ``optimlab train --parallel M
--nproc N`` does (:func:`optimlab.parallel.launch.launch`,
:func:`optimlab.parallel.hogwild.run_hogwild`); its record is read from what rank 0
writes in the run directory (``summary.json``, ``metrics.jsonl``, ``steps.jsonl``). Such a
trial reports no epoch to the study while it runs, so a study with ``pruning = true``
refuses such contenders (:func:`optimlab.lab.spec.load_study`); the study's heartbeat
thread still shows that its worker lives, however long the run takes.
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

from optimlab.parallel.methods import runs_in_processes
from optimlab.run import RunConfig, build_run
from optimlab.train import Callback


def run_config(config: dict[str, Any]) -> RunConfig:
    """The :class:`RunConfig` of a study's trial configuration."""
    return RunConfig.from_study_entry(
        problem=config["problem"],
        optimizer=config["name"],
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
        settings = run_config(config).replace(out=str(run_dir))
        if runs_in_processes(settings):
            record.update(_record_in_processes(settings, run_dir, progress))
        else:
            hook = _EpochHook(on_epoch) if on_epoch else None
            run = build_run(settings, callbacks=[hook] if hook else [], progress=progress)
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


def _record_in_processes(settings: RunConfig, run_dir: Path, progress: bool) -> dict[str, Any]:
    """Run ``settings`` in the processes ``optimlab train`` starts for it on this machine
    (the elastic launcher on loopback; hogwild's shared-memory processes); the record
    from the files of the process that writes (rank 0)."""
    if settings.parallel == "hogwild":
        from optimlab.parallel.hogwild import run_hogwild

        summary = run_hogwild(settings, resume="auto", progress=progress).summary
    else:
        from optimlab.parallel.launch import LaunchOptions, launch

        summary = launch(settings, LaunchOptions(), resume="auto", progress=progress)
    history = _history(_read_jsonl(run_dir / "metrics.jsonl"))
    return {
        "status": (summary or {}).get("status", "completed"),
        "history": history,
        "step_log": _read_jsonl(run_dir / "steps.jsonl")[-200:],
        "final": _last_finite(history),
    }


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a run's ``.jsonl`` file, its non-finite numbers (written as the
    strings "nan", "inf", "-inf") read back as floats."""
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [{k: _number(v) for k, v in row.items()} for row in rows]


def _number(value: Any) -> Any:
    if value in ("nan", "inf", "-inf"):
        return float(value)
    return value


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
