"""Model builders: MLP, LeNet-5, the DeepOBS networks and the deep linear toy, and the
registry of every model builder (the lectures' ImageNet architectures included).

Every builder returns a fresh ``nn.Module`` initialized from torch's global RNG; seed
it (``optimlab.problems.build`` does) for a deterministic model. The DeepOBS networks
carry DeepOBS's own initialization so that their published settings transfer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from optimlab.errors import OptimlabError, check_range, unknown_name
from optimlab.nn import activations as _activations
from optimlab.nn import imagenet_resnet as _imagenet_resnet
from optimlab.nn import init as _init
from optimlab.nn import resnet as _resnet
from optimlab.nn import vgg as _vgg
from optimlab.nn.alexnet import alexnet
from optimlab.nn.googlenet import googlenet
from optimlab.nn.norm import with_norm
from optimlab.nn.speednet import speednet
from optimlab.nn.stems import STEMS
from optimlab.nn.vgg import vgg_small
from optimlab.registry import Registry

# Activations live in one registry (``optimlab.nn.activations``); this name is kept for
# code that imported it from here.
ACTIVATIONS = _activations.ACTIVATIONS


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by name (``optimlab.nn.activations`` lists them)."""
    return _activations.make(name)


class TFSameMaxPool2d(nn.Module):
    """Max pooling with TensorFlow's "same" padding: output size ceil(n / stride).

    TensorFlow pads as evenly as it can and puts the odd extra row/column at the end;
    padded cells never win the max (they are -inf), as in TensorFlow. DeepOBS's
    networks are defined with this padding.
    """

    def __init__(self, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    @staticmethod
    def _pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: Tensor) -> Tensor:
        top, bottom = self._pads(x.shape[-2], self.kernel_size, self.stride)
        left, right = self._pads(x.shape[-1], self.kernel_size, self.stride)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom), value=-math.inf)
        return F.max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding=same"


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptimlabError(f"invalid {name}: {value!r}; valid values are integers >= 1")
    return value


def mlp(
    in_features: int,
    hidden: Sequence[int],
    out_features: int,
    activation: str = "relu",
    dropout: float = 0.0,
    batch_norm: bool = False,
    norm: str | None = None,
    init: str | None = None,
) -> nn.Sequential:
    """Flatten, then per hidden width: Linear -> [norm] -> activation -> [Dropout],
    then a Linear output layer (no activation: losses take raw scores).

    ``norm`` names a normalization (``optimlab.nn.norm.NORMS``; ``batch_norm=True`` is
    ``norm="batch"``); ``init`` an initializer (``optimlab.nn.init``) applied to every
    Linear layer, biases 0.
    """
    _positive_int("in_features", in_features)
    _positive_int("out_features", out_features)
    check_range("dropout", dropout, 0.0, 1.0, high_open=True)
    if batch_norm and norm not in (None, "batch"):
        raise OptimlabError(f"batch_norm=True conflicts with norm={norm!r}; give one of them")
    norm = "batch" if batch_norm else norm
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for h in hidden:
        layers += with_norm(nn.Linear(width, _positive_int("hidden width", h)), norm, h)
        layers.append(make_activation(activation))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, out_features))
    model = nn.Sequential(*layers)
    if init is not None:
        _init.apply(model, init)
    return model


class Residual(nn.Module):
    """``x + f(x)``: an identity skip connection around ``f`` (He et al. 2016)."""

    def __init__(self, f: nn.Module) -> None:
        super().__init__()
        self.f = f

    def forward(self, x: Tensor) -> Tensor:
        return x + self.f(x)


