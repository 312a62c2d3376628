"""A small VGG-style network (Simonyan & Zisserman 2015): stacks of 3x3 convolutions.

Each stage is ``convs_per_stage`` times conv3x3 ("same" padding)-norm-act at the stage's
width, then 2x2 max pooling; after the stages, flatten, Linear(hidden)-act-[dropout],
Linear(classes). The defaults (widths 32/64/128, two convs per stage, batch norm) suit
32x32 or 28x28 inputs on a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from optimlab.errors import OptimlabError, check_range
from optimlab.nn import activations
from optimlab.nn import init as nn_init
from optimlab.nn.norm import NORMS, with_norm


def vgg_small(
    in_channels: int = 3,
    num_classes: int = 10,
    input_size: int = 32,
    *,
    widths: Sequence[int] = (32, 64, 128),
    convs_per_stage: int = 2,
    hidden: int = 256,
    activation: str = "relu",
    norm: str | None = "batch",
    dropout: float = 0.0,
    init: str | None = None,
) -> nn.Sequential:
    """The VGG-style net described in the module docstring."""
    for name, value in (("convs_per_stage", convs_per_stage), ("hidden", hidden)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise OptimlabError(f"invalid {name}: {value!r}; valid values are integers >= 1")
    if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise OptimlabError(f"invalid widths: {widths!r}; give one or more integers >= 1")
    side = input_size // 2 ** len(widths)
    if side < 1:
        raise OptimlabError(
            f"invalid input_size: {input_size}; {len(widths)} poolings need at least "
            f"{2 ** len(widths)} pixels"
        )
    check_range("dropout", dropout, 0.0, 1.0, high_open=True)
    no_norm = norm is None or NORMS.get(norm).name in ("none", "weight")
    layers: list[nn.Module] = []
    cin = in_channels
    for width in widths:
        for _ in range(convs_per_stage):
            conv = nn.Conv2d(cin, width, 3, padding=1, bias=no_norm)
            layers += with_norm(conv, norm, width, spatial=True)
            layers.append(activations.make(activation))
            cin = width
        layers.append(nn.MaxPool2d(2, 2))
    layers += [nn.Flatten(), nn.Linear(cin * side * side, hidden), activations.make(activation)]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(hidden, num_classes))
    model = nn.Sequential(*layers)
    if init is not None:
        nn_init.apply(model, init)
    return model
