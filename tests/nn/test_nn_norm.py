"""Normalization: the factory, batch renorm against batch norm and its formula, folding."""

import pytest
import torch
from torch import nn

from optimlab.errors import OptimlabError
from optimlab.nn import norm
from optimlab.nn.models import deep_mlp
from optimlab.nn.vgg import vgg_small


@pytest.mark.parametrize("shape", [(32, 6), (16, 6, 5, 5)])
def test_renorm_at_rmax1_dmax0_is_batchnorm(shape):
    torch.manual_seed(0)
    c = shape[1]
    bn = (nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d)(c).double()
    brn = norm.BatchRenorm(c, rmax=1.0, dmax=0.0).double()
    with torch.no_grad():
        for layer in (bn, brn):
            layer.weight.copy_(torch.linspace(0.5, 2, c))
            layer.bias.copy_(torch.linspace(-1, 1, c))
    for step in range(5):
        x = (torch.randn(shape, dtype=torch.float64) * (step + 1) + step).requires_grad_()
        x2 = x.detach().clone().requires_grad_()
        y, y2 = bn(x), brn(x2)
        torch.testing.assert_close(y2, y)
        g = torch.randn_like(y)
        y.backward(g)
        y2.backward(g)
        torch.testing.assert_close(x2.grad, x.grad)
    torch.testing.assert_close(brn.weight.grad, bn.weight.grad)
    torch.testing.assert_close(brn.running_mean, bn.running_mean)
    assert int(brn.num_batches_tracked) == 5


def test_renorm_matches_the_paper_formula():
    torch.manual_seed(1)
    c, eps, momentum = 4, 1e-5, 0.2
    brn = norm.BatchRenorm(c, eps=eps, momentum=momentum, rmax=1.5, dmax=0.5).double()
    mu = torch.tensor([0.5, -1.0, 0.0, 2.0], dtype=torch.float64)
    sigma = torch.tensor([1.0, 0.2, 3.0, 1.0], dtype=torch.float64)
    brn.running_mean.copy_(mu)
    brn.running_std.copy_(sigma)
    x = torch.randn(64, c, dtype=torch.float64) * 1.3 + 0.4
    y = brn(x)
    mu_b = x.mean(0)
    sigma_b = torch.sqrt(x.var(0, unbiased=False) + eps)
    r = torch.clamp(sigma_b / sigma, 1 / 1.5, 1.5)
    d = torch.clamp((mu_b - mu) / sigma, -0.5, 0.5)
    torch.testing.assert_close(y, (x - mu_b) / sigma_b * r + d)
    torch.testing.assert_close(brn.running_mean, mu + momentum * (mu_b - mu))
    torch.testing.assert_close(brn.running_std, sigma + momentum * (sigma_b - sigma))
    assert (r != 1).any() and (d.abs() == 0.5).any()  # the clipping was exercised
    brn.eval()
    torch.testing.assert_close(brn(x), (x - brn.running_mean) / brn.running_std)


def test_relaxation_schedule_is_a_closed_form():
    brn = norm.BatchRenorm(3)
    assert brn.limits(0) == (1.0, 0.0)
    assert brn.limits(5_000) == (1.0, 0.0)
    assert brn.limits(40_000) == (3.0, 5.0)
    assert brn.limits(25_000) == pytest.approx((1 + 2 * 20_000 / 35_000, 5.0))
    assert brn.limits(10**6) == (3.0, 5.0)
    ramp = norm.Relax(1.0, 3.0, 10, 20)
    assert [ramp(t) for t in (0, 10, 15, 20, 30)] == [1.0, 1.0, 2.0, 3.0, 3.0]
    brn = norm.BatchRenorm(3, rmax=lambda t: 1.0 + t, dmax=0.0)
    brn(torch.randn(8, 3))
    assert brn.limits() == (2.0, 0.0)  # the step counter drives the schedule


