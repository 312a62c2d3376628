"""GoogLeNet / Inception v1 (Szegedy et al. 2015), as the paper's Table 1 and Figure 3.

On 224x224 images::

    conv 7x7/2 64, max-pool 3x3/2, LRN           -> 56x56x64
    conv 1x1 64, conv 3x3 192, LRN, max-pool 3x3/2 -> 28x28x192
    inception 3a, 3b, max-pool 3x3/2              -> 14x14x480
    inception 4a (aux head 1), 4b, 4c, 4d (aux head 2), 4e, max-pool 3x3/2 -> 7x7x832
    inception 5a, 5b, average pool 7x7            -> 1x1x1024
    dropout 0.4, linear classes

every convolution followed by ReLU; the max-pools of stride 2 round up (Caffe's
convention, which gives the table's map sizes). An inception module concatenates four
branches: 1x1; 1x1 reduce then 3x3; 1x1 reduce then 5x5; 3x3/1 max-pool then a 1x1
projection. An auxiliary head: average pool 5x5/3 (4x4 maps), 1x1 conv 128, FC 1024,
dropout 0.7, linear classes; its loss counts with weight 0.3 in training and the heads
are dropped at inference.

The original has biases and no batch norm: 6,998,552 parameters without the auxiliary
heads (the count of Caffe's reference GoogLeNet), 13,378,280 with them. torchvision's
``googlenet`` is another net: batch norm instead of biases, and 3x3 convolutions in the
branch the paper gives 5x5 filters; ``norm="batch", lrn=False, branch5_kernel=3``
rebuilds it (6,624,904 parameters).

The CIFAR stem replaces everything before inception 3a by one 3x3/1 convolution with
192 filters; the modules then see 32x32, 16x16 and 8x8 maps (the aux heads 4x4 again).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from optimlab.errors import OptimlabError, check_range
from optimlab.nn import init as nn_init
from optimlab.nn.lrn import ALEXNET_LRN, LocalResponseNorm
from optimlab.nn.norm import NORMS, with_norm
from optimlab.nn.stems import check_stem

#: rows of Table 1 (input channels, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj)
INCEPTION_TABLE: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "3a": (192, 64, 96, 128, 16, 32, 32),
    "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64),
    "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64),
    "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}
AUX_WEIGHT = 0.3


def _conv(cin: int, cout: int, kernel: int, norm: str | None, stride: int = 1) -> nn.Sequential:
    no_norm = norm is None or NORMS.get(norm).name in ("none", "weight")
    conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=no_norm)
    return nn.Sequential(*with_norm(conv, norm, cout, spatial=True), nn.ReLU(inplace=True))


class Inception(nn.Module):
    """The four-branch module; its output has #1x1 + #3x3 + #5x5 + pool proj channels."""

    def __init__(
        self,
        cin: int,
        c1: int,
        c3_reduce: int,
        c3: int,
        c5_reduce: int,
        c5: int,
        pool_proj: int,
        *,
        norm: str | None = None,
        branch5_kernel: int = 5,
    ) -> None:
        super().__init__()
        self.branch1 = _conv(cin, c1, 1, norm)
        self.branch3 = nn.Sequential(_conv(cin, c3_reduce, 1, norm), _conv(c3_reduce, c3, 3, norm))
        self.branch5 = nn.Sequential(
            _conv(cin, c5_reduce, 1, norm), _conv(c5_reduce, c5, branch5_kernel, norm)
        )
        self.branch_pool = nn.Sequential(
            nn.MaxPool2d(3, 1, padding=1, ceil_mode=True), _conv(cin, pool_proj, 1, norm)
        )

    def forward(self, x: Tensor) -> Tensor:
        branches = (self.branch1, self.branch3, self.branch5, self.branch_pool)
        return torch.cat([branch(x) for branch in branches], dim=1)


class AuxHead(nn.Module):
    """Average pool 5x5/3, 1x1 conv 128 + ReLU, FC 1024 + ReLU, dropout 0.7, linear."""

    def __init__(self, cin: int, num_classes: int, norm: str | None = None) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(5, 3)
        self.conv = _conv(cin, 128, 1, norm)
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(128 * 4 * 4, 1024),
            nn.ReLU(inplace=True),
            nn.Dropout(0.7),
            nn.Linear(1024, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.conv(self.pool(x)))


