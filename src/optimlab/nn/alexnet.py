"""AlexNet (Krizhevsky, Sutskever & Hinton 2012), in the paper's two-group layout.

The paper split the network over two GPUs: conv2, conv4 and conv5 see only the half of
the previous layer's maps on their own GPU, conv3 and the FC layers see all of them.
Here the split is a grouped convolution (``groups=2``) on one device, which computes
the same function with the same parameters: 60,965,224 of them at 1000 classes (the
count of Caffe's reference AlexNet). ``groups=1`` joins the towers (62,378,344
parameters), the single-tower form the lecture draws; torchvision's ``alexnet`` is a
different net (Krizhevsky 2014's 64-192-384-256-256 channels, no LRN; 61,100,840).

Layers on 227x227 inputs (the paper says 224, which does not give 55x55 after an 11x11
convolution of stride 4 without padding; 227 does)::

    conv1 96 11x11/4 -> 55x55, ReLU, LRN, max-pool 3x3/2 -> 27x27
    conv2 256 5x5 pad 2 (2 groups), ReLU, LRN, max-pool 3x3/2 -> 13x13
    conv3 384 3x3 pad 1, ReLU
    conv4 384 3x3 pad 1 (2 groups), ReLU
    conv5 256 3x3 pad 1 (2 groups), ReLU, max-pool 3x3/2 -> 6x6
    fc6 4096, ReLU, dropout 0.5; fc7 4096, ReLU, dropout 0.5; fc8 classes

The LRN layers use k = 2, n = 5, alpha = 1e-4, beta = 0.75 in the paper's convention
(``optimlab.nn.lrn``); the overlapping 3x3/2 pooling is the paper's. The CIFAR stem
replaces conv1 by 96 3x3/1 filters with padding 1, which leaves 3x3x256 maps before fc6.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from optimlab.errors import OptimlabError, check_range
from optimlab.nn import init as nn_init
from optimlab.nn.lrn import ALEXNET_LRN, LocalResponseNorm
from optimlab.nn.stems import check_stem, positive_int

IMAGENET_SIDE = 227
#: layers whose biases the paper sets to 1 (the others get 0)
UNIT_BIAS_LAYERS = ("conv2", "conv4", "conv5", "fc6", "fc7")


def _pooled(side: int) -> int:
    return (side - 3) // 2 + 1  # max-pool 3x3, stride 2, no padding


def alexnet(
    num_classes: int | None = None,
    *,
    stem: str = "imagenet",
    groups: int = 2,
    lrn: bool = True,
    dropout: float = 0.5,
    hidden: int = 4096,
    init: str | None = "normal_0.01",
    paper_biases: bool = True,
) -> nn.Sequential:
    """AlexNet as ``Sequential(features, flatten, classifier)`` (module docstring).

    ``groups`` is 2 (the paper's two towers) or 1 (one tower); ``lrn=False`` drops the
    response normalization. ``init`` names the weight initializer (the paper's N(0, 0.01)
    by default); with ``paper_biases`` the biases of conv2, conv4, conv5, fc6 and fc7
    are 1 and the others 0, as in the paper, else all 0.
    """
    side, classes = check_stem(stem, num_classes)
    if groups not in (1, 2):
        raise OptimlabError(f"invalid groups: {groups!r}; valid values are 1 and 2")
    positive_int("hidden", hidden)
    check_range("dropout", dropout, 0.0, 1.0, high_open=True)

    def norm() -> list[tuple[str, nn.Module]]:
        return [("lrn", LocalResponseNorm(**ALEXNET_LRN))] if lrn else []

    if stem == "imagenet":
        side = IMAGENET_SIDE
        conv1 = nn.Conv2d(3, 96, 11, stride=4)
        side = (side - 11) // 4 + 1
    else:
        conv1 = nn.Conv2d(3, 96, 3, padding=1)
    layers: list[tuple[str, nn.Module]] = [("conv1", conv1), ("relu1", nn.ReLU(inplace=True))]
    layers += [(f"{name}1", module) for name, module in norm()]
    layers.append(("pool1", nn.MaxPool2d(3, 2)))
    side = _pooled(side)
    layers += [("conv2", nn.Conv2d(96, 256, 5, padding=2, groups=groups)),
               ("relu2", nn.ReLU(inplace=True))]  # fmt: skip
    layers += [(f"{name}2", module) for name, module in norm()]
    layers.append(("pool2", nn.MaxPool2d(3, 2)))
    side = _pooled(side)
    layers += [
        ("conv3", nn.Conv2d(256, 384, 3, padding=1)),
        ("relu3", nn.ReLU(inplace=True)),
        ("conv4", nn.Conv2d(384, 384, 3, padding=1, groups=groups)),
        ("relu4", nn.ReLU(inplace=True)),
        ("conv5", nn.Conv2d(384, 256, 3, padding=1, groups=groups)),
        ("relu5", nn.ReLU(inplace=True)),
        ("pool5", nn.MaxPool2d(3, 2)),
    ]
    side = _pooled(side)
    classifier = OrderedDict(
        fc6=nn.Linear(256 * side * side, hidden),
        relu6=nn.ReLU(inplace=True),
        drop6=nn.Dropout(dropout),
        fc7=nn.Linear(hidden, hidden),
        relu7=nn.ReLU(inplace=True),
        drop7=nn.Dropout(dropout),
        fc8=nn.Linear(hidden, classes),
    )
    model = nn.Sequential(
        OrderedDict(
            features=nn.Sequential(OrderedDict(layers)),
            flatten=nn.Flatten(),
            classifier=nn.Sequential(classifier),
        )
    )
    if init is not None:
        nn_init.apply(model, init, bias=0.0)
        if paper_biases:
            for name, module in model.named_modules():
                if name.rsplit(".", 1)[-1] in UNIT_BIAS_LAYERS:
                    nn.init.ones_(module.bias)
    return model
