"""The study's results store: Optuna storage (SQLite by default, any SQLAlchemy URL).

Each (problem, optimizer label, phase) is an Optuna study named
``"{phase}:{problem}:{label}"``; each training run is an Optuna trial whose user
attributes hold its configuration, run key, status, per-epoch history, sampled step
losses and, for a failed run, its error and traceback. Trials are enqueued up front
(state WAITING) and claimed by workers, so several processes, or several machines
sharing one database, split the work.

Claiming is one conditional SQL statement run through the storage's SQLAlchemy engine,
``UPDATE trials SET state = 'RUNNING' ... WHERE trial_id = :id AND state = 'WAITING'``:
the database applies it to one claimant only, on SQLite and PostgreSQL alike, and the
claimant whose statement changed no row moves on. (Optuna's own WAITING -> RUNNING
transition reads the state and writes it in two steps, which SQLite does not make
atomic across processes.) A run key enqueued twice in one study (two planners raced)
runs once: of the trials that carry it, the one with the lowest id that is not
bookkeeping runs, and a claimant holding a later one marks it "duplicate".

A worker killed mid-trial leaves that trial RUNNING. When a runner starts, when one
of its worker processes dies, and every heartbeat while a worker waits for others'
runs, RUNNING trials whose worker is gone are marked failed ("interrupted") and
enqueued again with the same configuration, so the rerun resumes from the run's last
checkpoint where that checkpoint is (the same machine, or a shared directory). Gone
means: on this host, its pid is dead; on any host, its heartbeat is older than the
grace period (``optimlab.lab.heartbeat``); with the heartbeat turned off, silent for
longer than ``STALE_AFTER`` seconds. The
RUNNING -> FAIL step is conditional too, so two runners recovering at once enqueue
one retry. Interrupted and duplicate trials are bookkeeping: they stand for no run of
their own, and ``counts`` lists them apart so that its numbers add up to the trials
in storage.
"""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import TrialState

from optimlab.errors import OptimlabError
from optimlab.lab.database import cannot_open, engine_kwargs
from optimlab.lab.heartbeat import (
    OFF,
    Heartbeat,
    beat,
    enabled,
    stale_trial_ids,
    storage_kwargs,
)

META_STUDY = "meta"
# Median rule (Optuna's default) once three trials have finished, from the second epoch:
# a trial whose metric so far is worse than the median of earlier trials at the same epoch
# stops. Used only when the study asks for pruning.
PRUNER = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
STALE_AFTER = 600.0
PHASES = ("tune", "final")
# trials that stand for no run of their own: retried elsewhere, or enqueued twice
BOOKKEEPING = ("interrupted", "duplicate")
SKIP_STATUSES = (None, *BOOKKEEPING)
# Conditional state changes: the WHERE clause makes each one take effect for one caller
# only. States are written as literals (Optuna stores enum names; on PostgreSQL the
# column is an enum type, which a literal converts to and a text parameter would not).
_CLAIM = sqlalchemy.text(
    "UPDATE trials SET state = 'RUNNING', datetime_start = :now "
    "WHERE trial_id = :trial_id AND state = 'WAITING'"
).bindparams(sqlalchemy.bindparam("now", type_=sqlalchemy.DateTime()))
# The worker attribute as Optuna stores user attributes (one JSON value per key)
_FORGET_WORKER = sqlalchemy.text(
    "DELETE FROM trial_user_attributes WHERE trial_id = :trial_id AND key = 'worker'"
)
_NAME_WORKER = sqlalchemy.text(
    "INSERT INTO trial_user_attributes (trial_id, key, value_json) "
    "VALUES (:trial_id, 'worker', :value)"
)
_ABANDON = sqlalchemy.text(
    "UPDATE trials SET state = 'FAIL', datetime_complete = :now "
    "WHERE trial_id = :trial_id AND state = 'RUNNING'"
).bindparams(sqlalchemy.bindparam("now", type_=sqlalchemy.DateTime()))


def _this_worker() -> dict[str, Any]:
    """Who holds a trial: this host and process, and when it last said so."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}


def open_storage(url: str, heartbeat: Heartbeat = OFF) -> optuna.storages.BaseStorage:
    """Connect to ``url`` (with ``heartbeat``); an unusable database gives a clear error."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            # Optuna calls its heartbeat arguments experimental; the lab relies on them
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs(url), **storage_kwargs(heartbeat)
            )
    except Exception as err:  # SQLAlchemy raises many kinds; all mean "cannot use it"
        raise cannot_open(url, err) from None


