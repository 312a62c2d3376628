"""Lookahead and SAM wrap any optimizer: built over parameters by a base's name or over an
optimizer that exists, driven by torch's LR schedulers through the wrapper, saved and
loaded whole; SAM needs a closure and evaluates it twice."""

from __future__ import annotations

import io

import pytest
import torch

import optimlab.optim as oo
from optimlab.errors import OptimlabError


def quadratic_params(seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(4, 3, generator=gen, dtype=torch.float64).requires_grad_()]


def closure_of(opt, w: torch.Tensor, calls: list | None = None):
    target = torch.arange(12, dtype=torch.float64).reshape(4, 3) / 10

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = ((w - target) ** 4).sum()
        loss.backward()
        if calls is not None:
            calls.append(w.detach().clone())
        return loss

    return closure


def test_sam_without_a_closure_says_what_the_closure_must_do():
    w = quadratic_params()[0]
    opt = oo.create("sam", [w])
    w.grad = torch.ones_like(w)
    with pytest.raises(OptimlabError, match=r"SAM.step needs a closure that zeroes the grad"):
        opt.step()
    assert oo.SAM.needs_closure  # what training loops read


def test_sam_evaluates_the_closure_at_w_and_at_the_perturbed_point():
    """The second evaluation is at w + rho g / ||g|| (SGD base); the step starts from w."""
    w = quadratic_params()[0]
    opt = oo.SAM([w], base="sgd", rho=0.1, lr=0.01)
    calls: list[torch.Tensor] = []
    closure = closure_of(opt, w, calls)
    start = w.detach().clone()
    loss = opt.step(closure)
    assert len(calls) == 2 and torch.equal(calls[0], start)
    target = torch.arange(12, dtype=torch.float64).reshape(4, 3) / 10
    g = 4 * (start - target) ** 3
    torch.testing.assert_close(calls[1], start + 0.1 * g / g.norm(), rtol=1e-12, atol=1e-14)
    g_perturbed = 4 * (calls[1] - target) ** 3
    torch.testing.assert_close(w.detach(), start - 0.01 * g_perturbed, rtol=1e-12, atol=1e-14)
    assert float(loss.detach()) == pytest.approx(float(((start - target) ** 4).sum()))


def test_asam_scales_the_neighbourhood_by_the_weights():
    w = quadratic_params()[0]
    opt = oo.create("asam", [w], rho=0.5, eta=0.01, lr=0.01)
    calls: list[torch.Tensor] = []
    start = w.detach().clone()
    opt.step(closure_of(opt, w, calls))
    target = torch.arange(12, dtype=torch.float64).reshape(4, 3) / 10
    g = 4 * (start - target) ** 3
    t = start.abs() + 0.01
    expected = start + 0.5 * t * t * g / (t * g).norm()
    torch.testing.assert_close(calls[1], expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("wrapper", ["lookahead", "sam"])
def test_wraps_an_existing_optimizer_and_schedulers_reach_its_lr(wrapper):
    w = quadratic_params()[0]
    base = torch.optim.SGD([w], lr=0.1, momentum=0.5)
    opt = oo.Lookahead(base, k=2) if wrapper == "lookahead" else oo.SAM(base, rho=0.01)
    assert opt.base is base and opt.param_groups is base.param_groups
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    closure = closure_of(opt, w)
    for _ in range(4):
        opt.step(closure)
        scheduler.step()
    assert base.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**2)
    assert "momentum_buffer" in base.state[w]


def test_hyperparameters_with_an_existing_optimizer_are_refused():
    base = torch.optim.SGD(quadratic_params(), lr=0.1)
    with pytest.raises(OptimlabError, match=r"hyperparameters \['lr'\] were given with an"):
        oo.Lookahead(base, lr=0.2)


def test_lookahead_round_trip_over_a_torch_optimizer_keeps_slow_weights_and_counters():
    def build(params):
        return oo.Lookahead(torch.optim.Adam(params, lr=0.05), k=3, alpha=0.6)

    params = quadratic_params()
    opt = build(params)
    closure = closure_of(opt, params[0])
    for _ in range(4):  # mid-cycle: the counter is 1 of 3
        opt.step(closure)
    assert opt.counters == [1]
    blob = io.BytesIO()
    torch.save({"w": params[0].detach().clone(), "opt": opt.state_dict()}, blob)
    for _ in range(5):
        opt.step(closure)

    blob.seek(0)
    saved = torch.load(blob, weights_only=True)
    resumed_params = [saved["w"].clone().requires_grad_()]
    resumed = build(resumed_params)
    resumed.load_state_dict(saved["opt"])
    assert resumed.counters == [1]
    slow = resumed.wrapper_state[resumed_params[0]]["slow_params"]
    assert torch.equal(slow, saved["opt"]["wrapper"]["state"][0]["slow_params"])
    resumed_closure = closure_of(resumed, resumed_params[0])
    for _ in range(5):
        resumed.step(resumed_closure)
    assert torch.equal(resumed_params[0], params[0])


def test_lookahead_slow_step_is_the_papers_interpolation():
    """After k plain-SGD steps the weights are phi + alpha (w_k - phi)."""
    w = quadratic_params()[0]
    opt = oo.create("lookahead", [w], base="sgd", lr=0.01, k=3, alpha=0.25)
    phi = w.detach().clone()
    fast = phi.clone()
    target = torch.arange(12, dtype=torch.float64).reshape(4, 3) / 10
    closure = closure_of(opt, w)
    for _ in range(3):
        fast = fast - 0.01 * 4 * (fast - target) ** 3
        opt.step(closure)
    torch.testing.assert_close(w.detach(), phi + 0.25 * (fast - phi), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(opt.wrapper_state[w]["slow_params"], w.detach(), rtol=0, atol=0)


def test_registry_validates_the_bases_hyperparameters():
    w = quadratic_params()
    assert oo.create("lookahead", w, base="sgd", momentum=0.9).base.defaults["momentum"] == 0.9
    with pytest.raises(OptimlabError, match=r"unknown hyperparameter\(s\) \['betas'\].*momentum"):
        oo.create("sam", w, betas=(0.9, 0.99))
    assert oo.get("lookahead").hyperparameters()["lr"] == 1e-3  # Adam's
    assert "fast" in oo.get("sam").hyperparameters()


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: oo.Lookahead(quadratic_params(), k=0), r"invalid k: 0; valid: an integer >= 1"),
        (lambda: oo.Lookahead(quadratic_params(), alpha=1.5), r"invalid alpha: 1.5"),
        (
            lambda: oo.Lookahead(quadratic_params(), pullback_momentum="keep"),
            r"pullback_momentum: 'keep'; valid: none, reset, pullback",
        ),
        (lambda: oo.Lookahead(quadratic_params(), base="adamm"), r"unknown optimizer 'adamm'"),
        (lambda: oo.Lookahead(quadratic_params(), base=3), r"invalid base: 3; valid: a registry"),
        (lambda: oo.SAM(quadratic_params(), rho=-0.1), r"invalid rho: -0.1"),
        (lambda: oo.SAM(quadratic_params(), adaptive=1), r"invalid adaptive: 1; expected True"),
        (lambda: oo.SAM(quadratic_params(), norm_dtype="float32"), r"invalid norm_dtype"),
    ],
)
def test_invalid_wrapper_input_raises_naming_the_argument(build, match):
    with pytest.raises(OptimlabError, match=match):
        build()
