"""How input preprocessing conditions gradient descent: raw, standardized, whitened.

The lectures motivate whitening with a regression on two features in arbitrary units
(x1 in the hundreds, x2 in the hundredths) and with correlated features that stretch
the loss contours into long ellipses. For the least-squares loss of a linear model
with bias, ``f(w) = 1/(2N) ||A w - y||^2`` with ``A = [X, 1]``, the Hessian is
``H = A^T A / N``, and GD with ``lr = 1/lambda_max(H)`` shrinks the error of the
slowest direction by ``1 - 1/kappa`` per step, ``kappa = cond(A^T A)``; heavy-ball
momentum at its optimal (lr, beta) by ``(sqrt(kappa) - 1)/(sqrt(kappa) + 1)``
(Goh 2017). Standardizing removes the units; whitening also removes the correlation,
and then ``A^T A = N I`` exactly (centred, unit-covariance features and a ones
column), so ``kappa = 1`` and one GD step at ``lr = 1`` lands on the minimum.

All three representations are invertible affine maps of one another, so they share
the minimum loss ``f*`` and the starting loss at ``w = 0``; the table compares steps
to the same target ``f - f* <= tol (f(0) - f*)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from optimlab.data.preprocess import create
from optimlab.errors import check_range
from optimlab.run.build import make_optimizer

REPRESENTATIONS = ("raw", "standardize", "zca_whiten")


def lecture_features(n: int = 200, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Two correlated features in very different units and a target, float64.

    Shaped like the lectures' table (x1 ~ 90-135, x2 ~ 0.01-0.03, y ~ 1-2):
    x1 ~ N(110, 20^2), x2 = 1.8e-4 x1 + N(0, 0.003^2) (correlation about 0.77),
    y = 0.01 x1 + 40 x2 - 0.9 + N(0, 0.1^2).
    """
    check_range("n", n, 3)
    rng = np.random.default_rng([0xC0D, seed])
    x1 = rng.normal(110.0, 20.0, n)
    x2 = 1.8e-4 * x1 + rng.normal(0.0, 0.003, n)
    y = 0.01 * x1 + 40.0 * x2 - 0.9 + rng.normal(0.0, 0.1, n)
    return torch.from_numpy(np.stack([x1, x2], 1)), torch.from_numpy(y)


def design(x: Tensor) -> Tensor:
    """``A = [x, 1]``: the inputs plus the bias column the model multiplies."""
    return torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype)], 1)


def condition_number(x: Tensor) -> float:
    """``cond(A^T A) = lambda_max / lambda_min`` of the design with bias."""
    lam = torch.linalg.eigvalsh(design(x).T @ design(x))
    return float(lam[-1] / lam[0])


@dataclass(frozen=True)
class Row:
    """One representation's result; ``*_steps`` is None when the budget ran out."""

    representation: str
    condition: float
    gd_steps: int | None
    momentum_steps: int | None
    gd_gap: float  # relative suboptimality (f - f*)/(f(0) - f*) at the end
    momentum_gap: float


def _steps_to_target(
    a: Tensor, y: Tensor, name: str, lr: float, momentum: float, tol: float, max_steps: int
) -> tuple[int | None, float]:
    f_star = 0.5 * float(((a @ torch.linalg.lstsq(a, y).solution - y) ** 2).mean())
    f0 = 0.5 * float((y**2).mean())
    w = torch.zeros(a.shape[1], dtype=a.dtype, requires_grad=True)
    # Not a run of build_run: the experiment needs the exact full-batch loss at every
    # step, against f* from the normal equations, on a design matrix that no registered
    # problem holds; the optimizer is still built as every run builds its own.
    hp = {} if name == "sgd" else {"momentum": momentum}
    opt, _ = make_optimizer(name, [w], lr=lr, hp=hp)
    gap = 1.0
    for step in range(max_steps + 1):
        opt.zero_grad()
        loss = 0.5 * ((a @ w - y) ** 2).mean()
        gap = (float(loss.detach()) - f_star) / (f0 - f_star)
        if gap <= tol:
            return step, gap
        if step == max_steps or not math.isfinite(gap):
            break
        loss.backward()
        opt.step()
    return None, gap


def run(n: int = 200, *, tol: float = 1e-6, max_steps: int = 20000, seed: int = 0) -> list[Row]:
    """GD and momentum (full batch, optimlab's "sgd" and "momentum") on raw,
    standardized and ZCA-whitened inputs, with step sizes from each one's Hessian
    (eigenvalues l1 <= ... <= ln): GD ``lr = 1/ln``; momentum Goh's optimum
    ``lr = (2/(sqrt(l1) + sqrt(ln)))^2``, ``beta = ((sqrt(ln) - sqrt(l1))/(sqrt(ln) +
    sqrt(l1)))^2``. At that optimum the slow modes' iteration has a double root, so
    for kappa ~ 1e9 (beta ~ 0.9999) the loss first rises by orders of magnitude for
    tens of thousands of steps before it falls: a transient, not a divergence.
    """
    check_range("tol", tol, 0.0, 1.0, low_open=True, high_open=True)
    check_range("max_steps", max_steps, 1)
    x, y = lecture_features(n, seed)
    rows = []
    for rep in REPRESENTATIONS:
        z = x if rep == "raw" else create(rep, eps=0.0).fit(x)(x)
        a = design(z)
        lam = torch.linalg.eigvalsh(a.T @ a / n)
        l1, ln = math.sqrt(float(lam[0])), math.sqrt(float(lam[-1]))
        gd = _steps_to_target(a, y, "sgd", 1.0 / float(lam[-1]), 0.0, tol, max_steps)
        mom_lr, beta = (2.0 / (l1 + ln)) ** 2, ((ln - l1) / (ln + l1)) ** 2
        mom = _steps_to_target(a, y, "momentum", mom_lr, beta, tol, max_steps)
        rows.append(Row(rep, float(lam[-1] / lam[0]), gd[0], mom[0], gd[1], mom[1]))
    return rows


def format_table(rows: list[Row], max_steps: int) -> str:
    """The rows as a Markdown table."""

    def steps(s: int | None, gap: float) -> str:
        return str(s) if s is not None else f"> {max_steps} (gap {gap:.2g})"

    lines = [
        "| inputs | cond(A^T A) | GD steps | momentum steps |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.representation} | {r.condition:.3g} | {steps(r.gd_steps, r.gd_gap)} "
            f"| {steps(r.momentum_steps, r.momentum_gap)} |"
        )
    return "\n".join(lines)
