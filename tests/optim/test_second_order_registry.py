"""The closure-driven optimizers in the registry, their state sizes, and bad input."""

from __future__ import annotations

import pytest
import torch
from second_order_problems import logistic_closure, logistic_data, logistic_params

import optimlab.optim as oo
from optimlab.errors import OptimlabError

CLOSURE = ["bfgs", "cg", "hessian_free", "lbfgs", "newton"]
# closure-driven too, but one closure call per step on any batch (they read the
# closure's pass through the model): tests/optim/test_natural_gradient.py, test_kfac.py
FISHER = ["kfac", "natural_gradient", "natural_gradient_diag"]


def test_records_say_what_the_optimizers_need():
    assert oo.available(needs_closure=True) == sorted(CLOSURE + FISHER)
    assert set(oo.available(needs_closure=False)) | set(CLOSURE + FISHER) == set(oo.available())
    for name in FISHER:
        record = oo.get(name)
        assert record.needs_closure and not record.full_batch and not record.chain
    for name in CLOSURE:
        record = oo.get(name)
        assert record.needs_closure and record.full_batch and not record.chain
        assert "fast" not in record.hyperparameters()  # no compiled path
        assert "clip_norm" not in record.hyperparameters()  # no chain options
        assert "closure" in record.capabilities()
    assert oo.get("newton").max_params == oo.get("bfgs").max_params == 5000
    assert oo.get("lbfgs").max_params is None and oo.get("lbfgs").torch_class == "LBFGS"
    assert oo.create("lbfgs", logistic_params()).defaults["line_search_fn"] == "strong_wolfe"
    assert oo.create("l-bfgs", logistic_params()).defaults["history_size"] == 100
    assert oo.create("newton", logistic_params()).defaults["line_search_fn"] == "backtracking"
    with pytest.raises(
        OptimlabError, match=r"unknown hyperparameter\(s\) \['fast'\].*history_size"
    ):
        oo.create("lbfgs", logistic_params(), fast=True)


def flat_buffers(opt, n):
    state = opt.state[opt.param_groups[0]["params"][0]]
    found = []
    for value in state.values():
        for t in value if isinstance(value, list) else [value]:
            if isinstance(t, torch.Tensor) and t.shape == (n,):
                found.append(t)
    return found


def test_state_sizes_match_the_records():
    x, y = logistic_data(dim=6)
    n = 7
    for name, hp, vectors, matrices in [
        ("lbfgs", {"history_size": 3}, 6, 0),
        ("bfgs", {}, 0, 1),
        ("newton", {}, 0, 0),
        ("cg", {}, 2, 0),
        ("hessian_free", {}, 1, 0),
    ]:
        params = logistic_params(6)
        opt = oo.create(name, params, **hp)
        closure = logistic_closure(opt, params, x, y)
        for _ in range(6):
            opt.step(closure)
        assert len(flat_buffers(opt, n)) == vectors, name
        state = opt.state[params[0]]
        assert sum(isinstance(v, torch.Tensor) and v.shape == (n, n) for v in state.values()) == (
            matrices
        )
    assert oo.get("lbfgs").state_slots == 2 * 100  # the pairs at the default history size
    assert oo.get("bfgs").state_note.startswith("4n")
    assert oo.get("cg").state_slots == 2 and oo.get("cg").max_params is None


