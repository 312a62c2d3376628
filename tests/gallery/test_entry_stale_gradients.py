"""The verdict rule of the stale-gradients entry (Downpour with AdaGrad and with
delay-tolerant AdaGrad) on fixed numbers, and the quick tier's measured verdict."""

from __future__ import annotations

import pytest

from optimlab.gallery.entries import stale_gradients
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED, Context


def numbers(adagrad, adarevision, ks=(0, 8, 32, 64)):
    rows = [{"rule": rule, "k": k, "val_loss": v, "val_accuracy": 0.9, "staleness_mean": k}
            for rule, values in (("AdaGrad", adagrad), ("AdaRevision", adarevision))
            for k, v in zip(ks, values, strict=True)]  # fmt: skip
    return {"lr": 0.2, "epochs": 5, "rows": rows}


def test_reproduced_when_staleness_hurts_adagrad_more():
    verdict = stale_gradients.rule(numbers([0.3, 0.7, 1.2, 3.9], [0.3, 0.37, 0.5, 0.77]))
    assert verdict.status == REPRODUCED
    assert "from 0.3 without delay to 3.9 at K = 64, AdaRevision's only to 0.77" in verdict.reason


@pytest.mark.parametrize(
    ("adagrad", "adarevision", "why"),
    [
        ([0.3, 0.29, 0.31, 0.32], [0.3, 0.28, 0.3, 0.31], "did not hurt AdaGrad"),
        ([0.3, 0.5, 1.2, 3.9], [0.3, 0.6, 0.5, 0.77], "not below AdaGrad's at K = 8"),
        ([0.3, 0.7, 1.2, 3.9], [0.31, 0.37, 0.5, 0.77], "without delay the rules differ"),
        ([0.3, 0.7, 1.2, 3.9], [0.3, 0.37, 0.5, float("nan")], "AdaRevision diverged"),
    ],
)  # fmt: skip
def test_not_reproduced_when_the_numbers_contradict_the_claim(adagrad, adarevision, why):
    verdict = stale_gradients.rule(numbers(adagrad, adarevision))
    assert verdict.status == NOT_REPRODUCED
    assert why in verdict.reason


def test_the_quick_budget_measures_the_claim():
    budget = stale_gradients.ENTRY.budget("quick")
    measured = stale_gradients.compute(budget, Context())
    verdict = stale_gradients.rule(measured.numbers)
    assert verdict.status == REPRODUCED, verdict.reason
    headers, rows = stale_gradients.table(measured.numbers)
    assert len(rows) == len(budget["staleness"]) and len(headers) == 3
    assert set(stale_gradients.draw(measured)) == {"stale_gradients"}