def deep_mlp(
    in_features: int = 64,
    out_features: int = 10,
    depth: int = 20,
    width: int = 64,
    activation: str = "relu",
    norm: str | None = None,
    dropout: float = 0.0,
    init: str | None = None,
    residual: bool = False,
) -> nn.Sequential:
    """An MLP of ``depth`` Linear layers, ``depth - 1`` hidden ones of equal ``width``.

    Each hidden layer is Linear -> [norm] -> activation -> [Dropout]. With ``residual``
    the hidden layers after the first are wrapped as ``x + layer(x)``. Built for the
    vanishing-gradient experiments: deep, narrow, any activation, norm and init.
    """
    _positive_int("depth", depth)
    _positive_int("width", width)
    check_range("dropout", dropout, 0.0, 1.0, high_open=True)
    if depth < 2:
        raise OptimlabError(f"invalid depth: {depth}; valid depths are integers >= 2")

    def hidden_layer(fan_in: int) -> nn.Sequential:
        parts = with_norm(nn.Linear(fan_in, width), norm, width) + [make_activation(activation)]
        if dropout > 0:
            parts.append(nn.Dropout(dropout))
        return nn.Sequential(*parts)

    layers: list[nn.Module] = [nn.Flatten(), hidden_layer(in_features)]
    for _ in range(depth - 2):
        block = hidden_layer(width)
        layers.append(Residual(block) if residual else block)
    layers.append(nn.Linear(width, out_features))
    model = nn.Sequential(*layers)
    if init is not None:
        _init.apply(model, init)
    return model


def logistic_regression(in_features: int, num_classes: int) -> nn.Sequential:
    """A linear classifier on flattened inputs (softmax lives in the loss)."""
    return mlp(in_features, [], num_classes)


class PolynomialFeatures(nn.Module):
    """Maps a scalar input x (N, 1) to its powers [x, x^2, ..., x^degree] (N, degree)."""

    def __init__(self, degree: int) -> None:
        super().__init__()
        self.degree = _positive_int("degree", degree)
        self.register_buffer("powers", torch.arange(1, degree + 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(-1, 1) ** self.powers.to(x.dtype)

    def extra_repr(self) -> str:
        return f"degree={self.degree}"


def polynomial(degree: int = 14) -> nn.Sequential:
    """Polynomial regression in one variable: sum_k w_k x^k + b, k = 1..degree."""
    return nn.Sequential(PolynomialFeatures(degree), nn.Linear(degree, 1))


def lenet5(
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int = 28,
    activation: str = "tanh",
    pool: str = "avg",
) -> nn.Sequential:
    """LeNet-5 (LeCun et al. 1998): conv5x5(6)-pool-conv5x5(16)-pool-FC120-FC84-FC.

    Convolutions are 5x5 at stride 1, pooling 2x2 at stride 2. A 28x28 input is
    zero-padded by 2 in the first convolution, which makes it behave like the paper's
    32x32 input. ``pool="avg"`` with tanh is close to the original subsampling layers;
    ``"max"`` with relu is the common modern variant.
    """
    if input_size not in (28, 32):
        raise OptimlabError(f"invalid input_size: {input_size}; valid sizes: 28, 32")
    pools = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}
    if pool not in pools:
        raise unknown_name("pool", pool, pools)
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 5, padding=2 if input_size == 28 else 0),
        make_activation(activation),
        pools[pool](2, 2),
        nn.Conv2d(6, 16, 5),
        make_activation(activation),
        pools[pool](2, 2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        make_activation(activation),
        nn.Linear(120, 84),
        make_activation(activation),
        nn.Linear(84, num_classes),
    )


def _truncated_normal_(weight: Tensor, std: float) -> None:
    # TensorFlow's truncated normal: redraw beyond two standard deviations.
    nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2 * std, b=2 * std)


