"""Penalties: exact values against hand computation, gradients against SGD weight decay."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optimlab import problems
from optimlab.errors import OptimlabError
from optimlab.regularize import (
    ActivityPenalty,
    elastic_net,
    l1,
    l2,
    penalized_parameters,
    with_penalty,
)


def _tiny() -> nn.Sequential:
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 0.5]]))
        model[0].bias.copy_(torch.tensor([10.0, -10.0]))
        model[1].weight.copy_(torch.tensor([7.0, 7.0]))
        model[3].weight.copy_(torch.tensor([[-1.0, 4.0]]))
        model[3].bias.fill_(100.0)
    return model


def test_weights_only_by_default():
    model = _tiny()
    chosen = {id(p) for p in penalized_parameters(model)}
    assert chosen == {id(model[0].weight), id(model[3].weight)}
    with_bias = {id(p) for p in penalized_parameters(model, include_biases=True)}
    assert with_bias == chosen | {id(model[0].bias), id(model[3].bias)}  # BN still excluded


def test_values_by_hand():
    model = _tiny()
    # |w|: 1+2+3+0.5 + 1+4 = 11.5 ; w^2: 1+4+9+0.25 + 1+16 = 31.25
    assert l1(model, 0.1)().item() == pytest.approx(1.15)
    assert l2(model, 0.01)().item() == pytest.approx(0.3125)
    assert elastic_net(model, 0.1, 0.01)().item() == pytest.approx(1.15 + 0.3125)
    # biases 10, -10, 100: |b| = 120, b^2 = 10200
    assert l1(model, 1.0, include_biases=True)().item() == pytest.approx(131.5)
    assert l2(model, 1.0, include_biases=True)().item() == pytest.approx(10231.25)


def test_l1_gradient_is_sign():
    model = _tiny()
    l1(model, 0.5)().backward()
    assert torch.equal(model[0].weight.grad, 0.5 * torch.sign(model[0].weight.detach()))
    assert model[0].bias.grad is None


def test_l2_step_equals_sgd_weight_decay_two_l():
    lam, lr = 0.03, 0.1
    torch.manual_seed(0)
    x, y = torch.randn(16, 2), torch.randn(16, 1)
    a = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)).double()
    b = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)).double()
    b.load_state_dict(a.state_dict())
    x, y = x.double(), y.double()
    opt_a = torch.optim.SGD(a.parameters(), lr=lr)
    pen = l2(a, lam, include_biases=True)
    opt_b = torch.optim.SGD(b.parameters(), lr=lr, weight_decay=2 * lam)
    for _ in range(20):
        for model, opt, extra in ((a, opt_a, pen), (b, opt_b, None)):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            if extra is not None:
                loss = loss + extra()
            loss.backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-12, atol=1e-12)


def test_activity_penalty_by_hand_and_training_only():
    lin = nn.Linear(2, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(2))
        lin.bias.zero_()
    pen = ActivityPenalty([lin], l1=0.5, l2=0.25)
    x = torch.tensor([[1.0, -2.0], [3.0, 0.0]])
    lin(x)
    # (0.5 * 6 + 0.25 * 14) / 2 examples
    assert pen().item() == pytest.approx((3.0 + 3.5) / 2)
    assert pen().item() == 0.0  # consumed
    lin.eval()
    lin(x)
    assert pen().item() == 0.0
    pen.remove()
    lin.train()
    lin(x)
    assert pen().item() == 0.0


def test_with_penalty_training_mode_only():
    problem = problems.build("digits_mlp", seed=0)
    pen = l2(problem.model, 0.1)
    reg = with_penalty(problem, pen)
    assert reg.model is problem.model and reg.splits is problem.splits
    x, y = problem.splits.train.x[:8], problem.splits.train.y[:8]
    out = problem.model(x)
    base = problem.loss_fn(out, y)
    assert reg.loss_fn(out, y).item() == pytest.approx((base + pen()).item(), rel=1e-6)
    problem.model.eval()
    assert reg.loss_fn(out, y).item() == base.item()
    assert reg.penalty is pen


@pytest.mark.parametrize("bad", [-0.1, float("nan")])
def test_negative_factor_rejected(bad):
    with pytest.raises(OptimlabError, match="l2"):
        l2(_tiny(), bad)
    with pytest.raises(OptimlabError, match="l1"):
        l1(_tiny(), bad)
