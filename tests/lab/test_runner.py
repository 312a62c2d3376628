"""Running studies: the protocol's trials, selection, finals, failures, and resume."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from optimlab.errors import OptimlabError
from optimlab.lab import parse_study
from optimlab.lab.runner import run_study, select_best
from optimlab.lab.store import Store

STUDY = """
name = "t"
problems = ["digits_mlp"]
optimizers = ["sgd", "adam"]
seeds = 2
[budget]
epochs = 2
[protocol]
lr_grid = [1e-3, 1e-1, 3]
"""


def records(out: Path) -> list[dict]:
    return list(Store(f"sqlite:///{out / 'study.db'}").records())


def comparable(rs: list[dict]) -> dict:
    """Results without wall-clock fields, keyed by run and phase."""
    out = {}
    for r in rs:
        history = [{k: v for k, v in row.items() if k != "time"} for row in r["history"]]
        final = {k: v for k, v in r["final"].items() if k != "time"}
        out[(r["run_key"], r["phase"])] = (r["status"], history, final)
    return out


def test_deepobs_protocol_tunes_selects_and_reruns(tmp_path):
    spec = parse_study(STUDY)
    result = run_study(spec, tmp_path, report=False, quiet=True)
    rs = records(tmp_path)
    tune = [r for r in rs if r["phase"] == "tune"]
    final = [r for r in rs if r["phase"] == "final"]
    assert len(tune) == 6 and len(final) == 4
    assert result["counts"]["done"] == 10
    for label in ("sgd", "adam"):
        runs = [r for r in tune if r["label"] == label]
        assert sorted(r["params"]["lr"] for r in runs) == [1e-3, 1e-2, 1e-1]
        best = max(runs, key=lambda r: r["final"]["val_accuracy"])
        finals = [r for r in final if r["label"] == label]
        assert {r["seed"] for r in finals} == {0, 1}
        assert all(r["params"] == best["params"] for r in finals)
        seed0 = next(r for r in finals if r["seed"] == 0)
        assert seed0["run_key"] == best["run_key"]  # the tuning run, not recomputed
        assert seed0["final"] == best["final"]
        assert all(len(r["history"]) == 2 for r in runs + finals)


def test_select_best_ignores_diverged_and_failed():
    rs = [
        {"status": "diverged", "final": {"val_accuracy": 0.99}},
        {"status": "failed", "final": {}},
        {"status": "completed", "final": {"val_accuracy": 0.7}},
        {"status": "completed", "final": {"val_accuracy": 0.8}},
    ]
    assert select_best(rs, "val_accuracy", "max") is rs[3]
    assert select_best(rs, "val_accuracy", "min") is rs[2]
    assert select_best(rs[:2], "val_accuracy", "max") is None


def test_diverged_and_failed_trials_are_results_not_crashes(tmp_path):
    spec = parse_study("""
problems = ["digits_mlp"]
seeds = 1
[budget]
epochs = 2
[protocol]
kind = "fixed"
[[optimizers]]
name = "sgd"
label = "too-fast"
params = { lr = 1e6 }
[[optimizers]]
name = "sgd"
label = "broken"
params = { lr = 0.1 }
schedule = { name = "step", params = { step_size = 0 } }
[[optimizers]]
name = "adam"
""")
    run_study(spec, tmp_path, report=False, quiet=True)
    by_label = {r["label"]: r for r in records(tmp_path)}
    assert by_label["too-fast"]["status"] == "diverged"
    assert by_label["broken"]["status"] == "failed"
    assert "step_size" in by_label["broken"]["error"]
    # the traceback is stored with the record, ending at the error
    last_line = by_label["broken"]["traceback"].strip().splitlines()[-1]
    assert by_label["broken"]["traceback"].startswith("Traceback")
    assert last_line.endswith(by_label["broken"]["error"].split(": ", 1)[1])
    assert by_label["adam"]["traceback"] is None
    assert by_label["adam"]["status"] == "completed"
    assert by_label["adam"]["final"]["val_accuracy"] > 0.5


def test_a_changed_study_in_the_same_directory_is_refused(tmp_path):
    run_study(
        parse_study(STUDY.replace("seeds = 2", "seeds = 1").replace("3]", "1]")),
        tmp_path,
        report=False,
        quiet=True,
    )
    with pytest.raises(OptimlabError, match="different study file"):
        run_study(parse_study(STUDY), tmp_path, report=False, quiet=True)


def test_unreachable_storage_is_a_clear_error(tmp_path):
    with pytest.raises(OptimlabError, match="cannot open storage"):
        run_study(
            parse_study(STUDY),
            tmp_path,
            storage="postgresql://u@127.0.0.1:1/none",
            report=False,
            quiet=True,
        )


KILL_STUDY = STUDY.replace("epochs = 2", "epochs = 8")


def _start(study_file: Path, out: Path) -> subprocess.Popen:
    code = (
        "import sys; from optimlab.lab import load_study; "
        "from optimlab.lab.runner import run_study; "
        "run_study(load_study(sys.argv[1]), sys.argv[2], report=False, quiet=True)"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", code, str(study_file), str(out)], env=env)


def _finished_trials(out: Path) -> int:
    try:
        with sqlite3.connect(out / "study.db", timeout=1) as db:
            return db.execute("select count(*) from trials where state = 'COMPLETE'").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkill_midway_then_rerun_gives_the_uninterrupted_results(tmp_path):
    study_file = tmp_path / "study.toml"
    study_file.write_text(KILL_STUDY)
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    proc = _start(study_file, clean)
    assert proc.wait(timeout=300) == 0

    proc = _start(study_file, killed)
    deadline = time.time() + 240
    while _finished_trials(killed) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # into the next trial, past its first checkpoint or not
    assert proc.poll() is None, "the study finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_at_kill = _finished_trials(killed)
    assert 3 <= done_at_kill < 10

    proc = _start(study_file, killed)
    assert proc.wait(timeout=300) == 0
    ours, reference = comparable(records(killed)), comparable(records(clean))
    assert ours == reference
    assert len(ours) == 10
    assert all(math.isfinite(f["val_accuracy"]) for _, _, f in ours.values())


def test_regularization_per_contender(tmp_path):
    spec = parse_study("""