STUDY_FILE = "study.db"  # the default storage: a SQLite file in the study's directory


def default_storage(out_dir: Path) -> str:
    """The storage URL of a study in ``out_dir`` when none is given."""
    return f"sqlite:///{(Path(out_dir) / STUDY_FILE).resolve()}"


def open_study(out_dir: Path, storage: str | None = None) -> Store:
    """The store of an existing study: ``storage``, else the directory's own file (an
    error naming the directory when it holds none)."""
    if storage is None and not (Path(out_dir) / STUDY_FILE).exists():
        raise OptimlabError(
            f"{str(out_dir)!r} holds no study (no {STUDY_FILE}); run "
            "'optimlab study run STUDY.toml --out DIR' first"
        )
    return Store(storage or default_storage(out_dir))


def study_name(phase: str, problem: str, label: str) -> str:
    return f"{phase}:{problem}:{label}"


class Store:
    def __init__(self, url: str, heartbeat: Heartbeat = OFF) -> None:
        self.url = url
        self.storage = open_storage(url, heartbeat)

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
        return self.meta_attrs().get(key, default)

    def meta_attrs(self) -> dict[str, Any]:
        """Every meta attribute (the study file, the plan's and decisions' markers)."""
        if META_STUDY not in self.study_names():
            return {}
        return self.study(META_STUDY).user_attrs

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
            for frozen in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                # the heartbeat first: a trial is never RUNNING without one, even when
                # this process dies right after the claim
                beat(self.storage, frozen._trial_id)
                if not self._claim(frozen._trial_id):
                    continue  # another worker took it
                trial = optuna.Trial(study, frozen._trial_id)
                # read again: trials claimed or finished since the list above count too
                if self._duplicate(frozen, study.get_trials(deepcopy=False)):
                    self.storage.set_trial_user_attr(frozen._trial_id, "status", "duplicate")
                    self.storage.set_trial_state_values(frozen._trial_id, TrialState.FAIL)
                    continue
                return name, trial  # _claim named this process as its worker
        return None

    def _claim(self, trial_id: int) -> bool:
        """WAITING -> RUNNING with this process named as the trial's worker, in one
        transaction: a RUNNING trial always names its holder, even when the holder is
        stopped right after its claim. True when this process got the trial."""
        worker = {"trial_id": trial_id, "value": json.dumps(_this_worker())}
        with self.storage.engine.begin() as connection:
            claimed = connection.execute(_CLAIM, {"trial_id": trial_id, "now": _db_now()})
            if claimed.rowcount != 1:
                return False  # another worker took it
            connection.execute(_FORGET_WORKER, worker)
            connection.execute(_NAME_WORKER, worker)
            return True

    def _transition(self, statement: sqlalchemy.TextClause, trial_id: int) -> bool:
        """Run a conditional state change; True when it changed this trial's row."""
        with self.storage.engine.begin() as connection:
            result = connection.execute(statement, {"trial_id": trial_id, "now": _db_now()})
            return result.rowcount == 1

    @staticmethod
    def _duplicate(frozen, trials) -> bool:
        """An earlier trial of the study stands for the same run (it was enqueued twice).

        The earliest trial of a run key that is not bookkeeping is the one that runs;
        every claimant decides alike, so exactly one of them trains the run.
        """
        key = frozen.user_attrs.get("run_key")
        return any(
            other._trial_id < frozen._trial_id
            and other.user_attrs.get("run_key") == key
            and other.user_attrs.get("status") not in BOOKKEEPING
            for other in trials
        )

    def heartbeat(self, trial: optuna.Trial) -> None:
        trial.set_user_attr("worker", _this_worker())

    def finish(self, trial: optuna.Trial, record: dict[str, Any], value: float | None) -> bool:
        """Store the run's record and close the trial (diverged/failed -> FAIL state).

        Returns False when the trial was closed already: a runner took it over after
        this worker was silent for ``STALE_AFTER`` seconds, and its retry will record it.
        """
        try:
            for key in ("status", "final", "error", "traceback", "wall_time"):
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
        except optuna.exceptions.UpdateFinishedTrialError:
            return False
        return True

    def recover_stale(self, names: list[str]) -> int:
        """Re-enqueue RUNNING trials whose worker is gone; returns how many."""
        count = 0
        host = socket.gethostname()
        existing = set(self.study_names())
        heartbeat = enabled(self.storage)
        for name in [n for n in names if n in existing]:
            study = self.study(name)
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            stale = stale_trial_ids(self.storage, study._study_id) if running else set()
            for frozen in running:
                worker = frozen.user_attrs.get("worker") or {}
                pid = worker.get("pid")
                # on this host: the worker's process is gone (or its pid is now ours)
                same_host_dead = worker.get("host") == host and (
                    pid == os.getpid() or not _alive(pid)
                )
                if heartbeat:  # the heartbeat stopped
                    gone = frozen._trial_id in stale
                else:  # no word for STALE_AFTER seconds
                    gone = time.time() - worker.get("time", 0) > STALE_AFTER
                if not (same_host_dead or gone):
                    continue
                try:
                    self.storage.set_trial_user_attr(frozen._trial_id, "status", "interrupted")
                except optuna.exceptions.UpdateFinishedTrialError:
                    continue  # it finished after all
                if not self._transition(_ABANDON, frozen._trial_id):
                    continue  # finished meanwhile, or another runner recovered it
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
        """Every finished run (one per run key and phase), as the report reads them.

        A record names its contender as the study file does: ``label`` (the
        ``[[optimizers]]`` entry's label) and ``name`` (its optimizer's registry name),
        next to ``problem``, ``phase``, ``params``, ``seed``, ``schedule``,
        ``regularize``, ``run`` and ``fold`` as the trial was configured, and the run's
        ``status``, ``history``, ``step_log``, ``final``, ``error``, ``traceback``,
        ``wall_time`` and ``run_key``.
        """
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
                config = trial_config(attrs["config"])
                yield {
                    "problem": config["problem"],
                    "label": config["label"],
                    "name": config["name"],
                    "phase": phase,
                    "params": config["params"],
                    "seed": config["seed"],
                    "schedule": config.get("schedule"),
                    "regularize": config.get("regularize"),
                    "run": config.get("run"),
                    "fold": config.get("fold"),
                    "status": attrs["status"],
                    "history": json.loads(attrs.get("history", "[]")),
                    "step_log": json.loads(attrs.get("step_log", "[]")),
                    "final": attrs.get("final") or {},
                    "error": attrs.get("error"),
                    "traceback": attrs.get("traceback"),
                    "wall_time": attrs.get("wall_time"),
                    "run_key": attrs["run_key"],
                }

    def counts(self, phase: str | None = None) -> dict[str, int]:
        """The lab's trials (of one ``phase``, or all) by what they stand for.

        ``done`` (completed or diverged: a result), ``failed``, ``pruned``, ``running``
        and ``waiting`` are runs; ``interrupted`` (retried by a later trial),
        ``duplicate`` (enqueued twice, run once) and ``unrecorded`` (closed without a
        record) are bookkeeping. Together they add up to ``total``, the trials in storage.
        """
        keys = ("waiting", "running", "done", "failed", "pruned", *BOOKKEEPING, "unrecorded")
        out = dict.fromkeys(keys, 0)
        for name in self.study_names():
            if name == META_STUDY or (phase is not None and not name.startswith(f"{phase}:")):
                continue
            for t in self.trials(name):
                out[_category(t)] += 1
        out["total"] = sum(out.values())
        return out


