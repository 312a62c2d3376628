"""Activations by name against their formulas."""

import math

import pytest
import torch

from optimlab.errors import OptimlabError
from optimlab.nn import activations
from optimlab.nn.models import make_activation

X = torch.linspace(-4, 4, 81, dtype=torch.float64)


def _formula(name):
    return {
        "sigmoid": lambda x: 1 / (1 + torch.exp(-x)),
        "tanh": lambda x: (torch.exp(x) - torch.exp(-x)) / (torch.exp(x) + torch.exp(-x)),
        "relu": lambda x: torch.where(x > 0, x, 0 * x),
        "leaky_relu": lambda x: torch.where(x > 0, x, 0.01 * x),
        "prelu": lambda x: torch.where(x > 0, x, 0.25 * x),
        "elu": lambda x: torch.where(x > 0, x, torch.exp(x) - 1),
        # in eval mode RReLU uses the mean slope (lower + upper) / 2
        "rrelu": lambda x: torch.where(x > 0, x, (1 / 8 + 1 / 3) / 2 * x),
    }[name]


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "leaky_relu", "rrelu", "prelu", "elu"])
def test_activation_matches_formula(name):
    module = activations.make(name).double().eval()
    torch.testing.assert_close(module(X), _formula(name)(X))


def test_rrelu_slopes_are_random_within_bounds_in_training():
    torch.manual_seed(0)
    module = activations.make("rrelu").train()
    x = -torch.ones(10_000)
    slopes = -module(x)
    assert float(slopes.min()) >= 1 / 8 and float(slopes.max()) <= 1 / 3
    assert float(slopes.std()) > 0.01
    assert float(slopes.mean()) == pytest.approx((1 / 8 + 1 / 3) / 2, abs=0.01)


def test_sigmoid_derivative_at_most_a_quarter():
    x = X.clone().requires_grad_()
    activations.make("sigmoid")(x).sum().backward()
    assert math.isclose(float(x.grad.max()), 0.25, rel_tol=1e-12)


def test_kwargs_records_and_errors():
    assert activations.make("leaky_relu", negative_slope=0.2).negative_slope == 0.2
    assert activations.record_of(activations.make("relu")).dies
    assert activations.record_of(activations.make("tanh")).bounds == (-1.0, 1.0)
    assert activations.record_of(torch.nn.Linear(2, 2)) is None
    with pytest.raises(OptimlabError, match="valid arguments: negative_slope"):
        activations.make("leaky_relu", slope=0.2)
    with pytest.raises(OptimlabError, match="unknown activation 'rectifier'.*prelu"):
        make_activation("rectifier")
    assert type(make_activation("linear")) is torch.nn.Identity
