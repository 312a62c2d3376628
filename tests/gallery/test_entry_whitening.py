"""The verdict rule of the whitening entry (the whitening experiment) on fixed numbers: numbers
that show the claim are "reproduced", numbers that contradict it "not reproduced"."""

from __future__ import annotations

import pytest
from gallery_helpers import changed

from optimlab.gallery.entries import whitening
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED


def whitening_numbers() -> dict:
    return {
        "raw": {"condition": 1.4e9, "gd_steps": None, "momentum_steps": None, "gd_gap": 0.04,
                "momentum_gap": 1.2e7},
        "standardize": {"condition": 8.97, "gd_steps": 15, "momentum_steps": 13,
                        "gd_gap": 9.8e-7, "momentum_gap": 8.5e-7},
        "zca_whiten": {"condition": 1.0, "gd_steps": 1, "momentum_steps": 1, "gd_gap": 0.0,
                       "momentum_gap": 0.0},
        "max_steps": 2000,
    }  # fmt: skip


def test_whitening_reproduced_with_a_count_over_the_budget():
    verdict = whitening.rule(whitening_numbers())
    assert verdict.status == REPRODUCED
    assert "more than 2000" in verdict.reason


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        ("standardize.gd_steps", None, "GD needs more than 2000 raw, more than 2000 standardized"),
        ("raw.gd_steps", 10, "GD needs 10 raw"),
        ("zca_whiten.condition", 2.0, "not 1"),
        ("zca_whiten.gd_steps", 3, "whitened, not 1"),
        ("standardize.momentum_steps", 0, "momentum needs"),
        ("raw.condition", 5.0, "do not fall"),
    ],
)
def test_whitening_not_reproduced_when_numbers_contradict(path, value, words):
    verdict = whitening.rule(changed(whitening_numbers(), path, value))
    assert verdict.status == NOT_REPRODUCED
    assert words in verdict.reason


def test_the_lab_experiment_feeds_the_numbers():
    budget = {"max_steps": 50, "n": 120, "tol": 1e-6, "seed": 1}
    numbers = whitening.compute(budget, None).numbers
    assert numbers["max_steps"] == 50 and numbers["raw"]["gd_steps"] is None
    assert numbers["zca_whiten"]["gd_steps"] == 1


def test_the_units_table():
    headers, rows = whitening.table(whitening_numbers())
    assert headers == ["inputs", "cond(A^T A)", "GD steps", "momentum steps"]
    assert rows[0] == ["raw", "1.4e+09", "more than 2000", "more than 2000"]
    assert rows[2] == ["zca_whiten", "1", "1", "1"]
