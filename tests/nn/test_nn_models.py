"""Model builders: output shapes, parameter counts from the layer formulas, pooling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from optimlab.errors import OptimlabError
from optimlab.nn import MODELS, build_model, count_parameters
from optimlab.nn import models as m


def conv(k: int, c_in: int, c_out: int) -> int:
    return k * k * c_in * c_out + c_out


def dense(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def same(size: int, stride: int) -> int:
    return math.ceil(size / stride)  # TensorFlow "same" output size


def valid(size: int, kernel: int) -> int:
    return size - kernel + 1


def test_mlp_shapes_counts_and_layers():
    model = m.mlp(20, [16, 8], 3, activation="tanh", dropout=0.5, batch_norm=True)
    assert model(torch.randn(4, 4, 5)).shape == (4, 3)  # flattens its input
    bn = 2 * 16 + 2 * 8  # BatchNorm1d: one scale and one shift per unit
    assert count_parameters(model) == dense(20, 16) + dense(16, 8) + dense(8, 3) + bn
    kinds = [type(layer).__name__ for layer in model]
    hidden_block = ["Linear", "BatchNorm1d", "Tanh", "Dropout"]
    assert kinds == ["Flatten", *hidden_block, *hidden_block, "Linear"]
    with pytest.raises(OptimlabError, match="unknown activation 'swishy'.*relu"):
        m.mlp(2, [2], 2, activation="swishy")
    with pytest.raises(OptimlabError, match="invalid dropout"):
        m.mlp(2, [2], 2, dropout=1.0)


@pytest.mark.parametrize("size", [28, 32])
def test_lenet5(size):
    model = m.lenet5(input_size=size)
    assert model(torch.randn(2, 1, size, size)).shape == (2, 10)
    expected = conv(5, 1, 6) + conv(5, 6, 16) + dense(16 * 5 * 5, 120) + dense(120, 84)
    assert count_parameters(model) == expected + dense(84, 10)


def test_fmnist_2c2d_matches_deepobs():
    model = m.fmnist_2c2d()
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    side = same(same(28, 2), 2)  # "same" 5x5 convolutions keep the size; pools halve it
    expected = conv(5, 1, 32) + conv(5, 32, 64) + dense(side * side * 64, 1024)
    expected += dense(1024, 10)
    assert count_parameters(model) == expected == 3_274_634
    for layer in model:
        if isinstance(layer, nn.Conv2d | nn.Linear):
            # DeepOBS: truncated normal, std 0.05, cut at two standard deviations.
            assert layer.weight.abs().max() <= 0.1
            assert torch.all(layer.bias == 0.05)


def test_cifar10_3c3d_matches_deepobs():
    model = m.cifar10_3c3d()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    side = same(valid(same(valid(32, 5), 2), 3), 2)  # conv5 valid, pool, conv3 valid, pool
    side = same(side, 2)  # conv3 same keeps it, then the last pool
    assert side == 3
    expected = conv(5, 3, 64) + conv(3, 64, 96) + conv(3, 96, 128)
    expected += dense(side * side * 128, 512) + dense(512, 256) + dense(256, 10)
    assert count_parameters(model) == expected


def test_fmnist_mlp_counts():
    model = m.fmnist_mlp()
    expected = dense(784, 1000) + dense(1000, 500) + dense(500, 100) + dense(100, 10)
    assert count_parameters(model) == expected
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def _tf_same_pool_reference(x: np.ndarray, k: int, s: int) -> np.ndarray:
    """Max over each window clipped to the image, windows placed as TensorFlow does."""
    h, w = x.shape
    oh, ow = math.ceil(h / s), math.ceil(w / s)
    top = max((oh - 1) * s + k - h, 0) // 2
    left = max((ow - 1) * s + k - w, 0) // 2
    out = np.empty((oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * s - top, j * s - left
            out[i, j] = x[max(r0, 0) : r0 + k, max(c0, 0) : c0 + k].max()
    return out


@pytest.mark.parametrize(("size", "k", "s"), [(28, 3, 2), (5, 3, 2), (14, 2, 2), (7, 3, 2)])
def test_tf_same_max_pool_against_reference(size, k, s):
    x = -torch.rand(1, 1, size, size, dtype=torch.float64)  # all negative: pads must lose
    got = m.TFSameMaxPool2d(k, s)(x)[0, 0].numpy()
    np.testing.assert_array_equal(got, _tf_same_pool_reference(x[0, 0].numpy(), k, s))


def test_deep_linear_gauge_freedom_and_lecture_gradient():
    x = torch.tensor([[0.7], [-1.3]])
    plain = m.deep_linear(init=(1, 1, 1, 1))
    rescaled = m.deep_linear(init=(1, 0.01, 100, 1))
    torch.testing.assert_close(plain(x), rescaled(x))  # same function
    model = m.deep_linear(init=(0.5, 2.0, -1.5, 3.0))
    z = model(torch.tensor([[2.0]])).sum()
    z.backward()
    w1, w2, w3, w4 = (w.item() for w in model.weights)
    # dz/dw2 = w4 w3 w1 x and dz/dw3 = w4 w2 w1 x (lecture 001).
    assert model.weights[1].grad.item() == pytest.approx(w4 * w3 * w1 * 2.0)
    assert model.weights[2].grad.item() == pytest.approx(w4 * w2 * w1 * 2.0)
    assert model.product().item() == pytest.approx(w1 * w2 * w3 * w4)
    with pytest.raises(OptimlabError, match="invalid init"):
        m.deep_linear(init=(1, 2))


def test_polynomial_features():
    x = torch.tensor([[2.0], [-1.0]])
    feats = m.PolynomialFeatures(4)(x)
    torch.testing.assert_close(feats, torch.tensor([[2.0, 4, 8, 16], [-1, 1, -1, 1]]))
    assert count_parameters(m.polynomial(14)) == dense(14, 1)


def test_registry_builds_by_name_and_alias():
    for record in MODELS:
        assert record.name in MODELS
    assert isinstance(build_model("2c2d"), nn.Sequential)
    model = build_model("mlp", in_features=4, hidden=[3], out_features=2)
    assert model(torch.randn(5, 4)).shape == (5, 2)
    with pytest.raises(OptimlabError, match="unknown model 'resnet9000'"):
        build_model("resnet9000")
