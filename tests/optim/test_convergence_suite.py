"""A shared convergence suite for the optimizers that came after the lectures: an
ill-conditioned quadratic (least squares), the 2-D Rosenbrock valley and logistic
regression, each run deterministically (full batch, float64) from a fixed start. Rules
that act on matrices (Muon) run a matrix least-squares problem and the other two with
their parameters as one column.

Each entry states its budget: within ``steps`` updates the optimality gap must fall to
``tol`` of its starting value, ``f(w) - f* <= tol (f(w_0) - f*)``, with ``f*`` found
independently (NumPy's lstsq; Newton's method; Rosenbrock's known minimum 0). The gap is
read where the method says its answer is (``eval()`` mode for the schedule-free ones).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from convex_problems import LeastSquares, Logistic
from second_order_problems import rosenbrock

import optimlab.optim as oo


@dataclass(frozen=True)
class Problem:
    loss: Callable[[torch.Tensor], torch.Tensor]
    start: np.ndarray
    f_star: float


QUADRATIC = LeastSquares.random(n=40, d=12, decay=1.0, seed=0)
LOGISTIC = Logistic.random(n=200, d=5, seed=0)


def matrix_quadratic(seed: int = 1) -> Problem:
    """1/2 ||X W - Y||_F^2 over a 12 x 3 matrix W (for rules that act on matrices)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((40, 12)) @ np.diag(np.logspace(0, -1, 12))
    Y = rng.standard_normal((40, 3))
    W_star = np.linalg.lstsq(X, Y, rcond=None)[0]

    def loss(w: torch.Tensor) -> torch.Tensor:
        # a broadcast product, not a matmul: a tiny multi-threaded gemm took 60 ms
        # instead of 0.4 on a loaded 2-core machine (measured)
        r = (torch.as_tensor(X)[:, :, None] * w).sum(1) - torch.as_tensor(Y)
        return 0.5 * (r * r).sum()

    return Problem(loss, np.ones((12, 3)), 0.5 * float(np.sum((X @ W_star - Y) ** 2)))


def as_column(problem: Problem) -> Problem:
    """The same problem over its parameters as a d x 1 matrix."""
    return Problem(
        lambda w: problem.loss(w.reshape(-1)), problem.start.reshape(-1, 1), problem.f_star
    )


PROBLEMS = {
    "quadratic": Problem(QUADRATIC.loss, np.ones(12), QUADRATIC.value(QUADRATIC.minimizer)),
    "rosenbrock": Problem(rosenbrock, np.array([-1.2, 1.0]), 0.0),
    "logistic": Problem(LOGISTIC.loss, np.zeros(5), LOGISTIC.value(LOGISTIC.minimizer)),
    "matrix_quadratic": matrix_quadratic(),
}
PROBLEMS["rosenbrock_column"] = as_column(PROBLEMS["rosenbrock"])
PROBLEMS["logistic_column"] = as_column(PROBLEMS["logistic"])


def decaying(lr0: float, rate: float) -> Callable[[int], float]:
    """``lr0 * rate^step``: sign-based steps need a vanishing lr to settle."""
    return lambda step: lr0 * rate**step


MUON = {"muon": True, "ns_dtype": None, "weight_decay": 0.0}
SOAP = {"lr": decaying(0.05, 0.995), "weight_decay": 0.0}

