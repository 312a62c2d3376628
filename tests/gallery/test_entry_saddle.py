"""The verdict rule of the saddle entry (Radford's animation) on fixed numbers, and the
step count it reads from a path."""

from __future__ import annotations

import numpy as np
from gallery_helpers import changed

from optimlab.gallery.entries import saddle
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED


def numbers(**steps) -> dict:
    base = {"sgd": 49, "momentum": 19, "nesterov": 16, "adagrad": 2, "adadelta": 12, "rmsprop": 1}
    base.update(steps)
    methods = {n: {"lr": saddle.LRS[n], "left_ridge_at": s} for n, s in base.items()}
    return {"start": [1.0, 1e-3], "methods": methods}


def test_reproduced_when_the_adaptive_methods_leave_first():
    verdict = saddle.rule(numbers())
    assert verdict.status == REPRODUCED and "within 12 steps, SGD after 49" in verdict.reason


def test_not_reproduced_when_an_adaptive_method_is_slower_than_momentum():
    verdict = saddle.rule(numbers(adadelta=30))
    assert verdict.status == NOT_REPRODUCED
    assert "adadelta does not leave the ridge before nesterov" in verdict.reason


def test_not_reproduced_when_an_adaptive_method_never_leaves():
    assert saddle.rule(numbers(adagrad=None)).status == NOT_REPRODUCED


def test_not_reproduced_when_momentum_is_no_faster_than_sgd():
    verdict = saddle.rule(changed(numbers(), "methods.momentum.left_ridge_at", 60))
    assert verdict.status == NOT_REPRODUCED and "momentum do not leave it" in verdict.reason


def test_left_ridge_at_reads_the_first_step_past_the_threshold():
    points = np.array([[1.0, 1e-3], [1.0, -0.05], [0.9, -0.1], [0.8, 0.5]])
    assert saddle.left_ridge_at(points) == 2
    assert saddle.left_ridge_at(points[:2]) is None


def test_sgd_leaves_the_ridge_when_the_growth_factor_says():
    # SGD multiplies y by (1 + 2 lr) each step: |y_k| = 1e-3 * 1.1^k reaches 0.1 at k = 49.
    from optimlab.viz import trajectories as tr

    path = tr.run_path("saddle", "sgd", 0.05, 60, start=saddle.START)
    k = int(np.ceil(np.log(saddle.LEFT_RIDGE / saddle.START[1]) / np.log(1.1)))
    assert saddle.left_ridge_at(path.points) == k == 49
