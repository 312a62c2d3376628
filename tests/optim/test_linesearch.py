"""Line searches on one-dimensional functions whose minimizers are known."""

from __future__ import annotations

import math

import pytest
import torch

from optimlab.optim import linesearch as ls

D = torch.ones(1, dtype=torch.float64)


def along(phi, dphi, calls=None):
    """``evaluate(t) -> (phi(t), [phi'(t)])`` for the direction d = [1]."""

    def evaluate(t):
        if calls is not None:
            calls.append(t)
        return phi(t), torch.tensor([dphi(t)], dtype=torch.float64)

    return evaluate


# phi(t) = (t - 3)^2 / 2 + log(1 + e^(t - 3)): smooth, convex, minimizer near t = 2.7
def phi(t):
    x = t - 3
    return x**2 / 2 + (x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x)))


def dphi(t):
    x = t - 3
    return x + (1 / (1 + math.exp(-x)) if x > 0 else math.exp(x) / (1 + math.exp(x)))


F0, S0 = phi(0.0), dphi(0.0)
G0 = torch.tensor([S0], dtype=torch.float64)


@pytest.mark.parametrize("t0", [1e-4, 0.1, 1.0, 10.0, 1e3])
def test_strong_wolfe_step_satisfies_both_conditions(t0):
    c1, c2 = 1e-4, 0.9
    calls = []
    step = ls.strong_wolfe(along(phi, dphi, calls), D, F0, G0, S0, t0, c1=c1, c2=c2)
    assert step.status == "ok" and step.evals == len(calls) <= 25
    assert step.f <= F0 + c1 * step.t * S0
    assert abs(dphi(step.t)) <= c2 * abs(S0)
    assert step.f == phi(step.t) and float(step.g[0]) == dphi(step.t)
    if t0 < 0.1:  # a short first trial is extrapolated, at most 10x per trial
        assert all(b <= 10 * a for a, b in zip(calls, calls[1:], strict=False))


def test_backtracking_takes_the_first_armijo_step_of_the_geometric_sequence():
    calls = []
    step = ls.backtracking(along(phi, dphi, calls), D, F0, G0, S0, 64.0, factor=0.5)
    assert step.status == "ok"
    assert calls == [64.0 * 0.5**k for k in range(len(calls))]
    armijo = [phi(t) <= F0 + 1e-4 * t * S0 for t in calls]
    assert armijo[-1] and not any(armijo[:-1])


def test_exact_is_exact_on_a_quadratic_in_two_evaluations():
    # phi(t) = 2 (t - 1.7)^2: phi' is linear, one secant step reaches its root (from a
    # first trial short of it, extrapolation goes at most 10x further: t0 >= 0.17)
    for t0 in (0.5, 5.0):
        evaluate = along(lambda t: 2 * (t - 1.7) ** 2, lambda t: 4 * (t - 1.7))
        g0 = torch.tensor([-6.8], dtype=torch.float64)
        step = ls.exact(evaluate, D, 2 * 1.7**2, g0, -6.8, t0)
        assert step.status == "ok" and step.evals == 2
        assert step.t == pytest.approx(1.7, abs=1e-14)


def test_exact_minimizes_a_smooth_function():
    step = ls.exact(along(phi, dphi), D, F0, G0, S0, 1.0, tol=1e-12)
    assert step.status == "ok" and abs(dphi(step.t)) <= 1e-12 * abs(S0)


def test_overflowing_trials_are_treated_as_too_long():
    """phi is inf beyond t = 5 (an overflow): the searches back off to a finite point."""

    def capped(t):
        return math.inf if t > 5 else phi(t)

    def dcapped(t):
        return math.nan if t > 5 else dphi(t)

    for search in (ls.strong_wolfe, ls.backtracking):
        step = search(along(capped, dcapped), D, F0, G0, S0, 100.0)
        assert step.status == "ok" and math.isfinite(step.f) and step.f < F0, search.__name__


def test_inconsistent_gradient_ends_without_a_decrease():
    """A slope that promises descent along a direction where the loss only rises."""
    for search in (ls.strong_wolfe, ls.backtracking):
        step = search(along(lambda t: 1 + t, lambda t: -1.0), D, 1.0,
                      torch.tensor([-1.0], dtype=torch.float64), -1.0, 1.0)  # fmt: skip
        assert step.status == "no_decrease" and step.t == 0.0 and step.f == 1.0
        assert not ls.precision_limited(step.smallest_trial, 1.0, -1.0)
    # near a minimum, a decrease below rounding is not a failure
    assert ls.precision_limited(1e-6, 1.0, -1e-7)


