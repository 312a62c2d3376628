"""Dropout family and noise: expectations by Monte Carlo, exact masks, eval behaviour.

Monte Carlo tolerances: with K draws of a Bernoulli(q) keep mask scaled by 1/q, the mean
of y = m x / q has standard deviation |x| sqrt(p / (q K)); the tests allow 5 of those
(a false failure has probability below 1e-6 per entry), computed from K, not tuned.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from optimlab.errors import OptimlabError
from optimlab.regularize import (
    DropConnectLinear,
    GaussianDropout,
    GaussianNoise,
    InvertedDropout,
    StochasticDepth,
    VanillaDropout,
    add_dropout,
)

K = 20000


def _mc_mean(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return layer(x.expand(K, *x.shape[1:])).mean(dim=0)


def test_inverted_and_vanilla_same_expectation():
    p, q = 0.3, 0.7
    x = torch.linspace(-2.0, 3.0, 8)[None]
    g = torch.Generator().manual_seed(0)
    inv, van = InvertedDropout(p, generator=g), VanillaDropout(p, generator=g)
    # inverted: train mean ~ x = its test output
    sd = x.abs() * math.sqrt(p / (q * K))
    assert ((_mc_mean(inv, x) - x).abs() <= 5 * sd + 1e-7).all()
    inv.eval()
    assert torch.equal(inv(x), x)
    # vanilla: train mean ~ q x = its test output (sd of the mean: |x| sqrt(p q / K))
    sd_v = x.abs() * math.sqrt(p * q / K)
    van_test = van.eval()(x)
    torch.testing.assert_close(van_test, q * x)
    van.train()
    assert ((_mc_mean(van, x) - van_test).abs() <= 5 * sd_v + 1e-7).all()
    # the two are the same network up to a rescaling of the next layer's weights by q
    torch.testing.assert_close(van_test / q, inv.eval()(x))


def test_masks_are_zero_or_scaled():
    g = torch.Generator().manual_seed(1)
    x = torch.ones(1000)
    y = InvertedDropout(0.25, generator=g)(x)
    scaled = torch.tensor(1.0) / 0.75  # in float32, as the layer computes it
    assert set(torch.unique(y).tolist()) <= {0.0, scaled.item()}
    # kept fraction within 5 sd of q for n = 1000
    frac = (y != 0).float().mean().item()
    assert abs(frac - 0.75) <= 5 * math.sqrt(0.75 * 0.25 / 1000)
    assert torch.equal(InvertedDropout(0.0)(x), x)


def test_same_generator_seed_same_mask_as_manual():
    x = torch.randn(4, 5)
    y = InvertedDropout(0.5, generator=torch.Generator().manual_seed(3))(x)
    mask = torch.rand(4, 5, generator=torch.Generator().manual_seed(3)) < 0.5
    torch.testing.assert_close(y, x * mask / 0.5)


def test_dropconnect_expectation_and_eval():
    torch.manual_seed(0)
    layer = DropConnectLinear(3, 2, rate=0.4, generator=torch.Generator().manual_seed(0))
    x = torch.tensor([[1.0, -1.0, 2.0]])
    outs = torch.stack([layer(x) for _ in range(K // 4)]).mean(dim=0)
    plain = nn.functional.linear(x, layer.weight, layer.bias).detach()
    # sd of one output: sqrt(sum_i (w_i x_i)^2 p/q); of the mean: that / sqrt(n)
    var = ((layer.weight.detach() * x) ** 2).sum(dim=1) * (0.4 / 0.6)
    sd = (var / (K // 4)).sqrt()
    assert ((outs - plain).abs() <= 5 * sd).all()
    layer.eval()
    torch.testing.assert_close(layer(x), plain)
    src = nn.Linear(3, 2)
    copy = DropConnectLinear.from_linear(src, 0.1).eval()
    torch.testing.assert_close(copy(x), src(x))


def test_gaussian_noise_moments_and_eval():
    g = torch.Generator().manual_seed(0)
    x = torch.full((K,), 2.0)
    y = GaussianNoise(0.5, generator=g)(x)
    assert abs(y.mean().item() - 2.0) <= 5 * 0.5 / math.sqrt(K)
    # sd of the sample variance ~ sigma^2 sqrt(2 / K)
    assert abs(y.var().item() - 0.25) <= 5 * 0.25 * math.sqrt(2 / K)
    assert torch.equal(GaussianNoise(0.5).eval()(x), x)
    gd = GaussianDropout(0.5, generator=g)
    z = gd(x)  # var of x(1 + sqrt(p/q) eps) is x^2 p/q = 4
    assert abs(z.mean().item() - 2.0) <= 5 * 2.0 / math.sqrt(K)
    assert abs(z.var().item() - 4.0) <= 5 * 4.0 * math.sqrt(2 / K)


def test_stochastic_depth():
    branch = nn.Linear(4, 4)
    x = torch.randn(K // 4, 4)
    sd = StochasticDepth(branch, 0.5, generator=torch.Generator().manual_seed(0))
    y = sd(x)
    fx = branch(x).detach()
    delta = (y - x).detach()
    # each row: either 0 or 2 f(x)
    zero = delta.abs().sum(dim=1) == 0
    torch.testing.assert_close(delta[~zero], 2 * fx[~zero])
    assert abs(zero.float().mean().item() - 0.5) <= 5 * math.sqrt(0.25 / len(x))
    sd.eval()
    torch.testing.assert_close(sd(x), x + fx)


def test_stochastic_depth_batch_mode_drops_whole_batch():
    branch = nn.Linear(4, 4)
    x = torch.randn(6, 4)
    layer = StochasticDepth(branch, 0.5, mode="batch", generator=torch.Generator().manual_seed(0))
    outcomes = set()
    for _ in range(40):
        delta = (layer(x) - x).detach()
        if delta.abs().sum() == 0:
            outcomes.add("dropped")
        else:
            torch.testing.assert_close(delta, 2 * branch(x).detach())
            outcomes.add("kept")
    assert outcomes == {"dropped", "kept"}  # P(all 40 the same) = 2^-39


def test_add_dropout_inserts_after_activations():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    assert add_dropout(model, 0.5) == 1
    assert [type(m) for m in model] == [nn.Flatten, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert model[3].p == 0.5
    assert add_dropout(model, 0.5) == 0  # already there


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_invalid_rate(rate):
    for cls in (InvertedDropout, VanillaDropout, GaussianDropout):
        with pytest.raises(OptimlabError, match=r"dropout rate.*\[0, 1\)"):
            cls(rate)
