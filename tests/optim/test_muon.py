"""Muon's Newton-Schulz iteration against the polynomial it applies to the singular
values, the rule that sends parameters to Muon or AdamW, and the error for a parameter
Muon cannot orthogonalise."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import optimlab.optim as oo
from optimlab.errors import OptimlabError


def quintic_composed(s: torch.Tensor, steps: int, coefficients=oo.muon.QUINTIC) -> torch.Tensor:
    a, b, c = coefficients
    for _ in range(steps):
        s = a * s + b * s**3 + c * s**5
    return s


@pytest.mark.parametrize("shape", [(7, 4), (3, 9), (5, 5)])
def test_newton_schulz_maps_each_singular_value_by_the_composed_quintic(shape):
    """NS keeps the singular vectors and sends s/||G||_F through a s + b s^3 + c s^5,
    five times: in float64, to rounding."""
    gen = torch.Generator().manual_seed(sum(shape))
    g = torch.randn(shape, generator=gen, dtype=torch.float64)
    u, s, vh = torch.linalg.svd(g, full_matrices=False)
    expected = u @ torch.diag(quintic_composed(s / g.norm(), 5)) @ vh
    result = oo.newton_schulz(g, steps=5, dtype=None)
    assert result.dtype == torch.float64 and result.shape == shape
    torch.testing.assert_close(result, expected, rtol=1e-10, atol=1e-12)
    # roughly orthogonal: singular values within torch's documented band around 1
    singular = torch.linalg.svdvals(result)
    assert singular.min() > 0.5 and singular.max() < 1.5


def test_newton_schulz_runs_in_bfloat16_by_default_as_torch():
    g = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    assert oo.newton_schulz(g).dtype == torch.bfloat16


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Embedding(10, 4), nn.Flatten(), nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)
    )


def test_param_groups_send_hidden_matrices_to_muon_and_the_rest_to_adamw():
    groups = oo.muon_param_groups(model(), lr=0.02, adam_lr=3e-4, exclude=())
    muon, adamw = groups
    assert muon["muon"] is True and muon["param_names"] == ["2.weight"] and muon["lr"] == 0.02
    assert adamw["muon"] is False and adamw["lr"] == 3e-4
    assert sorted(adamw["param_names"]) == ["0.weight", "2.bias", "4.bias", "4.weight"]
    net = model()
    opt = oo.Muon(oo.muon_param_groups(net), lr=0.02)
    x = torch.tensor([[1, 2], [3, 4]])
    for _ in range(3):
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()
    assert set(opt.state[net[2].weight]) == {"step", "momentum_buffer"}
    assert set(opt.state[net[4].weight]) == {"step", "exp_avg", "exp_avg_sq"}


def test_auto_routes_by_shape_within_one_group():
    net = model()
    opt = oo.create("muon", net.parameters(), lr=1e-3)
    opt.zero_grad()
    net(torch.tensor([[1, 2]])).sum().backward()
    opt.step()
    assert "momentum_buffer" in opt.state[net[0].weight]  # 2-D: the embedding too, in auto
    assert "exp_avg" in opt.state[net[2].bias]


def test_a_parameter_muon_cannot_orthogonalise_is_named():
    net = model()
    bias = {"params": [net[2].weight, net[2].bias], "param_names": ["2.weight", "2.bias"]}
    with pytest.raises(
        OptimlabError,
        match=r"Muon cannot orthogonalise parameter '2.bias' \(group 0, position 1, "
        r"shape \(16,\)\): it needs a 2-D matrix; valid: put it in a group with muon=False",
    ):
        oo.Muon([{**bias, "muon": True}])
    with pytest.raises(OptimlabError, match=r"parameter \(group 0, position 0, shape \(3, 3, 2"):
        oo.create("muon", [torch.zeros(3, 3, 2, requires_grad=True)], muon=True)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: oo.Muon([torch.zeros(2, 2, requires_grad=True)], muon="yes"), r"invalid muon"),
        (lambda: oo.Muon([torch.zeros(2, 2, requires_grad=True)], ns_steps=0), r"ns_steps: 0"),
        (
            lambda: oo.Muon([torch.zeros(2, 2, requires_grad=True)], ns_coefficients=(1.0, 2.0)),
            r"ns_coefficients",
        ),
        (lambda: oo.Muon([torch.zeros(2, 2, requires_grad=True)], ns_dtype="half"), r"ns_dtype"),
        (
            lambda: oo.Muon([torch.zeros(2, 2, requires_grad=True)], adjust_lr_fn="keller"),
            r"adjust_lr_fn: 'keller'",
        ),
        (lambda: oo.muon_param_groups(model(), exclude=["head.weight"]), r"exclude names"),
    ],
)
def test_invalid_muon_input_raises_naming_the_argument(build, match):
    with pytest.raises(OptimlabError, match=match):
        build()


def test_flatten_orthogonalises_conv_filters_as_out_by_in_k_k():
    """With flatten, a (4, 2, 3, 3) filter bank steps by NS of its (4, 18) matrix."""
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(4, 2, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    g = torch.randn(4, 2, 3, 3, generator=gen, dtype=torch.float64)
    start = w.detach().clone()
    opt = oo.Muon([w], lr=0.1, weight_decay=0.0, flatten=True, ns_dtype=None)
    w.grad = g.clone()
    opt.step()
    d = g.reshape(4, -1)  # momentum 0.95, Nesterov, first step: (1 - mu) g + mu (1 - mu) g
    expected = oo.newton_schulz(d, dtype=None).reshape(g.shape)  # ratio 1: 4 rows < 18
    torch.testing.assert_close(w.detach(), start - 0.1 * expected)
    with pytest.raises(OptimlabError, match=r"shape \(4, 2, 3, 3\).*flatten=True"):
        oo.Muon([torch.zeros(4, 2, 3, 3, requires_grad=True)], muon=True)
    oo.Muon([torch.zeros(4, 2, 3, 3, requires_grad=True)], muon=True, flatten=True)


def test_other_nesterov_steps_the_rest_by_sgd_with_nesterov_momentum():
    bias = torch.zeros(3, requires_grad=True)
    opt = oo.Muon([bias], lr=0.5, weight_decay=0.0, other="nesterov", other_momentum=0.9)
    for g, expected in (([1.0, 2.0, 0.0], 1.9), ([1.0, 2.0, 0.0], 1 + 0.9 * 1.9)):
        bias.grad = torch.tensor(g)
        before = bias.detach().clone()
        opt.step()
        # c <- 0.9 c + g; step g + 0.9 c: 1.9 g, then (1 + 0.9 * 1.9) g
        torch.testing.assert_close(before - bias.detach(), 0.5 * expected * torch.tensor(g))
    assert set(opt.state[bias]) == {"step", "momentum_buffer"}
    with pytest.raises(OptimlabError, match="invalid other: 'sgd'; valid: adamw, nesterov"):
        oo.Muon([bias], other="sgd")
