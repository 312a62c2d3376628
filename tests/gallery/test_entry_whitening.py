"""The verdict rule of the whitening entry (the whitening experiment) on fixed numbers: numbers
that show the claim are "reproduced", numbers that contradict it "not reproduced"."""

from __future__ import annotations

import pytest
from gallery_helpers import assert_verdict, changed

from optimlab.gallery.entries import whitening
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED


def whitening_numbers() -> dict:
    return {
        "raw": {"condition": [1.4e9, 1.1e9, 1.8e9], "gd_steps": [None] * 3,
                "momentum_steps": [None] * 3, "gd_gap": [0.04] * 3, "momentum_gap": [1.2e7] * 3},
        "standardize": {"condition": [8.97, 7.5, 9.9], "gd_steps": [15, 13, 17],
                        "momentum_steps": [13, 12, 14], "gd_gap": [9.8e-7] * 3,
                        "momentum_gap": [8.5e-7] * 3},
        "zca_whiten": {"condition": [1.0] * 3, "gd_steps": [1] * 3, "momentum_steps": [1] * 3,
                       "gd_gap": [0.0] * 3, "momentum_gap": [0.0] * 3},
        "max_steps": 2000,
        "seeds": [0, 1, 2],
    }  # fmt: skip


def test_whitening_reproduced_with_a_count_over_the_budget():
    verdict = assert_verdict(whitening.rule, whitening_numbers(), REPRODUCED, "in each of 3 seeds")
    assert "GD needs more than 2000, 15 ± 2 and 1 ± 0 steps" in verdict.reason


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("standardize.gd_steps", None, "GD needs more than 2000 raw, more than 2000 standardized"),
        ("raw.gd_steps", 10, "GD needs 10 raw"),
        ("zca_whiten.condition", 2.0, "not 1"),
        ("zca_whiten.gd_steps", 3, "whitened, not 1"),
        ("standardize.momentum_steps", 0, "momentum needs"),
        ("raw.condition", 5.0, "do not fall"),
    ],
)
def test_whitening_not_reproduced_when_one_seed_contradicts(key, value, words):
    data = whitening_numbers()
    rep, name = key.split(".")
    data[rep][name][1] = value
    verdict = assert_verdict(whitening.rule, data, NOT_REPRODUCED)
    assert "seed 1: " in verdict.reason and words in verdict.reason
    assert "seed 0" not in verdict.reason and "seed 2" not in verdict.reason


def test_the_lab_experiment_feeds_the_numbers():
    budget = {"max_steps": 50, "n": 120, "tol": 1e-6, "seeds": 2}
    numbers = whitening.compute(budget, None).numbers
    assert numbers["max_steps"] == 50 and numbers["raw"]["gd_steps"] == [None, None]
    assert numbers["zca_whiten"]["gd_steps"] == [1, 1] and numbers["seeds"] == [0, 1]
    conditions = numbers["raw"]["condition"]
    assert conditions[0] != conditions[1]  # each seed draws its own features


def test_the_units_table():
    data = changed(whitening_numbers(), "standardize.gd_steps", [15, None, 17])
    headers, rows = whitening.table(data)
    assert headers == ["inputs", "cond(A^T A)", "GD steps", "momentum steps"]
    assert rows[0] == ["raw", "1.4e+09 (1.1e+09 to 1.8e+09)", "more than 2000", "more than 2000"]
    assert rows[1][2] == "more than 2000 in 1 of 3 seeds"
    assert rows[2] == ["zca_whiten", "1 (1 to 1)", "1 ± 0", "1 ± 0"]
