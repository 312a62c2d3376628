"""BFGS: quadratic termination with exact line searches, H -> A^-1, and its behaviour."""

from __future__ import annotations

import pytest
import torch
from second_order_problems import (
    flat,
    logistic_closure,
    logistic_data,
    logistic_params,
    loss_closure,
    resumed_against_straight,
    rosenbrock,
    spd_quadratic,
)

import optimlab.optim as oo
from optimlab.errors import OptimlabError


@pytest.mark.parametrize("n, kappa, seed", [(4, 10.0, 0), (8, 100.0, 1), (12, 1e3, 2)])
def test_exact_line_searches_end_within_n_plus_one_steps_with_h_equal_to_a_inverse(n, kappa, seed):
    a, b = spd_quadratic(n, kappa, seed)
    w = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    opt = oo.BFGS([w], line_search_fn="exact", max_iter=1, tolerance_grad=1e-10)
    closure = loss_closure(opt, [w], lambda w: 0.5 * w @ a @ w - b @ w)
    steps = 0
    while True:
        opt.step(closure)
        steps += 1
        closure()
        if float(w.grad.abs().max()) <= 1e-10 or steps > 3 * n:
            break
    # n steps in exact arithmetic; rounding may cost one more (at kappa = 1e3, n = 12)
    assert n - 1 <= steps <= n + 1
    assert opt.state[w]["updates"] == steps  # every step updated H
    exact = torch.linalg.inv(a)
    assert float((opt.inverse_hessian() - exact).abs().max() / exact.abs().max()) < 1e-6
    torch.testing.assert_close(w.detach(), torch.linalg.solve(a, b), rtol=1e-8, atol=0)


def test_strong_wolfe_reaches_the_rosenbrock_minimizer():
    x = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    opt = oo.BFGS([x], max_iter=200, max_eval=1000, tolerance_grad=1e-10, tolerance_change=0.0)
    opt.step(loss_closure(opt, [x], rosenbrock))
    assert float((x.detach() - 1).abs().max()) < 1e-8
    # its H approaches the inverse Hessian at the minimizer (superlinear convergence)
    h_star = torch.tensor([[802.0, -400.0], [-400.0, 200.0]], dtype=torch.float64)
    rel = (opt.inverse_hessian() - torch.linalg.inv(h_star)).norm() / torch.linalg.inv(
        h_star
    ).norm()
    assert float(rel) < 0.2


@pytest.mark.parametrize("search", ["backtracking", None])
def test_other_line_searches_minimize_logistic_regression(search):
    x, y = logistic_data(dim=6)
    params = logistic_params(6)
    lr = 1.0 if search else 0.5
    opt = oo.BFGS(params, lr=lr, line_search_fn=search, max_iter=300, max_eval=3000,
                  tolerance_grad=1e-8, tolerance_change=0.0)  # fmt: skip
    closure = logistic_closure(opt, params, x, y)
    for _ in range(2):
        opt.step(closure)
    closure()
    assert float(torch.cat([p.grad.reshape(-1) for p in params]).abs().max()) <= 1e-8


def test_state_dict_round_trip_continues_identically():
    x, y = logistic_data(dim=6)

    def fresh():
        params = logistic_params(6)
        opt = oo.create("bfgs", params, max_iter=1, tolerance_grad=1e-12, tolerance_change=0.0)
        return params, opt, logistic_closure(opt, params, x, y)

    straight, straight_counts, params2, opt2 = resumed_against_straight(fresh)
    assert torch.equal(flat(params2), straight)
    assert opt2.counts == straight_counts


def test_refuses_a_model_above_the_limit():
    with pytest.raises(
        OptimlabError, match=r"BFGS refuses a model of 6060.*max_params=5000.*lbfgs"
    ):
        oo.BFGS(torch.nn.Linear(100, 60).parameters())