def fmnist_2c2d(in_channels: int = 1, num_classes: int = 10) -> nn.Sequential:
    """DeepOBS's 2c2d: conv5x5(32)-maxpool-conv5x5(64)-maxpool-FC1024-FC(classes).

    "Same" padding throughout (28 -> 14 -> 7), ReLU activations; weights drawn from a
    normal truncated at two standard deviations (std 0.05), biases 0.05, as DeepOBS.
    """
    model = nn.Sequential(
        nn.Conv2d(in_channels, 32, 5, padding=2),
        nn.ReLU(),
        TFSameMaxPool2d(2, 2),
        nn.Conv2d(32, 64, 5, padding=2),
        nn.ReLU(),
        TFSameMaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(7 * 7 * 64, 1024),
        nn.ReLU(),
        nn.Linear(1024, num_classes),
    )
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            _truncated_normal_(module.weight, 0.05)
            nn.init.constant_(module.bias, 0.05)
    return model


def cifar10_3c3d(in_channels: int = 3, num_classes: int = 10) -> nn.Sequential:
    """DeepOBS's 3c3d: conv5x5(64, valid)-maxpool3/2, conv3x3(96, valid)-maxpool3/2,
    conv3x3(128, same)-maxpool3/2, FC512-FC256-FC(classes), ReLU; pools use "same"
    padding (32 -> 28 -> 14 -> 12 -> 6 -> 6 -> 3). Xavier-normal convolutions,
    Xavier-uniform dense layers, zero biases, as DeepOBS. The L2 penalty of the DeepOBS
    problem belongs to the problem (``optimlab.problems``), not to the network.
    """
    model = nn.Sequential(
        nn.Conv2d(in_channels, 64, 5),
        nn.ReLU(),
        TFSameMaxPool2d(3, 2),
        nn.Conv2d(64, 96, 3),
        nn.ReLU(),
        TFSameMaxPool2d(3, 2),
        nn.Conv2d(96, 128, 3, padding=1),
        nn.ReLU(),
        TFSameMaxPool2d(3, 2),
        nn.Flatten(),
        nn.Linear(3 * 3 * 128, 512),
        nn.ReLU(),
        nn.Linear(512, 256),
        nn.ReLU(),
        nn.Linear(256, num_classes),
    )
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.xavier_normal_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    return model


def fmnist_mlp(in_features: int = 784, num_classes: int = 10) -> nn.Sequential:
    """DeepOBS's MLP: 784-1000-500-100-(classes), ReLU; truncated-normal weights
    (std 0.03) and zero biases, as DeepOBS."""
    model = mlp(in_features, [1000, 500, 100], num_classes, activation="relu")
    for module in model.modules():
        if isinstance(module, nn.Linear):
            _truncated_normal_(module.weight, 0.03)
            nn.init.zeros_(module.bias)
    return model


class DeepLinear(nn.Module):
    """z = W_depth ... W_2 W_1 x: a product of linear maps without biases.

    With width 1 this is the lectures' toy z = w4 w3 w2 w1 x, whose "gauge freedom"
    (w = (1, 1, 1, 1) and (1, 0.01, 100, 1) compute the same function with very
    different gradients) motivates normalization. ``init`` sets the weights directly
    for width 1 (one number per layer); otherwise weights are drawn N(0, 1/fan_in).
    """

    def __init__(
        self,
        depth: int = 4,
        width: int = 1,
        in_features: int = 1,
        out_features: int = 1,
        init: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        _positive_int("depth", depth)
        dims = [in_features] + [width] * (depth - 1) + [out_features]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(dims[i + 1], dims[i]) / math.sqrt(dims[i]))
            for i in range(depth)
        )
        if init is not None:
            if len(init) != depth or max(dims) != 1:
                raise OptimlabError(
                    f"invalid init: {tuple(init)}; give {depth} numbers, for width 1 only"
                )
            with torch.no_grad():
                for w, value in zip(self.weights, init, strict=True):
                    w.fill_(float(value))

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        for w in self.weights:
            x = x @ w.T
        return x

    def product(self) -> Tensor:
        """The end-to-end matrix W_depth ... W_1 (a 1x1 matrix for the scalar toy)."""
        out = self.weights[0]
        for w in self.weights[1:]:
            out = w @ out
        return out


