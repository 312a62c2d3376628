"""Runs with parameter servers (Downpour, delay-tolerant AdaGrad, asynchronous EASGD)
killed mid-run and resumed from rank 0's checkpoint: with one replica the resumed run
ends as the uninterrupted one bit for bit; with several, the servers' state and every
replica's are those of the checkpoint's epoch end, and no finished epoch is redone.
Each starts several groups of processes: marked slow."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
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


def _wait_for_epoch(proc, last, epochs):
    """The checkpoint ``last`` once it holds ``epochs`` epochs, while ``proc`` runs (None
    if it ends first or takes more than 200 s)."""
    deadline = time.monotonic() + 200
    saved = None
    while proc.poll() is None and time.monotonic() < deadline:
        if last.exists():
            try:
                saved = torch.load(last, weights_only=True)
            except Exception:  # replaced while read; read the next one
                saved = None
            if saved is not None and saved["epoch"] >= epochs:
                return saved
        time.sleep(0.01)
    return saved


def _kill_after_epochs(args, out, epochs, *, launcher):
    """Start ``optimlab ARGS --out OUT``; once its checkpoint holds ``epochs`` epochs,
    SIGKILL the launcher and all its processes (``launcher``) or the last rank (with
    ``--max-restarts 1``, so that the launcher restarts the group). Returns the
    checkpoint's epoch records and the launcher (still running when only a rank was
    killed)."""
    extra = [] if launcher else ["--max-restarts", "1"]
    proc = start([*args, "--out", str(out), *extra])
    saved = _wait_for_epoch(proc, out / "checkpoints" / "last.pt", epochs)
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
    ("method", "budget", "updates"),
    [
        # Downpour over two server shards, each keeping its AdaGrad sums: a push per step,
        # 11 + 10 steps of the two replicas per epoch
        (["--optimizer", "adagrad", "--parallel", "downpour", "--nproc", "4", "--servers", "2"],
         ["--epochs", "4"], [21, 42, 63, 84]),
        # EAMSGD (each worker's velocity and x_i; the center on the server): an exchange
        # every 2 of each worker's steps, which count on across epochs (11 and 10 per
        # epoch): ceil(11 e / 2) + 5 e after e epochs
        (["--optimizer", "sgd", "--parallel", "easgd_async", "--nproc", "3",
          "--easgd-momentum", "0.5", "--easgd-period", "2", "--easgd-rho", "0.5"],
         ["--epochs", "4"], [11, 21, 32, 42]),
        # a budget of 25 steps of each replica (their step counts come back from the
        # checkpoint): the third epoch stops after 3 and 5 of their steps
        (["--optimizer", "adagrad", "--parallel", "downpour", "--nproc", "3"],
         ["--steps", "25"], [21, 42, 50]),
    ],
    ids=["downpour", "easgd_async", "downpour_steps"],
)  # fmt: skip
def test_two_replicas_resume_after_the_launcher_is_killed(tmp_path, method, budget, updates):
    """The launcher and every process are killed once an epoch is checkpointed; the
    same command resumes. The epochs of the checkpoint are kept as they were, the
    servers restart from their state there (their versions included: no update is
    stale by a negative count), every replica from its own (its step count included),
    and each later epoch applies each of its pushes exactly once."""
    epochs = len(updates)
    args = [*BASE, *budget, *method]
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
    if budget[0] == "--steps":  # each replica took its budget, no step more or less
        ranks = torch.load(out / "checkpoints" / "last.pt", weights_only=True)["ranks"]
        assert [r["counters"]["step"] for r in ranks] == [int(budget[1])] * len(ranks)


def test_a_time_budgeted_run_resumes_and_ends_on_its_budget(tmp_path):
    """Two replicas with --seconds 4, killed (launcher and all) once an epoch is
    checkpointed, and the same command again: the run ends on its time budget with
    the checkpoint's epochs kept as they were, its training time (the sessions' sum)
    at least the budget, and no more updates applied than the replicas pushed."""
    args = [*BASE, "--seconds", "4", "--optimizer", "adagrad", "--parallel", "downpour",
            "--nproc", "3"]  # fmt: skip
    out = tmp_path / "run"
    kept, _ = _kill_after_epochs(args, out, 1, launcher=True)
    before = torch.load(out / "checkpoints" / "last.pt", weights_only=True)["elapsed"]

    again = optimlab(*args, "--out", str(out), timeout=300)
    assert again.returncode == 0, again.stderr
    final = all_records(out)
    assert final[: len(kept)] == kept
    assert [r["epoch"] for r in final] == list(range(1, len(final) + 1))
    summary = json.loads((out / "summary.json").read_text())
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert state["status"] == summary["status"] == "time_budget"
    assert 4 <= state["elapsed"] and before < state["elapsed"]
    pushes = sum(r["counters"]["step"] for r in state["ranks"])
    assert final[-1]["updates"] <= pushes  # a later replica's last pushes come after


def test_a_replica_at_another_epoch_than_rank_0_stops_every_process(tmp_path):
    """Two machines' launchers (--nnodes 2, two processes each: replicas 0, 1, 2 and a
    server) on one output directory; both are killed after an epoch is checkpointed,
    and the same commands run again, one of them with --restart. The replicas on one
    machine start at epoch 0 and those on the other at the checkpoint's: every replica
    stops with one line naming the odd replica and both epochs (none trains on without
    the others' share of the data), and the checkpoint is left as it was."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "run"
    node = [*BASE, "--epochs", "4", "--optimizer", "adagrad", "--parallel", "downpour",
            "--nproc", "2", "--nnodes", "2", "--servers", "1",
            "--rdzv-endpoint", f"127.0.0.1:{port}", "--out", str(out)]  # fmt: skip

    def both(restart_second):
        second = start([*node, "--node-rank", "1", *(["--restart"] if restart_second else [])])
        return start([*node, "--node-rank", "0"]), second  # node 1 waits for node 0

    last = out / "checkpoints" / "last.pt"
    launchers = both(False)
    saved = _wait_for_epoch(launchers[0], last, 1)
    for proc in launchers:
        kill_group(proc)
        proc.wait()
    assert saved is not None and saved["status"] is None, "no epoch was checkpointed"
    kept = torch.load(last, weights_only=True)

    done = [finish(proc, 240) for proc in both(True)]
    mismatch = (
        r"optimlab: error: replica 2 starts at epoch (\d+) and rank 0 starts at epoch "
        r"(\d+); valid: a checkpoint every process reads \(the same --out, on a directory "
        r"every machine shares\), or --restart on every machine"
    )
    # node 0's launcher hosts the rendezvous and leaves once its processes fail; node
    # 1's may find it gone before it reports its own processes' error
    lost = (
        rf"optimlab: error: lost the rendezvous at 127\.0\.0\.1:{port}: node 0's launcher "
        r"has ended; its own error says why"
    )
    for i, d in enumerate(done):
        assert d.returncode == 2, (d.stdout, d.stderr)
        assert "Traceback" not in d.stderr, d.stderr
        last_line = d.stderr.strip().splitlines()[-1]
        found = re.fullmatch(mismatch, last_line)
        assert found or (i == 1 and re.fullmatch(lost, last_line)), d.stderr
        if found:
            assert sorted(int(e) for e in found.groups()) == [0, kept["epoch"]]
    after = torch.load(last, weights_only=True)
    assert after["epoch"] == kept["epoch"] and after["history"] == kept["history"]
    assert all(torch.equal(after["model"][k], v) for k, v in kept["model"].items())
