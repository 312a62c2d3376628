"""Newton's method: exact facts on quadratics, affine invariance, damping, limits."""

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
    spd_quadratic,
)

import optimlab.optim as oo
from optimlab.errors import OptimlabError


@pytest.mark.parametrize(
    "n, kappa, seed, tol", [(5, 10.0, 0, 1e-10), (20, 1e4, 1, 1e-10), (40, 1e6, 2, 1e-8)]
)
def test_unit_step_solves_any_spd_quadratic_in_one_step(n, kappa, seed, tol):
    """To 1e-10; at kappa = 1e6 float64 itself allows no better than about
    kappa * 1e-16 = 1e-10 (a backward-stable solve), so 1e-8 there."""
    a, b = spd_quadratic(n, kappa, seed)
    gen = torch.Generator().manual_seed(seed + 10)
    w = torch.randn(n, generator=gen, dtype=torch.float64).requires_grad_()
    opt = oo.Newton([w], lr=1.0)
    opt.step(loss_closure(opt, [w], lambda w: 0.5 * w @ a @ w - b @ w))
    exact = torch.linalg.solve(a, b)
    assert float((w.detach() - exact).norm() / exact.norm()) < tol
    assert opt.counts == {"function": 1, "gradient": 1, "hvp": n}


def _logistic_loss(x, y):
    def loss(w, c):
        return torch.nn.functional.binary_cross_entropy_with_logits(x @ w + c, y)

    return loss


def test_iterates_are_invariant_under_an_affine_change_of_variables():
    """f~(u) = f(D u): Newton's u_k satisfy D u_k = w_k; gradient descent's do not."""
    x, y = logistic_data(dim=6)
    f = _logistic_loss(x, y)
    gen = torch.Generator().manual_seed(7)
    d = torch.randn(6, 6, generator=gen, dtype=torch.float64) + 3 * torch.eye(
        6, dtype=torch.float64
    )
    w0 = 0.1 * torch.randn(6, generator=gen, dtype=torch.float64)

    def run(cls, transformed, steps, **kw):
        start = torch.linalg.solve(d, w0) if transformed else w0.clone()
        v = start.requires_grad_()
        c = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        opt = cls([v, c], **kw)
        closure = loss_closure(opt, [v, c], lambda v, c: f(d @ v if transformed else v, c))
        path = []
        for _ in range(steps):
            opt.step(closure)
            path.append((d @ v.detach()) if transformed else v.detach().clone())
        return path

    for plain, changed in zip(run(oo.Newton, False, 5), run(oo.Newton, True, 5), strict=True):
        torch.testing.assert_close(changed, plain, rtol=1e-10, atol=1e-12)
    gd_plain, gd_changed = run(oo.SGD, False, 5, lr=0.5), run(oo.SGD, True, 5, lr=0.5)
    assert float((gd_changed[-1] - gd_plain[-1]).norm()) > 1e-2 * float(gd_plain[-1].norm())
    # and Newton got somewhere: it converges quadratically on this convex problem
    newton = run(oo.Newton, False, 8)
    assert float((newton[-1] - newton[-2]).norm()) < 1e-8


def test_indefinite_hessian_is_shifted_to_a_descent_direction():
    """At a point of f = x^2 - y^2 + y^4 / 4 where H is indefinite, 'shift' goes
    downhill; 'solve' (pure Newton) heads for the saddle point at the origin."""

    def f(w):
        return w[0] ** 2 - w[1] ** 2 + w[1] ** 4 / 4

    for indefinite, expect_saddle in (("shift", False), ("solve", True)):
        w = torch.tensor([0.5, 0.3], dtype=torch.float64, requires_grad=True)
        opt = oo.Newton([w], indefinite=indefinite)
        closure = loss_closure(opt, [w], f)
        before = float(f(w.detach()))
        for _ in range(30):
            opt.step(closure)
        at_saddle = float(w.detach().norm()) < 1e-8
        assert at_saddle == expect_saddle, indefinite
        if not expect_saddle:  # a minimum: (0, +-sqrt(2)), f = -1
            assert float(f(w.detach())) == pytest.approx(-1.0, abs=1e-10)
            assert -1.0 < before
    opt = oo.Newton([w], indefinite="shift")
    with torch.no_grad():
        w.copy_(torch.tensor([0.5, 0.3]))
    opt.step(loss_closure(opt, [w], f))
    assert opt.state[w]["shift"] > 0  # the Hessian at the start needed one


