"""Initializers: empirical variance against the paper formulas, orthogonality, LSUV."""

import math

import pytest
import torch
from torch import nn

from optimlab.errors import OptimlabError
from optimlab.nn import init
from optimlab.nn.models import deep_mlp

# Large layers, so the sample variance is within a fraction of a percent of the truth.
LINEAR = (1000, 600)  # (in, out)
CONV = (64, 96, 3)  # (in, out, kernel)


def _layers():
    torch.manual_seed(0)
    return [nn.Linear(*LINEAR), nn.Conv2d(CONV[0], CONV[1], CONV[2])]


def _fans_by_hand(layer):
    if isinstance(layer, nn.Linear):
        return layer.in_features, layer.out_features
    k = layer.kernel_size[0] * layer.kernel_size[1]
    return layer.in_channels * k, layer.out_channels * k


EXPECTED_VARIANCE = {
    "normal_0.01": lambda fi, fo: 0.01**2,
    "lecun_normal": lambda fi, fo: 1 / fi,
    "lecun_uniform": lambda fi, fo: 1 / fi,
    "glorot_normal": lambda fi, fo: 2 / (fi + fo),
    "glorot_uniform": lambda fi, fo: 2 / (fi + fo),
    "he_normal": lambda fi, fo: 2 / fi,
    "he_uniform": lambda fi, fo: 2 / fi,
    # a (rows, cols) matrix with orthonormal rows (rows <= cols) has squared entries
    # summing to rows, so their mean is 1/cols = 1/fan_in (both layers here are wide)
    "orthogonal": lambda fi, fo: 1 / fi,
}


@pytest.mark.parametrize("name", list(EXPECTED_VARIANCE))
def test_variance_matches_formula(name):
    for layer in _layers():
        init.apply(layer, name, bias=0.0)
        fi, fo = _fans_by_hand(layer)
        want = EXPECTED_VARIANCE[name](fi, fo)
        w = layer.weight.detach().double()
        assert abs(float(w.mean())) < 0.05 * math.sqrt(want)
        assert float(w.var()) == pytest.approx(want, rel=0.05)
        assert torch.count_nonzero(layer.bias) == 0


@pytest.mark.parametrize(
    "name,factor", [("lecun_uniform", 3), ("glorot_uniform", 6), ("he_uniform", 6)]
)
def test_uniform_limits(name, factor):
    layer = _layers()[0]
    init.apply(layer, name)
    fi, fo = _fans_by_hand(layer)
    denom = fi + fo if name.startswith("glorot") else fi
    limit = math.sqrt(factor / denom)
    w = layer.weight.detach().abs()
    assert float(w.max()) <= limit
    assert float(w.max()) > 0.99 * limit


def test_fans_match_torch():
    shapes = [(7, 3), (8, 4, 5), (16, 3, 3, 3), (5, 6, 2, 3, 4)]
    for shape in shapes:
        w = torch.empty(shape)
        assert init.fans(w) == nn.init._calculate_fan_in_and_fan_out(w)
    with pytest.raises(OptimlabError, match="at least 2 dimensions"):
        init.fans(torch.empty(3))


def test_orthogonal_rows_and_columns():
    torch.manual_seed(1)
    wide = nn.Linear(50, 20)  # weight (20, 50): W W^T = I
    tall = nn.Linear(20, 50)  # weight (50, 20): W^T W = I
    conv = nn.Conv2d(8, 16, 3)  # (16, 72) as a matrix: rows orthonormal
    for layer in (wide, tall, conv):
        init.apply(layer, "orthogonal")
    eye = torch.eye
    torch.testing.assert_close(wide.weight @ wide.weight.T, eye(20), atol=1e-5, rtol=0)
    torch.testing.assert_close(tall.weight.T @ tall.weight, eye(20), atol=1e-5, rtol=0)
    w = conv.weight.reshape(16, -1)
    torch.testing.assert_close(w @ w.T, eye(16), atol=1e-5, rtol=0)
    init.apply(wide, "orthogonal", gain=2.0)
    torch.testing.assert_close(wide.weight @ wide.weight.T, 4 * eye(20), atol=1e-4, rtol=0)


def test_zeros_and_constant():
    layer = nn.Linear(4, 3)
    init.apply(layer, "constant", value=0.5, bias=None)
    assert torch.all(layer.weight == 0.5)
    before = layer.bias.clone()
    assert torch.equal(layer.bias, before)  # bias=None leaves biases alone
    init.apply(layer, "zeros", bias=0.1)
    assert torch.all(layer.weight == 0) and torch.allclose(layer.bias, torch.full((3,), 0.1))


def test_lsuv_brings_each_layer_to_unit_variance():
    torch.manual_seed(2)
    model = deep_mlp(64, 10, depth=8, width=48, activation="tanh")
    x = torch.randn(256, 64) * 3 + 1
    assert init.apply(model, "lsuv", data=x, tol=0.1) is model
    layers = init.weighted_layers(model)
    outs = {}
    hooks = [
        layer.register_forward_hook(lambda m, i, o, k=k: outs.__setitem__(k, o.detach()))
        for k, layer in enumerate(layers)
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    assert len(outs) == len(layers)
    for k in range(len(layers)):
        assert abs(float(outs[k].var()) - 1.0) < 0.1, k


def test_lsuv_reports_variances_and_needs_data():
    torch.manual_seed(3)
    model = deep_mlp(10, 2, depth=4, width=16, activation="relu")
    x = torch.randn(128, 10)
    reported = init.lsuv(model, x, tol=0.05)
    assert len(reported) == 4
    assert all(abs(v - 1) < 0.05 for v in reported)
    with pytest.raises(OptimlabError, match="needs data"):
        init.apply(model, "lsuv")


def test_errors_name_the_valid_choices():
    layer = nn.Linear(3, 3)
    with pytest.raises(OptimlabError, match="unknown initializer 'xavierr'.*he_normal"):
        init.apply(layer, "xavierr")
    with pytest.raises(OptimlabError, match="valid arguments: value"):
        init.apply(layer, "constant", gain=2)
    with pytest.raises(OptimlabError, match="no Linear or Conv"):
        init.apply(nn.ReLU(), "he_normal")
    assert {"he_normal", "glorot_uniform", "lsuv", "normal_0.01"} <= set(init.available())
    assert init.INITIALIZERS.get("xavier_normal").name == "glorot_normal"