def deep_linear(
    depth: int = 4,
    width: int = 1,
    in_features: int = 1,
    out_features: int = 1,
    init: Sequence[float] | None = None,
) -> DeepLinear:
    """See ``DeepLinear``."""
    return DeepLinear(depth, width, in_features, out_features, init)


@dataclass(frozen=True)
class ModelRecord:
    """A registered model builder and what it expects.

    ``input_shape`` is the shape of one input with the default arguments (None: the
    builder takes the sizes); ``stems`` lists the ``stem=`` values a builder accepts
    (``optimlab.nn.stems``: "imagenet" and "cifar"), empty if it has no such option.
    """

    name: str
    builder: Callable[..., nn.Module]
    description: str
    input_shape: tuple[int, ...] | None  # None: any (the builder takes the sizes)
    defaults: dict[str, Any] = field(default_factory=dict)
    reference: str = ""
    aliases: tuple[str, ...] = ()
    stems: tuple[str, ...] = ()

    def input_shape_for(self, stem: str | None = None) -> tuple[int, ...] | None:
        """The input shape with ``stem`` (None: the default)."""
        if stem is None or stem == "imagenet":
            return self.input_shape
        if stem not in self.stems:
            valid = ", ".join(self.stems) or "none (this model has no stem option)"
            raise OptimlabError(f"invalid stem {stem!r} for model {self.name!r}; valid: {valid}")
        side = STEMS[stem][0]
        return (3, side, side)


MODELS: Registry[ModelRecord] = Registry("model")
MODELS.add(ModelRecord("mlp", mlp, "fully connected network", None))
MODELS.add(
    ModelRecord(
        "logistic_regression",
        logistic_regression,
        "linear classifier",
        None,
        aliases=("logreg",),
    )
)
MODELS.add(
    ModelRecord(
        "lenet5",
        lenet5,
        "conv5(6)-pool-conv5(16)-pool-120-84-10",
        (1, 28, 28),
        reference="LeCun et al. 1998",
        aliases=("lenet",),
    )
)
MODELS.add(
    ModelRecord(
        "fmnist_2c2d",
        fmnist_2c2d,
        "conv5(32)-pool-conv5(64)-pool-1024-10",
        (1, 28, 28),
        reference="DeepOBS (Schneider et al. 2019)",
        aliases=("2c2d",),
    )
)
MODELS.add(
    ModelRecord(
        "cifar10_3c3d",
        cifar10_3c3d,
        "conv5(64)-conv3(96)-conv3(128), each pooled, 512-256-10",
        (3, 32, 32),
        reference="DeepOBS (Schneider et al. 2019)",
        aliases=("3c3d",),
    )
)
MODELS.add(
    ModelRecord(
        "fmnist_mlp",
        fmnist_mlp,
        "784-1000-500-100-10 ReLU",
        (1, 28, 28),
        reference="DeepOBS (Schneider et al. 2019)",
    )
)
MODELS.add(
    ModelRecord(
        "deep_mlp",
        deep_mlp,
        "depth x width MLP, any activation/norm/init, optional residual",
        None,
    )
)
MODELS.add(
    ModelRecord(
        "vgg_small",
        vgg_small,
        "VGG-style 2x conv3(32), 2x conv3(64), 2x conv3(128), each pooled, 256-10",
        (3, 32, 32),
        reference="Simonyan & Zisserman 2015",
        aliases=("vgg",),
    )
)
for _depth, _params in ((20, "0.27M"), (32, "0.46M"), (56, "0.85M")):
    MODELS.add(
        ModelRecord(
            f"resnet{_depth}",
            getattr(_resnet, f"resnet{_depth}"),
            f"CIFAR ResNet-{_depth}, option A shortcuts, {_params} parameters",
            (3, 32, 32),
            reference="He et al. 2016",
        )
    )
    MODELS.add(
        ModelRecord(
            f"plain{_depth}",
            getattr(_resnet, f"plain{_depth}"),
            f"ResNet-{_depth} without shortcuts",
            (3, 32, 32),
            reference="He et al. 2016",
        )
    )