def test_unused_parameters_do_not_move_and_do_not_break_the_solve():
    a, b = spd_quadratic(4)
    w = torch.randn(4, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    w.requires_grad_()
    unused = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt = oo.Newton([w, unused])
    opt.step(loss_closure(opt, [w, unused], lambda w, u: 0.5 * w @ a @ w - b @ w))
    torch.testing.assert_close(w.detach(), torch.linalg.solve(a, b), rtol=1e-10, atol=0)
    assert torch.equal(unused.detach(), torch.ones(3, dtype=torch.float64))
    assert opt.state[w]["shift"] == 0.0  # no damping was needed for the zero rows


def test_levenberg_marquardt_adapts_the_damping_and_undoes_bad_steps():
    x, y = logistic_data(dim=6)
    params = logistic_params(6)
    opt = oo.Newton(params, damping=10.0, damping_update="levenberg_marquardt", tolerance_grad=0.0)
    closure = logistic_closure(opt, params, x, y)
    losses = [float(opt.step(closure)) for _ in range(35)]
    assert all(b <= a for a, b in zip(losses, losses[1:], strict=False))  # never up
    assert opt.state[params[0]]["damping"] < 1e-3  # shrank after good steps
    closure()
    assert float(torch.cat([p.grad.reshape(-1) for p in params]).abs().max()) < 1e-9
    # a huge step from lr = 50 raises the loss: it is undone and the damping grows
    params = logistic_params(6)
    opt = oo.Newton(params, lr=50.0, damping=1e-3, damping_update="levenberg_marquardt")
    closure = logistic_closure(opt, params, x, y)
    start = float(closure())
    opt.step(closure)
    assert torch.count_nonzero(flat(params)) == 0 and float(closure()) == start
    assert opt.state[params[0]]["damping"] == pytest.approx(1.5e-3)
    assert opt.state[params[0]]["ratio"] < 0


def test_backtracking_line_search_makes_every_step_a_decrease():
    """From far away on a convex function whose Newton step overshoots (log-cosh)."""
    w = torch.full((3,), 3.0, dtype=torch.float64, requires_grad=True)

    def f(w):
        return torch.log(torch.cosh(w)).sum()

    pure = oo.Newton([w.detach().clone().requires_grad_()])
    pure_w = pure.param_groups[0]["params"][0]
    pure.step(loss_closure(pure, [pure_w], f))
    assert float(f(pure_w.detach())) > float(f(w.detach()))  # plain Newton diverges here
    opt = oo.Newton([w], line_search_fn="backtracking", tolerance_grad=0.0)
    closure = loss_closure(opt, [w], f)
    losses = [float(opt.step(closure)) for _ in range(4)]
    assert losses[0] > losses[1] > losses[2] > losses[3]
    # log(cosh(w)) rounds to exactly 0 (its minimum) once |w| < 1e-8: the line search
    # sees no decrease to make, and stops there without an error
    assert float(f(w.detach())) == 0.0 and float(w.detach().abs().max()) < 1e-7
    opt.step(closure)


def test_state_dict_round_trip_continues_identically():
    x, y = logistic_data(dim=6)

    def fresh():
        params = logistic_params(6)
        opt = oo.create("newton", params, damping=1.0, damping_update="levenberg_marquardt",
                        lr=0.7)  # fmt: skip
        return params, opt, logistic_closure(opt, params, x, y)

    straight, straight_counts, params2, opt2 = resumed_against_straight(fresh)
    assert torch.equal(flat(params2), straight)
    assert opt2.counts == straight_counts


def test_refuses_a_model_above_the_limit_naming_it_and_the_alternatives():
    big = torch.nn.Linear(100, 60)  # 6060 parameters
    with pytest.raises(OptimlabError, match=r"6060 parameters.*max_params=5000.*use lbfgs"):
        oo.Newton(big.parameters())
    with pytest.raises(OptimlabError, match=r"max_params=100\b"):
        oo.create("newton", torch.nn.Linear(20, 10).parameters(), max_params=100)
    oo.Newton(big.parameters(), max_params=10_000)  # raising the limit is allowed


def test_step_needs_a_closure_and_a_finite_loss():
    w = torch.ones(2, dtype=torch.float64, requires_grad=True)
    opt = oo.Newton([w])
    with pytest.raises(OptimlabError, match="needs a closure.*loss.backward"):
        opt.step()
    with pytest.raises(OptimlabError, match=r"non-finite loss \(nan\)"):
        opt.step(loss_closure(opt, [w], lambda w: (w**2).sum() * float("nan")))


def test_singular_hessian_with_plain_solve_is_explained():
    w = torch.ones(2, dtype=torch.float64, requires_grad=True)
    opt = oo.Newton([w], indefinite="solve")
    # f depends on w0 + w1 only: H is singular, the gradient is not zero
    with pytest.raises(OptimlabError, match="singular.*damping > 0 or indefinite='shift'"):
        opt.step(loss_closure(opt, [w], lambda w: (w.sum() - 3) ** 2))


def test_newton_cg_solves_a_quadratic_with_at_most_n_products():
    a, b = spd_quadratic(20, kappa=10.0, seed=3)
    w = torch.zeros(20, dtype=torch.float64, requires_grad=True)
    opt = oo.Newton([w], solver="cg", cg_rtol=1e-13)
    opt.step(loss_closure(opt, [w], lambda w: 0.5 * w @ a @ w - b @ w))
    exact = torch.linalg.solve(a, b)
    assert float((w.detach() - exact).norm() / exact.norm()) < 1e-10
    assert opt.counts["hvp"] <= 20


def test_newton_cg_converges_with_fewer_products_than_parameters():
    """The forcing sequence min(1/2, sqrt(||g||)) asks for little accuracy far from the
    minimizer and more near it: superlinear convergence from a few products per step
    (the Cholesky solver spends n = 41 per step)."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(400, 40, generator=gen, dtype=torch.float64)
    w_true = 0.3 * torch.randn(40, generator=gen, dtype=torch.float64)
    y = (torch.rand(400, generator=gen, dtype=torch.float64) < torch.sigmoid(x @ w_true)).double()
    params = logistic_params(40)
    opt = oo.Newton(params, solver="cg", line_search_fn="backtracking", tolerance_grad=1e-10)
    closure = logistic_closure(opt, params, x, y)
    gradients = []
    for _ in range(8):
        opt.step(closure)
        closure()
        gradients.append(float(torch.cat([p.grad.reshape(-1) for p in params]).abs().max()))
    assert gradients[-1] < 1e-10
    assert opt.counts["hvp"] < 41  # all steps together
    # superlinear: each of the last steps shrinks the gradient by more than the one before
    tail = [g for g in gradients if g > 1e-10][-4:]
    ratios = [b / a for a, b in zip(tail, tail[1:], strict=False)]
    assert all(r2 < r1 for r1, r2 in zip(ratios, ratios[1:], strict=False))


def test_newton_cg_turns_negative_curvature_into_descent_and_takes_big_models():
    def f(w):
        return w[0] ** 2 - w[1] ** 2 + w[1] ** 4 / 4

    w = torch.tensor([0.5, 0.0], dtype=torch.float64, requires_grad=True)
    # at y = 0 the gradient (1, 0) sees positive curvature; from (0.5, 1e-3) CG meets
    # the negative curvature along y and stops with a descent direction
    with torch.no_grad():
        w[1] = 1e-3
    opt = oo.Newton([w], solver="cg", line_search_fn="backtracking")
    closure = loss_closure(opt, [w], f)
    for _ in range(40):
        opt.step(closure)
    assert float(f(w.detach())) == pytest.approx(-1.0, abs=1e-10)
    big = torch.nn.Linear(100, 60)
    oo.Newton(big.parameters(), solver="cg")  # no n x n matrix, no limit
    with pytest.raises(OptimlabError, match=r"raise the limit, use solver='cg'"):
        oo.Newton(big.parameters())
