"""Deep MLP, small VGG and CIFAR ResNet/plain builders: shapes and parameter counts,
the counts computed here from per-layer formulas."""

import pytest
import torch
from torch import nn

from optimlab.errors import OptimlabError
from optimlab.nn import build_model, count_parameters
from optimlab.nn.models import MODELS, Residual, deep_mlp, mlp
from optimlab.nn.resnet import cifar_resnet


def dense(i, o):
    return i * o + o


def conv(i, o, k, bias=False):
    return i * o * k * k + (o if bias else 0)


def bn(c):
    return 2 * c


def resnet_params(depth, shortcut="A"):
    n = (depth - 2) // 6
    total = conv(3, 16, 3) + bn(16)
    cin = 16
    for cout in (16, 32, 64):
        for _ in range(n):
            total += conv(cin, cout, 3) + bn(cout) + conv(cout, cout, 3) + bn(cout)
            if shortcut == "B" and cin != cout:
                total += conv(cin, cout, 1) + bn(cout)
            cin = cout
    return total + dense(64, 10)


@pytest.mark.parametrize("depth", [20, 32, 56])
def test_resnet_parameter_counts(depth):
    torch.manual_seed(0)
    model = build_model(f"resnet{depth}")
    assert count_parameters(model) == resnet_params(depth)
    assert count_parameters(build_model(f"plain{depth}")) == resnet_params(depth)
    # the paper's (He et al. 2016, Table 6) rounded counts
    paper = {20: 0.27e6, 32: 0.46e6, 56: 0.85e6}[depth]
    assert abs(count_parameters(model) - paper) < 0.005e6


def test_resnet20_forward_shapes_and_options():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    for name in ("resnet20", "plain20"):
        assert build_model(name)(x).shape == (2, 10)
    b = build_model("resnet20", shortcut="B", num_classes=7)
    assert count_parameters(b) == resnet_params(20, "B") - dense(64, 10) + dense(64, 7)
    assert b(x).shape == (2, 7)
    convs = [m for m in build_model("resnet20").modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 19  # 6n + 1 convolutions plus the final linear layer: 20 layers
    with pytest.raises(OptimlabError, match="6n \\+ 2"):
        cifar_resnet(21)
    with pytest.raises(OptimlabError, match="unknown shortcut 'C'"):
        cifar_resnet(20, shortcut="C")


def test_plain_has_no_shortcut_path():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 32, 32)
    feats = {}
    for name in ("plain20", "resnet20"):
        model = build_model(name, norm="none")
        # silence every block's residual branch: a ResNet then passes the stem's
        # features through its shortcuts, a plain net passes nothing
        with torch.no_grad():
            for block in model[2:-3]:
                for m in block.body.modules():
                    if isinstance(m, nn.Conv2d):
                        m.weight.zero_()
                        m.bias.zero_()
        feats[name] = model[:-1](x)
    assert torch.count_nonzero(feats["plain20"]) == 0
    assert torch.count_nonzero(feats["resnet20"]) > 0


def test_vgg_small_count_and_shape():
    torch.manual_seed(0)
    model = build_model("vgg_small")
    expected = 0
    cin = 3
    for width in (32, 64, 128):
        for _ in range(2):
            expected += conv(cin, width, 3) + bn(width)
            cin = width
    expected += dense(128 * 4 * 4, 256) + dense(256, 10)
    assert count_parameters(model) == expected
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    m28 = build_model("vgg", in_channels=1, input_size=28, norm="none")
    assert m28(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_deep_mlp_structure():
    torch.manual_seed(0)
    model = deep_mlp(64, 10, depth=20, width=32, activation="tanh", norm="batch")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 20
    expected = dense(64, 32) + 18 * dense(32, 32) + dense(32, 10) + 19 * bn(32)
    assert count_parameters(model) == expected
    assert model(torch.randn(5, 8, 8)).shape == (5, 10)
    res = deep_mlp(64, 10, depth=20, width=32, residual=True)
    assert sum(isinstance(m, Residual) for m in res.modules()) == 18
    with pytest.raises(OptimlabError, match="depth"):
        deep_mlp(depth=1)


def test_mlp_norm_and_init_options():
    torch.manual_seed(0)
    model = mlp(10, [20, 20], 3, norm="layer", init="zeros")
    assert sum(isinstance(m, nn.LayerNorm) for m in model) == 2
    assert all(torch.count_nonzero(m.weight) == 0 for m in model if isinstance(m, nn.Linear))
    same = mlp(10, [20], 3, batch_norm=True)
    assert isinstance(same[2], nn.BatchNorm1d)
    with pytest.raises(OptimlabError, match="conflicts"):
        mlp(10, [20], 3, batch_norm=True, norm="layer")


def test_new_models_are_registered():
    for name in ("deep_mlp", "vgg_small", "resnet20", "resnet32", "resnet56", "plain56"):
        assert name in MODELS
