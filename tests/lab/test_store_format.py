"""The record names its contender as the study file does, and a storage written before
that (the registry name stored under ``optimizer``) still resumes, reports and shows
its status."""

from __future__ import annotations

from optimlab.cli import main
from optimlab.lab import parse_study
from optimlab.lab.runner import run_study
from optimlab.lab.store import Store, default_storage, study_name
from optimlab.lab.trial import run_key, run_trial

STUDY = """
name = "old-store"
problems = ["logreg_digits"]
seeds = 2
threads = 1
[budget]
steps = 3
[protocol]
kind = "fixed"
[[optimizers]]
name = "sgd"
label = "plain-sgd"
params = { lr = 0.1 }
"""


def _old_config(seed: int) -> dict:
    """A trial's configuration as the previous version stored it."""
    return {
        "problem": "logreg_digits", "optimizer": "sgd", "label": "plain-sgd",
        "params": {"lr": 0.1}, "schedule": None, "seed": seed, "budget": {"steps": 3},
        "batch_size": None, "threads": 1,
    }  # fmt: skip


def test_a_record_spells_its_keys_as_the_study_file(tmp_path):
    spec = parse_study(STUDY)
    run_study(spec, tmp_path, report=False, quiet=True)
    (entry,) = spec.to_dict()["optimizers"]
    records = list(Store(default_storage(tmp_path)).records())
    assert len(records) == 2
    for r in records:
        assert (r["label"], r["name"], r["params"]) == (
            entry["label"], entry["name"], entry["params"]
        )  # fmt: skip
        assert r["run"] is None  # the study gives no run table
        assert "optimizer" not in r and "optimizer_name" not in r


def _previous_study_table(spec) -> dict:
    """The study as the previous version stored it: no run tables yet."""
    table = spec.to_dict()
    del table["run"]
    for entry in table["optimizers"]:
        del entry["run"]
    return table


def test_a_storage_in_the_previous_shape_resumes_reports_and_shows_status(tmp_path, capsys):
    spec = parse_study(STUDY)
    store = Store(default_storage(tmp_path))
    store.set_meta("spec", _previous_study_table(spec))
    store.set_meta("planned", True)
    name = study_name("final", "logreg_digits", "plain-sgd")
    old = [_old_config(seed) for seed in (0, 1)]
    # the previous version's run key: the run's identity and the label, as today
    keys = [run_key({**c, "name": c["optimizer"]}) for c in old]
    for config, key in zip(old, keys, strict=True):
        store.enqueue(name, config, key, "maximize")
    # seed 0 finished under the previous version; seed 1 was still waiting
    _, trial = store.claim([name])
    assert trial.user_attrs["config"]["optimizer"] == "sgd"
    record = run_trial({**old[0], "name": "sgd"}, tmp_path / "runs" / keys[0])
    assert store.finish(trial, record, record["final"]["val_accuracy"])

    result = run_study(spec, tmp_path, quiet=True)  # resumes: runs seed 1 from its old config
    assert result["counts"]["done"] == 2 and result["counts"]["total"] == 2
    records = sorted(Store(default_storage(tmp_path)).records(), key=lambda r: r["seed"])
    assert [(r["label"], r["name"], r["seed"]) for r in records] == [
        ("plain-sgd", "sgd", 0), ("plain-sgd", "sgd", 1)
    ]  # fmt: skip
    assert all(r["status"] == "completed" for r in records)

    capsys.readouterr()
    assert main(["report", str(tmp_path)]) == 0
    assert "plain-sgd" in (tmp_path / "report" / "report.md").read_text()
    assert main(["study", "status", str(tmp_path)]) == 0
    assert "2 done" in capsys.readouterr().out
