"""The lab from the command line: compare, study run/status, report; parallel workers."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from optimlab.cli import main
from optimlab.lab import parse_study
from optimlab.lab.runner import run_study
from optimlab.lab.store import Store

STUDY = """
name = "cli-study"
problems = ["digits_mlp"]
optimizers = ["sgd", "adam"]
seeds = 2
[budget]
epochs = 2
[protocol]
lr_grid = [1e-2, 1e-1, 2]
"""


def finals(out) -> dict:
    rs = Store(f"sqlite:///{out / 'study.db'}").records()
    return {
        (r["label"], r["seed"]): r["final"]["val_accuracy"] for r in rs if r["phase"] == "final"
    }


def test_study_run_status_and_report(tmp_path, capsys):
    study = tmp_path / "s.toml"
    study.write_text(STUDY)
    out = tmp_path / "out"
    assert main(["study", "run", str(study), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    # what is planned per phase is what finishes: 2 x 2 tuning runs, then 2 x 2 seeds
    tune, final = map(
        int, re.search(r"(\d+) tuning runs planned now; (\d+) final runs follow", printed).groups()
    )
    assert (tune, final) == (4, 4)
    assert "done: 8 runs, 0 failed, 0 pruned (tuning 4, final 4)" in printed
    assert (out / "report" / "report.html").exists()
    assert main(["study", "status", str(out)]) == 0
    status = capsys.readouterr().out
    assert "8 done, 0 running, 0 waiting" in status
    assert "trials in storage: 8 = 8 runs + 0 bookkeeping" in status
    (out / "report" / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report" / "report.html").exists()
    # rerunning a finished study does nothing new and keeps the results
    before = finals(out)
    assert main(["study", "run", str(study), "--out", str(out)]) == 0
    assert finals(out) == before


def test_every_run_failed_exits_non_zero_and_status_lists_the_errors(tmp_path, capsys):
    study = tmp_path / "s.toml"
    study.write_text("""
name = "all-fail"
problems = ["digits_mlp"]
seeds = 2
[budget]
epochs = 1
[protocol]
kind = "fixed"
[[optimizers]]
name = "sgd"
params = { lr = 0.1 }
schedule = { name = "step", params = { step_size = 0 } }
""")
    out = tmp_path / "out"
    assert main(["study", "run", str(study), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "done: 0 runs, 2 failed, 0 pruned" in captured.out
    assert "optimlab: error: every run of the study failed (2)" in captured.err
    assert main(["study", "status", str(out)]) == 0
    status = capsys.readouterr().out
    error = "OptimlabError: schedule 'step': invalid step_size: 0; valid range is [1, inf)"
    for seed in (0, 1):
        assert f"  failed: final digits_mlp sgd lr=0.1 seed={seed}: {error}\n" in status + "\n"
    records = list(Store(f"sqlite:///{out / 'study.db'}").records())
    assert all("Traceback" in r["traceback"] and "step_size" in r["traceback"] for r in records)


def test_compare_one_liner_equals_the_study_file(tmp_path):
    out = tmp_path / "cmp"
    code = main(
        [
            "compare",
            "--problem",
            "digits_mlp",
            "--optimizers",
            "sgd,adam",
            "--tune",
            "lr",
            "--lr-grid",
            "1e-2,1e-1,2",
            "--seeds",
            "2",
            "--epochs",
            "2",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    ref = tmp_path / "ref"
    run_study(parse_study(STUDY), ref, report=False, quiet=True)
    assert finals(out) == finals(ref)


def test_two_worker_processes_give_the_same_results(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    run_study(parse_study(STUDY), one, report=False, quiet=True)
    run_study(parse_study(STUDY), two, workers=2, report=False, quiet=True)
    assert finals(one) == finals(two)
    assert len(finals(two)) == 4


def test_pruning_stops_hopeless_trials(tmp_path):
    spec = parse_study("""
problems = ["digits_mlp"]
seeds = 1
[budget]
epochs = 6
[protocol]
kind = "deepobs"
lr_grid = [1e-4, 1e-1, 8]
pruning = true
[[optimizers]]
name = "sgd"
""")
    run_study(spec, tmp_path, report=False, quiet=True)
    tune = [
        r for r in Store(f"sqlite:///{tmp_path / 'study.db'}").records() if r["phase"] == "tune"
    ]
    pruned = [r for r in tune if r["status"] == "pruned"]
    assert pruned, "the tiny learning rates should have been pruned"
    assert all(len(r["history"]) < 6 for r in pruned)
    best = max(tune, key=lambda r: r["final"].get("val_accuracy", 0))
    assert best["status"] == "completed"


def test_bad_study_file_is_a_one_line_error(tmp_path):
    study = tmp_path / "bad.toml"
    study.write_text('problems = ["digits_mlp"]\noptimizers = ["sgd", "adamm"]\n')
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "optimlab.cli",
            "study",
            "run",
            str(study),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "line 2: optimizers[1].name: unknown optimizer 'adamm'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()  # nothing half-written


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [("--epochs", "0", "budget.epochs: must be a number > 0; got 0"),
     ("--batch-size", "0", "batch_size: must be a whole number >= 1; got 0"),
     ("--seeds", "0", "seeds: must be a whole number >= 1; got 0"),
     ("--lr", "inf", "invalid lr: inf; valid: a finite number >= 0"),
     ("--lr", "0", None)],
)  # fmt: skip
def test_compare_takes_its_numbers_as_given(flag, value, message, tmp_path, capsys):
    """0 is a value, not "use the default": bad ones fail before any storage exists."""
    from optimlab.cli.compare import build_spec, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["compare", "--problem", "logreg_digits", "--optimizers", "sgd",
                              flag, value])  # fmt: skip
    if message is None:  # lr 0 is a legal (if useless) learning rate, kept as given
        assert build_spec(args).optimizers[0].params == {"lr": 0.0}
        return
    out = tmp_path / "cmp"
    argv = ["compare", "--problem", "logreg_digits", "--optimizers", "sgd", flag, value]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("optimlab: error:") and message in err and err.count("\n") == 1
    assert not out.exists()
