"""Receptive fields of chains of convolutions and poolings.

Walking a chain of layers with kernel k_l, stride s_l and dilation d_l, from r_0 = 1
and j_0 = 1 (j is the distance in input pixels between neighbouring units)::

    r_l = r_{l-1} + (k_l - 1) * d_l * j_{l-1}
    j_l = j_{l-1} * s_l

so three stacked 3x3 convolutions of stride 1 see 1 + 2 + 2 + 2 = 7 pixels: the
receptive field of one 7x7 convolution, with 3 * 9 C^2 = 27 C^2 weights against
49 C^2 for C channels in and out (Simonyan & Zisserman 2015, section 2.3).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from torch import nn

from optimlab.errors import OptimlabError
from optimlab.nn.lrn import LocalResponseNorm

#: layers that act on each position alone and leave the field unchanged
POINTWISE = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Identity,
    nn.Dropout,
    nn.Dropout2d,
    nn.BatchNorm2d,
    nn.GroupNorm,
    nn.InstanceNorm2d,
    nn.LocalResponseNorm,
    LocalResponseNorm,
)

#: a layer as (kernel, stride) or (kernel, stride, dilation), square
LayerSpec = tuple[int, int] | tuple[int, int, int]


@dataclass(frozen=True)
class ReceptiveField:
    """The receptive field (height, width) of one output unit and the jump (height,
    width) between neighbouring output units, both in input pixels."""

    size: tuple[int, int]
    jump: tuple[int, int]


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[-1])


def _geometry(layer: object) -> list[tuple[tuple[int, int], ...]]:
    """(kernel, stride, dilation) pairs of a layer, in order; [] for pointwise ones."""
    if isinstance(layer, tuple):
        if len(layer) not in (2, 3) or not all(isinstance(v, int) and v >= 1 for v in layer):
            raise OptimlabError(
                f"invalid layer {layer!r}; give (kernel, stride) or (kernel, stride, dilation) "
                "as integers >= 1"
            )
        dilation = layer[2] if len(layer) == 3 else 1
        return [(_pair(layer[0]), _pair(layer[1]), _pair(dilation))]
    if isinstance(layer, nn.Sequential):
        return [g for child in layer for g in _geometry(child)]
    if isinstance(layer, nn.Conv2d | nn.MaxPool2d):
        return [(_pair(layer.kernel_size), _pair(layer.stride), _pair(layer.dilation))]
    if isinstance(layer, nn.AvgPool2d):
        return [(_pair(layer.kernel_size), _pair(layer.stride), (1, 1))]
    if isinstance(layer, POINTWISE):
        return []
    raise OptimlabError(
        f"receptive_field: cannot follow a {type(layer).__name__}; valid layers are Conv2d, "
        "MaxPool2d, AvgPool2d, pointwise layers, nn.Sequential of these, and "
        "(kernel, stride[, dilation]) tuples"
    )


def receptive_field(layers: Iterable[object] | nn.Sequential) -> ReceptiveField:
    """The receptive field of a chain of layers (modules or ``(kernel, stride[, dilation])``
    tuples), in the order the input passes them."""
    size, jump = [1, 1], [1, 1]
    for layer in layers:
        for kernel, stride, dilation in _geometry(layer):
            for axis in (0, 1):
                size[axis] += (kernel[axis] - 1) * dilation[axis] * jump[axis]
                jump[axis] *= stride[axis]
    return ReceptiveField((size[0], size[1]), (jump[0], jump[1]))
