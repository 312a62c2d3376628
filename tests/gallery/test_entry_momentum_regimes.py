"""The verdict rule of the momentum_regimes entry (Goh's momentum regimes and the rate map) on
fixed numbers: numbers that show the claim are "reproduced", numbers that contradict it "not
reproduced"."""

from __future__ import annotations

import pytest
from gallery_helpers import assert_contradicted, assert_verdict, changed

from optimlab.gallery.entries import momentum_regimes
from optimlab.gallery.entry import AT_BUDGET, REPRODUCED


def regime_numbers() -> dict:
    regimes = {
        name: {"s": s, "beta": b, "measured": name, "spectral_radius": 0.5, "measured_rate": 0.5}
        for name, (s, b) in momentum_regimes.REGIMES.items()
    }
    return {
        "regimes": regimes,
        "ripples": {
            "beta": 0.9,
            "s": [0.05, 0.5, 1.5, 3.0],
            "measured_rates": [0.9486, 0.9487, 0.9487, 0.9487],
            "sqrt_beta": 0.948683,
            "slide_2_sqrt_beta": 1.897367,
        },
        "optimum": {
            "eigenvalues": [1.0, 100.0],
            "closed_lr": 0.0331,
            "closed_beta": 0.669,
            "closed_rate": 0.8182,
            "measured_rate_at_closed": 0.8210,
            "grid_best_rate": 0.8255,
            "grid_best_lr": 0.031,
            "grid_best_beta": 0.685,
            "grid_lr_step": 0.001,
            "grid_beta_step": 0.025,
            "gd_closed_rate": 0.9802,
            "gd_grid_best_rate": 0.9810,
        },
    }


def test_momentum_reproduced_on_numbers_that_match_goh():
    assert momentum_regimes.rule(regime_numbers()).status == REPRODUCED


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        ("regimes.ripples.measured", "monotonic decrease", "ripples looked like"),
        ("ripples.measured_rates", [0.94, 0.90, 0.95, 0.95], "ripples' rates"),
        ("optimum.measured_rate_at_closed", 0.90, "at the closed-form lr and beta"),
        ("optimum.grid_best_rate", 0.70, "converges faster"),
        ("optimum.gd_grid_best_rate", 0.95, "GD's best measured rate"),
        ("optimum.grid_best_rate", 0.90, "far above"),
    ],
)
def test_momentum_not_reproduced_when_a_number_contradicts(path, value, words):
    assert_contradicted(momentum_regimes.rule, regime_numbers(), path, value, words)


def test_momentum_at_this_budget_only_when_the_grid_is_coarse():
    assert_verdict(momentum_regimes.rule,
                   changed(regime_numbers(), "optimum.grid_best_rate", 0.84),
                   AT_BUDGET, "too coarse")  # fmt: skip


def test_regime_classifier_on_hand_made_paths():
    classify = momentum_regimes.classify
    assert classify([1.0, 0.0, 0.0]) == "1-step convergence"
    assert classify([1.0, 0.8, 0.6, 0.4]) == "monotonic decrease"
    assert classify([1.0, -0.5, 0.25, -0.125]) == "monotonic oscillations"
    assert classify([1.0, 0.5, -0.2, -0.4, -0.1, 0.1, 0.05]) == "ripples"
    assert classify([1.0, -2.0, 4.0]) == "divergence"


def test_envelope_rate_reads_the_decay_of_a_ripple():
    import numpy as np

    t = np.arange(400)
    path = 0.95**t * np.cos(0.3 * t + 0.4)
    assert momentum_regimes.envelope_rate(path) == pytest.approx(0.95, abs=2e-4)
    assert momentum_regimes.envelope_rate(0.5 ** t[:40]) == pytest.approx(0.5)


def test_a_small_run_shows_each_regime_and_goh_s_rates():
    budget = {"grid": 12, "steps": 120, "path_steps": 60, "direct_steps": 400}
    numbers = momentum_regimes.compute(budget, None).numbers
    for name, r in numbers["regimes"].items():
        assert r["measured"] == name
    rip = numbers["ripples"]
    assert rip["measured_rates"] == pytest.approx([rip["sqrt_beta"]] * 4, abs=1e-3)
    opt = numbers["optimum"]
    assert opt["closed_rate"] == pytest.approx((10 - 1) / (10 + 1))
    assert opt["measured_rate_at_closed"] == pytest.approx(opt["closed_rate"], abs=0.01)


def test_the_regime_table():
    headers, rows = momentum_regimes.table(regime_numbers())
    assert [r[0] for r in rows] == list(momentum_regimes.REGIMES)
    assert rows[0][3] == "ripples"
