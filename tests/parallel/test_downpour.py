"""Downpour and delay-tolerant AdaGrad on real processes (gloo over loopback): replicas
and parameter servers started by ``optimlab train --nproc N``."""

from __future__ import annotations

import json

import torch
from launching import final_weights, optimlab

from optimlab.cli import main

# logistic regression on digits, float64: 21 steps of 64 examples per epoch
ARGS = ["--problem", "logreg_digits", "--lr", "0.1", "--dtype", "float64", "--epochs", "2",
        "--threads", "1", "--quiet"]  # fmt: skip


def history(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def without(records, keys=("time", "staleness_mean", "staleness_max", "updates")):
    return [{k: v for k, v in r.items() if k not in keys} for r in records]


def staleness(out):
    return json.loads((out / "staleness.json").read_text())["shards"]


def test_one_replica_and_two_server_shards_are_serial_adagrad(tmp_path):
    # n_fetch = n_push = 1: the replica fetches what its last push produced; AdaGrad
    # acts coordinate by coordinate, so two shards of the vector change nothing.
    args = ["train", *ARGS, "--optimizer", "adagrad", "--hp", "initial_accumulator_value=0.1"]
    assert main([*args, "--out", str(tmp_path / "serial")]) == 0
    proc = optimlab(*args, "--parallel", "downpour", "--nproc", "3", "--servers", "2",
                    "--out", str(tmp_path / "downpour"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    serial, downpour = final_weights(tmp_path / "serial"), final_weights(tmp_path / "downpour")
    assert all(torch.equal(serial[k], downpour[k]) for k in serial)
    assert without(history(tmp_path / "downpour")) == without(history(tmp_path / "serial"))
    assert staleness(tmp_path / "downpour") == [[0] * 42, [0] * 42]  # each shard, each push


def test_the_real_server_revises_as_the_simulated_one(tmp_path):
    # One replica fetching every 2 steps: its second gradient of each pair is one
    # update old, so delay-tolerant AdaGrad revises; deterministic with one replica.
    args = ["train", *ARGS, "--optimizer", "adagrad", "--parallel", "delay_tolerant",
            "--n-fetch", "2"]  # fmt: skip
    assert main([*args, "--simulate-delay", "fixed:0", "--out", str(tmp_path / "sim")]) == 0
    proc = optimlab(*args, "--nproc", "2", "--out", str(tmp_path / "real"))
    assert proc.returncode == 0, proc.stderr
    sim, real = final_weights(tmp_path / "sim"), final_weights(tmp_path / "real")
    assert all(torch.equal(sim[k], real[k]) for k in sim)
    assert staleness(tmp_path / "real") == staleness(tmp_path / "sim") == [[0, 1] * 21]


def test_two_replicas_record_the_staleness_of_every_update(tmp_path):
    out = tmp_path / "run"
    proc = optimlab("train", *ARGS, "--optimizer", "adagrad", "--parallel", "downpour",
                    "--nproc", "3", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # the replica that does not evaluate has no val_loss, and keeps no best checkpoint
    # rather than warning that it cannot
    assert "ModelCheckpoint" not in proc.stderr, proc.stderr
    records = history(out)
    recorded = staleness(out)
    # replica 0 steps on batches 0, 2, ..., 20 and replica 1 on 1, 3, ..., 19 of each
    # epoch: 42 pushes in all, each applied once by the one server. How many of them the
    # server has applied when rank 0 closes epoch 1 depends on the other replica's pace
    # (asynchronous by design): at least rank 0's own 11, and each epoch's record covers
    # exactly the updates applied since the last one.
    first, last = (r["updates"] for r in records)
    assert 11 <= first <= 42 and last == 42
    assert len(recorded) == 1 and len(recorded[0]) == 42
    assert all(v >= 0 for v in recorded[0])
    per_epoch = [recorded[0][:first], recorded[0][first:]]
    for record, values in zip(records, per_epoch, strict=True):
        if values:
            assert record["staleness_mean"] == sum(values) / len(values)
            assert record["staleness_max"] == max(values)
    assert records[-1]["step"] == 22  # rank 0's own steps: 11 per epoch
    assert records[-1]["val_accuracy"] > 0.85  # the server's model, trained by both


def test_a_server_method_in_one_process_names_the_processes_it_needs(capsys):
    run = ["train", *ARGS, "--optimizer", "adagrad", "--parallel", "downpour"]
    assert main(run) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "invalid nproc: 1; parallel downpour needs at least 2 processes" in err
    assert "valid: nproc >= 2, or simulate_delay in one process" in err
    assert main([*run, "--nproc", "2", "--servers", "2"]) == 2
    assert "needs at least 3 processes (2 servers and 1 replica or more)" in capsys.readouterr().err


def test_a_run_with_servers_checkpoints_at_epoch_ends_only(tmp_path, capsys):
    """Replicas agree with the servers only at epoch ends, where they wait for each
    other: a checkpoint every N steps could not be resumed, and is refused."""
    run = ["train", *ARGS, "--optimizer", "adagrad", "--parallel", "downpour", "--nproc", "2",
           "--checkpoint-every", "5", "--out", str(tmp_path / "real")]  # fmt: skip
    assert main(run) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "checkpoint_every is not available with parallel downpour" in err
    assert "valid: checkpoints at epoch ends" in err
    assert not (tmp_path / "real").exists()
    # the delay model, in one process, checkpoints wherever a serial run does
    sim = ["train", *ARGS, "--optimizer", "adagrad", "--parallel", "downpour",
           "--simulate-delay", "fixed:1", "--checkpoint-every", "5",
           "--out", str(tmp_path / "sim")]  # fmt: skip
    assert main(sim) == 0
