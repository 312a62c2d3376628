"""The verdict rule of the adversarial-training entry on fixed numbers, and the options it
gives each run."""

from __future__ import annotations

from gallery_helpers import changed

from optimlab.gallery.entries import adversarial as adv
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED


def numbers(clean=(0.970, 0.972, 0.975), robust=(0.02, 0.10, 0.55)) -> dict:
    settings = {
        s: {"test_accuracy": c, "test_robust_accuracy": r, "robust_per_seed": [r],
            "clean_per_seed": [c]}
        for s, c, r in zip(adv.SETTINGS, clean, robust, strict=True)
    }  # fmt: skip
    return {"epsilon": 0.1, "epochs": 5, "seeds": 1, "settings": settings}


def test_reproduced_when_robust_and_more_accurate():
    verdict = adv.rule(numbers())
    assert verdict.status == REPRODUCED and "0.550 PGD" in verdict.reason


def test_not_reproduced_without_a_clean_gain():
    verdict = adv.rule(numbers(clean=(0.974, 0.965, 0.974)))
    assert verdict.status == NOT_REPRODUCED
    assert (
        "robustness reproduces" in verdict.reason and "no clean accuracy gained" in verdict.reason
    )


def test_not_reproduced_without_robustness():
    verdict = adv.rule(changed(numbers(), "settings.pgd.test_robust_accuracy", 0.1))
    assert verdict.status == NOT_REPRODUCED and "did not make the model robust" in verdict.reason


def test_the_settings_are_the_train_commands_regularize_options():
    from optimlab.regularize.options import validate

    budget = adv.ENTRY.budget("quick")
    assert adv.options("plain", budget) == {"robust_epsilon": 0.1}
    assert adv.options("pgd", budget)["adversarial_steps"] == 3
    for setting in adv.SETTINGS:
        validate(adv.options(setting, budget))
