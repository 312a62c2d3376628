"""Units of measurement: Newton's method is consistent in them, gradient descent is not
(lecture 001, "Units of measurements").

A logistic regression with bias on the lectures' two features (standardized, so that
gradient descent does well on the unscaled problem), float64, full batch. Measuring the
first feature in a unit 1000 times smaller multiplies its column by 1000: the design
``A = [x, 1]`` becomes ``A S`` with ``S = diag(1000, 1, 1)``, and the scaled model's
weights ``u`` predict exactly what the unscaled model's ``w = S u`` predict. So the
scaled problem is the unscaled one in the coordinates ``w = S u``.

Newton's step transforms with the coordinates (the gradient picks up ``S``, the Hessian
``S`` on both sides, and ``S^-1`` comes out of the solve), so from ``u_0 = S^-1 w_0``
its iterates satisfy ``S u_k = w_k`` to rounding. Gradient descent's step picks up ``S``
twice (``S u_{k+1} = S u_k - lr S^2 grad f(S u_k)``): at the unscaled run's step size
it oscillates in the scaled direction, whose curvature grew by ``1000^2``; at a step
size retuned to the scaled curvature it crawls in every other direction.

Every run starts at ``w_0 = 0`` (which is ``S u_0`` for ``u_0 = 0``), and the optimizers
are built as every run builds its own (:func:`optimlab.run.build.make_optimizer`).
Newton's stopping test is off (it compares gradient entries, which carry the units, to
a fixed tolerance, so the two runs could stop at different steps). The runs drive the
optimizers directly because the experiment compares parameters in two coordinate
systems at every step, on a design matrix that no registered problem holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from optimlab.data.preprocess import create
from optimlab.errors import check_range
from optimlab.lab.whitening import design, lecture_features
from optimlab.run.build import make_optimizer

#: The factor the first feature is multiplied by (a unit 1000 times smaller).
SCALE = 1000.0
#: (name, optimizer, step size rule, problem) of each run.
RUNS = (
    ("newton", "newton", "unit", "unscaled"),
    ("newton_scaled", "newton", "unit", "scaled"),
    ("gd", "sgd", "unscaled", "unscaled"),
    ("gd_scaled_same_lr", "sgd", "unscaled", "scaled"),
    ("gd_scaled_retuned", "sgd", "scaled", "scaled"),
)


def problem(n: int = 200, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """``(A, A S, y)``: the standardized lecture features with a bias column, the same
    with the first column times ``SCALE``, and binary labels drawn from a logistic model
    of the lectures' target (noisy, so the minimizer is finite), float64."""
    x, target = lecture_features(n, seed)
    z = create("standardize", eps=0.0).fit(x)(x)
    logits = 2.0 * (target - target.mean()) / target.std()
    rng = np.random.default_rng([0x0417, seed])
    y = torch.from_numpy((rng.random(n) < torch.sigmoid(logits).numpy()).astype(np.float64))
    a = design(z)
    return a, a * scaling(a.shape[1]), y


def scaling(size: int) -> Tensor:
    """The diagonal of ``S``: ``SCALE`` for the first feature, 1 for the others."""
    s = torch.ones(size, dtype=torch.float64)
    s[0] = SCALE
    return s


def loss_of(a: Tensor, y: Tensor, w: Tensor) -> Tensor:
    """The mean logistic loss of the linear model ``A w``."""
    return torch.nn.functional.binary_cross_entropy_with_logits(a @ w, y)


def smoothness(a: Tensor) -> float:
    """``L = lambda_max(A^T A) / (4 N)``: the largest curvature of the logistic loss
    (reached at ``w = 0``, where every sigmoid slope is 1/4)."""
    return float(torch.linalg.eigvalsh(a.T @ a)[-1]) / (4 * a.shape[0])


@dataclass(frozen=True)
class Run:
    """One run: its loss and its iterate in the unscaled coordinates (``S u`` for a run
    on the scaled problem) at every step, ``0..steps``."""

    name: str
    lr: float
    losses: list[float]
    iterates: list[Tensor]


def run_one(name: str, optimizer: str, lr: float, a: Tensor, y: Tensor, s: Tensor | None,
            steps: int) -> Run:  # fmt: skip
    """``steps`` full-batch steps of ``optimizer`` from 0 on ``(A, y)``; ``s`` maps the
    iterates back to the unscaled coordinates (None: already unscaled)."""
    u = torch.zeros(a.shape[1], dtype=torch.float64, requires_grad=True)
    # Newton's stopping test (no step once every gradient entry is at most
    # tolerance_grad) is itself in the gradient's units: off, so both runs take every step
    hp = {"tolerance_grad": 0.0} if optimizer == "newton" else {}
    opt, _ = make_optimizer(optimizer, [u], lr=lr, hp=hp)

    def closure() -> Tensor:
        opt.zero_grad()
        loss = loss_of(a, y, u)
        loss.backward()
        return loss

    def mapped() -> Tensor:
        w = u.detach().clone()
        return w if s is None else w * s

    losses, iterates = [], [mapped()]
    for _ in range(steps):
        losses.append(float(opt.step(closure).detach()))
        iterates.append(mapped())
    with torch.no_grad():
        losses.append(float(loss_of(a, y, u)))
    return Run(name, lr, losses, iterates)


def run(n: int = 200, *, newton_steps: int = 10, gd_steps: int = 200, seed: int = 0) -> list[Run]:
    """The five runs of ``RUNS``: Newton (unit step) on both problems; gradient descent
    at the unscaled problem's ``1/L`` on both, and at the scaled problem's ``1/L``."""
    check_range("newton_steps", newton_steps, 1)
    check_range("gd_steps", gd_steps, 1)
    a, a_scaled, y = problem(n, seed)
    s = scaling(a.shape[1])
    lrs = {"unit": 1.0, "unscaled": 1.0 / smoothness(a), "scaled": 1.0 / smoothness(a_scaled)}
    runs = []
    for name, optimizer, rule, which in RUNS:
        scaled = which == "scaled"
        steps = newton_steps if optimizer == "newton" else gd_steps
        runs.append(run_one(name, optimizer, lrs[rule], a_scaled if scaled else a, y,
                            s if scaled else None, steps))  # fmt: skip
    return runs


def map_errors(plain: Run, scaled: Run) -> list[float]:
    """``||S u_k - w_k|| / ||w_k||`` at every step ``k >= 1`` both runs made (inf
    where an iterate is not finite)."""
    errors = []
    for w, mapped in zip(plain.iterates[1:], scaled.iterates[1:], strict=False):
        error = float((mapped - w).norm() / w.norm())
        errors.append(error if math.isfinite(error) else math.inf)
    return errors
