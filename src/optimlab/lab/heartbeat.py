"""Whether the worker that holds a trial is still alive, across machines: Optuna's heartbeat.

While a worker holds a trial, a thread of its process records the trial's heartbeat
every ``interval`` seconds (Optuna's ``trial_heartbeats`` table, stamped with the
database server's clock, so machines whose clocks disagree still agree on it). A
RUNNING trial whose last heartbeat is more than ``grace`` seconds old belongs to a worker
that died with its process or its machine (or lost its database for that long).

What governs what (one mechanism each):

* Who holds a trial: the lab's conditional claim (``optimlab.lab.store``).
* Whether its holder lives: on the same host, the holder's pid (exact and immediate),
  or a stale heartbeat (its pid taken by another process since);
  elsewhere, this heartbeat alone. With the heartbeat turned off (interval 0), a worker
  silent for ``STALE_AFTER`` seconds (``optimlab.lab.store``) counts as gone, and only a
  runner that starts, or whose worker process died, looks.
* What becomes of a dead holder's trial: ``Store.recover_stale`` alone marks it
  "interrupted", closes it with a conditional RUNNING -> FAIL and enqueues its run again.
  Optuna's stale-trial callbacks (``RetryFailedTrialCallback``) are not used: they close
  the trial without the lab's bookkeeping, and the lab would count the retry as a
  duplicate of the run it retries.

Workers with nothing left to claim look every heartbeat, so a run whose worker died
goes back in the queue about ``grace`` seconds after its last heartbeat. Every runner on
one database should use the same settings: a runner without the heartbeat records none,
and a trial without heartbeats is judged by its host's pid only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import optuna
import sqlalchemy

from optimlab.errors import OptimlabError

INTERVAL = 10  # seconds between two heartbeats, by default
GRACE_BEATS = 6  # the default grace period, in heartbeats


@dataclass(frozen=True)
class Heartbeat:
    """``interval`` seconds between heartbeats (0: off) and the ``grace`` seconds after
    which a trial without one is taken for dead."""

    interval: int = 0
    grace: int = 0

    @property
    def on(self) -> bool:
        return self.interval > 0


OFF = Heartbeat()


def heartbeat_settings(interval: int | None, grace: int | None) -> Heartbeat:
    """The heartbeat of ``interval`` seconds (default ``INTERVAL``; 0 turns it off) and
    ``grace`` seconds (default ``GRACE_BEATS`` heartbeats), checked."""
    for name, value in (("heartbeat interval", interval), ("grace period", grace)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise OptimlabError(f"invalid {name}: {value!r}; valid: whole seconds")
    if interval is None:
        interval = INTERVAL
    if interval < 0:
        raise OptimlabError(
            f"invalid heartbeat interval: {interval}; valid: whole seconds >= 1, or 0 for none"
        )
    if interval == 0:
        if grace is not None:
            raise OptimlabError(
                f"invalid grace period: {grace}; it needs a heartbeat (an interval >= 1 s)"
            )
        return OFF
    grace = GRACE_BEATS * interval if grace is None else grace
    if grace < 2 * interval:
        raise OptimlabError(
            f"invalid grace period: {grace} s; valid: at least two heartbeats "
            f"({2 * interval} s for a heartbeat every {interval} s), so that one late "
            "heartbeat does not give a live worker's run away"
        )
    return Heartbeat(interval, grace)


def storage_kwargs(heartbeat: Heartbeat) -> dict[str, int]:
    """Optuna's ``RDBStorage`` arguments for ``heartbeat``."""
    if not heartbeat.on:
        return {}
    return {"heartbeat_interval": heartbeat.interval, "grace_period": heartbeat.grace}


def enabled(storage: optuna.storages.BaseStorage) -> bool:
    """Whether ``storage`` records heartbeats."""
    return isinstance(storage, optuna.storages.RDBStorage) and bool(storage.heartbeat_interval)


def beat(storage: optuna.storages.BaseStorage, trial_id: int) -> None:
    """Record one heartbeat of ``trial_id`` now (nothing when the storage has none)."""
    if enabled(storage):
        storage.record_heartbeat(trial_id)


def stale_trial_ids(storage: optuna.storages.BaseStorage, study_id: int) -> set[int]:
    """The RUNNING trials of the study whose last heartbeat is older than the grace period
    (none when the storage has no heartbeat; a trial that never had one is not listed)."""
    if not enabled(storage):
        return set()
    return set(storage._get_stale_trial_ids(study_id))


@contextmanager
def beating(storage: optuna.storages.BaseStorage, trial_id: int) -> Iterator[None]:
    """Record ``trial_id``'s heartbeat every interval, from a thread, while the block runs."""
    if not enabled(storage):
        yield
        return
    done = threading.Event()

    def loop() -> None:
        while not done.wait(storage.heartbeat_interval):
            try:
                storage.record_heartbeat(trial_id)
            except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError):
                pass  # a missed heartbeat; the grace period allows several

    thread = threading.Thread(target=loop, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
