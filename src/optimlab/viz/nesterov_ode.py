"""Nesterov's method as an ODE (Su, Boyd & Candes 2016; lecture 003).

As the step size ``s`` goes to 0, NAG-C's iterates ``x_k`` follow the solution of

.. code-block:: text

    X''(t) + (3/t) X'(t) + grad f(X(t)) = 0,    X(0) = x_0,  X'(0) = 0

at the times ``t = k sqrt(s)`` (their Theorem 2): the step is ``sqrt(s)`` in time, not
``s`` as for gradient descent and gradient flow. The damping ``3/t`` fades, so the
trajectory overshoots and oscillates; the iterates track it with an error of order
``sqrt(s)``, which ``max_deviation`` measures.

``ode_path`` solves the ODE with SciPy's ``solve_ivp``. The equation is singular at
``t = 0``: the solve starts at a small ``t_0`` from the series ``X(t) = x_0 - t^2/(2(r+1))
grad f(x_0) + O(t^4)``. ``nag_c_path`` runs optimlab's ``NAGC``. On a quadratic with
eigenvalue ``lambda`` the solution is ``2 J_1(sqrt(lambda) t) / (sqrt(lambda) t)`` times the
start along that eigenvector (with ``r = 3``), which the tests hold ``ode_path`` to.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from optimlab.errors import OptimlabError, check_range
from optimlab.optim import NAGC
from optimlab.viz import style

Objective = Callable[[Tensor], Tensor]

# Su, Boyd & Candes' Figure 1: f = 0.02 x1^2 + 0.005 x2^2 from (1, 1).
SU_CURVATURES = (0.04, 0.01)
SU_START = (1.0, 1.0)


def su_quadratic(x: Tensor) -> Tensor:
    """``0.02 x_1^2 + 0.005 x_2^2``, the quadratic of Su, Boyd & Candes' Figure 1."""
    return 0.5 * (torch.as_tensor(SU_CURVATURES, dtype=x.dtype) * x * x).sum()


def gradient(f: Objective) -> Callable[[np.ndarray], np.ndarray]:
    """``grad f`` on float64 NumPy vectors, by autograd."""

    def grad(x: np.ndarray) -> np.ndarray:
        w = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(f(w), w)
        return g.numpy()

    return grad


