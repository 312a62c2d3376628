"""The verdict rule of the ravine entry (SGD, momentum and Nesterov in a ravine) on fixed
numbers: numbers that show the claim are "reproduced", numbers that contradict it "not
reproduced"."""

from __future__ import annotations

from gallery_helpers import assert_contradicted, assert_verdict, changed

from optimlab.gallery.entries import ravine
from optimlab.gallery.entry import AT_BUDGET, NOT_REPRODUCED, REPRODUCED

RAVINE = {
    "sgd": {"lr": 0.1, "final_f": 0.43, "half_f": 1.17, "turn_backs": 0.40, "steps_to_1e-6": None},
    "momentum": {"lr": 0.2, "final_f": 1e-5, "half_f": 0.02, "turn_backs": 0.10,
                 "steps_to_1e-6": None},
    "nesterov": {"lr": 0.1, "final_f": 1e-6, "half_f": 0.008, "turn_backs": 0.03,
                 "steps_to_1e-6": 99},
}  # fmt: skip


def test_ravine_reproduced_when_momentum_is_faster_and_smoother():
    assert_verdict(ravine.rule, RAVINE, REPRODUCED, "0.43")


def test_ravine_not_reproduced_when_momentum_zigzags_more():
    # What tuned rates measure: SGD's rate 0.1 = 1/lambda_max kills the steep direction in
    # one step, so plain SGD does not zig-zag at all, while momentum ripples.
    assert_contradicted(
        ravine.rule, RAVINE, "sgd.turn_backs", 0.0, "turned back at least as often as SGD"
    )


def test_ravine_not_reproduced_when_momentum_ends_higher():
    assert_contradicted(
        ravine.rule, RAVINE, "momentum.final_f", 0.5, "momentum did not end below SGD"
    )


def test_ravine_a_diverged_path_counts_as_not_below():
    assert ravine.rule(changed(RAVINE, "nesterov.final_f", None)).status == NOT_REPRODUCED


def test_ravine_at_this_budget_only_when_not_yet_ahead_at_half_the_steps():
    assert_verdict(
        ravine.rule, changed(RAVINE, "nesterov.half_f", 2.0), AT_BUDGET, "half the budget nesterov"
    )


def test_a_short_run_measures_each_method_at_its_tuned_rate():
    budget = {"steps": 30, "per_decade": 1, "frames": 2, "lr_low": 0.01, "lr_high": 1.0}
    measured = ravine.compute(budget, None)
    assert set(measured.numbers) == set(ravine.METHODS)
    for name, path in zip(ravine.METHODS, measured.data["paths"], strict=True):
        numbers = measured.numbers[name]
        assert numbers["lr"] in (0.01, 0.1, 1.0) and path.lr == numbers["lr"]
        assert numbers["final_f"] == path.losses[-1] and numbers["half_f"] == path.losses[15]
        assert numbers["turn_backs"] == path.turn_backs()
    assert ravine.rule(measured.numbers).status in (REPRODUCED, AT_BUDGET, NOT_REPRODUCED)


def test_the_method_table():
    headers, rows = ravine.table(changed(RAVINE, "nesterov.final_f", None))
    assert rows[0] == ["sgd", "0.1", "1.17", "0.43", "40%"]
    assert rows[2][3] == "diverged"
