"""CIFAR ResNets (He et al. 2016, section 4.2) and their plain counterparts.

The network for 32x32 images: conv3x3(16)-norm-act, then 3 stages of n basic blocks with
16, 32 and 64 channels (feature maps 32, 16, 8; the first block of stages 2 and 3 has
stride 2), global average pooling and a linear layer: 6n + 2 weighted layers
(n = 3, 5, 9 gives ResNet-20, -32, -56). A basic block is
conv3x3-norm-act-conv3x3-norm, plus the shortcut, then act. The plain nets are the same
stacks without the shortcut addition.

Shortcuts where the shape changes:

- option "A" (the default, what the paper uses on CIFAR): the identity on every other
  pixel, with zero channels appended; it has no parameters, and ResNet-20 then has
  269,722 parameters (the paper's "0.27M").
- option "B": a 1x1 convolution with stride 2 and a norm (projection); identity elsewhere.

Convolutions are He-normal initialized (He et al. 2015, fan_in) by default; they carry
no bias when a norm follows them.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from optimlab.errors import OptimlabError, unknown_name
from optimlab.nn import activations
from optimlab.nn import init as nn_init
from optimlab.nn.norm import NORMS, with_norm

STAGE_WIDTHS = (16, 32, 64)
SHORTCUTS = ("A", "B")


def conv_norm(
    cin: int, cout: int, kernel: int, stride: int, norm: str | None, groups: int = 1
) -> nn.Sequential:
    """A ``kernel x kernel`` convolution ("same" padding) and its norm; the convolution
    has a bias only when no feature norm follows it."""
    no_norm = norm is None or NORMS.get(norm).name in ("none", "weight")
    conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=no_norm)
    return nn.Sequential(*with_norm(conv, norm, cout, spatial=True))


class PadShortcut(nn.Module):
    """Option A: ``x[:, :, ::stride, ::stride]`` with zero channels appended to ``cout``."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.extra, self.stride = cout - cin, stride

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra)) if self.extra else x


class BasicBlock(nn.Module):
    """conv3x3-norm-act-conv3x3-norm (+ shortcut when ``residual``), then act."""

    def __init__(
        self,
        cin: int,
        cout: int,
        stride: int,
        activation: str,
        norm: str | None,
        residual: bool,
        shortcut: str,
    ) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_norm(cin, cout, 3, stride, norm),
            activations.make(activation),
            conv_norm(cout, cout, 3, 1, norm),
        )
        self.residual = residual
        self.shortcut: nn.Module = nn.Identity()
        if residual and (stride != 1 or cin != cout):
            if shortcut == "A":
                self.shortcut = PadShortcut(cin, cout, stride)
            else:
                self.shortcut = conv_norm(cin, cout, 1, stride, norm)
        self.act = activations.make(activation)

    def forward(self, x: Tensor) -> Tensor:
        out = self.body(x)
        if self.residual:
            out = out + self.shortcut(x)
        return self.act(out)


def cifar_resnet(
    depth: int = 20,
    num_classes: int = 10,
    in_channels: int = 3,
    *,
    residual: bool = True,
    shortcut: str = "A",
    activation: str = "relu",
    norm: str | None = "batch",
    init: str | None = "he_normal",
) -> nn.Sequential:
    """A CIFAR ResNet of ``depth = 6n + 2`` layers (or its plain twin, ``residual=False``)."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise OptimlabError(f"invalid depth: {depth!r}; valid depths are 6n + 2 (20, 32, 56...)")
    key = shortcut.upper() if isinstance(shortcut, str) else shortcut
    if key not in SHORTCUTS:
        raise unknown_name("shortcut", shortcut, SHORTCUTS)
    n = (depth - 2) // 6
    layers: list[nn.Module] = [
        conv_norm(in_channels, STAGE_WIDTHS[0], 3, 1, norm),
        activations.make(activation),
    ]
    cin = STAGE_WIDTHS[0]
    for stage, cout in enumerate(STAGE_WIDTHS):
        for block in range(n):
            stride = 2 if stage > 0 and block == 0 else 1
            layers.append(BasicBlock(cin, cout, stride, activation, norm, residual, key))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes)]
    model = nn.Sequential(*layers)
    if init is not None:
        bias = 0.0
        nn_init.apply(model, init, bias=bias)
    return model


def resnet20(**kwargs: object) -> nn.Sequential:
    """ResNet-20 (n = 3): 0.27M parameters with option A."""
    return cifar_resnet(20, **kwargs)  # type: ignore[arg-type]


def resnet32(**kwargs: object) -> nn.Sequential:
    """ResNet-32 (n = 5): 0.46M parameters with option A."""
    return cifar_resnet(32, **kwargs)  # type: ignore[arg-type]


def resnet56(**kwargs: object) -> nn.Sequential:
    """ResNet-56 (n = 9): 0.85M parameters with option A."""
    return cifar_resnet(56, **kwargs)  # type: ignore[arg-type]


def plain20(**kwargs: object) -> nn.Sequential:
    """Plain-20: ResNet-20 without shortcuts."""
    return cifar_resnet(20, residual=False, **kwargs)  # type: ignore[arg-type]


def plain32(**kwargs: object) -> nn.Sequential:
    """Plain-32: ResNet-32 without shortcuts."""
    return cifar_resnet(32, residual=False, **kwargs)  # type: ignore[arg-type]


def plain56(**kwargs: object) -> nn.Sequential:
    """Plain-56: ResNet-56 without shortcuts."""
    return cifar_resnet(56, residual=False, **kwargs)  # type: ignore[arg-type]