def ode_path(
    f: Objective,
    x0: Sequence[float],
    times: Sequence[float],
    *,
    r: float = 3.0,
    rtol: float = 1e-10,
    atol: float = 1e-12,
) -> np.ndarray:
    """``X(t)`` at ``times`` (shape ``(len(times), d)``) for ``X'' + (r/t) X' + grad f(X) = 0``,
    ``X(0) = x0``, ``X'(0) = 0``, by ``scipy.integrate.solve_ivp`` (DOP853)."""
    from scipy.integrate import solve_ivp

    check_range("r", r, 0.0, low_open=True)
    x0 = np.asarray(x0, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    if t.ndim != 1 or len(t) == 0 or t.min() < 0:
        raise OptimlabError("invalid times: expected a non-empty list of times >= 0")
    grad = gradient(f)
    g0 = grad(x0)
    t_end = float(t.max())
    out = np.empty((len(t), len(x0)))
    # Start where the series' t^4 term is far below the tolerances.
    t0 = min(1e-4, t_end / 2) if t_end > 0 else 0.0
    early = t <= t0
    out[early] = x0 - np.outer(t[early] ** 2, g0) / (2 * (r + 1))
    if early.all():
        return out
    d = len(x0)

    def rhs(time: float, z: np.ndarray) -> np.ndarray:
        x, v = z[:d], z[d:]
        return np.concatenate([v, -(r / time) * v - grad(x)])

    start = np.concatenate([x0 - t0**2 / (2 * (r + 1)) * g0, -t0 / (r + 1) * g0])
    sol = solve_ivp(rhs, (t0, t_end), start, method="DOP853", t_eval=t[~early], rtol=rtol,
                    atol=atol)  # fmt: skip
    if not sol.success:
        raise OptimlabError(f"the ODE solve failed: {sol.message}")
    out[~early] = sol.y[:d].T
    return out


def nag_c_path(
    f: Objective, x0: Sequence[float], s: float, steps: int, *, r: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    """``(times, iterates)``: NAG-C's parameters ``x_0, ..., x_steps`` (optimlab's ``NAGC``
    with ``lr = s``, float64) and their ODE times ``k sqrt(s)``."""
    check_range("s", s, 0.0, low_open=True)
    check_range("steps", steps, 0)
    w = torch.tensor(list(x0), dtype=torch.float64, requires_grad=True)
    opt = NAGC([w], lr=s, r=r)
    path = [w.detach().clone()]
    for _ in range(int(steps)):
        opt.zero_grad()
        f(w).backward()
        opt.step()
        path.append(w.detach().clone())
    return np.arange(int(steps) + 1) * np.sqrt(s), torch.stack(path).numpy()


@dataclass(frozen=True)
class Tracking:
    """NAG-C's iterates at one step size against the ODE at the same times."""

    s: float
    times: np.ndarray
    iterates: np.ndarray
    ode: np.ndarray

    @property
    def max_deviation(self) -> float:
        """``max_k ||x_k - X(k sqrt(s))||``."""
        return float(np.linalg.norm(self.iterates - self.ode, axis=1).max())


def track(f: Objective, x0: Sequence[float], s: float, t_end: float, *, r: float = 3.0) -> Tracking:
    """NAG-C with step ``s`` for ``t_end / sqrt(s)`` steps, and the ODE at those times."""
    check_range("t_end", t_end, 0.0, low_open=True)
    times, iterates = nag_c_path(f, x0, s, int(t_end / np.sqrt(s)), r=r)
    return Tracking(s, times, iterates, ode_path(f, x0, times, r=r))


def max_deviation(f: Objective, x0: Sequence[float], s: float, t_end: float) -> float:
    """``max ||x_k - X(k sqrt(s))||`` over ``k sqrt(s) <= t_end``: of order ``sqrt(s)``."""
    return track(f, x0, s, t_end).max_deviation


def plot_nag_ode(
    f: Objective = su_quadratic,
    x0: Sequence[float] = SU_START,
    step_sizes: Sequence[float] = (1.0, 0.25, 0.05),
    t_end: float = 300.0,
) -> Figure:
    """Su, Boyd & Candes' Figure 1: NAG-C's iterates for several step sizes and the ODE's
    solution, as a path in the first two coordinates and the first coordinate against
    time ``t = k sqrt(s)``, with each step size's largest deviation in the legend."""
    if not step_sizes:
        raise OptimlabError("invalid step_sizes: expected at least one step size")
    runs = [track(f, x0, s, t_end) for s in step_sizes]
    fine = np.linspace(0.0, t_end, 2000)
    exact = ode_path(f, x0, fine)
    fig = style.figure(11.0, 4.6)
    ax_path, ax_time = fig.subplots(1, 2)
    for i, run in enumerate(runs):
        colour = style.PALETTE[i % len(style.PALETTE)]
        label = f"NAG-C, s = {run.s:g} (max dev {run.max_deviation:.3g})"
        if run.iterates.shape[1] > 1:
            ax_path.plot(run.iterates[:, 0], run.iterates[:, 1], marker=".", markersize=2,
                         linewidth=0.6, color=colour, label=label)  # fmt: skip
        ax_time.plot(run.times, run.iterates[:, 0], marker=".", markersize=2, linewidth=0.6,
                     color=colour, label=label)  # fmt: skip
    ode_label = "ODE  X'' + (3/t) X' + grad f(X) = 0"
    if exact.shape[1] > 1:
        ax_path.plot(exact[:, 0], exact[:, 1], color="black", linewidth=1.4, label=ode_label)
        ax_path.set_xlabel("x1")
        ax_path.set_ylabel("x2")
        ax_path.set_title("trajectories")
        ax_path.legend(fontsize=7)
    else:
        ax_path.set_visible(False)
    ax_time.plot(fine, exact[:, 0], color="black", linewidth=1.4, label=ode_label)
    ax_time.set_xlabel("t = k sqrt(s)")
    ax_time.set_ylabel("x1")
    ax_time.set_title("first coordinate against time")
    ax_time.axhline(0.0, color="0.6", linewidth=0.6)
    ax_time.legend(fontsize=7)
    fig.suptitle("Nesterov's method (NAG-C) and its ODE (Su, Boyd & Candes 2016)")
    return fig
