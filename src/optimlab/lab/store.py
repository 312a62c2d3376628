"""The study's results store: Optuna storage (SQLite by default, any SQLAlchemy URL).

Each (problem, optimizer label, phase) is an Optuna study named
``"{phase}:{problem}:{label}"``; each training run is an Optuna trial whose user
attributes hold its configuration, run key, status, per-epoch history and sampled
step losses. Trials are enqueued up front (state WAITING) and claimed atomically by
workers (WAITING -> RUNNING is refused by the storage when another worker won),
so several processes, or several machines sharing one database, split the work.

A runner killed mid-trial leaves that trial RUNNING. On the next start, RUNNING
trials whose worker is gone (same host, dead pid) or silent for longer than
``STALE_AFTER`` seconds are marked failed ("interrupted") and enqueued again with
the same configuration, so the rerun resumes from the run's last checkpoint.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import optuna
from optuna.trial import TrialState

from optimlab.errors import OptimlabError

META_STUDY = "meta"
# Median rule (Optuna's default) once three trials have finished, from the second epoch:
# a trial whose metric so far is worse than the median of earlier trials at the same epoch
# stops. Used only when the study asks for pruning.
PRUNER = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
STALE_AFTER = 600.0
PHASES = ("tune", "final")
# trials that stand for no run of their own: retried elsewhere, or enqueued twice
SKIP_STATUSES = (None, "interrupted", "duplicate")


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """Connect to ``url``; an unreachable database gives a clear error."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url))
    except Exception as err:  # SQLAlchemy raises many kinds; all mean "cannot use it"
        raise OptimlabError(
            f"cannot open storage {url!r}: {type(err).__name__}: {str(err).splitlines()[0]}"
        ) from None


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # several worker processes write: wait for the lock instead of failing
        return {"connect_args": {"timeout": 60}}
    return {}