problems = ["digits_mlp"]
seeds = 1
[budget]
epochs = 2
[protocol]
kind = "fixed"
[[optimizers]]
name = "adam"
label = "plain"
[[optimizers]]
name = "adam"
label = "dropout+maxnorm"
regularize = { dropout = 0.5, max_norm = 3.0, l2 = 1e-4 }
""")
    run_study(spec, tmp_path, report=False, quiet=True)
    by_label = {r["label"]: r for r in records(tmp_path)}
    assert by_label["plain"]["status"] == by_label["dropout+maxnorm"]["status"] == "completed"
    assert by_label["plain"]["final"] != by_label["dropout+maxnorm"]["final"]
    assert by_label["dropout+maxnorm"]["regularize"] == {
        "dropout": 0.5,
        "max_norm": 3.0,
        "l2": 1e-4,
    }
    assert by_label["plain"]["regularize"] is None


def test_bad_regularization_names_the_key_and_line():
    with pytest.raises(OptimlabError, match=r"line 4: optimizers\[0\]\.regularize: .*dropout"):
        parse_study(
            'problems = ["digits_mlp"]\n[[optimizers]]\nname = "adam"\n'
            "regularize = { dropout = 1.5 }\n",
            source="s.toml",
        )


def test_kfold_protocol_selects_by_mean_over_folds(tmp_path):
    spec = parse_study("""
problems = ["digits_mlp"]
optimizers = ["sgd"]
seeds = 1
[budget]
epochs = 2
[protocol]
kind = "kfold"
folds = 3
lr_grid = [1e-3, 1e-1, 2]
""")
    run_study(spec, tmp_path, report=False, quiet=True)
    rs = records(tmp_path)
    tune = [r for r in rs if r["phase"] == "tune"]
    assert len(tune) == 6
    assert sorted({r["fold"]["index"] for r in tune}) == [0, 1, 2]
    means = {}
    for lr in (1e-3, 1e-1):
        values = [r["final"]["val_accuracy"] for r in tune if r["params"]["lr"] == lr]
        means[lr] = sum(values) / len(values)
    (final,) = [r for r in rs if r["phase"] == "final"]
    assert final["params"]["lr"] == max(means, key=means.get)
    assert final["fold"] is None and "test_accuracy" in final["final"]
    # the folds hold out different examples: the same lr scores differently per fold
    assert len({r["final"]["val_accuracy"] for r in tune if r["params"]["lr"] == 1e-1}) > 1


def test_schedule_without_horizon_spans_the_run_and_is_plotted(tmp_path):
    """A schedule given by name alone takes the tuned lr and the run's length, in the
    trial and in the report's schedule figure alike."""
    from optimlab.schedules import create

    spec = parse_study("""
problems = ["digits_mlp"]
seeds = 1
[budget]
epochs = 2
[protocol]
kind = "fixed"
[[optimizers]]
name = "adam"
params = { lr = 0.01 }
schedule = { name = "cosine" }
""")
    result = run_study(spec, tmp_path, quiet=True)
    (run,) = records(tmp_path)
    steps = run["history"][-1]["step"]
    cosine = create("cosine", lr=0.01, T_max=steps)
    # the epoch logs the lr of the next update, as torch's get_last_lr() after stepping
    assert [row["lr"] for row in run["history"]] == pytest.approx(
        [cosine(row["step"]) for row in run["history"]]
    )
    assert run["history"][-1]["lr"] == pytest.approx(0.0, abs=1e-12)  # annealed to the end
    assert (result["report"]["figures"] / "schedules.png").exists()
