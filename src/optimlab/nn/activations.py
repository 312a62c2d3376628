"""Activation functions by name, with what the gradient-flow diagnostics need to know.

| name | f(x) | largest f'(x) | note |
|---|---|---|---|
| sigmoid | 1/(1+e^-x) | 1/4 at x = 0 | saturates at both ends: vanishing gradients |
| tanh | (e^x - e^-x)/(e^x + e^-x) | 1 at x = 0 | saturates at both ends |
| relu | max(0, x) | 1 for x > 0 | units can die (0 for every input) |
| leaky_relu | x if x > 0 else a*x (a = 0.01) | 1 | Maas et al. 2013 |
| rrelu | leaky, slope ~ U(1/8, 1/3) in training, its mean in eval | 1 | Xu et al. 2015 |
| prelu | leaky with a learned slope (init 0.25) | 1 | He et al. 2015 |
| elu | x if x > 0 else alpha*(e^x - 1) (alpha = 1) | 1 | Clevert et al. 2016 |

``selu``, ``gelu``, ``softplus`` and ``identity`` are registered too. Each record says
whether units of the activation can be "dead" (exactly 0 on a whole batch: relu) or
"saturated" (output within ``saturation`` of its bounds: sigmoid, tanh).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from optimlab.errors import OptimlabError
from optimlab.registry import Registry


@dataclass(frozen=True)
class ActivationRecord:
    """A registered activation: ``builder(**kwargs)`` returns a fresh module."""

    name: str
    builder: Callable[..., nn.Module]
    description: str
    reference: str = ""
    dies: bool = False  # zero on a whole region: units can be dead
    bounds: tuple[float, float] | None = None  # saturating: output range
    defaults: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


ACTIVATIONS: Registry[ActivationRecord] = Registry("activation")
for _record in (
    ActivationRecord("sigmoid", nn.Sigmoid, "1/(1+exp(-x)); f' <= 1/4", bounds=(0.0, 1.0)),
    ActivationRecord("tanh", nn.Tanh, "tanh(x); f' <= 1", bounds=(-1.0, 1.0)),
    ActivationRecord("relu", nn.ReLU, "max(0, x)", "Nair & Hinton 2010", dies=True),
    ActivationRecord(
        "leaky_relu",
        nn.LeakyReLU,
        "x if x > 0 else negative_slope*x",
        "Maas et al. 2013",
        defaults={"negative_slope": 0.01},
        aliases=("lrelu",),
    ),
    ActivationRecord(
        "rrelu",
        nn.RReLU,
        "leaky with a random slope U(lower, upper) in training, the mean in eval",
        "Xu et al. 2015",
        defaults={"lower": 1.0 / 8, "upper": 1.0 / 3},
    ),
    ActivationRecord(
        "prelu",
        nn.PReLU,
        "leaky with a learned slope",
        "He et al. 2015",
        defaults={"num_parameters": 1, "init": 0.25},
    ),
    ActivationRecord(
        "elu",
        nn.ELU,
        "x if x > 0 else alpha*(exp(x)-1)",
        "Clevert et al. 2016",
        defaults={"alpha": 1.0},
    ),
    ActivationRecord("selu", nn.SELU, "scaled ELU", "Klambauer et al. 2017"),
    ActivationRecord("gelu", nn.GELU, "x * Phi(x)", "Hendrycks & Gimpel 2016"),
    ActivationRecord("softplus", nn.Softplus, "log(1 + exp(x))"),
    ActivationRecord("identity", nn.Identity, "x", aliases=("linear",)),
):
    ACTIVATIONS.add(_record)

#: module classes by the record that builds them, for recognizing activations in a model
BY_CLASS: dict[type, ActivationRecord] = {r.builder: r for r in ACTIVATIONS}  # type: ignore[misc]


def available() -> list[str]:
    """Registered activation names (aliases excluded)."""
    return ACTIVATIONS.names(aliases=False)


def make(name: str, **kwargs: Any) -> nn.Module:
    """A fresh activation module by name; ``kwargs`` override its defaults."""
    record = ACTIVATIONS.get(name)
    unknown = set(kwargs) - set(record.defaults)
    if unknown:
        valid = ", ".join(sorted(record.defaults)) or "none"
        raise OptimlabError(
            f"invalid argument(s) {', '.join(sorted(unknown))} for activation "
            f"{record.name!r}; valid arguments: {valid}"
        )
    return record.builder(**{**record.defaults, **kwargs})


def record_of(module: nn.Module) -> ActivationRecord | None:
    """The record of an activation module (None if it is not a registered activation)."""
    return BY_CLASS.get(type(module))
