"""A study contender whose run table asks for a launched method (``sync`` with
``nproc = 2``): its trial starts real processes through ``optimlab train``'s launcher
(gloo on loopback) and records the run that ``optimlab train --parallel sync --nproc 2``
makes with the same settings. Starts two groups of processes: marked slow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from launching import final_weights, history, optimlab

from optimlab.lab.store import Store

pytestmark = pytest.mark.slow

STUDY = """
name = "launched"
problems = ["logreg_digits"]
seeds = 1
budget = { epochs = 2 }
protocol = { kind = "fixed" }

[[optimizers]]
name = "sgd"
label = "serial"
params = { lr = 0.1 }

[[optimizers]]
name = "sgd"
label = "parallel2"
params = { lr = 0.1 }
run = { parallel = "sync", nproc = 2 }

[run]
dtype = "float64"
"""


def study_and_train(tmp_path: Path, method: str) -> tuple[dict[str, dict], Path, Path]:
    """Run the study with its second contender on ``method`` and, for reference, the
    same run under ``optimlab train``: (records by label, study dir, train dir)."""
    study = tmp_path / "study.toml"
    study.write_text(STUDY.replace('parallel = "sync"', f'parallel = "{method}"'))
    out = tmp_path / "out"
    done = optimlab("study", "run", str(study), "--out", str(out))
    assert done.returncode == 0, done.stderr
    records = {r["label"]: r for r in Store(f"sqlite:///{out / 'study.db'}").records()}
    assert {r["status"] for r in records.values()} == {"completed"}, records
    reference = tmp_path / "train"
    trained = optimlab("train", "--problem", "logreg_digits", "--optimizer", "sgd",
                       "--lr", "0.1", "--epochs", "2", "--seed", "0", "--threads", "1",
                       "--dtype", "float64", "--parallel", method, "--nproc", "2",
                       "--quiet", "--out", str(reference))  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    return records, out, reference


def test_a_sync_contender_runs_in_two_processes_and_records_the_trained_run(tmp_path):
    records, out, reference = study_and_train(tmp_path, "sync")
    record = records["parallel2"]
    assert [{k: v for k, v in row.items() if k != "time"} for row in record["history"]] == (
        history(reference)
    )
    assert len(record["history"]) == 2 and record["final"]["epoch"] == 2
    steps = [json.loads(line) for line in (reference / "steps.jsonl").read_text().splitlines()]
    assert record["step_log"] == steps
    run_dir = out / "runs" / record["run_key"]
    a, b = final_weights(run_dir), final_weights(reference)
    assert a.keys() == b.keys() and all(a[k].dtype == torch.float64 for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit for bit


def test_a_hogwild_contender_runs_in_two_processes_not_serially(tmp_path):
    """Before, the trial silently trained in one process (all 21 steps of an epoch);
    now process 0 takes its share, as under ``optimlab train``. Hogwild! is racy, so
    only the counts are compared."""
    records, _, reference = study_and_train(tmp_path, "hogwild")

    def counts(rows: list[dict]) -> list[tuple[int, int]]:
        return [(row["step"], row["examples"]) for row in rows]

    assert counts(records["parallel2"]["history"]) == counts(history(reference))
    assert counts(records["parallel2"]["history"]) != counts(records["serial"]["history"])
