"""The verdict rule of the bias-correction entry on fixed numbers, and the contenders'
settings it builds runs from."""

from __future__ import annotations

from optimlab.gallery.entries import bias_correction as bc
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED


def numbers() -> dict:
    loss = {
        "0.99/adam": [0.30, 0.15, 0.16], "0.99/adam_uncorrected": [0.20, 0.12, 0.15],
        "0.99/rmsprop": [0.17, 0.16, 0.20],
        "0.999/adam": [0.30, 0.14, 0.33], "0.999/adam_uncorrected": [0.11, 0.14, 2.20],
        "0.999/rmsprop": [0.16, 0.15, 6.10],
        "0.9999/adam": [0.30, 0.15, 0.34], "0.9999/adam_uncorrected": [0.15, 0.60, None],
        "0.9999/rmsprop": [0.16, 0.50, None],
    }  # fmt: skip
    return {"problem": "digits_mlp", "epochs": 2, "seeds": 2, "lrs": [0.001, 0.01, 0.03],
            "beta2": [0.99, 0.999, 0.9999], "loss": loss}  # fmt: skip


def with_loss(key: str, values: list) -> dict:
    out = numbers()
    out["loss"][key] = values
    return out


def test_reproduced_when_uncorrected_is_unstable_and_adam_beats_rmsprop():
    verdict = bc.rule(numbers())
    assert verdict.status == REPRODUCED
    assert "beta2 0.9999: inf against 0.34" in verdict.reason


def test_not_reproduced_when_rmsprop_reaches_a_lower_loss():
    verdict = bc.rule(with_loss("0.999/rmsprop", [0.05, 0.15, 6.1]))
    assert verdict.status == NOT_REPRODUCED
    assert "instability without correction reproduces" in verdict.reason
    assert "RMSprop 0.05" in verdict.reason


def test_not_reproduced_when_the_uncorrected_rule_is_stable():
    verdict = bc.rule(with_loss("0.999/adam_uncorrected", [0.11, 0.14, 0.2]))
    assert verdict.status == NOT_REPRODUCED and "is not worse" in verdict.reason


def test_contenders_are_the_registered_rules_with_their_options():
    assert bc.settings("adam", 0.999) == ("adam", {"betas": (0.9, 0.999)})
    assert bc.settings("adam_uncorrected", 0.99) == (
        "adam", {"betas": (0.9, 0.99), "bias_correction": False})  # fmt: skip
    assert bc.settings("rmsprop", 0.9999) == ("rmsprop", {"alpha": 0.9999})


def test_the_table_shows_diverged_runs():
    headers, rows = bc.table(numbers())
    assert headers == ["beta2", "rule", "lr 0.001", "lr 0.01", "lr 0.03"]
    assert rows[-2][-1] == "diverged"
