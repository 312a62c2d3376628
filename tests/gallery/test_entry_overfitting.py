"""The verdict rule of the overfitting entry (Table 9's ordering, early stopping) on fixed
numbers, and the regularization options it builds each run with."""

from __future__ import annotations

from gallery_helpers import assert_contradicted, assert_verdict

from optimlab.gallery.entries import overfitting as of
from optimlab.gallery.entry import REPRODUCED


def numbers() -> dict:
    errors = {"none": 2.0, "l2": 1.8, "max_norm": 1.5, "dropout+l2": 1.3, "dropout+max_norm": 1.1}
    settings = {s: {"test_error": e, "spread": 0.2, "regularize": {}} for s, e in errors.items()}
    return {
        "problem": "digits_mlp", "epochs": 40, "seeds": 2, "settings": settings,
        "unregularized": {
            "val_loss_min_epoch": 8, "val_loss_min": 0.2, "val_loss_final": 0.3, "rise": 0.5,
            "best_val_epoch": 10, "val_error_min": 2.5, "val_error_final": 3.0,
            "test_error_at_best_val": 1.9, "test_error_final": 2.0,
        },
    }  # fmt: skip


def test_reproduced_when_the_net_overfits_and_table_9s_order_holds():
    assert_verdict(of.rule, numbers(), REPRODUCED,
                   "l2 1.80% > max_norm 1.50% > dropout+l2 1.30% > dropout+max_norm 1.10%",
                   "early stopping on validation error at epoch 10 keeps 1.90%")  # fmt: skip


def test_not_reproduced_when_the_order_breaks():
    assert_contradicted(of.rule, numbers(), "settings.max_norm.test_error", 1.9,
                        "l2 (1.80%) is not above max_norm (1.90%)")  # fmt: skip


def test_not_reproduced_when_nothing_overfits():
    assert_contradicted(
        of.rule, numbers(), "unregularized.rise", 0.02, "did not overfit in 40 epochs"
    )


def test_settings_map_to_the_train_commands_regularize_options():
    budget = of.ENTRY.budget("quick")
    assert of.options("none", budget) == {}
    assert of.options("dropout+max_norm", budget) == {
        "dropout": budget["dropout"], "max_norm": budget["max_norm"]}  # fmt: skip
    from optimlab.regularize.options import validate

    for setting in of.SETTINGS:
        validate(of.options(setting, budget))
