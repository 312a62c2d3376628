"""Weight initializers by name, applied to every Linear and Conv layer of a model.

``apply(model, "he_normal", bias=0.0)`` draws the weight of every ``nn.Linear`` and
``nn.Conv1d/2d/3d`` (transposed convolutions included) from the named scheme and sets
their biases to ``bias``. Normalization layers keep their own init (scale 1, shift 0).

Fans follow torch's convention (``torch.nn.init``): for a weight of shape
``(out, in, *kernel)``, ``fan_in = in * prod(kernel)`` and ``fan_out = out * prod(kernel)``;
a Linear weight (out, in) has ``fan_in = in``, ``fan_out = out``. A transposed
convolution stores ``(in, out/groups, *kernel)``, so as in torch its "fan_in" counts the
layer's output channels.

| name | distribution | reference |
|---|---|---|
| zeros / constant | w = 0 / w = value | (symmetric: units never differ) |
| normal_0.01 | N(0, 0.01^2): std 0.01, variance 1e-4 | Krizhevsky et al. 2012 |
| lecun_normal / lecun_uniform | Var = 1/fan_in; U(+-sqrt(3/fan_in)) | LeCun et al. 1998 |
| glorot_normal / _uniform | Var = 2/(fan_in+fan_out); U(+-sqrt(6/(fan_in+fan_out))) | Glorot 2010 |
| he_normal / he_uniform | Var = 2/fan_in; U(+-sqrt(6/fan_in)) | He et al. 2015 |
| orthogonal | W (out, in*k) with orthonormal rows or columns, times gain | Saxe et al. 2014 |
| lsuv | orthogonal, then per layer W /= sqrt(Var(out)) on a batch | Mishkin & Matas 2016 |

The "normal" schemes are plain (untruncated) Gaussians.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from optimlab.errors import OptimlabError, check_range
from optimlab.registry import Registry

#: the layer types whose weights ``apply`` initializes
WEIGHTED = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


def fans(weight: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight tensor, computed as ``torch.nn.init`` does."""
    if weight.dim() < 2:
        raise OptimlabError(
            f"invalid weight shape {tuple(weight.shape)}: fans need at least 2 dimensions"
        )
    receptive = math.prod(weight.shape[2:]) if weight.dim() > 2 else 1
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def _normal(std_of: Callable[[int, int], float]) -> Callable[..., None]:
    def init(weight: Tensor, generator: torch.Generator | None = None) -> None:
        fi, fo = fans(weight)
        with torch.no_grad():
            weight.normal_(0.0, std_of(fi, fo), generator=generator)

    return init


def _uniform(limit_of: Callable[[int, int], float]) -> Callable[..., None]:
    def init(weight: Tensor, generator: torch.Generator | None = None) -> None:
        fi, fo = fans(weight)
        limit = limit_of(fi, fo)
        with torch.no_grad():
            weight.uniform_(-limit, limit, generator=generator)

    return init


def zeros(weight: Tensor, generator: torch.Generator | None = None) -> None:
    """w = 0 (every unit computes the same thing and gets the same gradient)."""
    with torch.no_grad():
        weight.zero_()


def constant(weight: Tensor, value: float = 0.0, generator: torch.Generator | None = None) -> None:
    """w = value."""
    with torch.no_grad():
        weight.fill_(float(value))


def normal_001(weight: Tensor, generator: torch.Generator | None = None) -> None:
    """N(0, 0.01^2): 0.01 is the standard deviation, as in Krizhevsky et al. 2012."""
    with torch.no_grad():
        weight.normal_(0.0, 0.01, generator=generator)


