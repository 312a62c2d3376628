"""VGG networks (Simonyan & Zisserman 2015): stacks of 3x3 convolutions.

``vgg(config)`` builds the paper's configurations A, B, D and E (VGG-11, -13, -16, -19,
Table 1): 3x3 convolutions of stride 1 and padding 1 with ReLU, 2x2 max pooling of
stride 2 after each of the five stages, then FC-4096, FC-4096 (each with ReLU and
dropout 0.5) and FC-classes. On 224x224 images the last map is 7x7x512; VGG-16 has
138,357,544 parameters and VGG-19 143,667,240. (Configuration C, with 1x1
convolutions, is left out.)

``vgg_small`` is a small VGG-style net for CPUs: each stage is ``convs_per_stage``
times conv3x3 ("same" padding)-norm-act at the stage's width, then 2x2 max pooling;
after the stages, flatten, Linear(hidden)-act-[dropout], Linear(classes). The defaults
(widths 32/64/128, two convs per stage, batch norm) suit 32x32 or 28x28 inputs on a CPU.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

from optimlab.errors import OptimlabError, check_range, unknown_name
from optimlab.nn import activations
from optimlab.nn import init as nn_init
from optimlab.nn.norm import NORMS, with_norm
from optimlab.nn.stems import check_stem, positive_int


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


#: the paper's configurations as the output channels of each 3x3 convolution ("M" a pooling)
VGG_CONFIGS: dict[str, tuple[int | str, ...]] = {
    "A": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "B": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "D": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "E": (64, 64, "M", 128, 128, "M", *(256,) * 4, "M", *(512,) * 4, "M", *(512,) * 4, "M"),
}
VGG_DEPTHS = {"A": 11, "B": 13, "D": 16, "E": 19}


def vgg(
    config: str = "D",
    num_classes: int | None = None,
    *,
    stem: str = "imagenet",
    hidden: int = 4096,
    dropout: float = 0.5,
    norm: str | None = None,
    init: str | None = "he_normal",
) -> nn.Sequential:
    """VGG configuration ``config`` ("A", "B", "D" or "E") as ``Sequential(features,
    flatten, classifier)``.

    ``stem="imagenet"`` expects 3x224x224 images (1000 classes by default); ``"cifar"``
    keeps the same convolutions for 3x32x32 images, whose last map is 1x1x512, so the
    first FC layer has 512 inputs (10 classes by default). ``norm`` adds a normalization
    after each convolution (e.g. "batch"); ``init`` names the initializer of every
    convolution and FC layer (biases 0).
    """
    key = config.upper() if isinstance(config, str) else config
    if key not in VGG_CONFIGS:
        raise unknown_name("VGG configuration", config, VGG_CONFIGS)
    side, classes = check_stem(stem, num_classes)
    positive_int("hidden", hidden)
    check_range("dropout", dropout, 0.0, 1.0, high_open=True)
    no_norm = norm is None or NORMS.get(norm).name in ("none", "weight")
    features: list[nn.Module] = []
    cin = 3
    for item in VGG_CONFIGS[key]:
        if item == "M":
            features.append(nn.MaxPool2d(2, 2))
            side //= 2
            continue
        conv = nn.Conv2d(cin, int(item), 3, padding=1, bias=no_norm)
        features += [*with_norm(conv, norm, int(item), spatial=True), nn.ReLU(inplace=True)]
        cin = int(item)
    classifier = nn.Sequential(
        nn.Linear(cin * side * side, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, classes),
    )
    model = nn.Sequential(
        OrderedDict(features=nn.Sequential(*features), flatten=nn.Flatten(), classifier=classifier)
    )
    if init is not None:
        nn_init.apply(model, init, bias=0.0)
    return model


def vgg11(**kwargs: object) -> nn.Sequential:
    """VGG-11 (configuration A)."""
    return vgg("A", **kwargs)  # type: ignore[arg-type]


def vgg13(**kwargs: object) -> nn.Sequential:
    """VGG-13 (configuration B)."""
    return vgg("B", **kwargs)  # type: ignore[arg-type]


def vgg16(**kwargs: object) -> nn.Sequential:
    """VGG-16 (configuration D): 138,357,544 parameters at ImageNet size."""
    return vgg("D", **kwargs)  # type: ignore[arg-type]


def vgg19(**kwargs: object) -> nn.Sequential:
    """VGG-19 (configuration E): 143,667,240 parameters at ImageNet size."""
    return vgg("E", **kwargs)  # type: ignore[arg-type]
