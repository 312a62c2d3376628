"""Lecture 001's invariances: ReLU networks keep their function under node rescaling,
an SGD step does not keep it, and normalizing by the batch makes dz/dw3 blind to the
scale of w1 and w2 (the slide's toy and torch's BatchNorm)."""

from __future__ import annotations

import pytest
import torch
from torch import nn


@pytest.mark.parametrize("activation", [nn.ReLU, nn.LeakyReLU])
def test_relu_network_is_unchanged_by_rescaling_a_hidden_unit(activation):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), activation(), nn.Linear(5, 4), activation(),
                          nn.Linear(4, 3)).double()  # fmt: skip
    x = torch.randn(20, 6, dtype=torch.float64)
    before = model(x).detach()
    weights = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        for first, second, a in ((model[0], model[2], 7.5), (model[2], model[4], 0.03)):
            first.weight[1] *= a  # the unit's incoming weights and bias by a
            first.bias[1] *= a
            second.weight[:, 1] /= a  # its outgoing weights by 1/a
    moved = [float((p.detach() - w).abs().max()) for p, w in zip(model.parameters(), weights)]
    assert [m > 1e-3 for m in moved] == [True] * 5 + [False]  # all but the output bias
    torch.testing.assert_close(model(x).detach(), before, rtol=1e-12, atol=1e-12)
    # tanh is not positively homogeneous: the same rescaling changes its function
    tanh = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    ref = tanh(x).detach()
    with torch.no_grad():
        tanh[0].weight[1] *= 7.5
        tanh[0].bias[1] *= 7.5
        tanh[2].weight[:, 1] /= 7.5
    assert float((tanh(x).detach() - ref).abs().max()) > 1e-3


def toy(w, x):
    """z = w4 w3 w2 w1 x."""
    return w[3] * w[2] * w[1] * w[0] * x


def test_toy_sgd_step_depends_on_the_gauge_but_the_function_does_not():
    x, y, lr = 1.5, 2.0, 0.01
    w = torch.tensor([0.9, 1.1, 0.8, 1.2], dtype=torch.float64)
    a = 10.0
    gauge = w * torch.tensor([a, 1 / a, 1.0, 1.0], dtype=torch.float64)  # w1 * a, w2 / a
    assert float(toy(w, x)) == pytest.approx(float(toy(gauge, x)), rel=1e-15)

    def sgd_step(start):
        v = start.clone().requires_grad_()
        (0.5 * (toy(v, x) - y) ** 2).backward()
        return (v - lr * v.grad).detach()

    after, after_gauge = sgd_step(w), sgd_step(gauge)
    # dz/dw1 = w4 w3 w2 x shrinks by a, dz/dw2 grows by a: the steps differ
    assert abs(float(toy(after, x)) - float(toy(after_gauge, x))) > 0.01


def normalized_toy(w, x):
    """Lecture 001's toy with the batch normalization of the slide:
    z_i = w4 w3 (w2 w1 x_i) / (1/N sum_j w2 w1 x_j)."""
    h = w[1] * w[0] * x
    return w[3] * w[2] * h / h.mean()


def dz_dw3(fn, w, x):
    """[dz/dw3]^i for every example i of the batch x."""
    v = w.clone().requires_grad_()
    rows = []
    z = fn(v, x)
    for i in range(len(x)):
        (g,) = torch.autograd.grad(z[i], v, retain_graph=True)
        rows.append(g[2])
    return torch.stack(rows)


def test_normalized_toy_dz_dw3_is_unchanged_when_w1_and_w2_grow_100x():
    x = torch.tensor([0.5, 1.0, 2.0, -0.7], dtype=torch.float64)
    w = torch.tensor([0.9, 1.1, 0.8, 1.2], dtype=torch.float64)
    big = w * torch.tensor([100.0, 100.0, 1.0, 1.0], dtype=torch.float64)
    got = dz_dw3(normalized_toy, w, x)
    # the slide's formula: w4 (w2 w1 x_i) / (1/N sum_j w2 w1 x_j)
    torch.testing.assert_close(got, w[3] * x / x.mean(), rtol=1e-14, atol=0)
    torch.testing.assert_close(dz_dw3(normalized_toy, big, x), got, rtol=1e-14, atol=0)
    # without the normalization the same change scales dz/dw3 = w4 w2 w1 x by 10^4
    plain = dz_dw3(toy, w, x)
    torch.testing.assert_close(dz_dw3(toy, big, x), 1e4 * plain, rtol=1e-14, atol=0)


def test_batchnorm_toy_dz_dw3_is_unchanged_when_w1_and_w2_grow_100x():
    """The same fact with torch's BatchNorm1d (mean and standard deviation of the batch)
    in place of the slide's division by the mean (eps 1e-30: far below the variances)."""
    bn = nn.BatchNorm1d(1, affine=False, eps=1e-30).double()

    def bn_toy(w, x):
        return w[3] * w[2] * bn((w[1] * w[0] * x)[:, None])[:, 0]

    x = torch.tensor([0.5, 1.0, 2.0, -0.7], dtype=torch.float64)
    w = torch.tensor([0.9, 1.1, 0.8, 1.2], dtype=torch.float64)
    big = w * torch.tensor([100.0, 100.0, 1.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(dz_dw3(bn_toy, big, x), dz_dw3(bn_toy, w, x), rtol=1e-12, atol=0)
