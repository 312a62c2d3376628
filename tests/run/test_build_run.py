"""``build_run``: one builder for every entry point, and the rules it applies once."""

from __future__ import annotations

import json
import math

import torch

from optimlab import optim, problems
from optimlab.cli import main
from optimlab.lab.trial import run_trial
from optimlab.run import RunConfig, build_run, total_steps


def test_the_lab_and_the_train_command_build_the_same_run(tmp_path, capsys):
    trial = {
        "problem": "digits_mlp", "label": "m", "name": "momentum",
        "params": {"lr": 0.05, "momentum": 0.8}, "schedule": {"name": "cosine"},
        "seed": 2, "budget": {"epochs": 2}, "batch_size": 64, "threads": 1,
    }  # fmt: skip
    record = run_trial(trial, tmp_path / "lab")
    assert record["status"] == "completed", record["error"]
    argv = ["train", "--problem", "digits_mlp", "--optimizer", "momentum", "--lr", "0.05",
            "--hp", "momentum=0.8", "--schedule", "cosine", "--seed", "2", "--epochs", "2",
            "--batch-size", "64", "--threads", "1", "--quiet",
            "--out", str(tmp_path / "cli")]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    rows = [json.loads(x) for x in (tmp_path / "cli" / "metrics.jsonl").read_text().splitlines()]
    lab_rows = record["history"]
    assert without_time(lab_rows) == without_time(rows)
    # both summaries name the optimizer by its registry name, as the settings do
    for where in ("cli", "lab"):
        summary = json.loads((tmp_path / where / "summary.json").read_text())
        assert summary["optimizer"] == trial["name"] == "momentum", where
        assert summary["optimizer_class"] == "SGD"


def without_time(rows):
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


def test_the_registry_default_lr_starts_the_schedule(tmp_path):
    """No lr given: the schedule starts from the optimizer's registry default (sgd: 0.01),
    in a built run and in a study's trial alike."""
    config = RunConfig(problem="digits_mlp", optimizer="sgd", schedule="cosine", epochs=1)
    run = build_run(config)
    default = optim.get("sgd").hyperparameters()["lr"]
    assert run.optimizer.param_groups[0]["lr"] == default == 0.01
    trial = {
        "problem": "logreg_digits", "label": "sgd", "name": "sgd", "params": {},
        "schedule": {"name": "constant"}, "seed": 0, "budget": {"steps": 3}, "threads": 1,
    }  # fmt: skip
    record = run_trial(trial, tmp_path)
    assert record["history"][-1]["lr"] == 0.01, record["error"]


def test_the_schedule_spans_the_steps_the_trainer_takes():
    """total_steps is the trainer's real step count, with accumulation and a partial batch."""
    config = RunConfig(problem="digits_mlp", optimizer="sgd", epochs=2, batch_size=100,
                       grad_accumulation=3, schedule="cosine", threads=1)  # fmt: skip
    run = build_run(config)
    n = len(run.problem.splits.train.x)
    assert n % 100 != 0  # a partial last batch is counted
    expected = 2 * math.ceil(math.ceil(n / 100) / 3)
    assert total_steps(config, run.problem, 100) == expected
    result = run.fit()
    assert result.final["step"] == expected
    cosine_end = run.trainer.scheduler.schedules[0](expected)
    assert cosine_end == 0.0


def test_threads_are_set_and_recorded(tmp_path):
    before = torch.get_num_threads()
    try:
        run = build_run(RunConfig(problem="logreg_digits", optimizer="sgd", steps=1, threads=1))
        assert torch.get_num_threads() == 1 and run.config.threads == 1
        torch.set_num_threads(2)
        unset = build_run(RunConfig(problem="logreg_digits", optimizer="sgd", steps=1))
        assert unset.config.threads == 2  # torch's count, resolved and part of the identity
    finally:
        torch.set_num_threads(before)


def test_problem_defaults_fill_the_budget():
    config = RunConfig(problem="digits_mlp", optimizer="sgd")
    problem = problems.build("digits_mlp")
    per_epoch = math.ceil(len(problem.splits.train.x) / problem.batch_size)
    assert total_steps(config, problem, problem.batch_size) == problem.epochs * per_epoch
    assert total_steps(config.replace(seconds=5.0), problem, problem.batch_size) is None
    assert total_steps(config.replace(steps=7, epochs=3), problem, problem.batch_size) == 7
