"""A study run by two worker processes whose trials are launched runs (each a group of
processes started by ``optimlab train``'s launcher, gloo on loopback): each trial is
trained once, and its heartbeat outlives the grace period while the launcher runs.
Starts several groups of processes: marked slow."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest
import study_procs as sp

from optimlab.lab.store import Store

pytestmark = pytest.mark.slow


# three contenders, each trial a run of two processes (sync) of about a second's work
TWO_WORKERS = """
name = "launched2"
problems = ["logreg_digits"]
seeds = 1
budget = { epochs = 2 }
protocol = { kind = "fixed" }

[[optimizers]]
name = "sgd"
params = { lr = 0.1 }

[[optimizers]]
name = "sgd"
label = "slower"
params = { lr = 0.05 }

[[optimizers]]
name = "momentum"
params = { lr = 0.05 }

[run]
dtype = "float64"
parallel = "sync"
nproc = 2
"""

# the runner with a heartbeat every second and a grace period of 2 s: a trial whose
# heartbeat stopped for 2 s is taken back by the other worker, trained again, and so
# counted twice in $TRAIN_LOG
BEATING = {"report=False\n": "report=False, heartbeat=1, grace_period=2\n"}


def test_two_study_workers_run_every_launched_trial_once_and_keep_it(tmp_path):
    """Two worker processes share three launched trials (each its own group of two
    processes, started from the worker). Each trial takes longer than the grace
    period, and the worker left without work looks for stale trials every second: the
    trial's heartbeat, kept by its worker while the launcher runs, keeps it from being
    taken over, so each trial is trained once, by one worker."""
    study, out = tmp_path / "study.toml", tmp_path / "out"
    study.write_text(TWO_WORKERS)
    harness = sp.COUNTING_HARNESS
    for old, new in BEATING.items():
        assert old in harness
        harness = harness.replace(old, new)
    script, log = tmp_path / "counting.py", tmp_path / "trainings.log"
    script.write_text(harness)
    proc = subprocess.run(
        [sys.executable, str(script), str(study), str(out), "2"],
        env={**sp.ENV, "TRAIN_LOG": str(log)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "heartbeat every 1 s, grace period 2 s" in proc.stdout
    assert "go back in the queue" not in proc.stdout
    assert sp.states(out) == Counter({"COMPLETE": 3})
    records = list(Store(f"sqlite:///{out / 'study.db'}").records())
    assert {r["status"] for r in records} == {"completed"}
    assert all(len(r["history"]) == 2 for r in records)
    assert max(r["wall_time"] for r in records) > 2  # longer than the grace period
    trainings = [line.split() for line in log.read_text().splitlines()]
    assert Counter(key for key, _ in trainings) == Counter(r["run_key"] for r in records)
    assert sorted(Counter(key for key, _ in trainings).values()) == [1, 1, 1]
    assert len({pid for _, pid in trainings}) == 2  # shared by the two workers