class GoogLeNetOutput(NamedTuple):
    """What GoogLeNet returns in training mode with auxiliary heads."""

    logits: Tensor
    aux1: Tensor
    aux2: Tensor


class GoogLeNet(nn.Module):
    """GoogLeNet (module docstring). In training mode with ``aux_heads`` the forward
    pass returns a ``GoogLeNetOutput``; otherwise the main logits alone. ``init`` names
    the initializer of every convolution and linear layer (Glorot/Xavier by default, as
    Caffe's reference model; biases 0)."""

    def __init__(
        self,
        num_classes: int | None = None,
        *,
        stem: str = "imagenet",
        aux_heads: bool = True,
        norm: str | None = None,
        lrn: bool = True,
        branch5_kernel: int = 5,
        dropout: float = 0.4,
        init: str | None = "glorot_uniform",
    ) -> None:
        super().__init__()
        _, classes = check_stem(stem, num_classes)
        if branch5_kernel not in (3, 5):
            raise OptimlabError(f"invalid branch5_kernel: {branch5_kernel!r}; valid: 3 or 5")
        check_range("dropout", dropout, 0.0, 1.0, high_open=True)

        def lrn_layer() -> list[nn.Module]:
            return [LocalResponseNorm(**ALEXNET_LRN)] if lrn else []

        if stem == "imagenet":
            self.stem = nn.Sequential(
                _conv(3, 64, 7, norm, stride=2),
                nn.MaxPool2d(3, 2, ceil_mode=True),
                *lrn_layer(),
                _conv(64, 64, 1, norm),
                _conv(64, 192, 3, norm),
                *lrn_layer(),
                nn.MaxPool2d(3, 2, ceil_mode=True),
            )
        else:
            self.stem = _conv(3, 192, 3, norm)
        options = {"norm": norm, "branch5_kernel": branch5_kernel}
        self.inception = nn.ModuleDict(
            {name: Inception(*row, **options) for name, row in INCEPTION_TABLE.items()}
        )
        self.pool3 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.pool4 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.aux1 = AuxHead(512, classes, norm) if aux_heads else None
        self.aux2 = AuxHead(528, classes, norm) if aux_heads else None
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(1024, classes)
        )
        if init is not None:
            nn_init.apply(self, init, bias=0.0)

    def forward(self, x: Tensor) -> Tensor | GoogLeNetOutput:
        block = self.inception
        x = block["3b"](block["3a"](self.stem(x)))
        x = block["4a"](self.pool3(x))
        aux = self.training and self.aux1 is not None
        aux1 = self.aux1(x) if aux else None
        x = block["4d"](block["4c"](block["4b"](x)))
        aux2 = self.aux2(x) if aux else None
        x = block["5b"](block["5a"](self.pool4(block["4e"](x))))
        logits = self.head(x)
        if aux1 is not None and aux2 is not None:
            return GoogLeNetOutput(logits, aux1, aux2)
        return logits


def googlenet(num_classes: int | None = None, **kwargs: Any) -> GoogLeNet:
    """``GoogLeNet(num_classes, **kwargs)``: see ``GoogLeNet`` for the options."""
    return GoogLeNet(num_classes, **kwargs)


def with_aux_loss(
    loss: Callable[[Tensor, Tensor], Tensor], weight: float = AUX_WEIGHT
) -> Callable[[Tensor | GoogLeNetOutput, Tensor], Tensor]:
    """``loss(logits) + weight * (loss(aux1) + loss(aux2))`` for a ``GoogLeNetOutput``,
    plain ``loss(logits)`` for a tensor (evaluation mode)."""
    check_range("weight", weight, 0.0)

    def combined(output: Tensor | GoogLeNetOutput, target: Tensor) -> Tensor:
        if isinstance(output, GoogLeNetOutput):
            main = loss(output.logits, target)
            return main + weight * (loss(output.aux1, target) + loss(output.aux2, target))
        return loss(output, target)

    return combined
