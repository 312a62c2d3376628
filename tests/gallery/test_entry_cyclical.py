"""The verdict rule of the cyclical entry (cyclical learning rates and snapshot cycles) on
fixed numbers: numbers that show the claim are "reproduced", numbers that contradict it "not
reproduced"."""

from __future__ import annotations

import pytest
from gallery_helpers import changed

from optimlab.gallery.entries import cyclical
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED


def cyclical_numbers() -> dict:
    return {
        "triangular": {"max_error": 1e-16, "peaks": [0.006] * 4, "amplitude_ratios": [1.0] * 3},
        "triangular2": {"max_error": 1e-16, "peaks": [0.006, 0.0035, 0.00225, 0.001625],
                        "amplitude_ratios": [0.5, 0.5, 0.5]},
        "exp_range": {"max_error": 1e-16, "peaks": [0.0049, 0.0034, 0.0024, 0.0019],
                      "amplitude_ratios": [0.60638] * 3, "expected_ratio": 0.60638},
        "snapshot": {"max_error": 0.0, "cycle_length": 400,
                     "snapshot_steps": [399, 799, 1199, 1599, 1999],
                     "values_at_cycle_starts": [0.1] * 5, "values_at_snapshots": [1.5e-6] * 5,
                     "cycle_minima": [1.5e-6] * 5},
    }  # fmt: skip


def test_cyclical_reproduced_on_exact_schedules():
    assert cyclical.rule(cyclical_numbers()).status == REPRODUCED


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        ("exp_range.max_error", 1e-3, "exp_range departs"),
        ("triangular2.amplitude_ratios", [0.5, 0.6, 0.5], "triangular2's amplitude ratios"),
        ("exp_range.amplitude_ratios", [0.5, 0.5, 0.5], "not gamma^(2s)"),
        ("triangular.peaks", [0.006, 0.005, 0.006, 0.006], "triangular's peaks differ"),
        ("snapshot.values_at_snapshots", [0.1] * 5, "not taken at the cycles' lowest"),
        ("snapshot.values_at_cycle_starts", [0.1, 0.09, 0.1, 0.1, 0.1], "restart at"),
    ],
)
def test_cyclical_not_reproduced_when_a_schedule_departs(path, value, words):
    verdict = cyclical.rule(changed(cyclical_numbers(), path, value))
    assert verdict.status == NOT_REPRODUCED
    assert words in verdict.reason


def test_cyclical_transcriptions_match_the_papers_examples():
    # Smith 2017: at it = s the rate peaks; triangular2's second peak is half as high.
    assert cyclical.smith(250, 0.001, 0.006, 250, "triangular", 1.0) == pytest.approx(0.006)
    assert cyclical.smith(0, 0.001, 0.006, 250, "triangular", 1.0) == pytest.approx(0.001)
    assert cyclical.smith(750, 0.0, 1.0, 250, "triangular2", 1.0) == pytest.approx(0.5)
    # Huang 2017: t = 1 starts a cycle at lr0; the cycle's middle is lr0 / 2.
    assert cyclical.huang(1, 0.2, 100, 5) == pytest.approx(0.2)
    assert cyclical.huang(11, 0.2, 100, 5) == pytest.approx(0.1)
    assert cyclical.huang(21, 0.2, 100, 5) == pytest.approx(0.2)


def test_optimlab_schedules_match_the_transcriptions():
    budget = dict(cyclical.ENTRY.budgets["quick"], steps=600, step_size=100)
    numbers = cyclical.compute(budget, None).numbers
    assert cyclical.rule(numbers).status == REPRODUCED
    assert numbers["triangular2"]["amplitude_ratios"] == pytest.approx([0.5, 0.5])


def test_the_schedule_table():
    headers, rows = cyclical.table(cyclical_numbers())
    assert [r[0] for r in rows] == ["triangular", "triangular2", "exp_range", "snapshot"]
    assert rows[1][2] == "0.5, 0.5, 0.5"
