"""The verdict rule of the lbfgs_batches entry (the lab's batch_pairs experiment) on fixed
numbers: numbers that show the claim are "reproduced", numbers that contradict it "not
reproduced"."""

from __future__ import annotations

import pytest
from gallery_helpers import assert_contradicted, assert_verdict, changed

from optimlab.gallery.entries import lbfgs_batches
from optimlab.gallery.entry import REPRODUCED


def lbfgs_numbers() -> dict:
    return {
        "problem": "logreg_digits", "batch_size": 256, "steps": 100, "seeds": 3, "repeats": 4,
        "unmoved": 0,
        "fresh": {"pairs": 297, "median_error": 2.85, "max_error": 141.9,
                  "short_step_median_error": 4.39, "slope": -0.72, "nonpositive": 0.0134},
        "same": {"pairs": 297, "median_error": 1.29, "max_error": 31.4,
                 "short_step_median_error": 1.56, "slope": -0.10, "nonpositive": 0.0},
        "fresh_run": {"train_loss": [0.0026, 0.0016, 0.0074],
                      "val_accuracy": [0.9375, 0.9861, 0.9514]},
        "kept_run": {"train_loss": [0.563, 0.134, 0.0009],
                     "val_accuracy": [0.9236, 0.9375, 0.9444]},
    }  # fmt: skip


def test_reproduced_whatever_the_trainings_losses():
    assert_verdict(lbfgs_batches.rule, lbfgs_numbers(), REPRODUCED,
                   "median 4.4 times", "slope -0.72 against -0.10")  # fmt: skip
    swapped = changed(lbfgs_numbers(), "kept_run.train_loss", [1e-4, 1e-4, 1e-4])
    assert lbfgs_batches.rule(swapped).status == REPRODUCED  # reported, not judged


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        ("fresh.short_step_median_error", 3.0, "only 1.92 times"),
        ("fresh.slope", -0.3, "does not grow faster as the steps shrink"),
        ("same.nonpositive", 0.01, "1.0% of the one-batch pairs have s . y <= 0"),
    ],
)
def test_not_reproduced_when_numbers_contradict(path, value, words):
    assert_contradicted(lbfgs_batches.rule, lbfgs_numbers(), path, value, words)


def test_the_table():
    headers, rows = lbfgs_batches.table(lbfgs_numbers())
    assert headers[0] == "pair from" and len(rows) == 4
    assert rows[0] == ["fresh", "297", "2.85", "4.39", "-0.72", "1.3%"]
    assert rows[3][0] == "train: kept 4 iterations" and rows[3][2].startswith("loss 0.563")


def test_the_lab_experiment_feeds_the_numbers():
    budget = {"steps": 12, "seeds": 1, "batch_size": 128, "repeats": 2}
    measured = lbfgs_batches.compute(budget, None)
    numbers = measured.numbers
    assert numbers["fresh"]["pairs"] + numbers["unmoved"] == 11
    assert numbers["same"]["pairs"] == numbers["fresh"]["pairs"]
    assert len(numbers["kept_run"]["train_loss"]) == 1
    assert set(lbfgs_batches.draw(measured)) == {"lbfgs_batches"}
