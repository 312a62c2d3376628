"""Lecture 002's facts about gradient descent on a convex L-smooth function, checked
on least squares f(w) = 1/2 ||y - X w||^2 with eta = 1/lambda_max(X^T X), run by
optimlab's registered ``sgd`` on the full batch in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from convex_problems import LeastSquares

import optimlab.optim as oo


def gd_run(
    problem: LeastSquares, eta: float, steps: int, w0: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """f(w_t) and ||grad f(w_t)||^2 for t = 0..steps, from w_0 (default 0)."""
    start = np.zeros(problem.X.shape[1]) if w0 is None else w0
    w = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = oo.create("sgd", [w], lr=eta)
    values, grad_sq = [], []
    for _ in range(steps + 1):
        opt.zero_grad()
        loss = problem.loss(w)
        loss.backward()
        values.append(loss.item())
        grad_sq.append(float(w.grad.square().sum()))
        opt.step()
    return np.array(values), np.array(grad_sq)


PROBLEM = LeastSquares.random(n=60, d=15, decay=1.0, seed=3)


def test_descent_lemma_holds_at_every_step():
    """f(w_{t+1}) <= f(w_t) - (eta/2) ||grad f(w_t)||^2 for eta = 1/L; the rounding
    allowance is a few ulps of f."""
    eta = 1 / PROBLEM.L
    f, g2 = gd_run(PROBLEM, eta, 500)
    slack = f[:-1] - eta / 2 * g2[:-1] - f[1:]
    assert np.all(slack >= -4e-16 * np.abs(f[:-1]))
    assert g2[-1] < 1e-3 * g2[0]  # the run got somewhere


def test_descent_lemma_fails_beyond_one_over_l():
    """It needs eta <= 1/L: at 1.5/L a step along the top eigenvector gains only
    (eta/4) ||g||^2."""
    eta = 1.5 / PROBLEM.L
    top = np.linalg.eigh(PROBLEM.X.T @ PROBLEM.X)[1][:, -1]
    f, g2 = gd_run(PROBLEM, eta, 1, PROBLEM.minimizer + top)
    assert f[1] > f[0] - eta / 2 * g2[0]
    assert f[1] == pytest.approx(f[0] - eta / 4 * g2[0], rel=1e-9)


def test_rate_bound_holds_at_every_horizon():
    """f(w_T) - f* <= ||w_0 - w*||^2 / (2 eta T) for every T >= 1."""
    eta = 1 / PROBLEM.L
    w_star = PROBLEM.minimizer
    f_star = PROBLEM.value(w_star)
    steps = 2000
    f, _ = gd_run(PROBLEM, eta, steps)
    T = np.arange(1, steps + 1)
    bound = np.sum(w_star**2) / (2 * eta * T)  # w_0 = 0
    gap = f[1:] - f_star
    assert np.all(gap <= bound)
    # not vacuous: the gap stays within three orders of magnitude of the bound for a while
    assert (gap[:50] / bound[:50]).max() > 1e-3


def test_gd_reaches_the_least_squares_solution():
    """Strongly convex here (X has full column rank): O(log 1/eps) steps to w*."""
    eta = 1 / PROBLEM.L
    w = torch.zeros(PROBLEM.X.shape[1], dtype=torch.float64, requires_grad=True)
    opt = oo.create("sgd", [w], lr=eta)
    for _ in range(3000):
        opt.zero_grad()
        PROBLEM.loss(w).backward()
        opt.step()
    np.testing.assert_allclose(w.detach().numpy(), PROBLEM.minimizer, rtol=1e-8, atol=1e-8)