def test_strong_wolfe_takes_torchs_trials_from_many_starts():
    """The same trial points as torch.optim.LBFGS's own search (a private function of
    torch, the reference here), on a smooth function with many local minima along any
    line: short first trials (extrapolation), long ones (zoom), tight and loose
    curvature conditions, and budgets that cut the search."""
    from torch.optim.lbfgs import _strong_wolfe

    def value_and_grad(x):
        x = x.detach().requires_grad_()
        f = (torch.sin(3 * x) + 0.1 * x**2).sum() + 100 * (x[1] - x[0] ** 2) ** 2 / 50
        (g,) = torch.autograd.grad(f, x)
        return float(f), g

    gen = torch.Generator().manual_seed(0)
    compared = 0
    for _ in range(30):
        x0 = torch.randn(2, generator=gen, dtype=torch.float64) * 2
        f0, g0 = value_and_grad(x0)
        d = torch.randn(2, generator=gen, dtype=torch.float64)
        d = -d if float(g0.dot(d)) > 0 else d  # a descent direction
        slope = float(g0.dot(d))
        for t0 in (1e-3, 0.1, 1.0, 10.0):
            for c2, budget in ((0.9, 25), (0.1, 25), (0.1, 4)):
                ours_calls, theirs_calls = [], []

                def ours_eval(t, x0=x0, d=d, calls=ours_calls):
                    calls.append(float(t))
                    return value_and_grad(x0 + t * d)

                def theirs_eval(x, t, d, calls=theirs_calls):
                    calls.append(float(t))
                    return value_and_grad(x + t * d)

                ours = ls.strong_wolfe(ours_eval, d, f0, g0, slope, t0, c2=c2, max_evals=budget)
                f, _, t, evals = _strong_wolfe(theirs_eval, x0, t0, d, f0, g0, g0.dot(d),
                                               c2=c2, max_ls=budget - 1)  # fmt: skip
                assert ours_calls == pytest.approx(theirs_calls, rel=1e-12, abs=0)
                assert (ours.t, ours.f, ours.evals) == pytest.approx((float(t), f, evals))
                compared += len(ours_calls)
    assert compared > 1000


def test_strong_wolfe_extrapolates_past_a_rise_that_still_satisfies_armijo():
    """phi(t) = -t + t^2 / 30 + 6.2 sigmoid(3 (t - 6)): the second trial (t = 10, past
    the rise) is higher than the first (t = 1) but satisfies Armijo, with a slope too
    steep for c2 = 0.1; the test "phi(t_i) >= phi(t_{i-1})" applies from the third trial
    on, so the search goes on growing, as torch's does."""
    from torch.optim.lbfgs import _strong_wolfe

    def sig(x):
        return 1 / (1 + math.exp(-x))

    def value_and_grad(t):
        f = -t + t * t / 30 + 6.2 * sig(3 * (t - 6))
        slope = -1 + t / 15 + 6.2 * 3 * sig(3 * (t - 6)) * (1 - sig(3 * (t - 6)))
        return f, torch.tensor([slope], dtype=torch.float64)

    f0, g0 = value_and_grad(0.0)
    calls = []
    ours = ls.strong_wolfe(lambda t: calls.append(t) or value_and_grad(t), D, f0, g0,
                           float(g0[0]), 1.0, c2=0.1)  # fmt: skip
    x0 = torch.zeros(1, dtype=torch.float64)
    theirs = _strong_wolfe(lambda x, t, d: value_and_grad(float(x + t * d)), x0, 1.0, D, f0, g0,
                           g0.dot(D), c2=0.1, max_ls=24)  # fmt: skip
    assert calls[:2] == pytest.approx([1.0, 10.0])
    assert value_and_grad(10.0)[0] > value_and_grad(1.0)[0]
    assert len(calls) > 2 and calls[2] > 10.0  # kept growing
    assert (ours.t, ours.f, ours.evals) == pytest.approx((float(theirs[2]), theirs[0], theirs[3]))
    assert ours.status == "ok"
