"""Hogwild!: real processes (torch.multiprocessing, spawn) updating one model in shared
memory without locks."""

from __future__ import annotations

import json

import pytest
import torch
from launching import final_weights, optimlab

from optimlab.cli import main
from optimlab.errors import OptimlabError
from optimlab.parallel.hogwild import run_hogwild
from optimlab.run import RunConfig, build_run
from optimlab.train import evaluate


def _without_time(path):
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


def test_one_process_is_serial_sgd_bit_for_bit(tmp_path):
    args = ["train", "--problem", "digits_mlp", "--optimizer", "momentum", "--lr", "0.05",
            "--epochs", "2", "--threads", "1", "--quiet"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "serial")]) == 0
    proc = optimlab(*args, "--parallel", "hogwild", "--nproc", "1",
                    "--out", str(tmp_path / "hogwild"), timeout=240)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    serial, hogwild = final_weights(tmp_path / "serial"), final_weights(tmp_path / "hogwild")
    assert all(torch.equal(serial[k], hogwild[k]) for k in serial)
    assert _without_time(tmp_path / "serial" / "metrics.jsonl") == _without_time(
        tmp_path / "hogwild" / "metrics.jsonl"
    )


def test_two_processes_train_the_sparse_problem_together(tmp_path):
    # Logistic regression on bags of 10 of 1000 feature ids, plain SGD, 3 epochs. Loss
    # on the training set: log 2 = 0.693 at the start (zero weights); serial SGD reaches
    # 0.28 after the 1689 steps of 3 epochs and 0.36 after 846 (one process's share);
    # measured with Hogwild! and 2 processes: 0.279 and 0.284 (seeds 0 and 1).
    threshold = 0.32  # below what either process's own updates reach
    config = RunConfig(problem="sparse_logreg", optimizer="sgd", lr=0.5, epochs=3,
                       parallel="hogwild", nproc=2, threads=1, out=str(tmp_path))  # fmt: skip
    result = run_hogwild(config, timeout=300)
    assert result.summary["status"] == "completed"
    assert result.summary["steps"] == 3 * 282  # process 0's batches: 0, 2, 4, ... of 563
    problem = build_run(config.replace(parallel="none", nproc=None, out=None)).problem
    x, y = problem.splits.train.x, problem.splits.train.y
    loss = evaluate(result.model, problem.loss_fn, {}, x, y)["loss"]
    assert loss < threshold
    # process 0 checkpointed after every process had finished: the model it saved is
    # the shared one, written by both processes
    saved = final_weights(tmp_path)
    shared = result.model.state_dict()
    assert all(torch.equal(saved[k], shared[k]) for k in saved)


def test_several_processes_do_not_resume(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"")
    config = RunConfig(problem="digits_mlp", optimizer="sgd", parallel="hogwild", nproc=2,
                       out=str(tmp_path))  # fmt: skip
    with pytest.raises(OptimlabError, match="cannot resume.*--restart"):
        run_hogwild(config)
    with pytest.raises(OptimlabError, match="fast is not available with parallel hogwild"):
        config.replace(fast=True)


def test_each_process_schedules_over_its_own_steps():
    # digits_mlp: 41 batches of 32 per epoch; under Hogwild! with 2 processes, process 0
    # steps on 21 of them and process 1 on 20, so a schedule's horizon is theirs.
    from optimlab import problems
    from optimlab.parallel.hogwild import HogwildWorld
    from optimlab.run import total_steps

    config = RunConfig(problem="digits_mlp", optimizer="sgd", epochs=2, parallel="hogwild",
                       nproc=2)  # fmt: skip
    problem = problems.build("digits_mlp")
    assert total_steps(config, problem, 32) == 82
    assert total_steps(config, problem, 32, HogwildWorld(0, 2, [])) == 42
    assert total_steps(config, problem, 32, HogwildWorld(1, 2, [])) == 40
