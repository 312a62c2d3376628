"""Exponential decay with restarts (lecture 000's third cyclical curve) against its
closed form, cycle by cycle."""

from __future__ import annotations

import math

import pytest

from optimlab.schedules import ExponentialRestarts, WarmRestarts, create


def walked(t: float, lr: float, T_0: int, T_mult: float, gamma: float) -> float:
    """Walk the cycles one by one from step 0: lr * gamma ** (steps since the restart)."""
    T_cur, T_i = t, T_0
    while T_cur >= T_i:
        T_cur -= T_i
        T_i *= T_mult
    return lr * gamma**T_cur


@pytest.mark.parametrize(("T_0", "T_mult"), [(10, 1), (10, 2), (7, 3), (5, 1.5)])
def test_exponential_restarts_is_its_closed_form(T_0, T_mult):
    s = ExponentialRestarts(lr=0.05, T_0=T_0, T_mult=T_mult, gamma=0.9)
    for t in range(0, 1500, 7):
        assert s(t) == pytest.approx(walked(t, 0.05, T_0, T_mult, 0.9), rel=1e-12)
    for r in s.restarts(1500):
        if s.cycle_start(s.cycle_of(r)) == r:  # an integral restart: back at lr exactly
            assert s(r) == 0.05
        assert s(r) > s(r - 1)
    # the cycles are SGDR's
    assert s.restarts(1500) == WarmRestarts(T_0=T_0, T_mult=T_mult).restarts(1500)


def test_within_a_cycle_it_is_exponential_decay():
    s = create("exp_restarts", lr=0.1, T_0=50, gamma=0.95)
    assert [s(t) for t in (0, 1, 2, 49, 50, 51)] == pytest.approx(
        [0.1, 0.095, 0.1 * 0.95**2, 0.1 * 0.95**49, 0.1, 0.095], rel=1e-14
    )
    assert create("exponential_restarts", T_0=3) == ExponentialRestarts(T_0=3)
    assert math.isclose(create("exp_restarts", T_0=4, gamma=1.0)(3), 0.1)  # gamma 1: constant