# (optimizer, problem, hyperparameters, steps, tol)
SUITE = [
    ("radam", "quadratic", {"lr": 0.05}, 1000, 1e-10),
    # clipped: its first steps are momentum-SGD steps, which the valley's walls
    # (gradients of several hundred) throw far
    ("radam", "rosenbrock", {"lr": 0.01, "clip_norm": 1.0}, 2000, 1e-8),
    ("radam", "logistic", {"lr": 0.05}, 500, 1e-10),
    ("lion", "quadratic", {"lr": decaying(0.1, 0.997)}, 2000, 1e-6),
    ("lion", "rosenbrock", {"lr": decaying(0.1, 0.997)}, 2000, 1e-6),
    ("lion", "logistic", {"lr": decaying(0.1, 0.997)}, 2000, 1e-6),
    # the trust ratio fixes each step's size relative to ||w||: the lr must vanish
    ("lamb", "quadratic", {"lr": decaying(0.05, 0.995)}, 1000, 1e-9),
    ("lamb", "rosenbrock", {"lr": decaying(0.1, 0.997)}, 2000, 1e-4),
    ("lamb", "logistic", {"lr": decaying(0.05, 0.995)}, 1000, 1e-6),
    # the single 1-D tensor here would be excluded from the layer-wise rate by default
    ("lars", "quadratic", {"lr": decaying(20.0, 0.995), "exclude_1d": False}, 1000, 1e-5),
    ("lars", "rosenbrock", {"lr": decaying(20.0, 0.995), "exclude_1d": False}, 1000, 1e-9),
    ("lars", "logistic", {"lr": decaying(20.0, 0.995), "exclude_1d": False}, 1000, 1e-7),
    ("adafactor", "quadratic", {"lr": decaying(0.05, 0.995)}, 500, 1e-12),
    # steps relative to RMS(w) make the curved valley slow going
    ("adafactor", "rosenbrock", {"lr": decaying(0.1, 0.999)}, 2000, 1e-3),
    ("adafactor", "logistic", {"lr": decaying(0.1, 0.997)}, 1000, 1e-10),
    # constant lr, read at the average x; the valley is non-convex, the gap not monotone
    ("schedule_free_sgd", "quadratic", {"lr": 0.3}, 1000, 1e-7),
    ("schedule_free_sgd", "rosenbrock", {"lr": 0.003}, 2000, 1e-3),
    ("schedule_free_sgd", "logistic", {"lr": 0.3}, 1000, 1e-4),
    ("schedule_free_adamw", "quadratic", {"lr": 0.1}, 1000, 1e-10),
    ("schedule_free_adamw", "rosenbrock", {"lr": 0.1}, 2000, 1e-3),
    ("schedule_free_adamw", "logistic", {"lr": 0.03}, 1000, 1e-10),
    # Newton-Schulz in float64 (ns_dtype=None), no weight decay: the matrix rule itself
    ("muon", "matrix_quadratic", MUON | {"lr": decaying(0.1, 0.995)}, 1000, 1e-6),
    ("muon", "rosenbrock_column", MUON | {"lr": decaying(0.1, 0.995)}, 1500, 1e-7),
    ("muon", "logistic_column", MUON | {"lr": decaying(0.1, 0.995)}, 1000, 1e-5),
    # no learning rate to tune: the defaults (lr 1 multiplies the estimated d)
    ("prodigy", "quadratic", {}, 500, 1e-12),
    ("prodigy", "rosenbrock", {}, 2000, 1e-7),
    ("prodigy", "logistic", {}, 500, 1e-12),
    # full-matrix AdaGrad on a vector, L^(-1/4) G R^(-1/4) on a matrix: steps shrink as
    # the statistics grow, which leaves the curved valley slow going
    ("shampoo", "quadratic", {"lr": 0.3}, 300, 1e-12),
    ("shampoo", "rosenbrock", {"lr": 0.3}, 2000, 1e-3),
    ("shampoo", "logistic", {"lr": 0.3}, 300, 1e-12),
    ("shampoo", "matrix_quadratic", {"lr": 1.0}, 1000, 1e-11),
    # vectors rotated too (precondition_1d), no decay: the rule itself
    ("soap", "quadratic", SOAP | {"precondition_1d": True}, 500, 1e-7),
    ("soap", "rosenbrock", SOAP | {"precondition_1d": True}, 2000, 1e-7),
    ("soap", "logistic", SOAP | {"precondition_1d": True}, 500, 1e-7),
    ("soap", "matrix_quadratic", SOAP, 1000, 1e-9),
    ("lookahead", "quadratic", {"lr": 0.1}, 500, 1e-12),  # over Adam
    ("lookahead", "rosenbrock", {"lr": 0.1}, 2000, 1e-8),
    ("lookahead", "logistic", {"lr": 0.05}, 500, 1e-12),
    # SAM's fixed points lie about rho from the minimizer: its gap floor is O(rho^2)
    ("sam", "quadratic", {"lr": 0.02, "momentum": 0.9, "rho": 1e-3}, 500, 1e-6),
    ("sam", "rosenbrock", {"lr": 1e-3, "momentum": 0.9, "rho": 1e-3}, 1000, 1e-5),
    ("sam", "logistic", {"lr": 0.02, "momentum": 0.9, "rho": 1e-3}, 1000, 1e-4),
    ("asam", "quadratic", {"lr": 0.02, "momentum": 0.9, "rho": 0.01}, 500, 1e-6),
    ("asam", "rosenbrock", {"lr": 1e-3, "momentum": 0.9, "rho": 0.01}, 1000, 1e-3),
    ("asam", "logistic", {"lr": 0.02, "momentum": 0.9, "rho": 0.01}, 1000, 1e-4),
]


def relative_gap(name: str, problem: Problem, hp: dict, steps: int) -> float:
    w = torch.tensor(problem.start, dtype=torch.float64, requires_grad=True)
    opt = oo.create(name, [w], **hp)
    record = oo.get(name)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = problem.loss(w)
        loss.backward()
        return loss

    with torch.no_grad():
        f0 = float(problem.loss(w)) - problem.f_star
    for _ in range(steps):
        if record.needs_closure:
            opt.step(closure)
        else:
            closure()
            opt.step()
    if hasattr(opt, "eval"):
        opt.eval()  # the schedule-free methods answer with the average x
    with torch.no_grad():
        return (float(problem.loss(w)) - problem.f_star) / f0


@pytest.mark.parametrize(
    "name, problem, hp, steps, tol",
    SUITE,
    ids=[f"{name}-{problem}" for name, problem, *_ in SUITE],
)
def test_converges_within_budget(name, problem, hp, steps, tol):
    gap = relative_gap(name, PROBLEMS[problem], hp, steps)
    assert gap <= tol, f"{name} on {problem}: gap {gap:.3g} after {steps} steps"
