"""The runner with real processes: claims taken once, workers dying with their runner,
signals, crashed workers, and runners started together on one study."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import study_procs as sp

from optimlab.lab.store import Store

QUICK = """
name = "quick"
problems = ["logreg_digits"]
seeds = 1
[budget]
steps = 2
[protocol]
kind = "random"
trials = 20
[[optimizers]]
name = "sgd"
"""

# 8 runs of a few seconds each (an epoch of digits_mlp takes about 0.1 s): long enough
# that workers left running after their runner's death would still be training
SLOW = """
name = "slow"
problems = ["digits_mlp"]
optimizers = ["sgd", "adam"]
seeds = 4
[budget]
epochs = 30
[protocol]
kind = "fixed"
"""


def _records(out: Path) -> list[dict]:
    return list(Store(f"sqlite:///{out / 'study.db'}").records())


def test_parallel_workers_train_every_run_exactly_once(tmp_path):
    study = tmp_path / "quick.toml"
    study.write_text(QUICK)
    script, log, out = tmp_path / "counting.py", tmp_path / "trainings.log", tmp_path / "out"
    script.write_text(sp.COUNTING_HARNESS)
    proc = subprocess.run(
        [sys.executable, str(script), str(study), str(out), "4"],
        env={**sp.ENV, "TRAIN_LOG": str(log)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert sp.states(out) == Counter({"COMPLETE": 21})  # 20 tuning runs + 1 final seed
    trainings = [line.split() for line in log.read_text().splitlines()]
    # one training per (phase, run): the final seed 0 is the selected tuning run's key
    # again, and reading its finished checkpoint is the second call for that key
    assert Counter(key for key, _ in trainings) == Counter(r["run_key"] for r in _records(out))
    assert len({pid for _, pid in trainings}) > 1  # shared among the workers


def _start_and_wait_for_training(tmp_path: Path) -> tuple[subprocess.Popen, Path, set[int]]:
    """A 2-worker study with one run finished and another in training; its processes."""
    study = tmp_path / "slow.toml"
    study.write_text(SLOW)
    out = tmp_path / "out"
    proc = sp.start(study, out, "--workers", "2")
    sp.wait_until(
        lambda: sp.states(out)["COMPLETE"] >= 1 and sp.states(out)["RUNNING"] >= 1,
        timeout=600,
        what="a run has finished and another is training",
    )
    assert proc.poll() is None, "the study ended before the test could stop it"
    workers = sp.worker_pids(out)
    children = sp.descendants(proc.pid)
    assert workers and workers <= children
    return proc, out, children


def _rerun_completes(tmp_path: Path, out: Path) -> None:
    proc = sp.start(tmp_path / "slow.toml", out, "--workers", "2")
    assert proc.wait(timeout=900) == 0, sp.output(out)[1]
    records = _records(out)
    assert len(records) == 8 and {r["status"] for r in records} == {"completed"}
    assert {(r["label"], r["seed"]) for r in records} == {
        (o, s) for o in ("sgd", "adam") for s in range(4)
    }


def test_sigkill_of_the_runner_takes_its_workers_along(tmp_path):
    proc, out, children = _start_and_wait_for_training(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    sp.wait_until(
        lambda: not any(sp.alive(pid) for pid in children),
        timeout=5,
        what=f"the runner's processes {sorted(children)} have ended",
    )


def test_sigterm_stops_workers_writes_the_report_and_resumes(tmp_path):
    proc, out, children = _start_and_wait_for_training(tmp_path)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM
    # The workers are joined before the runner exits; multiprocessing's resource tracker
    # ends when it reads the end of its pipe, a moment later on a loaded machine.
    sp.wait_until(
        lambda: not any(sp.alive(pid) for pid in children),
        timeout=5,
        what=f"the runner's processes {sorted(children)} have ended",
    )
    stdout, stderr = sp.output(out)
    assert "Traceback" not in stderr
    assert "interrupted by SIGTERM" in stdout and "to resume: optimlab study run" in stdout
    assert (out / "report" / "report.html").exists()
    # nothing is left RUNNING: the stopped runs are bookkeeping, their retries wait
    states = sp.states(out)
    assert states["RUNNING"] == 0 and states["WAITING"] >= 1
    status = subprocess.run(
        [sys.executable, "-m", "optimlab.cli", "study", "status", str(out)],
        capture_output=True,
        text=True,
        env=sp.ENV,
    )
    interrupted = states["FAIL"]
    assert f"{interrupted} interrupted and retried" in status.stdout
    assert f"trials in storage: {sum(states.values())} = " in status.stdout
    _rerun_completes(tmp_path, out)


def test_a_worker_that_dies_fails_the_run_and_its_run_is_redone(tmp_path):
    proc, out, _ = _start_and_wait_for_training(tmp_path)
    training: list[int] = []

    def a_worker_is_training() -> bool:
        # between two runs a worker holds none: ask again until one is training
        rows = sp.query(
            out,
            "select json_extract(a.value_json, '$.pid') from trial_user_attributes a "
            "join trials t on t.trial_id = a.trial_id "
            "where a.key = 'worker' and t.state = 'RUNNING' limit 1",
        )
        training[:] = [int(pid) for (pid,) in rows if pid is not None]
        return bool(training)

    sp.wait_until(a_worker_is_training, timeout=120, what="a worker is training a run")
    (victim,) = training
    os.kill(victim, signal.SIGKILL)
    assert proc.wait(timeout=900) == 1
    stdout, stderr = sp.output(out)
    assert f"worker process {victim} was killed by SIGKILL" in stderr
    assert "optimlab: error:" in stderr
    # the other worker took the dead one's run over: every run has its result
    records = _records(out)
    assert len(records) == 8 and {r["status"] for r in records} == {"completed"}


TINY = """
name = "tiny"
problems = ["logreg_digits"]
optimizers = ["sgd"]
seeds = 1
[budget]
steps = 2
[protocol]
lr_grid = [1e-2, 1e-1, 2]
"""


@pytest.mark.parametrize("attempt", range(3))
def test_two_runners_started_together_on_a_new_directory(tmp_path, attempt):
    study = tmp_path / "tiny.toml"
    study.write_text(TINY)
    out = tmp_path / "out"
    code = (
        "import sys; from optimlab.lab import load_study; "
        "from optimlab.lab.runner import run_study; "
        "run_study(load_study(sys.argv[1]), sys.argv[2], report=False, quiet=True)"
    )
    both = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(study), str(out)],
            env=sp.ENV,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    errors = [p.communicate(timeout=600)[1] for p in both]
    assert [p.returncode for p in both] == [0, 0], errors
    # 2 tuning runs and 1 final, each planned and trained once: no duplicate trials
    assert sp.states(out) == Counter({"COMPLETE": 3})
    keys = Counter((r["phase"], r["run_key"]) for r in _records(out))
    assert len(keys) == 3 and set(keys.values()) == {1}
