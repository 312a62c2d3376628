"""Momentum on quadratics (Goh, "Why Momentum Really Works", Distill 2017).

On f(w) = 1/2 sum_i l_i w_i^2 heavy-ball momentum (torch form b <- beta b + g,
w <- w - lr b) acts on each eigen-direction through the 2x2 matrix

    [[1 - lr l, -lr beta], [l, beta]]   on (w, b),

whose eigenvalues z solve z^2 - (1 + beta - lr l) z + beta = 0. The error contracts by
max ``|z|`` per step; it converges iff 0 < lr l < 2 + 2 beta and 0 <= beta < 1. With
kappa = l_n / l_1 the best choice is lr = (2 / (sqrt(l_1) + sqrt(l_n)))^2,
beta = ((sqrt(l_n) - sqrt(l_1)) / (sqrt(l_n) + sqrt(l_1)))^2, with rate
(sqrt(kappa) - 1) / (sqrt(kappa) + 1).

The rates drawn here are measured by running optimlab's SGD with momentum, not read
off the formula: ``measured_rate`` runs it and fits the per-step contraction of the
error norm over the second half of the run.

Goh's five regimes of one eigen-direction (lecture 001's "Phase space along a single
eigenvector"), read off the roots ``z`` of the 2x2 matrix (``regime``):

* ripples: a complex pair, ``|z| = sqrt(beta)`` whatever ``lr`` and ``l`` are (the
  product of the roots is ``beta``): the error contracts by ``sqrt(beta)`` per step
  (``ripple_rate``). The lecture's slide, quoting Goh's article, prints the rate as
  ``2 sqrt(beta)``, which exceeds 1 for ``beta > 1/4`` and so cannot be a contraction
  factor; the spectral radius, and the rate measured by running SGD, is ``sqrt(beta)``.
* monotonic decrease: real positive roots inside the unit circle.
* one-step convergence: ``lr = 1/l`` and ``beta = 0``, where both roots are 0 and one
  step lands on the minimum along that direction.
* oscillation: a negative dominant root (``lr > 1/l`` with small ``beta``): the sign
  flips every step.
* divergence: ``max |z| >= 1``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np
import torch
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from optimlab.errors import check_range
from optimlab.optim import SGD
from optimlab.viz import style

REGIMES = ("ripples", "monotonic", "one_step", "oscillation", "divergence")


def optimal_parameters(l_min: float, l_max: float) -> tuple[float, float, float]:
    """``(lr, beta, rate)`` of the optimal heavy ball for eigenvalues in [l_min, l_max]."""
    check_range("l_min", l_min, 0.0, low_open=True)
    check_range("l_max", l_max, l_min)
    s1, sn = math.sqrt(l_min), math.sqrt(l_max)
    lr = (2 / (s1 + sn)) ** 2
    beta = ((sn - s1) / (sn + s1)) ** 2
    kappa = l_max / l_min
    return lr, beta, (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)


def _run(curvatures: torch.Tensor, beta: float, lr: float, steps: int) -> torch.Tensor:
    """Error norms ||w_t|| (t = 0..steps) of SGD(momentum=beta, lr) on 1/2 sum c w^2,
    from w_0 = 1 in every coordinate; ``curvatures`` has shape (..., d)."""
    w = torch.ones_like(curvatures, requires_grad=True)
    opt = SGD([w], lr=lr, momentum=beta)
    norms = [w.detach().norm(dim=-1)]
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (curvatures * w * w).sum()).backward()
        opt.step()
        norms.append(w.detach().norm(dim=-1))
    return torch.stack(norms)


def _fit_rate(norms: torch.Tensor) -> torch.Tensor:
    # The second half skips the transient; a critically damped (Jordan) mode decays as
    # t r^t, which biases the fit by a factor 2^(2/steps) at most.
    half = (norms.shape[0] - 1) // 2
    first, last = norms[half], norms[-1]
    rate = (last / first) ** (1.0 / (norms.shape[0] - 1 - half))
    rate = torch.where(first == 0, torch.zeros_like(rate), rate)  # converged exactly
    return torch.where(torch.isfinite(rate), rate, torch.full_like(rate, math.inf))


def measured_rate(eigenvalues: Sequence[float], lr: float, beta: float, steps: int = 400) -> float:
    """Per-step contraction of ||w_t - w*|| under optimlab's SGD(momentum=beta, lr) on the
    quadratic with these eigenvalues (from w_0 = (1, ..., 1); > 1 means divergence)."""
    check_range("lr", lr, 0.0, low_open=True)
    check_range("beta", beta, 0.0, 1.0, high_open=True)
    check_range("steps", steps, 2)
    c = torch.tensor(list(eigenvalues), dtype=torch.float64)
    return float(_fit_rate(_run(c, beta, lr, steps)))


@dataclass(frozen=True)
class RateMap:
    """Measured rates ``rates[i, j]`` at ``lrs[j]``, ``betas[i]`` on eigenvalues (l1, ln)."""

    lrs: np.ndarray
    betas: np.ndarray
    rates: np.ndarray
    eigenvalues: tuple[float, float]


def rate_map(
    l_min: float = 1.0,
    l_max: float = 100.0,
    *,
    n_lr: int = 60,
    n_beta: int = 60,
    steps: int = 300,
) -> RateMap:
    """The measured rate over a grid of lr in (0, 2.2 * (2+2*0.99)/l_max] x beta in [0, 0.99].

    The dynamics depend on lr and l only through lr*l, so each row (one beta) runs one
    SGD at lr = 1 on a (n_lr, 2) parameter whose curvatures are lr_j * (l_min, l_max):
    the same iterates as n_lr separate runs, at the cost of one.
    """
    check_range("n_lr", n_lr, 2)
    check_range("n_beta", n_beta, 2)
    lrs = np.linspace(4.0 / l_max / n_lr, 4.0 / l_max, n_lr)
    betas = np.linspace(0.0, 0.99, n_beta)
    scaled = torch.tensor(lrs, dtype=torch.float64)[:, None] * torch.tensor(
        [l_min, l_max], dtype=torch.float64
    )
    rows = [_fit_rate(_run(scaled, float(beta), 1.0, steps)).numpy() for beta in betas]
    return RateMap(lrs, betas, np.stack(rows), (l_min, l_max))


def iteration_matrix(lr_l: float, beta: float) -> np.ndarray:
    """The 2x2 matrix of one heavy-ball step on (w, b) along an eigen-direction with
    eigenvalue l, scaled to l = 1 (the dynamics depend on lr and l only through lr l)."""
    return np.array([[1.0 - lr_l, -lr_l * beta], [1.0, beta]])


def spectral_radius(lr_l: float, beta: float) -> float:
    """max ``|z|`` over the roots of z^2 - (1 + beta - lr l) z + beta (the exact rate)."""
    roots = np.roots([1.0, -(1.0 + beta - lr_l), beta])
    return float(np.abs(roots).max())


def ripple_rate(beta: float) -> float:
    """``sqrt(beta)``: the contraction per step in the ripples regime (complex roots),
    the modulus of each root of the pair; it does not depend on ``lr`` or ``l``."""
    check_range("beta", beta, 0.0, 1.0, high_open=True)
    return math.sqrt(beta)


def regime(lr_l: float, beta: float) -> str:
    """Goh's five regimes of one eigen-direction, from the roots of the 2x2 matrix."""
    radius = spectral_radius(lr_l, beta)
    if radius >= 1.0:
        return "divergence"
    if radius == 0.0:
        return "one_step"  # z^2 = 0: only lr l = 1 with beta = 0
    disc = (1.0 + beta - lr_l) ** 2 - 4.0 * beta
    if disc < 0:
        return "ripples"  # complex pair: a decaying oscillation of longer period
    dominant = max(np.roots([1.0, -(1.0 + beta - lr_l), beta]).real, key=abs)
    return "monotonic" if dominant > 0 else "oscillation"


