"""Two-dimensional test functions for optimizer trajectories, and a model wrapping them.

Each ``Function2D`` evaluates f(x, y) on tensors (elementwise, any shape), knows its
global minima and value, a customary start point and a plotting window. As a model,
``PointModel`` holds the 2-D point as its one parameter; its output is f(point),
whatever "data" it is given, so the ``objective`` loss is that value itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from optimlab.registry import Registry

XY = tuple[float, float]


@dataclass(frozen=True)
class Function2D:
    """A scalar function of two variables with its landmarks."""

    name: str
    f: Callable[[Tensor, Tensor], Tensor]
    description: str
    minima: tuple[XY, ...]  # global minima (empty when unbounded below)
    min_value: float | None
    start: XY
    xlim: XY
    ylim: XY
    saddles: tuple[XY, ...] = ()
    log_scale: bool = False  # contour levels read better on a log scale
    reference: str = ""
    aliases: tuple[str, ...] = ()

    def __call__(self, xy: Tensor) -> Tensor:
        """f at points ``xy`` of shape (..., 2)."""
        return self.f(xy[..., 0], xy[..., 1])

    def grid(self, n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, Y, Z)`` numpy arrays over the plotting window, for contour plots."""
        xs = torch.linspace(*self.xlim, n, dtype=torch.float64)
        ys = torch.linspace(*self.ylim, n, dtype=torch.float64)
        gx, gy = torch.meshgrid(xs, ys, indexing="xy")
        return gx.numpy(), gy.numpy(), self.f(gx, gy).numpy()


def rosenbrock(x: Tensor, y: Tensor) -> Tensor:
    """(1 - x)^2 + 100 (y - x^2)^2: a curved, flat-bottomed valley."""
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def beale(x: Tensor, y: Tensor) -> Tensor:
    """(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2."""
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def saddle(x: Tensor, y: Tensor) -> Tensor:
    """x^2 - y^2: a saddle at the origin, unbounded below along y."""
    return x**2 - y**2


RAVINE_CURVATURES = (0.1, 10.0)  # condition number 100


def ravine(x: Tensor, y: Tensor) -> Tensor:
    """0.5 (0.1 x^2 + 10 y^2): an ill-conditioned quadratic (condition number 100)."""
    a, b = RAVINE_CURVATURES
    return 0.5 * (a * x**2 + b * y**2)


def himmelblau(x: Tensor, y: Tensor) -> Tensor:
    """(x^2 + y - 11)^2 + (x + y^2 - 7)^2: four global minima of value 0."""
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


def rastrigin(x: Tensor, y: Tensor) -> Tensor:
    """20 + x^2 - 10 cos(2 pi x) + y^2 - 10 cos(2 pi y): a grid of local minima."""
    two_pi = 2 * math.pi
    return 20 + x**2 - 10 * torch.cos(two_pi * x) + y**2 - 10 * torch.cos(two_pi * y)


FUNCTIONS: Registry[Function2D] = Registry("function")
for _fn in (
    Function2D(
        "rosenbrock",
        rosenbrock,
        "banana valley; minimum 0 at (1, 1)",
        ((1.0, 1.0),),
        0.0,
        (-1.2, 1.0),
        (-2.0, 2.0),
        (-1.0, 3.0),
        log_scale=True,
        reference="Rosenbrock 1960",
    ),
    Function2D(
        "beale",
        beale,
        "flat plateaus, sharp ridges; minimum 0 at (3, 0.5)",
        ((3.0, 0.5),),
        0.0,
        (1.0, 1.5),
        (-4.5, 4.5),
        (-4.5, 4.5),
        log_scale=True,
        reference="Beale 1958",
    ),
    Function2D(
        "saddle",
        saddle,
        "x^2 - y^2; saddle point at (0, 0), no minimum",
        (),
        None,
        (1.0, 1e-3),
        (-1.5, 1.5),
        (-1.5, 1.5),
        saddles=((0.0, 0.0),),
    ),
    Function2D(
        "ravine",
        ravine,
        "0.5 (0.1 x^2 + 10 y^2), condition number 100; minimum 0 at (0, 0)",
        ((0.0, 0.0),),
        0.0,
        (-8.0, 1.0),
        (-10.0, 10.0),
        (-3.0, 3.0),
    ),
    Function2D(
        "himmelblau",
        himmelblau,
        "four minima of value 0",
        (
            (3.0, 2.0),
            (-2.805118086952745, 3.131312518250573),
            (-3.779310253377747, -3.2831859912861696),
            (3.5844283403304917, -1.8481265269644034),
        ),
        0.0,
        (0.0, 0.0),
        (-5.0, 5.0),
        (-5.0, 5.0),
        log_scale=True,
        reference="Himmelblau 1972",
    ),
    Function2D(
        "rastrigin",
        rastrigin,
        "many local minima; global minimum 0 at (0, 0)",
        ((0.0, 0.0),),
        0.0,
        (-3.1, 2.6),
        (-5.12, 5.12),
        (-5.12, 5.12),
        reference="Rastrigin 1974",
    ),
):
    FUNCTIONS.add(_fn)


class PointModel(nn.Module):
    """A 2-D point as the only parameter; ``forward`` returns f(point) as a 0-d tensor.

    The input is ignored (it may be None or any batch), so a trainer can treat the
    function like any model; pair it with the ``objective`` loss.
    """

    def __init__(self, function: Function2D, start: XY | None = None) -> None:
        super().__init__()
        self.function = function
        self.point = nn.Parameter(torch.tensor(start or function.start, dtype=torch.float32))

    def forward(self, x: object = None) -> Tensor:
        del x
        return self.function(self.point)

    def extra_repr(self) -> str:
        return f"function={self.function.name}"
