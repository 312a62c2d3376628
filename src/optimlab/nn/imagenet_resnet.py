"""ImageNet ResNets (He et al. 2016, Table 1) and ResNeXt (Xie et al. 2017).

Stem conv 7x7/2 64-norm-ReLU and max-pool 3x3/2; four stages of blocks with 64, 128,
256 and 512 "planes" on 56, 28, 14 and 7 pixel maps (the first block of stages 2-4 has
stride 2); global average pooling and a linear layer.

- basic block (ResNet-18/34): conv3x3-norm-ReLU-conv3x3-norm, plus the shortcut, ReLU;
  ``optimlab.nn.resnet.BasicBlock``.
- bottleneck block (ResNet-50/101/152): conv1x1 (width)-norm-ReLU, conv3x3 (width,
  ``groups``)-norm-ReLU, conv1x1 (4 x planes)-norm, plus the shortcut, ReLU; width =
  planes * base_width / 64 * groups. ResNeXt-50 (32x4d) is the bottleneck net with
  32 groups of width 4 (width 128 in the first stage, twice the ResNet's 64).

Where the shape changes the shortcut is a 1x1 projection with stride and norm (the
paper's option B, as torchvision); elsewhere the identity. The stride of a bottleneck
sits on its 3x3 convolution (torchvision's "v1.5"); ``stride_in_1x1=True`` puts it on
the first 1x1 as the paper's Caffe models did (same parameter count). Parameters at
1000 classes: ResNet-18 11,689,512; -34 21,797,672; -50 25,557,032; -101 44,549,160;
-152 60,192,808; ResNeXt-50 32x4d 25,028,904.

The CIFAR stem is conv 3x3/1 64-norm-ReLU without the max-pool, so the stages see 32,
16, 8 and 4 pixel maps.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from optimlab.errors import OptimlabError, unknown_name
from optimlab.nn import activations
from optimlab.nn import init as nn_init
from optimlab.nn.resnet import BasicBlock, conv_norm
from optimlab.nn.stems import check_stem, positive_int

STAGE_PLANES = (64, 128, 256, 512)
BLOCKS = ("basic", "bottleneck")
#: depth -> (block, blocks per stage), He et al. 2016 Table 1
DEPTHS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


class Bottleneck(nn.Module):
    """conv1x1-norm-act, conv3x3 (grouped)-norm-act, conv1x1 (4 x planes)-norm, plus the
    shortcut, then act."""

    expansion = 4

    def __init__(
        self,
        cin: int,
        planes: int,
        stride: int,
        *,
        groups: int = 1,
        base_width: int = 64,
        norm: str | None = "batch",
        activation: str = "relu",
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        width = planes * base_width // 64 * groups
        cout = planes * self.expansion
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.body = nn.Sequential(
            conv_norm(cin, width, 1, s1, norm),
            activations.make(activation),
            conv_norm(width, width, 3, s3, norm, groups=groups),
            activations.make(activation),
            conv_norm(width, cout, 1, 1, norm),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = conv_norm(cin, cout, 1, stride, norm)
        self.act = activations.make(activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x) + self.shortcut(x))


def imagenet_resnet(
    block: str = "basic",
    layers: tuple[int, ...] = (2, 2, 2, 2),
    num_classes: int | None = None,
    *,
    stem: str = "imagenet",
    groups: int = 1,
    base_width: int = 64,
    norm: str | None = "batch",
    activation: str = "relu",
    stride_in_1x1: bool = False,
    zero_init_residual: bool = False,
    init: str | None = "he_normal",
) -> nn.Sequential:
    """A ResNet/ResNeXt of ``block`` blocks, ``layers[i]`` of them in stage i (module
    docstring), as ``Sequential(stem, layer1..layer4, pool, flatten, fc)``.

    ``zero_init_residual`` starts the last norm of every block at scale 0, so that each
    block starts as the identity (Goyal et al. 2017). ``init`` names the initializer of
    the convolutions and the linear layer (He normal by default; biases 0).
    """
    if block not in BLOCKS:
        raise unknown_name("block", block, BLOCKS)
    if len(layers) != len(STAGE_PLANES):
        raise OptimlabError(f"invalid layers: {layers!r}; give {len(STAGE_PLANES)} block counts")
    for count in layers:
        positive_int("blocks per stage", count)
    positive_int("groups", groups)
    positive_int("base_width", base_width)
    if block == "basic" and (groups != 1 or base_width != 64):
        raise OptimlabError("groups and base_width apply to bottleneck blocks only")
    _, classes = check_stem(stem, num_classes)
    if stem == "imagenet":
        first: list[nn.Module] = [
            conv_norm(3, 64, 7, 2, norm),
            activations.make(activation),
            nn.MaxPool2d(3, 2, padding=1),
        ]
    else:
        first = [conv_norm(3, 64, 3, 1, norm), activations.make(activation)]
    parts: OrderedDict[str, nn.Module] = OrderedDict(stem=nn.Sequential(*first))
    cin = 64
    for stage, (planes, count) in enumerate(zip(STAGE_PLANES, layers, strict=True)):
        blocks: list[nn.Module] = []
        for index in range(count):
            stride = 2 if stage > 0 and index == 0 else 1
            if block == "basic":
                blocks.append(BasicBlock(cin, planes, stride, activation, norm, True, "B"))
                cin = planes
            else:
                blocks.append(
                    Bottleneck(
                        cin,
                        planes,
                        stride,
                        groups=groups,
                        base_width=base_width,
                        norm=norm,
                        activation=activation,
                        stride_in_1x1=stride_in_1x1,
                    )  # fmt: skip
                )
                cin = planes * Bottleneck.expansion
        parts[f"layer{stage + 1}"] = nn.Sequential(*blocks)
    parts["pool"] = nn.AdaptiveAvgPool2d(1)
    parts["flatten"] = nn.Flatten()
    parts["fc"] = nn.Linear(cin, classes)
    model = nn.Sequential(parts)
    if init is not None:
        nn_init.apply(model, init, bias=0.0)
    if zero_init_residual:
        for module in model.modules():
            if isinstance(module, BasicBlock | Bottleneck):
                last_norm = module.body[-1][-1]
                if isinstance(last_norm, nn.BatchNorm2d | nn.GroupNorm):
                    with torch.no_grad():
                        last_norm.weight.zero_()
    return model


def resnet(depth: int, **kwargs: object) -> nn.Sequential:
    """ResNet-``depth`` for ``depth`` in 18, 34, 50, 101, 152."""
    if depth not in DEPTHS:
        raise OptimlabError(
            f"invalid depth: {depth!r}; valid depths: {', '.join(map(str, DEPTHS))}"
        )
    block, layers = DEPTHS[depth]
    return imagenet_resnet(block, layers, **kwargs)  # type: ignore[arg-type]


def resnet18(**kwargs: object) -> nn.Sequential:
    """ResNet-18 (basic blocks 2-2-2-2)."""
    return resnet(18, **kwargs)


def resnet34(**kwargs: object) -> nn.Sequential:
    """ResNet-34 (basic blocks 3-4-6-3)."""
    return resnet(34, **kwargs)


def resnet50(**kwargs: object) -> nn.Sequential:
    """ResNet-50 (bottleneck blocks 3-4-6-3)."""
    return resnet(50, **kwargs)


def resnet101(**kwargs: object) -> nn.Sequential:
    """ResNet-101 (bottleneck blocks 3-4-23-3)."""
    return resnet(101, **kwargs)


def resnet152(**kwargs: object) -> nn.Sequential:
    """ResNet-152 (bottleneck blocks 3-8-36-3)."""
    return resnet(152, **kwargs)


def resnext50_32x4d(**kwargs: object) -> nn.Sequential:
    """ResNeXt-50 32x4d: ResNet-50's layout with 32 groups of width 4 per bottleneck."""
    return imagenet_resnet(
        "bottleneck",
        DEPTHS[50][1],
        groups=32,
        base_width=4,
        **kwargs,  # type: ignore[arg-type]
    )
