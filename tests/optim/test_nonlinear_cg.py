"""Nonlinear conjugate gradients: linear CG's iterates on quadratics with exact line
searches, restarts, Rosenbrock, resume and bad input."""

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
from optimlab.curvature import conjugate_gradient
from optimlab.errors import OptimlabError
from optimlab.optim.cg import BETAS, conjugate_direction


def quadratic_run(a, b, steps, **hp):
    n = b.numel()
    w = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    opt = oo.NonlinearCG([w], line_search_fn="exact", max_iter=1, tolerance_grad=0.0,
                         tolerance_change=0.0, **hp)  # fmt: skip
    closure = loss_closure(opt, [w], lambda w: 0.5 * w @ a @ w - b @ w)
    iterates = []
    for _ in range(steps):
        opt.step(closure)
        iterates.append(w.detach().clone())
    return iterates, opt, w


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("n, kappa, seed", [(6, 10.0, 0), (10, 30.0, 1), (20, 10.0, 3)])
def test_exact_line_searches_on_a_quadratic_give_linear_cgs_iterates(beta, n, kappa, seed):
    """With exact line searches the three betas are equal on a quadratic, and each
    iterate is linear CG's after as many iterations (Nocedal & Wright, sec. 5.2). The
    problems are conditioned so that rounding leaves both within 1e-12 of exact CG in
    n iterations (at kappa = 1e3, n = 12, the two drift 1e-2 apart by the 12th)."""
    a, b = spd_quadratic(n, kappa, seed)
    iterates, opt, w = quadratic_run(a, b, n, beta=beta)
    for k, x in enumerate(iterates, start=1):
        linear = conjugate_gradient(lambda v: a @ v, b, max_iter=k, rtol=1e-30, atol=1e-300).x
        torch.testing.assert_close(x, linear, rtol=0, atol=1e-10)
    torch.testing.assert_close(iterates[-1], torch.linalg.solve(a, b), rtol=0, atol=1e-10)
    assert opt.state[w]["restarts"] == 0  # Powell's test never fired: g_k . g_k-1 = 0


def test_restarting_every_iteration_is_steepest_descent_with_exact_steps():
    a, b = spd_quadratic(8, 50.0, 5)
    iterates, opt, w = quadratic_run(a, b, 6, restart=1)
    x = torch.zeros(8, dtype=torch.float64)
    for got in iterates:
        g = a @ x - b
        x = x - (g @ g) / (g @ a @ g) * g  # the exact step along -g
        torch.testing.assert_close(got, x, rtol=0, atol=1e-12)
    assert opt.state[w]["restarts"] == 5  # every direction after the first


def test_the_restart_period_defaults_to_the_number_of_parameters():
    """On a quadratic that linear CG does not finish in n iterations (rounding), the
    (n+1)-th direction is -g: one restart after n iterations, none before."""
    n = 12
    a, b = spd_quadratic(n, 1e3, 2)
    _, opt, w = quadratic_run(a, b, n, powell=None)
    assert opt.state[w]["restarts"] == 0
    opt.step(loss_closure(opt, [w], lambda w: 0.5 * w @ a @ w - b @ w))
    assert opt.state[w]["restarts"] == 1 and opt.state[w]["since_restart"] == 0