# One example per regime: (lr * l, beta).
REGIME_EXAMPLES = {
    "ripples": (0.05, 0.9),
    "monotonic": (0.05, 0.3),
    "one_step": (1.0, 0.0),
    "oscillation": (1.8, 0.05),
    "divergence": (3.9, 0.9),
}


def direction_path(lr_l: float, beta: float, steps: int = 60) -> np.ndarray:
    """w_t (t = 0..steps) on f = 1/2 w^2 under optimlab's SGD(momentum=beta, lr=lr_l)."""
    w = torch.ones(1, dtype=torch.float64, requires_grad=True)
    opt = SGD([w], lr=lr_l, momentum=beta)
    out = [1.0]
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * w * w).sum().backward()
        opt.step()
        out.append(w.item())
    return np.asarray(out)


def plot_rate_map(rm: RateMap) -> Figure:
    """Heatmap of the measured rate, the divergence boundary lr l_n = 2 + 2 beta, the
    GD limit and the optimum (a star with its rate)."""
    fig = style.figure(6.8, 5.2)
    ax = fig.subplots()
    # Diverged cells are masked (drawn grey) so the colours resolve the converging ones.
    shown = np.ma.masked_where(~(rm.rates < 1.0), rm.rates)
    cmap = matplotlib.colormaps["magma"].with_extremes(bad="0.75")
    mesh = ax.pcolormesh(rm.lrs, rm.betas, shown, cmap=cmap, shading="nearest",
                         norm=Normalize(float(shown.min()), 1.0))  # fmt: skip
    fig.colorbar(mesh, ax=ax, label="measured rate per step (grey: diverged)")
    l1, ln = rm.eigenvalues
    b = np.linspace(0, 0.99, 100)
    ax.plot((2 + 2 * b) / ln, b, color="white", linestyle="--", linewidth=1.5,
            label=r"divergence: lr $\lambda_n$ = 2 + 2$\beta$")  # fmt: skip
    lr, beta, rate = optimal_parameters(l1, ln)
    label = f"optimum lr={lr:.3g}, beta={beta:.3f}, rate={rate:.3f}"
    ax.plot([lr], [beta], marker="*", color="cyan", markersize=14, markeredgecolor="black",
            linestyle="none", label=label)  # fmt: skip
    ax.set_xlim(rm.lrs[0], rm.lrs[-1])
    ax.set_ylim(rm.betas[0], rm.betas[-1])
    ax.set_xlabel("learning rate")
    ax.set_ylabel("momentum beta")
    ax.set_title(f"heavy ball on a quadratic, eigenvalues {l1:g} and {ln:g} (Goh 2017)")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def plot_regimes(steps: int = 60) -> Figure:
    """The five regimes on one eigen-direction: w_t against t for one example of each."""
    fig = style.figure(13.5, 6.0)
    axes = fig.subplots(2, 3).ravel()
    axes[-1].set_visible(False)
    for ax, name in zip(axes, REGIMES):
        lr_l, beta = REGIME_EXAMPLES[name]
        path = direction_path(lr_l, beta, steps)
        ax.plot(path, marker=".", markersize=3, linewidth=1.0, color=style.PALETTE[0])
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.set_title(f"{name}: lr*l = {lr_l:g}, beta = {beta:g}, "
                     f"|z|max = {spectral_radius(lr_l, beta):.3f}", fontsize=9)  # fmt: skip
        ax.set_xlabel("step")
        ax.set_ylabel("w (error along the eigenvector)")
        ax.grid(True, alpha=0.3, linewidth=0.6)
        if name == "divergence":
            ax.set_yscale("symlog", linthresh=1.0)
    fig.suptitle("momentum's five regimes on one eigen-direction (Goh 2017)")
    return fig
