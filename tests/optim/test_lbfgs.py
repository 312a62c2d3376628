"""L-BFGS against torch.optim.LBFGS (float64), and its own behaviour."""

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
)

import optimlab.optim as oo
from optimlab.errors import OptimlabError

SETTINGS = dict(history_size=10, line_search_fn="strong_wolfe", tolerance_grad=1e-12,
                tolerance_change=1e-14)  # fmt: skip


@pytest.mark.parametrize("per_step", [dict(max_iter=1, max_eval=25), dict(max_iter=5, max_eval=9)])
def test_agrees_with_torch_on_logistic_regression_for_50_iterations(per_step):
    """One iteration per step (the trainer's use) and several (torch's default use)."""
    x, y = logistic_data()
    theirs_p, ours_p = logistic_params(), logistic_params()
    theirs = torch.optim.LBFGS(theirs_p, **SETTINGS, **per_step)
    ours = oo.LBFGS(ours_p, **SETTINGS, **per_step)
    theirs_c = logistic_closure(theirs, theirs_p, x, y)
    ours_c = logistic_closure(ours, ours_p, x, y)
    losses = []
    while ours.state[ours_p[0]].get("n_iter", 0) < 50:
        losses.append(float(theirs.step(theirs_c)))
        ours.step(ours_c)
        assert ours.state[ours_p[0]]["n_iter"] == theirs.state[theirs_p[0]]["n_iter"]
        torch.testing.assert_close(flat(ours_p), flat(theirs_p), rtol=1e-8, atol=0)
    assert ours.state[ours_p[0]]["func_evals"] == theirs.state[theirs_p[0]]["func_evals"]
    # the comparison covers real progress, not 50 steps at a minimum
    assert losses[-1] < losses[len(losses) // 2] < losses[0]
    assert float(flat(ours_p).abs().max()) > 0.5


def test_agrees_with_torch_without_a_line_search():
    """Fixed steps of lr: the last iteration of a step leaves its pair pending."""
    x, y = logistic_data(dim=6)
    theirs_p, ours_p = logistic_params(6), logistic_params(6)
    kw = dict(lr=0.5, history_size=5, max_iter=3, max_eval=4, tolerance_grad=1e-12,
              tolerance_change=1e-14)  # fmt: skip
    theirs, ours = torch.optim.LBFGS(theirs_p, **kw), oo.LBFGS(ours_p, **kw)
    theirs_c, ours_c = (
        logistic_closure(theirs, theirs_p, x, y),
        logistic_closure(ours, ours_p, x, y),
    )
    for _ in range(15):
        theirs.step(theirs_c)
        ours.step(ours_c)
        torch.testing.assert_close(flat(ours_p), flat(theirs_p), rtol=1e-8, atol=0)
    assert float(flat(ours_p).abs().max()) > 0.1


@pytest.mark.parametrize("dim, start", [(2, [-1.2, 1.0]), (10, None)])
def test_reaches_the_rosenbrock_minimizer_in_torchs_number_of_iterations(dim, start):
    iterations = {}
    for name, cls in [("torch", torch.optim.LBFGS), ("ours", oo.LBFGS)]:
        x0 = torch.tensor(start) if start else torch.linspace(-1.0, 0.5, dim)
        x = x0.double().requires_grad_()
        # tolerance_change would stop both where the slope g . d falls below it, about
        # 1e-8 from the minimizer: lower it
        opt = cls([x], max_iter=1, max_eval=25, **{**SETTINGS, "tolerance_change": 1e-16})
        closure = loss_closure(opt, [x], rosenbrock)
        for i in range(1, 400):
            opt.step(closure)
            if float((x.detach() - 1).abs().max()) <= 1e-8:
                iterations[name] = i
                break
    assert "ours" in iterations and "torch" in iterations, iterations
    assert abs(iterations["ours"] - iterations["torch"]) <= 1
    assert iterations["ours"] > 10  # a real run from a distant start


@pytest.mark.parametrize("search", ["backtracking", "exact"])
def test_other_line_searches_minimize_logistic_regression(search):
    x, y = logistic_data(dim=6)
    solutions = []
    for line_search_fn in (search, "strong_wolfe"):
        params = logistic_params(6)
        opt = oo.LBFGS(params, history_size=10, line_search_fn=line_search_fn, max_iter=200,
                       max_eval=2000, tolerance_grad=1e-7, tolerance_change=0.0)  # fmt: skip
        closure = logistic_closure(opt, params, x, y)
        opt.step(closure)
        closure()
        assert float(torch.cat([p.grad.reshape(-1) for p in params]).abs().max()) <= 1e-7
        solutions.append(flat(params))
    torch.testing.assert_close(solutions[0], solutions[1], rtol=0, atol=1e-5)


def test_state_dict_round_trip_continues_identically():
    x, y = logistic_data()

    def fresh():
        params = logistic_params()
        opt = oo.create("lbfgs", params, history_size=5, max_iter=1, max_eval=25,
                        tolerance_grad=1e-12, tolerance_change=1e-14)  # fmt: skip
        return params, opt, logistic_closure(opt, params, x, y)

    def history_came_along(opt):
        assert len(opt.state[opt.param_groups[0]["params"][0]]["s_history"]) == 5

    straight, straight_counts, params2, opt2 = resumed_against_straight(
        fresh, on_load=history_came_along
    )
    assert torch.equal(flat(params2), straight)
    assert opt2.counts == straight_counts and opt2.counts["function"] > 20
    assert opt2.state[params2[0]]["n_iter"] == 20


def test_counts_closure_calls():
    x, y = logistic_data(dim=6)
    params = logistic_params(6)
    opt = oo.LBFGS(params, line_search_fn="strong_wolfe", max_iter=4)
    calls = []
    inner = logistic_closure(opt, params, x, y)

    def closure():
        calls.append(1)
        return inner()

    opt.step(closure)
    opt.step(closure)
    assert opt.counts == {"function": len(calls), "gradient": len(calls), "hvp": 0}
    assert opt.state[params[0]]["func_evals"] == len(calls)


def test_stochastic_closure_makes_the_line_search_fail_with_a_clear_message():
    """A closure whose loss and gradient disagree (here: the gradient of another batch)
    gives a search direction along which the loss does not decrease."""
    x, y = logistic_data(dim=6)
    params = logistic_params(6)
    opt = oo.LBFGS(params, line_search_fn="backtracking", max_iter=1, max_eval=30)

    def closure():
        opt.zero_grad()
        scores = x @ params[0] + params[1]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(scores, y)
        # the gradient of a different objective: the ascent direction of this one
        (-loss).backward()
        return loss

    with pytest.raises(OptimlabError, match=r"backtracking line search found no step.*stochastic"):
        opt.step(closure)


@pytest.mark.parametrize(
    "loss, match",
    [
        (float("nan"), r"non-finite loss \(nan\) at the current parameters"),
        (float("inf"), r"non-finite loss \(inf\)"),
    ],
)
def test_non_finite_loss_at_the_start_is_refused(loss, match):
    w = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt = oo.LBFGS([w])

    def closure():
        opt.zero_grad()
        value = (w**2).sum() * loss
        value.backward()
        return value

    with pytest.raises(OptimlabError, match=match):
        opt.step(closure)
