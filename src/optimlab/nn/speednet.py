"""A small, fast conv net for 28x28 grey images, built for the Fashion-MNIST speedrun.

Each block is conv3x3 (no bias; the normalization that follows has its own shift) ->
norm -> ReLU -> 2x2 max pool, so the spatial size halves per block and the cost of a
block stays near that of the next one. With ``pool_first`` the pool comes straight after
the convolution (conv -> pool -> norm -> ReLU, as in the CIFAR-10 speedruns' airbench),
so normalization and ReLU, forward and backward, touch a quarter of the positions.
The head is a linear layer on the flattened last feature map (``head="flatten"``) or on
its global max (``head="max"``).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from optimlab.errors import OptimlabError
from optimlab.nn.norm import make_norm

HEADS = ("flatten", "max")


def speednet(
    widths: Sequence[int] = (16, 32, 64),
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int = 28,
    norm: str = "batch",
    head: str = "flatten",
    pool_first: bool = False,
) -> nn.Sequential:
    """conv3-norm-ReLU-maxpool blocks of the given ``widths``, then a linear head.

    ``input_size`` is the side of the (square) input images; it sets the head's input
    size for ``head="flatten"``. ``pool_first`` puts each block's max pool before its
    norm and ReLU instead of after them.
    """
    widths = list(widths)
    if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise OptimlabError(f"invalid widths: {widths!r}; valid: a non-empty list of ints >= 1")
    if not isinstance(pool_first, bool):
        raise OptimlabError(f"invalid pool_first: {pool_first!r}; valid: true or false")
    if head not in HEADS:
        raise OptimlabError(f"invalid head: {head!r}; valid heads: {', '.join(HEADS)}")
    side = input_size
    layers: list[nn.Module] = []
    c_in = in_channels
    for w in widths:
        if side < 2:
            raise OptimlabError(
                f"invalid widths: {len(widths)} blocks halve a {input_size}x{input_size} "
                "input below 1x1; use fewer blocks"
            )
        conv = nn.Conv2d(c_in, w, 3, padding=1, bias=False)
        norm_act = [make_norm(norm, w, spatial=True), nn.ReLU(inplace=True)]
        if pool_first:
            layers += [conv, nn.MaxPool2d(2), *norm_act]
        else:
            layers += [conv, *norm_act, nn.MaxPool2d(2)]
        c_in, side = w, side // 2
    if head == "flatten":
        layers += [nn.Flatten(), nn.Linear(c_in * side * side, num_classes)]
    else:
        layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes)]
    return nn.Sequential(*layers)
