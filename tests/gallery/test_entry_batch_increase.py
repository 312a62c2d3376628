"""The verdict rule of the increase-the-batch entry on fixed numbers, and the run
settings of its contenders."""

from __future__ import annotations

import math

import pytest

from optimlab.gallery.entries import batch_increase as bi
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED
from optimlab.run import RunConfig


def numbers() -> dict:
    return {
        "problem": "digits_mlp", "epochs": 6, "seeds": 2, "lr": 0.2, "factor": 5,
        "milestones": [2, 4], "max_batch": 320,
        "loss": {"constant": [1.0, 0.3, 0.1, 0.05, 0.02, 0.01],
                 "decay": [1.0, 0.3, 0.2, 0.15, 0.12, 0.11],
                 "increase": [1.0, 0.3, 0.21, 0.16, 0.12, 0.10]},
        "test_accuracy": {"constant": [0.8, 0.9, 0.95, 0.96, 0.97, 0.975],
                          "decay": [0.8, 0.9, 0.95, 0.96, 0.965, 0.97],
                          "increase": [0.8, 0.9, 0.94, 0.96, 0.965, 0.972]},
        "updates": {"constant": 246, "decay": 246, "increase": 98},
        "batch_size": {"constant": [32] * 6, "decay": [32] * 6,
                       "increase": [32, 32, 160, 160, 320, 320]},
    }  # fmt: skip


def changed(key: str, contender: str, values) -> dict:
    out = numbers()
    out[key][contender] = values
    return out


def test_reproduced_when_the_curves_match_and_fewer_updates_are_taken():
    verdict = bi.rule(numbers())
    assert verdict.status == REPRODUCED
    pairs = [(0.21, 0.2), (0.16, 0.15), (0.12, 0.12), (0.10, 0.11)]  # from epoch 3 on
    gap = sum(abs(math.log(a / b)) for a, b in pairs) / 4
    assert f"differ by {gap:.3f} in log units" in verdict.reason
    assert "98 updates against 246 (40%)" in verdict.reason


def test_not_reproduced_when_the_curves_part():
    verdict = bi.rule(changed("loss", "increase", [1.0, 0.3, 0.3, 0.3, 0.3, 0.3]))
    assert verdict.status == NOT_REPRODUCED and "the curves do not match" in verdict.reason


def test_not_reproduced_when_the_decay_changed_nothing():
    verdict = bi.rule(changed("loss", "constant", [1.0, 0.3, 0.2, 0.15, 0.125, 0.1]))
    assert verdict.status == NOT_REPRODUCED and "barely changed the curve" in verdict.reason


def test_not_reproduced_without_fewer_updates_or_with_another_accuracy():
    more = numbers()
    more["updates"]["increase"] = 246
    assert "did not save updates" in bi.rule(more).reason
    worse = changed("test_accuracy", "increase", [0.8, 0.9, 0.94, 0.95, 0.95, 0.95])
    assert bi.rule(worse).status == NOT_REPRODUCED
    assert "accuracies differ by more than 1%" in bi.rule(worse).reason


def test_contenders_share_the_schedule_and_only_the_third_grows_the_batch():
    budget = bi.ENTRY.budget("quick")
    assert bi.settings("constant", budget, 41) == {"lr": 0.2}
    decay = bi.settings("decay", budget, 41)
    assert decay["schedule_args"] == {"milestones": [205, 410], "gamma": pytest.approx(0.2)}
    increase = bi.settings("increase", budget, 41)
    assert increase == {**decay, "batch_schedule": "increase", "max_batch": 320}
    RunConfig(problem=budget["problem"], optimizer="sgd", **increase)  # valid run settings


def test_the_table_shows_runs_of_batch_sizes():
    headers, rows = bi.table(numbers())
    assert headers[:3] == ["run", "updates", "batch sizes"]
    assert rows[2][2] == "32 x2, 160 x2, 320 x2" and rows[0][2] == "32 x6"
