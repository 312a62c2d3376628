"""The elastic launcher beyond one plain start: a killed process restarted (and the run
resumed from rank 0's checkpoint), and two machines' launchers meeting at a rendezvous.
Each starts several groups of processes: marked slow."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
import torch
from launching import (
    assert_ends_as_uninterrupted,
    final_weights,
    finish,
    kill_after_first_checkpoint,
    kill_group,
    listening_addresses,
    max_relative_error,
    optimlab,
    start,
    start_until_checkpoint,
    workers_of,
)

pytestmark = pytest.mark.slow

# 6 epochs of 41 steps, a checkpoint every 5 steps; dropout, so that each process's
# own random stream must be restored too.
ARGS = ["train", "--problem", "digits_mlp", "--optimizer", "momentum", "--lr", "0.05",
        "--epochs", "6", "--dropout", "0.2", "--checkpoint-every", "5", "--quiet",
        "--parallel", "sync", "--nproc", "2"]  # fmt: skip


def test_a_killed_worker_is_restarted_and_the_run_resumes_exactly(tmp_path):
    """The restarted group resumes from rank 0's last checkpoint (each process's own
    random stream and epoch sums included) and ends as the uninterrupted run, bit for
    bit."""
    victim_out, ref_out = tmp_path / "victim", tmp_path / "reference"
    done = kill_after_first_checkpoint(ARGS, victim_out)
    assert done.returncode == 0, done.stderr
    assert "completed 6 epochs (246 steps)" in done.stdout

    assert_ends_as_uninterrupted(ARGS, victim_out, ref_out)


def test_a_killed_worker_without_restarts_is_named_and_nothing_finished_is_lost(tmp_path):
    """Without --max-restarts, a process killed with SIGKILL after the first checkpoint
    ends the run: the launcher stops the other process and says in one line which
    process was killed by what; the checkpoint stays, and the same command resumes
    from it and ends as the uninterrupted run, bit for bit."""
    args = [*ARGS[: ARGS.index("--epochs")], "--epochs", "2", *ARGS[ARGS.index("--epochs") + 2 :]]
    out, reference = tmp_path / "victim", tmp_path / "reference"
    launcher, workers = start_until_checkpoint(args, out)
    os.kill(workers[-1], signal.SIGKILL)
    done = finish(launcher, 120)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    # the launcher sets a process's RANK after it starts, out of sight of /proc: it is
    # one of the two
    assert re.fullmatch(r"optimlab: error: process [01] was killed by signal SIGKILL",
                        lines[-1]), done.stderr  # fmt: skip
    assert workers_of(launcher.pid) == []
    saved = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert saved["status"] is None and saved["step"] >= 5

    again = optimlab(*args, "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert "completed 2 epochs (82 steps)" in again.stdout
    assert_ends_as_uninterrupted(args, out, reference)


def test_a_run_on_one_machine_listens_on_loopback_only(tmp_path):
    """With the default rendezvous, every listening socket of the launcher and its
    processes (the rendezvous's store, the store the processes share, gloo's
    connections) is bound to 127.0.0.1: nothing is reachable from another machine."""
    out = tmp_path / "run"
    launcher = start(["train", "--problem", "logreg_digits", "--optimizer", "sgd",
                      "--epochs", "200", "--quiet", "--parallel", "sync", "--nproc", "2",
                      "--out", str(out)])  # fmt: skip
    last = out / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 180
    try:
        while not last.exists() and launcher.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert last.exists(), "no epoch ended"
        addresses = listening_addresses(launcher.pid)
    finally:
        kill_group(launcher)
        launcher.communicate()
    assert len(addresses) >= 4, addresses  # two stores and a gloo listener per process
    assert all(a.startswith("127.0.0.1:") for a in addresses), addresses


def test_two_machines_meet_at_a_rendezvous(tmp_path):
    """Two launchers of one process each (--nnodes 2, node ranks 0 and 1, one endpoint)
    make one run of two processes: the run of one process with the same global batch."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = ["train", "--problem", "digits_mlp", "--optimizer", "momentum", "--lr", "0.05",
            "--batch-size", "48", "--steps", "30", "--dtype", "float64", "--quiet"]  # fmt: skip
    assert optimlab(*args, "--out", str(tmp_path / "serial")).returncode == 0
    node = [*args, "--parallel", "sync", "--nproc", "1", "--nnodes", "2",
            "--rdzv-endpoint", f"127.0.0.1:{port}", "--out", str(tmp_path / "two")]  # fmt: skip
    second = start([*node, "--node-rank", "1"])  # waits for node 0's rendezvous
    first = start([*node, "--node-rank", "0"])
    done = [finish(first, 240), finish(second, 240)]
    assert [d.returncode for d in done] == [0, 0], [d.stderr for d in done]
    assert sum(d.stdout.count("status     completed") for d in done) == 1  # rank 0's
    two, one = final_weights(tmp_path / "two"), final_weights(tmp_path / "serial")
    assert max_relative_error(two, one) < 1e-10


def test_ctrl_c_ends_every_process_without_a_trace(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--problem", "digits_mlp", "--optimizer", "sgd", "--epochs", "100",
            "--parallel", "sync", "--nproc", "2", "--quiet", "--out", str(out)]  # fmt: skip
    launcher = start(args)
    deadline = time.monotonic() + 180
    last = out / "checkpoints" / "last.pt"
    while not last.exists() and launcher.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(workers_of(launcher.pid)) == 2
    launcher.send_signal(signal.SIGINT)
    try:
        _, err = launcher.communicate(timeout=60)
        # nothing of the run's process group outlives the launcher for long (its helper
        # processes notice that it is gone)
        left = _group_alive(launcher.pid, wait=10)
    finally:
        kill_group(launcher)
    assert launcher.returncode == 130, err
    # The launcher's own report. (A process may still print a C++ abort if its peer was
    # ended first, in the middle of an all-reduce: that output is the process's own.)
    assert err.strip().splitlines()[-1] == "optimlab: interrupted"
    assert "Traceback" not in err and "death signal" not in err
    assert not left


def _group_alive(pgid: int, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.05)
