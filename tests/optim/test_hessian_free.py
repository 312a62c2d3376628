"""Hessian-free optimization: the Gauss-Newton step on least squares, the
Levenberg-Marquardt rule, backtracking over CG iterates, counts, resume and the digits
MLP."""

from __future__ import annotations

import pytest
import torch
from second_order_problems import flat, logistic_data, resumed_against_straight
from torch import nn
from torch.nn import functional as F

import optimlab.optim as oo
from optimlab import problems
from optimlab.curvature import ModelObjective, ggn, hessian_matrix
from optimlab.errors import OptimlabError
from optimlab.optim.closure import attach_objective
from optimlab.optim.hessian_free import kept_iterations
from optimlab.optim.newton import levenberg_marquardt
from optimlab.train import fit
from optimlab.train.evaluate import evaluate


def least_squares(seed: int = 0, n: int = 40, d: int = 5, k: int = 3):
    """A linear model ``x -> W x + b`` on random data, squared error: G = H."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = torch.randn(n, k, generator=gen, dtype=torch.float64)
    torch.manual_seed(seed)
    model = nn.Linear(d, k).double()
    return model, x, y


def model_closure(opt, model, loss_fn, x, y, extra=None):
    """A closure that marks itself with its objective (as the trainer's do); ``extra(w)``
    adds a term of the parameters that the objective does not know of."""

    def closure():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        if extra is not None:
            loss = loss + extra(model)
        loss.backward()
        return loss

    return attach_objective(closure, model, loss_fn, x, y)


def test_one_step_on_linear_least_squares_is_the_newton_step():
    model, x, y = least_squares()
    objective = ModelObjective(model, F.mse_loss, x, y)
    h = hessian_matrix(objective)
    torch.testing.assert_close(ggn(objective), h, rtol=1e-12, atol=1e-14)  # G = H here
    newton_model, _, _ = least_squares()
    newton = oo.Newton(newton_model.parameters(), lr=1.0, line_search_fn=None)
    newton.step(model_closure(newton, newton_model, F.mse_loss, x, y))

    opt = oo.HessianFree(model.parameters(), damping=0.0, damping_update="fixed",
                         cg_max_iter=100, cg_progress_tol=0.0, cg_rtol=1e-14,
                         backtrack=False)  # fmt: skip
    opt.step(model_closure(opt, model, F.mse_loss, x, y))
    newton_w = flat(list(newton_model.parameters()))
    torch.testing.assert_close(flat(list(model.parameters())), newton_w, rtol=0, atol=1e-8)
    # the step lands on the least-squares solution
    a = torch.cat([x, torch.ones(len(x), 1, dtype=torch.float64)], dim=1)
    solution = torch.linalg.lstsq(a, y).solution
    torch.testing.assert_close(model.weight.detach(), solution[:-1].T, rtol=0, atol=1e-8)
    state = opt.state[model.weight]
    assert state["cg_status"] == "converged" and state["cg_iterations"] <= 18 + 2
    assert opt.counts["hvp"] == state["cg_iterations"]


@pytest.mark.parametrize(
    "ratio, factor",
    [(-3.0, 1.5), (0.1, 1.5), (0.2499, 1.5), (0.25, 1.0), (0.5, 1.0), (0.75, 1.0),
     (0.7501, 2 / 3), (1.0, 2 / 3), (float("nan"), 1.5), (-float("inf"), 1.5)],
)  # fmt: skip
def test_levenberg_marquardt_rule(ratio, factor):
    assert levenberg_marquardt(2.0, ratio) == pytest.approx(2.0 * factor)


def test_damping_shrinks_where_the_model_is_exact_and_grows_where_it_is_not():
    # least squares: the quadratic model is the loss itself, rho = 1
    model, x, y = least_squares(1)
    opt = oo.HessianFree(model.parameters(), damping=0.3)
    closure = model_closure(opt, model, F.mse_loss, x, y)
    before = float(closure().detach())
    opt.step(closure)
    state = opt.state[model.weight]
    assert state["ratio"] == pytest.approx(1.0, abs=1e-9)
    assert state["damping"] == pytest.approx(0.2) and float(closure().detach()) < before
    # a steep quartic term in the loss that G leaves out: the model promises far more
    # than the step delivers, rho < 1/4, lambda grows and the step is undone
    model, x, y = least_squares(1)
    with torch.no_grad():
        model.weight.fill_(1.0)
    opt = oo.HessianFree(model.parameters(), damping=0.3, backtrack=False)
    quartic = lambda m: 10.0 * (m.weight**4).sum()  # noqa: E731
    closure = model_closure(opt, model, F.mse_loss, x, y, extra=quartic)
    start = flat(list(model.parameters()))
    opt.step(closure)
    state = opt.state[model.weight]
    assert state["ratio"] < 0.25 and state["damping"] == pytest.approx(0.45)
    assert torch.equal(flat(list(model.parameters())), start)


def test_kept_iterations_grow_geometrically():
    assert sorted(kept_iterations(14)) == [1, 2, 3, 4, 5, 7, 9, 11, 14]
    assert len(kept_iterations(250)) == 20


def test_backtracking_steps_along_an_earlier_iterate_when_the_last_overshoots():
    """CG's iterates grow in norm; with a loss steeper than the model, a shorter one is
    better, and backtracking finds it."""
    losses, norms = {}, {}
    for backtrack in (False, True):
        model, x, y = least_squares(2)
        with torch.no_grad():
            model.weight.fill_(0.5)
        opt = oo.HessianFree(model.parameters(), damping=1e-3, damping_update="fixed",
                             cg_progress_tol=0.0, backtrack=backtrack)  # fmt: skip
        quartic = lambda m: 2.0 * (m.weight**4).sum()  # noqa: E731
        closure = model_closure(opt, model, F.mse_loss, x, y, extra=quartic)
        start = flat(list(model.parameters()))
        opt.step(closure)
        losses[backtrack] = float(closure().detach())
        norms[backtrack] = float((flat(list(model.parameters())) - start).norm())
        solution_norm = float(opt.state[model.weight]["solution"].norm())
    assert losses[True] < losses[False]
    assert norms[True] < norms[False] == pytest.approx(solution_norm)


def logistic_model(dim: int = 12):
    torch.manual_seed(0)
    model = nn.Linear(dim, 1).double()
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    return model


def logistic_loss(z, y):
    return F.binary_cross_entropy_with_logits(z.squeeze(1), y)


def test_state_dict_round_trip_continues_identically():
    x, y = logistic_data()

    def fresh():
        model = logistic_model()
        opt = oo.create("hessian_free", model.parameters(), cg_max_iter=8)
        return list(model.parameters()), opt, model_closure(opt, model, logistic_loss, x, y)

    def warm_start_came_along(opt):
        state = opt.state[opt.param_groups[0]["params"][0]]
        assert state["solution"].shape == (13,) and state["damping"] != 1.0

    straight, counts, params2, opt2 = resumed_against_straight(
        fresh, steps=10, on_load=warm_start_came_along
    )
    assert torch.equal(flat(params2), straight)
    assert opt2.counts == counts and opt2.counts["hvp"] > 10
    assert opt2.state[params2[0]]["n_iter"] == 10


def test_the_hessian_option_works_with_a_plain_closure_and_minimizes_rosenbrock():
    from second_order_problems import loss_closure, rosenbrock

    w = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    opt = oo.HessianFree([w], curvature="hessian", damping=1e-2, tolerance_grad=1e-10)
    closure = loss_closure(opt, [w], rosenbrock)
    for _ in range(100):
        opt.step(closure)
    assert float((w.detach() - 1).abs().max()) < 1e-8
    assert opt.counts["hvp"] > 100


def test_gauss_newton_needs_the_closures_objective_and_its_parameters():
    w = torch.ones(2, dtype=torch.float64, requires_grad=True)
    opt = oo.HessianFree([w], curvature="gauss_newton")

    def closure():
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss

    with pytest.raises(OptimlabError, match=r"needs the model's outputs.*attach_objective"):
        opt.step(closure)
    model, x, y = least_squares()
    with pytest.raises(OptimlabError, match=r"parameters of shape \[\(2,\)\] are not"):
        opt.step(model_closure(opt, model, F.mse_loss, x, y, extra=lambda m: (w**2).sum()))


def test_auto_takes_gauss_newton_products_where_the_closure_carries_its_model():
    model, x, y = least_squares()
    w = torch.ones(2, dtype=torch.float64, requires_grad=True)
    plain = oo.HessianFree([w])

    def closure():
        plain.zero_grad()
        loss = ((w - 3) ** 4).sum()
        loss.backward()
        return loss

    plain.step(closure)
    assert plain.state[w]["curvature"] == "hessian" and plain.counts["hvp"] > 0
    opt = oo.HessianFree(model.parameters())
    opt.step(model_closure(opt, model, F.mse_loss, x, y))
    assert opt.state[model.weight]["curvature"] == "gauss_newton"
    # a parameter outside the model: the Hessian
    mixed = oo.HessianFree([*model.parameters(), w])
    mixed.step(model_closure(mixed, model, F.mse_loss, x, y, extra=lambda m: (w**2).sum()))
    assert mixed.state[model.weight]["curvature"] == "hessian"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(curvature="fisher"), r"invalid curvature: 'fisher'; valid: 'auto', 'gauss_n"),
        (dict(damping=-1.0), r"invalid damping: -1.0"),
        (dict(damping=0.0), r"invalid damping: 0 with damping_update='levenberg_marquardt'"),
        (dict(cg_max_iter=0), r"invalid cg_max_iter: 0"),
        (dict(cg_decay=1.5), r"invalid cg_decay: 1.5; valid range is \[0, 1\]"),
        (dict(cg_progress_tol=1.0), r"invalid cg_progress_tol: 1.0"),
        (dict(backtrack=1), r"invalid backtrack: 1; valid: True or False"),
        (dict(damping_update="trust"), r"invalid damping_update: 'trust'"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, match):
    with pytest.raises(OptimlabError, match=match):
        oo.HessianFree([torch.zeros(2, requires_grad=True)], **kwargs)


def train_loss(problem):
    split = problem.splits.train
    return evaluate(problem.model, problem.loss_fn, {}, split.x, split.y, 4096)["loss"]


def test_trains_the_digits_mlp_further_per_epoch_than_tuned_sgd():
    """Per epoch (each example's gradient once per epoch, plus the curvature products),
    not per second: a Hessian-free epoch took about 10x an SGD epoch here."""
    hf_problem = problems.build("digits_mlp", seed=0)
    opt = oo.create("hessian_free", hf_problem.model.parameters())
    result = fit(hf_problem, opt, epochs=3, batch_size=256)
    assert result.history[-1]["hvps"] == opt.counts["hvp"] > 100
    # the trainer's closures carry their model: Gauss-Newton products
    assert opt.state[next(hf_problem.model.parameters())]["curvature"] == "gauss_newton"
    hf = train_loss(hf_problem)
    for lr in (0.1, 0.2, 0.5, 1.0):  # SGD's best on this grid is 0.5 (train loss 0.08)
        problem = problems.build("digits_mlp", seed=0)
        fit(problem, oo.create("sgd", problem.model.parameters(), lr=lr), epochs=3)
        assert hf < train_loss(problem) / 2, lr
