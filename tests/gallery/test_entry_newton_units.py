"""The verdict rule of the newton_units entry (the lab's units experiment) on fixed
numbers, and the experiment itself on a short budget."""

from __future__ import annotations

import pytest
from gallery_helpers import assert_contradicted, assert_verdict, changed

from optimlab.gallery.entries import newton_units
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED


def units_numbers() -> dict:
    return {
        "scale": 1000.0, "f_star": 0.4779, "n": 200,
        "newton": {"lr": 1.0, "steps": 10, "final_gap": 0.0},
        "newton_scaled": {"lr": 1.0, "steps": 10, "final_gap": 0.0,
                          "max_map_error": 3.2e-15, "final_map_error": 1.7e-16},
        "gd": {"lr": 2.22, "steps": 200, "final_gap": 6.7e-15},
        "gd_scaled_same_lr": {"lr": 2.22, "steps": 200, "final_gap": 5.9e5,
                              "max_map_error": 1.1e6, "final_map_error": 7.7e5},
        "gd_scaled_retuned": {"lr": 4e-6, "steps": 200, "final_gap": 0.061,
                              "max_map_error": 0.9, "final_map_error": 0.53},
    }  # fmt: skip


def test_reproduced():
    assert_verdict(newton_units.rule, units_numbers(), REPRODUCED,
                   "to 3e-15 at every one of its 10 steps", "0.53 at the retuned one")  # fmt: skip


def test_a_diverged_scaled_gd_run_still_misses():
    numbers = changed(units_numbers(), "gd_scaled_same_lr.final_map_error", None)
    assert newton_units.rule(numbers).status == REPRODUCED


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        ("newton_scaled.max_map_error", 1e-6, "1e-06 relative away from the unscaled ones"),
        ("newton_scaled.max_map_error", None, "not finite relative away"),
        ("newton.final_gap", 1e-3, "Newton ends at a gap of 0.001"),
        ("newton_scaled.final_gap", None, "scaled problem ends at a gap of not finite"),
        ("gd.final_gap", 0.02, "unscaled GD ends at a gap of 0.02"),
        ("gd_scaled_retuned.final_map_error", 1e-3, "GD at the scaled 1/L ends 0.001"),
        ("gd_scaled_same_lr.final_map_error", 0.05, "GD at the unscaled 1/L ends 0.05"),
    ],
)
def test_not_reproduced_when_numbers_contradict(path, value, words):
    assert_contradicted(newton_units.rule, units_numbers(), path, value, words)


def test_the_table():
    headers, rows = newton_units.table(units_numbers())
    assert headers[0] == "run" and len(rows) == 5
    assert rows[1] == ["newton_scaled", "1", "10", "0", "3.2e-15 / 1.7e-16"]
    assert rows[2][-1] == "-"


def test_the_lab_experiment_feeds_the_numbers():
    budget = {"n": 120, "seed": 1, "newton_steps": 6, "gd_steps": 30}
    measured = newton_units.compute(budget, None)
    numbers = measured.numbers
    assert numbers["newton_scaled"]["steps"] == 6 and numbers["gd"]["steps"] == 30
    # the entry's claim, measured: Newton maps exactly, GD does not
    assert numbers["newton_scaled"]["max_map_error"] < 1e-10
    assert numbers["gd_scaled_retuned"]["final_map_error"] > 0.1
    assert numbers["gd_scaled_same_lr"]["lr"] == numbers["gd"]["lr"]
    assert numbers["gd_scaled_retuned"]["lr"] < 1e-4 * numbers["gd"]["lr"]
    # 30 GD steps do not reach the minimum: the rule says the comparison is not made
    verdict = newton_units.rule(numbers)
    assert verdict.status == NOT_REPRODUCED and verdict.reason.startswith("unscaled GD ends")
    assert set(newton_units.draw(measured)) == {"newton_units"}
