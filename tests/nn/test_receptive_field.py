"""Stacked 3x3 convolutions (Simonyan & Zisserman 2015, section 2.3): three of them see
a 7x7 field, like one 7x7 convolution, with 27 C^2 weights instead of 49 C^2. The
receptive-field function is checked against the gradient support of an output pixel."""

import pytest
import torch
from torch import nn

from optimlab.errors import OptimlabError
from optimlab.nn import count_parameters
from optimlab.nn.models import meta_model
from optimlab.nn.receptive import receptive_field


def gradient_support(model: nn.Module, channels: int, side: int) -> tuple[int, int]:
    """Height and width of the input region on which the centre output pixel depends:
    where the gradient of that pixel w.r.t. the input is non-zero."""
    torch.manual_seed(0)
    with torch.no_grad():  # positive weights: no accidental cancellation in the sums
        for p in model.parameters():
            p.uniform_(0.1, 1.0)
    x = torch.rand(1, channels, side, side, dtype=torch.float64, requires_grad=True)
    out = model.double()(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = x.grad[0].abs().sum(0).sum(1).nonzero()
    cols = x.grad[0].abs().sum(0).sum(0).nonzero()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def stack(kernels, channels=4, strides=None):
    strides = strides or [1] * len(kernels)
    layers = []
    for k, s in zip(kernels, strides, strict=True):
        layers += [nn.Conv2d(channels, channels, k, s, padding=k // 2, bias=False), nn.ReLU()]
    return nn.Sequential(*layers)


def test_three_3x3_see_what_one_7x7_sees():
    three, one = stack([3, 3, 3]), stack([7])
    assert receptive_field(three).size == receptive_field(one).size == (7, 7)
    assert receptive_field([(3, 1)] * 3).size == (7, 7)
    assert gradient_support(three, 4, 21) == gradient_support(one, 4, 21) == (7, 7)
    assert receptive_field(stack([3, 3])).size == gradient_support(stack([3, 3]), 4, 21)


@pytest.mark.parametrize("channels", [4, 16, 64])
def test_weights_27c2_against_49c2(channels):
    three, one = stack([3, 3, 3], channels), stack([7], channels)
    assert count_parameters(three) == 27 * channels**2
    assert count_parameters(one) == 49 * channels**2


def test_strides_dilation_and_pooling_against_gradient_support():
    def model(pool):
        return nn.Sequential(
            nn.Conv2d(2, 2, 3, padding=1),
            pool,
            nn.Conv2d(2, 2, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2, 2, 3, padding=2, dilation=2),
            nn.AvgPool2d(3, 1, padding=1),
        )

    # A max-pool passes gradient to one input of each window only, so the gradient
    # support is measured with an average pool of the same geometry.
    field = receptive_field(model(nn.MaxPool2d(2, 2)))
    assert receptive_field(model(nn.AvgPool2d(2, 2))) == field
    # by hand: 1 +2 (3x3) +1*1 (pool 2/2) +2*2 (3x3/2) +2*2*4 (dilated 3x3) +2*4 (avg 3/1)
    assert field.size == (1 + 2 + 1 + 4 + 16 + 8,) * 2
    assert field.jump == (4, 4)
    assert gradient_support(model(nn.AvgPool2d(2, 2)), 2, 96) == field.size


def test_known_fields_of_the_case_studies():
    assert receptive_field(meta_model("vgg16").features).size == (212, 212)
    assert receptive_field(meta_model("alexnet").features).size == (195, 195)


def test_layers_it_cannot_follow_are_named():
    with pytest.raises(OptimlabError, match="cannot follow a Linear"):
        receptive_field([nn.Linear(3, 3)])
    with pytest.raises(OptimlabError, match="invalid layer"):
        receptive_field([(3, 0)])
