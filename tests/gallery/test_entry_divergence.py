"""The verdict rule of the divergence entry (heavy ball's divergence threshold) on fixed
numbers: numbers that show the claim are "reproduced", numbers that contradict it "not
reproduced"."""

from __future__ import annotations

import pytest

from optimlab.gallery.entries import divergence
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED


def divergence_numbers(measured: list[float | None] | None = None) -> dict:
    betas = divergence.BETAS
    measured = measured or [2 + 2 * b + 1e-6 for b in betas]
    rows = [
        {"beta": b, "formula": 2 + 2 * b, "measured": m,
         "relative_error": None if m is None else abs(m - (2 + 2 * b)) / (2 + 2 * b)}
        for b, m in zip(betas, measured, strict=True)
    ]  # fmt: skip
    return {"betas": rows, "bracket": [divergence.LOW, divergence.HIGH]}


def test_divergence_reproduced_when_thresholds_match_the_formula():
    assert divergence.rule(divergence_numbers()).status == REPRODUCED


def test_divergence_not_reproduced_at_gradient_descents_limit():
    # A heavy ball that diverged at GD's 2 whatever beta would contradict 2 + 2 beta.
    verdict = divergence.rule(divergence_numbers([2.0] * len(divergence.BETAS)))
    assert verdict.status == NOT_REPRODUCED
    assert "not 3.9800" in verdict.reason


def test_divergence_not_reproduced_without_a_bracket():
    measured = [2 + 2 * b for b in divergence.BETAS]
    measured[-1] = None
    verdict = divergence.rule(divergence_numbers(measured))
    assert verdict.status == NOT_REPRODUCED
    assert "no threshold to bisect" in verdict.reason


def test_divergence_window_test_on_hand_made_norms():
    import numpy as np

    t = np.arange(201)[:, None]
    norms = np.hstack([0.99**t, 1.01**t, np.abs(0.999**t * np.cos(2.5 * t)), np.full_like(t, 1.0)])
    norms = norms.astype(float)
    assert divergence.diverged(norms).tolist() == [False, True, False, False]
    norms[-1, 0] = np.inf
    assert divergence.diverged(norms)[0]


def test_bisection_on_the_iteration_finds_two_plus_two_beta():
    measured = divergence.thresholds((0.0, 0.5, 0.9), steps=120, iterations=14)
    assert measured == pytest.approx([2.0, 3.0, 3.8], rel=1e-3)


def test_the_threshold_table():
    headers, rows = divergence.table(divergence_numbers())
    assert len(rows) == len(divergence.BETAS) and rows[-1][:2] == ["0.99", "3.9800"]