def test_renorm_validates():
    with pytest.raises(OptimlabError, match="rmax"):
        norm.BatchRenorm(3, rmax=0.5)
    with pytest.raises(OptimlabError, match="momentum"):
        norm.BatchRenorm(3, momentum=1.5)
    with pytest.raises(OptimlabError, match="num_features"):
        norm.BatchRenorm(3)(torch.randn(4, 5))


def _trained_stats(model, x):
    model.train()
    with torch.no_grad():
        for k in range(3):
            model(x * (1 + 0.3 * k) + 0.1 * k)
    # non-trivial affine parameters, so folding them is tested
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d | norm.BatchRenorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model.eval()


@pytest.mark.parametrize("which", ["batch", "batch_renorm"])
def test_fold_batchnorm_mlp(which):
    torch.manual_seed(2)
    model = deep_mlp(12, 3, depth=5, width=16, norm=which, residual=True)
    x = torch.randn(64, 12)
    model = _trained_stats(model, x)
    folded = norm.fold_batchnorm(model)
    kinds = (nn.BatchNorm1d, norm.BatchRenorm)
    assert not any(isinstance(m, kinds) for m in folded.modules())
    assert any(isinstance(m, kinds) for m in model.modules())  # the original is untouched
    torch.testing.assert_close(folded(x), model(x), atol=1e-5, rtol=1e-5)


def test_fold_batchnorm_conv_agrees_with_torch_fusion():
    torch.manual_seed(3)
    model = vgg_small(3, 10, 16, widths=(8, 16), hidden=32)
    x = torch.randn(8, 3, 16, 16)
    model = _trained_stats(model, x)
    folded = norm.fold_batchnorm(model)
    torch.testing.assert_close(folded(x), model(x), atol=1e-5, rtol=1e-4)
    # each folded conv against torch's own conv-BN fusion
    fused = nn.utils.fusion.fuse_conv_bn_eval(model[0], model[1])
    torch.testing.assert_close(folded[0].weight, fused.weight)
    torch.testing.assert_close(folded[0].bias, fused.bias)


@pytest.mark.parametrize(
    "name,spatial,cls",
    [
        ("batch", False, nn.BatchNorm1d),
        ("bn", True, nn.BatchNorm2d),
        ("layer", False, nn.LayerNorm),
        ("layer", True, nn.GroupNorm),
        ("group", True, nn.GroupNorm),
        ("instance", True, nn.InstanceNorm2d),
        ("batch_renorm", True, norm.BatchRenorm),
        ("none", False, nn.Identity),
    ],
)
def test_factory_builds_torch_norms(name, spatial, cls):
    module = norm.make_norm(name, 64, spatial=spatial)
    assert type(module) is cls
    x = torch.randn(4, 64, 5, 5) if spatial else torch.randn(4, 64)
    assert module(x).shape == x.shape


def test_factory_group_and_layer_semantics():
    x = torch.randn(4, 64, 3, 3)
    g = norm.make_norm("group", 64, spatial=True)
    assert g.num_groups == 32
    # layer norm on maps: every sample normalized over (C, H, W)
    y = norm.make_norm("layer", 64, spatial=True)(x)
    torch.testing.assert_close(y.mean((1, 2, 3)), torch.zeros(4), atol=1e-5, rtol=0)
    with pytest.raises(OptimlabError, match="groups"):
        norm.make_norm("group", 64, groups=5)
    with pytest.raises(OptimlabError, match="spatial"):
        norm.make_norm("instance", 64)
    with pytest.raises(OptimlabError, match="unknown normalization 'bacth'.*batch_renorm"):
        norm.make_norm("bacth", 8)


def test_weight_norm_reparametrizes():
    layer = nn.Linear(5, 4)
    (wn,) = norm.with_norm(layer, "weight", 4)
    v = wn.parametrizations.weight.original1
    g = wn.parametrizations.weight.original0
    torch.testing.assert_close(wn.weight, g * v / v.norm(dim=1, keepdim=True))
    with pytest.raises(OptimlabError, match="with_norm"):
        norm.make_norm("weight", 4)