def vec(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_beta_formulas_and_restart_rules():
    g_prev, d_prev = vec(2.0, 0.0), vec(-2.0, 0.0)
    g = vec(0.3, 1.0)  # |g . g_prev| = 0.6 >= 0.2 ||g||^2 = 0.218
    d, beta, restarted = conjugate_direction(g, g_prev, d_prev, "fletcher_reeves", 0.2)
    assert restarted and beta == 0.0 and torch.equal(d, -g)  # Powell's test fired
    d, beta, restarted = conjugate_direction(g, g_prev, d_prev, "fletcher_reeves", None)
    assert not restarted and beta == pytest.approx(1.09 / 4.0)
    torch.testing.assert_close(d, -g + beta * d_prev)
    y = g - g_prev
    _, beta, _ = conjugate_direction(g, g_prev, d_prev, "hestenes_stiefel", None)
    assert beta == pytest.approx(float(g @ y) / float(d_prev @ y))
    # Polak-Ribiere's beta is negative here (g . y = -0.99): clipped to 0, d = -g
    g = vec(1.0, 0.1)
    _, beta, restarted = conjugate_direction(g, g_prev, d_prev, "polak_ribiere_plus", None)
    assert float(g @ (g - g_prev)) < 0 and beta == 0.0 and not restarted
    # just under Powell's threshold: no restart
    g = vec(0.0999, 1.0)  # |g . g_prev| = 0.1998 < 0.2 (0.00998 + 1)
    _, _, restarted = conjugate_direction(g, g_prev, d_prev, "fletcher_reeves", 0.2)
    assert not restarted
    # Hestenes-Stiefel heading uphill: d = -g + beta d_prev with g . d >= 0
    g_prev, d_prev, g = vec(1.0, 0.0), vec(1.0, 0.85), vec(0.2, 1.0)  # beta_HS = 16.8
    d, beta, restarted = conjugate_direction(g, g_prev, d_prev, "hestenes_stiefel", None)
    raw_beta = float(g @ (g - g_prev)) / float(d_prev @ (g - g_prev))
    assert float(g @ (-g + raw_beta * d_prev)) >= 0
    assert restarted and torch.equal(d, -g)


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("dim, start", [(2, [-1.2, 1.0]), (10, None)])
def test_reaches_the_rosenbrock_minimizer(beta, dim, start):
    x0 = torch.tensor(start) if start else torch.linspace(-1.0, 0.5, dim)
    x = x0.double().requires_grad_()
    opt = oo.NonlinearCG([x], beta=beta, max_iter=1000, max_eval=5000, tolerance_grad=1e-10,
                         tolerance_change=0.0)  # fmt: skip
    opt.step(loss_closure(opt, [x], rosenbrock))
    assert float((x.detach() - 1).abs().max()) < 1e-8
    state = opt.state[x]
    assert state["n_iter"] > 30 and state["restarts"] > 0  # a real run, with restarts


def test_state_dict_round_trip_continues_identically():
    x, y = logistic_data()

    def fresh():
        params = logistic_params()
        opt = oo.create("cg", params, max_iter=2, tolerance_grad=1e-12, tolerance_change=1e-14)
        return params, opt, logistic_closure(opt, params, x, y)

    def direction_came_along(opt):
        assert opt.state[opt.param_groups[0]["params"][0]]["prev_d"].shape == (13,)

    straight, counts, params2, opt2 = resumed_against_straight(fresh, on_load=direction_came_along)
    assert torch.equal(flat(params2), straight)
    assert opt2.counts == counts and opt2.counts["function"] > 40
    assert opt2.state[params2[0]]["n_iter"] == 40


def test_minimizes_logistic_regression_like_lbfgs():
    x, y = logistic_data(dim=6)
    solutions = []
    for name in ("cg", "lbfgs"):
        params = logistic_params(6)
        opt = oo.create(name, params, max_iter=500, max_eval=5000, tolerance_grad=1e-9,
                        tolerance_change=0.0)  # fmt: skip
        opt.step(logistic_closure(opt, params, x, y))
        solutions.append(flat(params))
    torch.testing.assert_close(solutions[0], solutions[1], rtol=1e-6, atol=1e-6)


def test_a_loss_that_overflows_along_the_direction_shrinks_the_step():
    """A non-finite trial inside the line search is a failed trial, not an error."""
    w = torch.tensor([3.0], dtype=torch.float64, requires_grad=True)
    opt = oo.NonlinearCG([w], lr=100.0, max_iter=5)

    def closure():
        opt.zero_grad()
        # finite for |w| < 10, inf beyond: the first trial (w = 3 - 100 * 6 / 6) is inf
        loss = torch.where(w.abs() < 10, w**2, torch.full_like(w, float("inf"))).sum()
        loss.backward()
        return loss

    opt.step(closure)
    assert abs(float(w.detach())) < 1e-6


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(beta="dai_yuan"), r"invalid beta: 'dai_yuan'; valid: 'polak_ribiere_plus'"),
        (dict(restart=0), r"invalid restart: 0; valid: an integer in \[1, inf\]"),
        (dict(powell=0.0), r"invalid powell: 0.0; valid range is \(0, inf\)"),
        (dict(c2=1.0), r"invalid c2: 1.0"),
        (dict(lr=0.0), r"invalid lr: 0.0"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, match):
    with pytest.raises(OptimlabError, match=match):
        oo.NonlinearCG([torch.zeros(2, requires_grad=True)], **kwargs)
