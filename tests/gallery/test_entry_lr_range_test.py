"""The lr_range_test entry: its verdict rule on fixed numbers, a short real run, and the
standard tier's MNIST run skipped, with the way to get the data, when MNIST is not on disk."""

from __future__ import annotations

import json

import pytest
from gallery_helpers import changed

from optimlab.gallery import run_gallery
from optimlab.gallery.entries import lr_range_test as lrt
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED


def run(lr: float, val_loss: float | None, status: str = "completed") -> dict:
    return {"lr": lr, "status": status, "val_loss": val_loss, "val_accuracy": 0.5,
            "val_loss_per_epoch": [val_loss]}  # fmt: skip


def seed_numbers(loss: float = 0.69) -> dict:
    return {
        "suggested_lr": 0.11, "bounds": [0.019, 0.19],
        "stopped_early": True, "note": "", "test_lrs": [1e-5, 1.0], "test_losses": [2.3, 9.0],
        "test_smoothed": [2.3, 5.0],
        "runs": {"small": run(0.0011, 2.18), "suggested": run(0.11, loss),
                 "diverging": run(1.01, 2.47)},
    }  # fmt: skip


def numbers() -> dict:
    return {"problem": "digits_mlp", "seeds": [0, 1, 2],
            "per_seed": [seed_numbers(0.69), seed_numbers(0.71), seed_numbers(0.73)]}  # fmt: skip


def test_lr_range_reproduced_when_the_suggestion_trains_best_in_every_seed():
    verdict = lrt.rule(numbers())
    assert verdict.status == REPRODUCED
    assert "in each of 3 seeds" in verdict.reason
    assert "suggested lr 0.11 (0.11 to 0.11) ends at validation loss 0.71 ± 0.02" in (
        verdict.reason
    )


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        ("runs.small.val_loss", 0.5, "does not train best"),
        ("runs.diverging.val_loss", 0.6, "does not train best"),
        ("runs.suggested.val_loss", None, "does not train best"),
        ("stopped_early", False, "never diverged"),
        ("suggested_lr", None, "made no suggestion"),
    ],
)
def test_lr_range_not_reproduced_when_one_seed_contradicts(path, value, words):
    data = numbers()
    data["per_seed"][2] = changed(data["per_seed"][2], path, value)
    verdict = lrt.rule(data)
    assert verdict.status == NOT_REPRODUCED
    assert "seed 2: " in verdict.reason and words in verdict.reason
    assert "seed 0" not in verdict.reason


def test_a_diverged_run_counts_as_worst():
    data = numbers()
    for k in range(3):
        data["per_seed"][k]["runs"]["diverging"] = run(1.01, None, "diverged")
    verdict = lrt.rule(data)
    assert verdict.status == REPRODUCED and "blew up in 3 of 3 seeds" in verdict.reason


def test_a_short_range_test_and_three_trainings():
    budget = dict(lrt.ENTRY.budgets["quick"], steps=60, epochs=1, seeds=2)
    both = lrt.compute(budget, lrt.Context()).numbers
    assert both["seeds"] == [0, 1] and both["per_seed"][0] != both["per_seed"][1]
    n = both["per_seed"][1]
    assert len(n["test_lrs"]) == len(n["test_losses"]) <= 60
    assert n["suggested_lr"] is not None, n["note"]
    assert set(n["runs"]) == set(lrt.RUNS)
    assert n["runs"]["small"]["lr"] == pytest.approx(n["suggested_lr"] / 100)
    assert n["runs"]["diverging"]["lr"] == n["test_lrs"][-1]
    assert all(len(r["val_loss_per_epoch"]) == 1 for r in n["runs"].values())


def test_the_full_tier_needs_mnist_and_says_how_to_get_it(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("OPTIMLAB_DATA", str(empty))
    monkeypatch.setenv("XDG_CACHE_HOME", str(empty))
    out = tmp_path / "out"
    outcome = run_gallery(out, tier="full", only=["lr_range_test"], report=lambda s: None)
    record = json.loads((out / "lr_range_test" / "result.json").read_text())
    assert outcome.failed == [] and record["status"] == "skipped"
    assert "dataset 'mnist' not found" in record["skip_reason"]
    assert record["get_data"].endswith("--tier full --out " + str(out) + " --download")
    html = (out / "gallery.html").read_text()
    assert "Skipped: dataset" in html and record["get_data"] in html


def test_the_rate_table():
    data = numbers()
    data["per_seed"][0]["runs"]["diverging"] = run(1.01, None, "diverged")
    headers, rows = lrt.table(data)
    assert [r[0] for r in rows] == list(lrt.RUNS)
    assert rows[1] == ["suggested", "0.11 (0.11 to 0.11)", "3/3", "0.71 ± 0.02", "0.5 ± 0"]
    assert rows[2][2:4] == ["2/3", "2.47 ± 0"]
