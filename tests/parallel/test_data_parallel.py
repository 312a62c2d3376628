"""Synchronous data parallel and local SGD on real processes (gloo over loopback),
checked against one process: float64, so that only the order of additions differs."""

from __future__ import annotations

import json

import pytest
import torch
from launching import final_weights, max_relative_error, optimlab, torchrun

from optimlab.cli import main

# digits_mlp's 1294 training examples in batches of 48: 27 steps per epoch, the last of
# 46 examples, so 30 steps cross an epoch end and a partial batch.
ARGS = ["--problem", "digits_mlp", "--optimizer", "momentum", "--lr", "0.05",
        "--hp", "momentum=0.9", "--batch-size", "48", "--steps", "30", "--dtype", "float64",
        "--log-every", "7", "--quiet"]  # fmt: skip
TOLERANCE = 1e-10  # relative, per tensor; float64 sums in another order differ by ~1e-15


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    assert main(["train", *ARGS, "--out", str(out)]) == 0
    return out


def _history(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_sync_two_processes_take_the_steps_of_one(serial, tmp_path):
    out = tmp_path / "sync"
    proc = optimlab("train", *ARGS, "--parallel", "sync", "--nproc", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "completed 2 epochs (30 steps)" in proc.stdout
    assert max_relative_error(final_weights(out), final_weights(serial)) < TOLERANCE
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert len(state["ranks"]) == 2  # both processes' states, written once by rank 0
    ours, theirs = _history(out), _history(serial)
    assert [r["examples"] for r in ours] == [r["examples"] for r in theirs] == [1294, 1294 + 3 * 48]
    for key in ("loss", "accuracy", "val_loss", "test_accuracy"):  # reduced over ranks
        assert ours[-1][key] == pytest.approx(theirs[-1][key], rel=1e-9)


def test_local_sgd_with_period_one_is_sync(serial, tmp_path):
    # Averaging after every local step of plain or momentum SGD is the synchronous
    # step (the update is linear in the gradient and momentum), up to rounding.
    out = tmp_path / "local"
    proc = optimlab("train", *ARGS, "--parallel", "local_sgd", "--nproc", "2",
                    "--local-sgd-period", "1", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert max_relative_error(final_weights(out), final_weights(serial)) < TOLERANCE


def test_torchrun_starts_the_same_run(serial, tmp_path):
    out = tmp_path / "torchrun"
    proc = torchrun("train", *ARGS, "--parallel", "sync", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("status     completed") == 1  # rank 0 reports, rank 1 not
    assert max_relative_error(final_weights(out), final_weights(serial)) < TOLERANCE
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert state["config"]["nproc"] == 2 and state["config"]["nnodes"] == 1  # from torchrun


def test_a_worker_runs_one_intra_op_and_one_inter_op_thread():
    # a fresh process, as a launched worker is: the pools are sized before they start
    import subprocess
    import sys

    code = ("import torch; from optimlab.parallel.worker import use_threads; use_threads(1); "
            "torch.ones(1 << 20).sum(); "
            "print(torch.get_num_threads(), torch.get_num_interop_threads())")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert out.stdout.split() == ["1", "1"]


# One process of a sync run (the launcher's environment set by hand), then the threads
# left in it. A fresh interpreter: torch._dynamo not yet imported, as in a worker.
_LEAVE = """
import json, os, socket, sys, tempfile
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", LOCAL_WORLD_SIZE="1",
                  GROUP_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
from optimlab.parallel.worker import run_worker
from optimlab.run import RunConfig
config = RunConfig(problem="digits_mlp", optimizer="momentum", steps=3, parallel="sync",
                   threads=1, out=tempfile.mkdtemp())
summary = run_worker(config.to_json(), False, False)
names = [open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task")]
print(json.dumps({"steps": summary["steps"], "threads": names}))
"""


def test_a_finished_worker_has_left_gloo_with_its_threads():
    # DDP's constructor imports torch._dynamo, which (imported after the group starts)
    # kept the group alive past destroy_process_group: its gloo threads outlived the run,
    # and one freeing the last gather's tensors during interpreter shutdown aborted the
    # process now and then ("terminate called without an active exception").
    import subprocess
    import sys

    from launching import env

    out = subprocess.run([sys.executable, "-c", _LEAVE], capture_output=True, text=True,
                         env=env(), timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.splitlines()[-1])
    assert report["steps"] == 3
    assert not [n for n in report["threads"] if "gloo" in n], report["threads"]
