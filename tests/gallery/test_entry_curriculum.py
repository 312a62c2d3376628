"""The verdict rule of the curriculum entry on fixed numbers, and its contenders' run
settings."""

from __future__ import annotations

from optimlab.gallery.entries import curriculum as cu
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED
from optimlab.run import RunConfig


def numbers(curriculum_at=(0.80, 0.90, 0.93, 0.95, 0.96)) -> dict:
    return {
        "problem": "digits_mlp", "steps": 200, "seeds": 2, "lr": 0.1, "start": 0.2,
        "pacing": "exp", "pacing_epochs": 4,
        "curves": {"random": {"steps": [41, 82, 123, 164, 200],
                              "test_accuracy": [0.75, 0.88, 0.92, 0.95, 0.96]},
                   "curriculum": {"steps": [9, 22, 41, 82, 200],
                                  "test_accuracy": [0.3, 0.5, 0.8, 0.9, 0.96]}},
        "at": [41, 82, 123, 164, 200], "curriculum_at": list(curriculum_at),
        "first_epoch_classes": {"random": [10, 10], "curriculum": [5, 4]},
    }  # fmt: skip


def test_reproduced_when_faster_at_first_and_no_worse_at_the_end():
    verdict = cu.rule(numbers())
    assert verdict.status == REPRODUCED
    # the first half is steps 41 and 82: gains 0.05 and 0.02
    assert "over the first 82 steps" in verdict.reason and "+3.5%" in verdict.reason
    assert "cover 5, 4 classes (by seed) against 10" in verdict.reason


def test_not_reproduced_when_slower_at_first():
    verdict = cu.rule(numbers((0.44, 0.66, 0.88, 0.93, 0.96)))
    assert verdict.status == NOT_REPRODUCED
    assert "does not learn faster at first" in verdict.reason and "-26.5%" in verdict.reason


def test_not_reproduced_when_it_ends_worse():
    verdict = cu.rule(numbers((0.80, 0.90, 0.93, 0.94, 0.94)))
    assert verdict.status == NOT_REPRODUCED and "ends more than 1% below" in verdict.reason


def test_the_contenders_are_valid_run_settings():
    budget = cu.ENTRY.budget("quick")
    assert cu.settings("random", budget) == {"order": "random"}
    order = cu.settings("curriculum", budget)
    assert order == {"order": "curriculum",
                     "curriculum": {"start": 0.2, "pacing": "exp", "epochs": 4}}  # fmt: skip
    RunConfig(problem=budget["problem"], optimizer="sgd", **order)


def test_the_table_lines_up_the_two_orders_at_the_same_steps():
    headers, rows = cu.table(numbers())
    assert headers == ["step", "random order", "curriculum (interpolated)"]
    assert rows[0] == ["41", "75.00%", "80.00%"]
