"""The verdict rule of the accelerated entry (NAG-C's bound, heavy ball's failure) on fixed
numbers, and the measurements it reads on a small budget."""

from __future__ import annotations

from gallery_helpers import assert_contradicted, assert_verdict, changed

from optimlab.gallery.entries import accelerated
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED

NUMBERS = {
    "nag_c": {"steps": 100, "max_gap_over_bound": 0.15, "final_gap": 1e-4},
    "gd": {"max_gap_over_bound": 30.0, "first_step_above_bound": 40, "final_gap": 0.7},
    "lessard": {
        "start": 3.3,
        "heavy_ball_lr": 1 / 9,
        "heavy_ball_momentum": 4 / 9,
        "steps": 300,
        "heavy_ball_last": [-1.802, 2.116, 0.647],
        "nag_sc_last": 0.0,
    },
}


def test_reproduced_when_nag_c_holds_its_bound_and_heavy_ball_cycles():
    assert_verdict(accelerated.rule, NUMBERS, REPRODUCED, "from step 40")


def test_not_reproduced_when_nag_c_breaks_its_bound():
    assert_contradicted(
        accelerated.rule, NUMBERS, "nag_c.max_gap_over_bound", 1.2, "exceeds the O(1/k^2) bound"
    )


def test_not_reproduced_when_gradient_descent_also_meets_the_bound():
    assert_contradicted(
        accelerated.rule, NUMBERS, "gd.first_step_above_bound", None, "shows no gap"
    )


def test_not_reproduced_when_heavy_ball_converges_or_nesterov_does_not():
    converged = changed(NUMBERS, "lessard.heavy_ball_last", [1e-3, -1e-3, 1e-4])
    assert accelerated.rule(converged).status == NOT_REPRODUCED
    stuck = changed(NUMBERS, "lessard.nag_sc_last", 0.5)
    assert "NAG-SC does not converge" in accelerated.rule(stuck).reason


def test_measured_on_a_small_budget():
    gaps = accelerated.nag_c_against_bound(steps=300, rows=30, dim=10, seed=1)
    assert (gaps["nag_c"] <= gaps["bound"]).all()
    assert (gaps["gd"] > gaps["bound"]).any()
    paths = accelerated.lessard_paths(150)
    cycle = paths["heavy_ball"][-3:]
    # A period-3 cycle: the iterate three steps back is the same point.
    assert abs(paths["heavy_ball"][-4] - cycle[-1]) < 1e-9 and min(abs(cycle)) > 0.5
    assert abs(paths["nag_sc"][-1]) < 1e-9
