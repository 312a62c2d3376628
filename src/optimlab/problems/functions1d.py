"""One-dimensional test functions where an optimizer's theory is decided: the function,
its gradient as the paper writes it, its smoothness ``L`` and strong convexity ``mu``.

``lessard`` is Lessard, Recht & Packard's counterexample (2016, "Analysis and Design of
Optimization Algorithms via Integral Quadratic Constraints", SIAM J. Optim. 26(1)):
a 1-strongly convex, 25-smooth function, quadratic on three pieces, on which the
heavy-ball method with the parameters that are optimal on every quadratic with
curvatures in ``[mu, L]`` (Polyak's; Goh's ``optimal_parameters``) does not converge: from
``x_0`` in ``[3.07, 3.46]`` (started at rest) its iterates settle on a cycle of period 3,
while Nesterov's method (``nag_sc`` with ``lr = 1/L``) converges from anywhere.
Lecture 003 quotes the result ("even for strongly convex functions the method can fail
to converge").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from optimlab.registry import Registry


@dataclass(frozen=True)
class Function1D:
    """A scalar function of one variable with the constants its theory needs."""

    name: str
    f: Callable[[Tensor], Tensor]
    grad: Callable[[Tensor], Tensor]
    description: str
    L: float  # the gradient's Lipschitz constant
    mu: float  # the strong-convexity constant (0 if only convex)
    minimum: float
    min_value: float
    start: float
    reference: str = ""
    aliases: tuple[str, ...] = ()

    def __call__(self, x: Tensor) -> Tensor:
        """f, elementwise."""
        return self.f(x)

    def heavy_ball_parameters(self) -> tuple[float, float]:
        """``(lr, momentum)`` of the heavy ball that is optimal on quadratics with
        curvatures in ``[mu, L]``: ``4/(sqrt(L) + sqrt(mu))^2`` and
        ``((sqrt(kappa) - 1)/(sqrt(kappa) + 1))^2``, ``kappa = L/mu``."""
        root_kappa = math.sqrt(self.L / self.mu)
        lr = 4 / (math.sqrt(self.L) + math.sqrt(self.mu)) ** 2
        return lr, ((root_kappa - 1) / (root_kappa + 1)) ** 2


def lessard(x: Tensor) -> Tensor:
    """``25/2 x^2`` for ``x < 1``; ``1/2 x^2 + 24 x - 12`` on ``[1, 2)``;
    ``25/2 x^2 - 24 x + 36`` for ``x >= 2``: continuous with a continuous gradient."""
    return torch.where(
        x < 1, 12.5 * x**2, torch.where(x < 2, 0.5 * x**2 + 24 * x - 12, 12.5 * x**2 - 24 * x + 36)
    )


def lessard_grad(x: Tensor) -> Tensor:
    """The paper's equation: ``grad f(x) = 25 x`` for ``x < 1``, ``x + 24`` for
    ``1 <= x < 2``, ``25 x - 24`` for ``x >= 2``."""
    return torch.where(x < 1, 25 * x, torch.where(x < 2, x + 24, 25 * x - 24))


FUNCTIONS_1D: Registry[Function1D] = Registry("1-D function")
FUNCTIONS_1D.add(
    Function1D(
        "lessard",
        lessard,
        lessard_grad,
        "piecewise quadratic, mu = 1, L = 25; heavy ball with quadratic-optimal lr and "
        "momentum cycles, Nesterov converges; minimum 0 at 0",
        L=25.0,
        mu=1.0,
        minimum=0.0,
        min_value=0.0,
        start=3.3,
        reference="Lessard, Recht & Packard 2016",
        aliases=("heavy_ball_counterexample",),
    )
)