def trial_config(config: dict[str, Any]) -> dict[str, Any]:
    """A trial's stored configuration with the study file's key names.

    A configuration holds the contender's ``label`` and its optimizer's registry
    ``name``, as the ``[[optimizers]]`` entry spells them. Stores written before the
    configuration took those names hold the registry name under ``optimizer``; such a
    configuration is read as if written today (the storage is not rewritten), so an
    older study still resumes and reports.
    """
    if "name" not in config and "optimizer" in config:
        config = {("name" if k == "optimizer" else k): v for k, v in config.items()}
    return config


def _category(t: optuna.trial.FrozenTrial) -> str:
    status = t.user_attrs.get("status")
    if t.state == TrialState.WAITING:
        return "waiting"
    if t.state == TrialState.RUNNING:
        return "running"
    if status in BOOKKEEPING:
        return status
    if status is None:
        return "unrecorded"
    if t.state == TrialState.PRUNED:
        return "pruned"
    return "failed" if status == "failed" else "done"


def _db_now() -> datetime:
    """The time as Optuna's RDB storage writes it: naive UTC, or naive local time in the
    Optuna releases that stored that."""
    from optuna.storages._rdb import models

    if hasattr(models.TrialModel, "_datetime_start_utc"):
        return datetime.now(UTC).replace(tzinfo=None)
    return datetime.now()


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
