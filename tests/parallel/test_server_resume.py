"""Runs with parameter servers (Downpour, delay-tolerant AdaGrad, asynchronous EASGD)
killed mid-run and resumed from rank 0's checkpoint: with one replica the resumed run
ends as the uninterrupted one bit for bit; with several, the servers' state and every
replica's are those of the checkpoint's epoch end, and no finished epoch is redone.
Each starts several groups of processes: marked slow."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import torch
from launching import (
    assert_ends_as_uninterrupted,
    finish,
    kill_group,
    optimlab,
    start,
    workers_of,
)

pytestmark = pytest.mark.slow

# logistic regression on digits, float64: 21 steps of 64 examples per epoch
BASE = ["train", "--problem", "logreg_digits", "--lr", "0.1", "--dtype", "float64",
        "--threads", "1", "--quiet"]  # fmt: skip


def staleness(out):
    return json.loads((out / "staleness.json").read_text())["shards"]


def all_records(out):
    """The epoch records, times included."""
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _kill_after_epochs(args, out, epochs, *, launcher):
    """Start ``optimlab ARGS --out OUT``; once its checkpoint holds ``epochs`` epochs,
    SIGKILL the launcher and all its processes (``launcher``) or the last rank (with
    ``--max-restarts 1``, so that the launcher restarts the group). Returns the
    checkpoint's epoch records and the launcher (still running when only a rank was
    killed)."""
    extra = [] if launcher else ["--max-restarts", "1"]
    proc = start([*args, "--out", str(out), *extra])
    last = out / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 200
    saved = None
    while proc.poll() is None and time.monotonic() < deadline:
        if last.exists():
            try:
                saved = torch.load(last, weights_only=True)
            except Exception:  # replaced while read; read the next one
                saved = None
            if saved is not None and saved["epoch"] >= epochs:
                break
        time.sleep(0.01)
    workers = workers_of(proc.pid)
    assert proc.poll() is None and saved is not None and workers, finish(proc, 10).stderr
    assert saved["status"] is None  # killed before its end
    if launcher:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        kill_group(proc)
    else:
        os.kill(workers[-1], signal.SIGKILL)
    return saved["history"], proc


def test_one_replica_killed_server_resumes_bit_for_bit(tmp_path):
    """Delay-tolerant AdaGrad fetching every 2 steps (so the server keeps snapshots of
    its gradient sums for the versions in use): the server is killed after the first
    checkpoint, the launcher restarts the group, the writer gives the server its
    state back, and the run ends as the uninterrupted one, weights, epoch records and
    staleness record alike; the checkpoint's epochs were not trained again (their
    records keep their times)."""
    args = [*BASE, "--epochs", "5", "--optimizer", "adagrad", "--parallel", "delay_tolerant",
            "--n-fetch", "2", "--nproc", "2"]  # fmt: skip
    victim, reference = tmp_path / "victim", tmp_path / "reference"
    kept, proc = _kill_after_epochs(args, victim, 1, launcher=False)
    done = finish(proc, 300)
    assert done.returncode == 0, done.stderr
    assert 1 <= len(kept) < 5
    assert all_records(victim)[: len(kept)] == kept
    assert_ends_as_uninterrupted(args, victim, reference)
    # each fetched version is pushed against twice: staleness 0, then 1
    assert staleness(victim) == staleness(reference) == [[i % 2 for i in range(5 * 21)]]


@pytest.mark.parametrize(
    ("method", "updates"),
    [
        # Downpour over two server shards, each keeping its AdaGrad sums: a push per step,
        # 11 + 10 steps of the two replicas per epoch
        (["--optimizer", "adagrad", "--parallel", "downpour", "--nproc", "4", "--servers", "2"],
         [21, 42, 63, 84]),
        # EAMSGD (each worker's velocity and x_i; the center on the server): an exchange
        # every 2 of each worker's steps, which count on across epochs (11 and 10 per
        # epoch): ceil(11 e / 2) + 5 e after e epochs
        (["--optimizer", "sgd", "--parallel", "easgd_async", "--nproc", "3",
          "--easgd-momentum", "0.5", "--easgd-period", "2", "--easgd-rho", "0.5"],
         [11, 21, 32, 42]),
    ],
    ids=["downpour", "easgd_async"],
)  # fmt: skip
def test_two_replicas_resume_after_the_launcher_is_killed(tmp_path, method, updates):
    """The launcher and every process are killed once an epoch is checkpointed; the
    same command resumes. The epochs of the checkpoint are kept as they were, the
    servers restart from their state there (their versions included: no update is
    stale by a negative count), every replica from its own (its step count included),
    and each later epoch applies each of its pushes exactly once."""
    epochs = 4
    args = [*BASE, "--epochs", str(epochs), *method]
    out = tmp_path / "run"
    kept, _ = _kill_after_epochs(args, out, 1, launcher=True)
    assert 1 <= len(kept) < epochs

    again = optimlab(*args, "--out", str(out), timeout=300)
    assert again.returncode == 0, again.stderr
    final = all_records(out)
    assert [r["epoch"] for r in final] == list(range(1, epochs + 1))
    assert final[: len(kept)] == kept  # finished epochs are not redone (same times)
    assert [r["updates"] for r in final] == updates
    shards = staleness(out)
    assert all(len(shard) == updates[-1] for shard in shards)
    assert all(0 <= v <= updates[0] for shard in shards for v in shard)
    assert final[-1]["val_accuracy"] > 0.85