def one():
    return [torch.zeros(3, dtype=torch.float64, requires_grad=True)]


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: oo.LBFGS(one(), lr=0.0), r"invalid lr: 0.0; valid range is \(0, inf\)"),
        (lambda: oo.LBFGS(one(), lr="1"), r"invalid lr: '1'"),
        (lambda: oo.LBFGS(one(), max_iter=0), r"invalid max_iter: 0; valid: an integer in \[1"),
        (lambda: oo.LBFGS(one(), max_iter=2.5), r"invalid max_iter: 2.5"),
        (lambda: oo.LBFGS(one(), max_eval=0), r"invalid max_eval: 0"),
        (lambda: oo.LBFGS(one(), tolerance_grad=-1.0), r"invalid tolerance_grad"),
        (lambda: oo.LBFGS(one(), tolerance_change=float("nan")), r"invalid tolerance_change"),
        (lambda: oo.LBFGS(one(), history_size=0), r"invalid history_size: 0"),
        (
            lambda: oo.LBFGS(one(), line_search_fn="wolfe"),
            r"invalid line_search_fn: 'wolfe'; "
            r"valid: None, 'strong_wolfe', 'backtracking', 'exact'",
        ),
        (lambda: oo.LBFGS(one(), c1=0.0), r"invalid c1: 0.0; valid range is \(0, 1\)"),
        (lambda: oo.LBFGS(one(), c1=0.5, c2=0.4), r"invalid c2: 0.4; valid range is \(0.5, 1\)"),
        (lambda: oo.LBFGS(one(), max_ls=0), r"invalid max_ls: 0"),
        (lambda: oo.BFGS(one(), max_params=0), r"invalid max_params: 0"),
        (lambda: oo.BFGS(one(), lr=-1.0), r"invalid lr: -1.0"),
        (lambda: oo.Newton(one(), lr=float("inf")), r"invalid lr: inf"),
        (lambda: oo.Newton(one(), damping=-1.0), r"invalid damping: -1.0; valid range is \[0"),
        (
            lambda: oo.Newton(one(), damping_update="lm"),
            r"invalid damping_update: 'lm'; valid: 'fixed', 'levenberg_marquardt'",
        ),
        (
            lambda: oo.Newton(one(), damping_update="levenberg_marquardt"),
            r"invalid damping: 0 with damping_update='levenberg_marquardt'.*> 0",
        ),
        (
            lambda: oo.Newton(one(), line_search_fn="strong_wolfe"),
            r"invalid line_search_fn: 'strong_wolfe'; valid: None, 'backtracking'",
        ),
        (lambda: oo.Newton(one(), c1=1.0), r"invalid c1: 1.0"),
        (
            lambda: oo.Newton(one(), backtrack=1.0),
            r"invalid backtrack: 1.0; valid range is \(0, 1\)",
        ),
        (lambda: oo.Newton(one(), max_ls=0), r"invalid max_ls: 0"),
        (lambda: oo.Newton(one(), tolerance_grad=-1.0), r"invalid tolerance_grad"),
        (lambda: oo.Newton(one(), indefinite="lu"), r"invalid indefinite: 'lu'; valid: 'shift'"),
        (lambda: oo.Newton(one(), max_params=-5), r"invalid max_params: -5"),
        (lambda: oo.Newton(one(), solver="lu"), r"invalid solver: 'lu'; valid: 'cholesky', 'cg'"),
        (lambda: oo.Newton(one(), cg_rtol=0.0), r"invalid cg_rtol: 0.0; valid range is \(0, 1\)"),
        (
            lambda: oo.LBFGS([{"params": one()}, {"params": one()}]),
            r"LBFGS takes one parameter group.*a second one was given",
        ),
        (
            lambda: oo.Newton(one() + [torch.zeros(2, requires_grad=True)]),
            r"one device with one dtype; got torch.float64 on cpu and torch.float32",
        ),
        (lambda: oo.BFGS([]), r"empty parameter list|got no parameters"),
    ],
)
def test_every_argument_is_validated_with_a_message_naming_it(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("name", CLOSURE)
def test_step_without_a_closure_says_what_the_closure_must_do(name):
    opt = oo.create(name, one())
    with pytest.raises(OptimlabError, match=r"step needs a closure that zeroes the gradients"):
        opt.step()


@pytest.mark.parametrize("name", CLOSURE)
def test_closure_must_return_a_scalar_loss(name):
    w = one()[0]
    opt = oo.create(name, [w])

    def closure():
        opt.zero_grad()
        loss = w**2
        loss.sum().backward()
        return loss

    with pytest.raises(OptimlabError, match=r"the closure must return the loss as a scalar"):
        opt.step(closure)


@pytest.mark.parametrize("name", CLOSURE)
def test_zero_size_and_gradless_parameters_are_carried_along(name):
    """An empty tensor and one whose .grad stays None (it does not reach the loss)
    are part of the flat vector and never move."""
    w = torch.tensor([3.0, -2.0], dtype=torch.float64, requires_grad=True)
    empty = torch.zeros(0, 3, dtype=torch.float64, requires_grad=True)
    idle = torch.ones(2, dtype=torch.float64, requires_grad=True)
    opt = oo.create(name, [empty, w, idle])

    def closure():
        opt.zero_grad()
        loss = ((w - 1) ** 2).sum() + (w**4).sum() / 10
        loss.backward()
        return loss

    for _ in range(30):
        opt.step(closure)
    assert idle.grad is None and torch.equal(idle.detach(), torch.ones(2, dtype=torch.float64))
    assert empty.shape == (0, 3)
    closure()
    assert float(w.grad.abs().max()) < 1e-5  # the default tolerances stop about here


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("name", CLOSURE)
def test_a_non_finite_loss_at_the_start_is_refused_naming_the_optimizer(name, value):
    w = one()[0]
    opt = oo.create(name, [w])

    def closure():
        opt.zero_grad()
        loss = (w**2).sum() * value
        loss.backward()
        return loss

    cls = type(opt).__name__
    with pytest.raises(OptimlabError, match=rf"{cls}: the closure returned a non-finite loss"):
        opt.step(closure)