MODELS.add(
    ModelRecord(
        "speednet",
        speednet,
        "conv3-norm-ReLU-maxpool blocks (16-32-64 by default), linear head; speedrun net",
        (1, 28, 28),
    )
)
# The lecture's case studies: (name, builder, description, input shape, reference,
# aliases); every one also takes stem="cifar".
_IMAGENET = (3, 224, 224)
_CASE_STUDIES: list[tuple[str, Callable[..., nn.Module], str, tuple[int, ...], str, tuple]] = [
    ("alexnet", alexnet, "AlexNet, two groups as the paper's two GPUs, LRN, dropout 0.5",
     (3, 227, 227), "Krizhevsky, Sutskever & Hinton 2012", ()),
    *[(f"vgg{depth}", getattr(_vgg, f"vgg{depth}"),
       f"VGG configuration {config}: 3x3 convolutions, 5 poolings, FC 4096-4096", _IMAGENET,
       "Simonyan & Zisserman 2015", ()) for config, depth in _vgg.VGG_DEPTHS.items()],
    ("googlenet", googlenet,
     "GoogLeNet, 9 inception modules, 2 auxiliary heads (training only), LRN, no BN",
     _IMAGENET, "Szegedy et al. 2015", ("inception_v1",)),
    *[(f"resnet{depth}", getattr(_imagenet_resnet, f"resnet{depth}"),
       f"ImageNet ResNet-{depth}, {block} blocks {'-'.join(map(str, layers))}", _IMAGENET,
       "He et al. 2016", ()) for depth, (block, layers) in _imagenet_resnet.DEPTHS.items()],
    ("resnext50_32x4d", _imagenet_resnet.resnext50_32x4d,
     "ResNeXt-50, bottlenecks of 32 groups of width 4", _IMAGENET, "Xie et al. 2017",
     ("resnext50",)),
]  # fmt: skip
for _name, _builder, _about, _shape, _reference, _aliases in _CASE_STUDIES:
    MODELS.add(
        ModelRecord(
            _name,
            _builder,
            _about,
            _shape,
            reference=_reference,
            aliases=_aliases,
            stems=("imagenet", "cifar"),
        )
    )
MODELS.add(ModelRecord("polynomial", polynomial, "sum_k w_k x^k + b, k = 1..degree", (1,)))
MODELS.add(ModelRecord("deep_linear", deep_linear, "z = w4 w3 w2 w1 x (lecture toy)", None))


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model by name; keyword arguments go to its builder."""
    record = MODELS.get(name)
    return record.builder(**{**record.defaults, **kwargs})


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of scalar parameters (trainable ones by default)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def meta_model(name: str, **kwargs: Any) -> nn.Module:
    """The registered model built on the ``meta`` device: shapes without memory or
    random draws, for counting parameters and activations of large networks."""
    with torch.device("meta"):
        return build_model(name, **kwargs)


def parameter_count(name: str, **kwargs: Any) -> int:
    """Parameters of the registered model ``name`` built with ``kwargs`` (on ``meta``)."""
    return count_parameters(meta_model(name, **kwargs), trainable_only=False)


def table() -> tuple[list[str], list[list[str]]]:
    """Rows for ``optimlab list models``: name, input shape (and the CIFAR stem's),
    parameters with the default arguments, description, reference."""
    headers = ["name", "input", "parameters", "description", "reference"]
    rows = []
    for record in MODELS:
        shape = record.input_shape
        if shape is None:
            size, count = "any", "-"
        else:
            size = "x".join(map(str, shape))
            if "cifar" in record.stems:
                size += " (stem=cifar: 3x32x32)"
            count = f"{parameter_count(record.name):,}"
        rows.append([record.name, size, count, record.description, record.reference])
    return headers, rows