def orthogonal(weight: Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> None:
    """A (semi-)orthogonal weight (Saxe et al. 2014), times ``gain``.

    The weight is viewed as a matrix W of shape (out, in*prod(kernel)); W W^T = gain^2 I
    when out <= in*prod(kernel), else W^T W = gain^2 I. Drawn as the Q factor of a
    Gaussian matrix with the signs of R's diagonal folded in, which makes Q uniform
    (Haar) over the orthogonal matrices.
    """
    rows = weight.shape[0]
    cols = weight.numel() // rows
    a = torch.randn(max(rows, cols), min(rows, cols), generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones(()))
    if rows < cols:
        q = q.T
    with torch.no_grad():
        weight.copy_((gain * q).reshape(weight.shape).to(weight.dtype))


@dataclass(frozen=True)
class InitRecord:
    """A registered initializer: ``fn(weight, **kwargs, generator=None)`` fills in place."""

    name: str
    fn: Callable[..., None]
    description: str
    reference: str = ""
    needs_data: bool = False
    defaults: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


INITIALIZERS: Registry[InitRecord] = Registry("initializer")
for _record in (
    InitRecord("zeros", zeros, "w = 0"),
    InitRecord("constant", constant, "w = value", defaults={"value": 0.0}),
    InitRecord(
        "normal_0.01",
        normal_001,
        "N(0, 0.01^2), std 0.01",
        "Krizhevsky et al. 2012",
        aliases=("normal", "gaussian"),
    ),
    InitRecord(
        "lecun_normal",
        _normal(lambda fi, fo: math.sqrt(1.0 / fi)),
        "N(0, 1/fan_in)",
        "LeCun et al. 1998",
    ),
    InitRecord(
        "lecun_uniform",
        _uniform(lambda fi, fo: math.sqrt(3.0 / fi)),
        "U(-sqrt(3/fan_in), sqrt(3/fan_in)): variance 1/fan_in",
        "LeCun et al. 1998",
    ),
    InitRecord(
        "glorot_normal",
        _normal(lambda fi, fo: math.sqrt(2.0 / (fi + fo))),
        "N(0, 2/(fan_in + fan_out))",
        "Glorot & Bengio 2010",
        aliases=("xavier_normal",),
    ),
    InitRecord(
        "glorot_uniform",
        _uniform(lambda fi, fo: math.sqrt(6.0 / (fi + fo))),
        "U(+-sqrt(6/(fan_in + fan_out))): variance 2/(fan_in + fan_out)",
        "Glorot & Bengio 2010",
        aliases=("xavier_uniform", "glorot", "xavier"),
    ),
    InitRecord(
        "he_normal",
        _normal(lambda fi, fo: math.sqrt(2.0 / fi)),
        "N(0, 2/fan_in)",
        "He et al. 2015",
        aliases=("kaiming_normal", "he"),
    ),
    InitRecord(
        "he_uniform",
        _uniform(lambda fi, fo: math.sqrt(6.0 / fi)),
        "U(+-sqrt(6/fan_in)): variance 2/fan_in",
        "He et al. 2015",
        aliases=("kaiming_uniform",),
    ),
    InitRecord(
        "orthogonal",
        orthogonal,
        "semi-orthogonal W (out, in*k), times gain",
        "Saxe et al. 2014",
        defaults={"gain": 1.0},
    ),
    InitRecord(
        "lsuv",
        orthogonal,
        "orthogonal, then W /= sqrt(Var(layer output)) per layer on a batch",
        "Mishkin & Matas 2016",
        needs_data=True,
        defaults={"tol": 0.1, "max_tries": 10},
    ),
):
    INITIALIZERS.add(_record)


def available() -> list[str]:
    """Registered initializer names (aliases excluded)."""
    return INITIALIZERS.names(aliases=False)


def weighted_layers(model: nn.Module) -> list[nn.Module]:
    """The Linear/Conv layers of ``model`` in registration order."""
    return [m for m in model.modules() if isinstance(m, WEIGHTED)]


def apply(
    model: nn.Module,
    name: str,
    bias: float | None = 0.0,
    *,
    data: Tensor | None = None,
    generator: torch.Generator | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Initialize every Linear/Conv weight of ``model`` with the scheme ``name``.

    ``bias`` fills the biases (None leaves them as they are). ``kwargs`` go to the scheme
    (``value`` for constant, ``gain`` for orthogonal, ``tol``/``max_tries`` for lsuv).
    LSUV needs ``data``, a batch of inputs. Returns the model.
    """
    record = INITIALIZERS.get(name)
    unknown = set(kwargs) - set(record.defaults)
    if unknown:
        valid = ", ".join(sorted(record.defaults)) or "none"
        raise OptimlabError(
            f"invalid argument(s) {', '.join(sorted(unknown))} for initializer "
            f"{record.name!r}; valid arguments: {valid}"
        )
    params = {**record.defaults, **kwargs}
    layers = weighted_layers(model)
    if not layers:
        raise OptimlabError("invalid model: it has no Linear or Conv layer to initialize")
    if record.needs_data:
        if data is None:
            raise OptimlabError(f"initializer {record.name!r} needs data=<a batch of inputs>")
        lsuv(model, data, bias=bias, generator=generator, **params)
        return model
    for layer in layers:
        record.fn(layer.weight, generator=generator, **params)
        if bias is not None and layer.bias is not None:
            with torch.no_grad():
                layer.bias.fill_(float(bias))
    return model


def lsuv(
    model: nn.Module,
    data: Tensor,
    *,
    tol: float = 0.1,
    max_tries: int = 10,
    bias: float | None = 0.0,
    generator: torch.Generator | None = None,
) -> list[float]:
    """Layer-sequential unit-variance init (Mishkin & Matas 2016), in place.

    Every Linear/Conv weight is first made orthogonal; then, layer by layer in forward
    order, the model is run on ``data`` and the layer's weight is divided by the standard
    deviation of its output until ``|Var(output) - 1| < tol`` or ``max_tries`` rescalings
    were made. Returns each layer's final output variance. The model runs in its current
    mode; with batch norm after a layer, the variance measured is the layer's own output,
    before the normalization.
    """
    check_range("tol", tol, 0.0, None, low_open=True)
    if isinstance(max_tries, bool) or not isinstance(max_tries, int) or max_tries < 1:
        raise OptimlabError(f"invalid max_tries: {max_tries!r}; valid values are integers >= 1")
    layers = weighted_layers(model)
    for layer in layers:
        orthogonal(layer.weight, generator=generator)
        if bias is not None and layer.bias is not None:
            with torch.no_grad():
                layer.bias.fill_(float(bias))
    variances: list[float] = []
    for layer in layers:
        seen: list[Tensor] = []
        handle = layer.register_forward_hook(lambda m, i, out, seen=seen: seen.append(out.detach()))
        try:
            var = math.nan
            with torch.no_grad():
                for attempt in range(max_tries + 1):
                    seen.clear()
                    model(data)
                    if not seen:
                        break  # the layer is not on the forward path of this input
                    var = float(seen[-1].float().var())
                    if abs(var - 1.0) < tol or attempt == max_tries or var <= 0:
                        break
                    layer.weight.div_(math.sqrt(var))
        finally:
            handle.remove()
        variances.append(var)
    return variances
