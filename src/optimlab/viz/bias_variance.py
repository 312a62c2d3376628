"""Bias and variance with polynomial regression (the lectures' Figure 4.5 set-up).

21 noisy samples of 0.5 + x - 2 x^2 on [-1, 1] are fitted by polynomials of growing
degree (least squares), then by a degree-14 polynomial with a ridge penalty
(train and test error against lambda). The ridge objective is

    J(w) = 1/2 ||y - X w||^2 + lambda/2 ||D w||^2,   D = diag(0, 1, ..., 1),

(the intercept is not penalized), minimized by w = (X^T X + lambda D)^-1 X^T y.
``ridge_by_gradient_descent`` reaches the same w with optimlab's SGD on the full batch,
using heavy-ball momentum at Goh's optimal (lr, beta) for J's extreme eigenvalues.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

from optimlab.data.synthetic import polynomial_regression
from optimlab.errors import check_range
from optimlab.optim import SGD
from optimlab.viz import style
from optimlab.viz.momentum_dynamics import optimal_parameters

N_POINTS = 21


@dataclass(frozen=True)
class PolyData:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def data(n_train: int = N_POINTS, noise: float = 0.3, seed: int = 0) -> PolyData:
    """The lectures' few noisy points (float64) and a dense noisy test grid."""
    raw = polynomial_regression(n_train=n_train, noise=noise, data_seed=seed)

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.tensor(np.asarray(a), dtype=torch.float64).reshape(-1)

    return PolyData(t(raw.train_x), t(raw.train_y), t(raw.test_x), t(raw.test_y))


def features(x: torch.Tensor, degree: int) -> torch.Tensor:
    """The Vandermonde matrix [1, x, ..., x^degree] (x in [-1, 1] keeps it bounded)."""
    check_range("degree", degree, 0)
    return torch.stack([x**k for k in range(degree + 1)], dim=1)


def _penalty(degree: int) -> torch.Tensor:
    d = torch.ones(degree + 1, dtype=torch.float64)
    d[0] = 0.0
    return torch.diag(d)


def ridge_closed_form(x: torch.Tensor, y: torch.Tensor, degree: int, lam: float) -> torch.Tensor:
    """argmin J: (X^T X + lambda D)^-1 X^T y; lambda = 0 is least squares (via lstsq)."""
    check_range("lam", lam, 0.0)
    xm = features(x, degree)
    if lam == 0:
        return torch.linalg.lstsq(xm, y[:, None], driver="gelsd").solution[:, 0]
    return torch.linalg.solve(xm.T @ xm + lam * _penalty(degree), xm.T @ y)


def mse(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(((features(x, w.numel() - 1) @ w - y) ** 2).mean())


def degree_curve(d: PolyData, degrees: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Train and test MSE of the least-squares polynomial of each degree."""
    train, test = [], []
    for k in degrees:
        w = ridge_closed_form(d.x_train, d.y_train, k, 0.0)
        train.append(mse(w, d.x_train, d.y_train))
        test.append(mse(w, d.x_test, d.y_test))
    return np.asarray(train), np.asarray(test)


def ridge_curve(
    d: PolyData, lambdas: Sequence[float], degree: int = 14
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test MSE of the ridge solution at each lambda."""
    train, test = [], []
    for lam in lambdas:
        w = ridge_closed_form(d.x_train, d.y_train, degree, lam)
        train.append(mse(w, d.x_train, d.y_train))
        test.append(mse(w, d.x_test, d.y_test))
    return np.asarray(train), np.asarray(test)


def ridge_by_gradient_descent(
    x: torch.Tensor,
    y: torch.Tensor,
    degree: int,
    lam: float,
    *,
    tol: float = 1e-10,
    max_steps: int = 200_000,
) -> tuple[torch.Tensor, int]:
    """``(w, steps)``: optimlab's SGD (full batch, heavy ball at the optimal lr and beta
    for J's Hessian X^T X + lambda D) from w = 0 until the gradient norm is below
    ``tol`` times its initial value."""
    check_range("lam", lam, 0.0, low_open=True)
    xm = features(x, degree)
    evals = torch.linalg.eigvalsh(xm.T @ xm + lam * _penalty(degree))
    lr, beta, _ = optimal_parameters(float(evals[0]), float(evals[-1]))
    w = torch.zeros(degree + 1, dtype=torch.float64, requires_grad=True)
    opt = SGD([w], lr=lr, momentum=beta)
    pen = _penalty(degree).diagonal()
    first = None
    for step in range(max_steps):
        opt.zero_grad()
        objective = 0.5 * ((xm @ w - y) ** 2).sum() + 0.5 * lam * (pen * w * w).sum()
        objective.backward()
        norm = float(w.grad.norm())
        first = first or norm
        if norm <= tol * first:
            return w.detach(), step
        opt.step()
    return w.detach(), max_steps


def plot(
    d: PolyData,
    degrees: Sequence[int] = tuple(range(0, 16)),
    lambdas: Sequence[float] | None = None,
    ridge_degree: int = 14,
) -> Figure:
    """Three panels: fits of low/right/high degree; MSE against degree; MSE against lambda."""
    lambdas = list(lambdas) if lambdas is not None else list(np.logspace(-8, 2, 41))
    fig = style.figure(15.0, 4.4)
    ax_fit, ax_deg, ax_lam = fig.subplots(1, 3)
    grid = torch.linspace(-1, 1, 300, dtype=torch.float64)
    ax_fit.scatter(d.x_train, d.y_train, color="black", s=14, zorder=3, label="train")
    for i, k in enumerate((1, 2, ridge_degree)):
        w = ridge_closed_form(d.x_train, d.y_train, k, 0.0)
        ax_fit.plot(grid, features(grid, k) @ w, color=style.PALETTE[i], label=f"degree {k}")
    ax_fit.set_ylim(float(d.y_train.min()) - 1, float(d.y_train.max()) + 1)
    ax_fit.set_title(f"least-squares fits to {len(d.x_train)} points")
    ax_fit.legend(fontsize=8)
    train, test = degree_curve(d, degrees)
    ax_deg.plot(degrees, train, marker="o", color=style.PALETTE[0], label="train")
    ax_deg.plot(degrees, test, marker="s", color=style.PALETTE[1], label="test")
    ax_deg.set_yscale("log")
    ax_deg.set_xlabel("degree")
    ax_deg.set_ylabel("MSE")
    ax_deg.set_title("bias falls, variance rises with degree")
    ax_deg.legend(fontsize=8)
    train, test = ridge_curve(d, lambdas, ridge_degree)
    ax_lam.plot(lambdas, train, color=style.PALETTE[0], label="train")
    ax_lam.plot(lambdas, test, color=style.PALETTE[1], label="test")
    ax_lam.set_xscale("log")
    ax_lam.set_yscale("log")
    ax_lam.set_xlabel("lambda")
    ax_lam.set_ylabel("MSE")
    ax_lam.set_title(f"ridge, degree {ridge_degree}")
    ax_lam.legend(fontsize=8)
    for ax in (ax_fit, ax_deg, ax_lam):
        ax.grid(True, alpha=0.3, linewidth=0.6)
    fig.suptitle("bias and variance: polynomial regression (true curve 0.5 + x - 2 x^2)")
    return fig
