"""The results store on a real SQLite file: a run enqueued twice runs once, stale trials
are retried once, and the counts add up to the trials in storage. Claims and the
planning lock are checked on a real PostgreSQL server too (``postgres_url``, see
tests/postgres_server.py)."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import uuid

import pytest
from optuna.trial import TrialState

from optimlab.lab.lock import planning_lock
from optimlab.lab.store import Store

NAME = "tune:p:o"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _rows(path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("select count(*) from trials").fetchone()[0]


def _record(status: str) -> dict:
    return {"status": status, "final": {}, "history": [], "error": None, "wall_time": 0.1}


def test_a_run_enqueued_twice_runs_once_and_counts_add_up(tmp_path):
    path = tmp_path / "study.db"
    store = Store(f"sqlite:///{path}")
    for key in ("a", "a", "b", "c", "d", "e"):
        config = {"problem": "p", "label": "o", "name": "sgd", "params": {}, "seed": 0}
        store.enqueue(NAME, {**config, "key": key}, key, "maximize")

    _, first = store.claim([NAME])
    assert first.user_attrs["run_key"] == "a"
    _, second = store.claim([NAME])  # the second "a" is skipped as a duplicate
    assert second.user_attrs["run_key"] == "b"
    assert store.counts()["duplicate"] == 1

    # "a"'s worker died: its trial becomes bookkeeping and "a" is enqueued again, once;
    # "b"'s worker (another live process) keeps its trial
    host = socket.gethostname()
    first.set_user_attr("worker", {"host": host, "pid": _dead_pid(), "time": time.time()})
    second.set_user_attr("worker", {"host": host, "pid": os.getppid(), "time": time.time()})
    assert store.recover_stale([NAME]) == 1
    assert store.recover_stale([NAME]) == 0
    store.finish(second, _record("failed"), None)
    _, pruned = store.claim([NAME])
    store.finish(pruned, _record("pruned"), None)
    store.claim([NAME])  # "d": running
    _, done = store.claim([NAME])
    store.finish(done, _record("completed"), 0.9)
    (retry,) = store.trials(NAME, (TrialState.WAITING,))  # after "e": the retry of "a"
    assert retry.user_attrs["run_key"] == "a"

    counts = store.counts()
    assert {k: v for k, v in counts.items() if v} == {
        "done": 1,
        "failed": 1,
        "pruned": 1,
        "running": 1,
        "waiting": 1,
        "interrupted": 1,
        "duplicate": 1,
        "total": 7,
    }
    assert counts["total"] == _rows(path) == sum(v for k, v in counts.items() if k != "total")
    assert store.counts("final")["total"] == 0
    assert sorted(r["run_key"] for r in store.records()) == ["b", "c", "e"]


def test_a_finished_trial_is_not_recorded_twice(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'study.db'}")
    store.enqueue(NAME, {}, "a", "maximize")
    _, trial = store.claim([NAME])
    assert store.finish(trial, _record("completed"), 0.5)
    # a runner that took the trial over meanwhile closed it: the late result is dropped
    assert not store.finish(trial, _record("completed"), 0.7)
    assert store.trials(NAME)[0].values == [0.5]


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    """A new storage: a SQLite file, or a database on the tests' PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("postgres_url")


CLAIMER = """
import sys
from optimlab.lab.store import Store
store = Store(sys.argv[1])
taken = []
while (claimed := store.claim([sys.argv[2]])) is not None:
    taken.append(claimed[1]._trial_id)
print(" ".join(map(str, taken)))
"""


def test_each_waiting_trial_is_claimed_by_one_process(url):
    store = Store(url)
    name = f"tune:p:{uuid.uuid4().hex}"  # a fresh study, also in a shared database
    for i in range(100):
        store.enqueue(name, {"i": i}, f"key{i}", "maximize")
    claimers = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, url, name],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        for _ in range(4)
    ]
    taken = []
    for p in claimers:
        out, _ = p.communicate(timeout=600)
        assert p.returncode == 0
        taken.append([int(t) for t in out.split()])
    every = [t for ts in taken for t in ts]
    assert len(every) == 100 and len(set(every)) == 100  # every trial once, none twice
    assert sum(1 for ts in taken if ts) >= 2  # the processes did compete
    assert len(store.trials(name, (TrialState.RUNNING,))) == 100


def test_the_planning_lock_is_exclusive_across_processes(url):
    code = (
        "import sys\n"
        "from optimlab.lab.lock import planning_lock\n"
        "print('waiting', flush=True)\n"
        "with planning_lock(sys.argv[1]):\n"
        "    print('held', flush=True)\n"
    )
    with planning_lock(url):
        other = subprocess.Popen(
            [sys.executable, "-c", code, url], stdout=subprocess.PIPE, text=True
        )
        assert other.stdout.readline() == "waiting\n"
        time.sleep(2.0)
        assert other.poll() is None  # still waiting for the lock
    assert other.stdout.readline() == "held\n"
    assert other.wait(timeout=60) == 0


# A worker process that dies the moment its claim has turned the trial RUNNING, before
# anything else of the claim has run (a signal arriving between two statements).
_DIES_AFTER_CLAIM = """
import os, sys
from optimlab.lab.store import Store
store = Store(sys.argv[1])
store._duplicate = lambda *args: os._exit(9)
store.claim([sys.argv[2]])
"""


def test_a_worker_dying_right_after_its_claim_leaves_a_trial_that_is_recovered(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    store = Store(url)
    config = {"problem": "p", "label": "o", "name": "sgd", "params": {}, "seed": 0}
    store.enqueue(NAME, {**config, "key": "a"}, "a", "maximize")
    child = subprocess.run([sys.executable, "-c", _DIES_AFTER_CLAIM, url, NAME])
    assert child.returncode == 9
    (running,) = store.trials(NAME, (TrialState.RUNNING,))
    assert running.user_attrs["worker"]["host"] == socket.gethostname()
    # its process is gone, so the runner's wrap-up re-enqueues it at once
    assert store.recover_stale([NAME]) == 1
    assert not store.trials(NAME, (TrialState.RUNNING,))
    assert len(store.trials(NAME, (TrialState.WAITING,))) == 1