def study_name(phase: str, problem: str, label: str) -> str:
    return f"{phase}:{problem}:{label}"


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.storage = open_storage(url)

    # ------------------------------------------------------------------ studies
    def study(self, name: str, direction: str | None = None) -> optuna.Study:
        """Load study ``name``; with ``direction``, create it first if it is missing."""
        if direction is None:
            return optuna.load_study(study_name=name, storage=self.storage, pruner=PRUNER)
        return optuna.create_study(
            study_name=name,
            storage=self.storage,
            pruner=PRUNER,
            direction=direction,
            load_if_exists=True,
        )

    def study_names(self) -> list[str]:
        return [s.study_name for s in self.storage.get_all_studies()]

    def set_meta(self, key: str, value: Any) -> None:
        self.study(META_STUDY, "maximize").set_user_attr(key, value)

    def meta(self, key: str, default: Any = None) -> Any:
        if META_STUDY not in self.study_names():
            return default
        return self.study(META_STUDY).user_attrs.get(key, default)

    # ------------------------------------------------------------------- trials
    def trials(self, name: str, states: tuple[TrialState, ...] | None = None):
        if name not in self.study_names():
            return []
        return self.study(name).get_trials(deepcopy=False, states=states)

    def enqueue(self, name: str, config: dict[str, Any], key: str, direction: str) -> None:
        study = self.study(name, direction)
        study.enqueue_trial({}, user_attrs={"config": config, "run_key": key})

    def claim(self, names: list[str]) -> tuple[str, optuna.Trial] | None:
        """Take one WAITING trial from the first of ``names`` that has one."""
        existing = set(self.study_names())
        for name in [n for n in names if n in existing]:
            study = self.study(name)
            trials = study.get_trials(deepcopy=False)
            for frozen in trials:
                if frozen.state != TrialState.WAITING:
                    continue
                if not self.storage.set_trial_state_values(frozen._trial_id, TrialState.RUNNING):
                    continue  # another worker took it
                trial = optuna.Trial(study, frozen._trial_id)
                if self._duplicate(frozen, trials):
                    self.storage.set_trial_user_attr(frozen._trial_id, "status", "duplicate")
                    self.storage.set_trial_state_values(frozen._trial_id, TrialState.FAIL)
                    continue
                self.heartbeat(trial)
                return name, trial
        return None

    @staticmethod
    def _duplicate(frozen, trials) -> bool:
        """Another trial of the study already runs or ran this run (two workers enqueued it)."""
        key = frozen.user_attrs.get("run_key")
        for other in trials:
            if other._trial_id == frozen._trial_id or other.user_attrs.get("run_key") != key:
                continue
            if other.state == TrialState.RUNNING and other._trial_id < frozen._trial_id:
                return True
            if other.state != TrialState.RUNNING and other.user_attrs.get("status") not in (
                None,
                "interrupted",
                "duplicate",
            ):
                return True
        return False

    def heartbeat(self, trial: optuna.Trial) -> None:
        trial.set_user_attr(
            "worker", {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}
        )

    def finish(self, trial: optuna.Trial, record: dict[str, Any], value: float | None) -> None:
        """Store the run's record and close the trial (diverged/failed -> FAIL state)."""
        for key in ("status", "final", "error", "wall_time"):
            trial.set_user_attr(key, record.get(key))
        trial.set_user_attr("history", json.dumps(record.get("history", [])))
        trial.set_user_attr("step_log", json.dumps(record.get("step_log", [])))
        status = record["status"]
        if status == "pruned":
            state, values = TrialState.PRUNED, None
        elif status in ("diverged", "failed") or value is None:
            state, values = TrialState.FAIL, None
        else:
            state, values = TrialState.COMPLETE, [value]
        self.storage.set_trial_state_values(trial._trial_id, state, values)

    def recover_stale(self, names: list[str]) -> int:
        """Re-enqueue RUNNING trials whose worker is gone; returns how many."""
        count = 0
        host = socket.gethostname()
        existing = set(self.study_names())
        for name in [n for n in names if n in existing]:
            study = self.study(name)
            for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                worker = frozen.user_attrs.get("worker") or {}
                pid = worker.get("pid")
                # on this host: the worker's process is gone (or its pid is now ours)
                same_host_dead = worker.get("host") == host and (
                    pid == os.getpid() or not _alive(pid)
                )
                silent = time.time() - worker.get("time", 0) > STALE_AFTER
                if not (same_host_dead or silent):
                    continue
                self.storage.set_trial_user_attr(frozen._trial_id, "status", "interrupted")
                self.storage.set_trial_state_values(frozen._trial_id, TrialState.FAIL)
                study.enqueue_trial(
                    {},
                    user_attrs={
                        "config": frozen.user_attrs["config"],
                        "run_key": frozen.user_attrs["run_key"],
                    },
                )
                count += 1
        return count

    # ------------------------------------------------------------------ records
    def records(self) -> Iterator[dict[str, Any]]:
        """Every finished run (one per run key and phase), as the report reads them."""
        for name in self.study_names():
            if name == META_STUDY:
                continue
            phase = name.split(":", 1)[0]
            seen: set[str] = set()
            finished = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
            for t in self.trials(name, finished):
                attrs = t.user_attrs
                if attrs.get("status") in SKIP_STATUSES or attrs["run_key"] in seen:
                    continue
                seen.add(attrs["run_key"])
                config = attrs["config"]
                yield {
                    "problem": config["problem"],
                    "optimizer": config["label"],
                    "optimizer_name": config["optimizer"],
                    "phase": phase,
                    "params": config["params"],
                    "seed": config["seed"],
                    "schedule": config.get("schedule"),
                    "regularize": config.get("regularize"),
                    "fold": config.get("fold"),
                    "status": attrs["status"],
                    "history": json.loads(attrs.get("history", "[]")),
                    "step_log": json.loads(attrs.get("step_log", "[]")),
                    "final": attrs.get("final") or {},
                    "error": attrs.get("error"),
                    "wall_time": attrs.get("wall_time"),
                    "run_key": attrs["run_key"],
                }

    def counts(self) -> dict[str, int]:
        """Trials by state over all lab studies (interrupted retries not counted twice)."""
        out = {"waiting": 0, "running": 0, "done": 0, "failed": 0, "pruned": 0}
        for name in self.study_names():
            if name == META_STUDY:
                continue
            for t in self.trials(name):
                status = t.user_attrs.get("status")
                if t.state == TrialState.WAITING:
                    out["waiting"] += 1
                elif t.state == TrialState.RUNNING:
                    out["running"] += 1
                elif status in SKIP_STATUSES:
                    continue
                elif t.state == TrialState.PRUNED:
                    out["pruned"] += 1
                elif status == "failed":
                    out["failed"] += 1
                else:
                    out["done"] += 1
        return out


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
