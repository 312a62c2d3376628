"""Curvature of a loss for plots: top eigenvalues, trace, sharpness, a safe LR.

The numerical work is ``optimlab.curvature``'s: Hessian-vector products by double
backward through a loss closure (``GradientGraph``), and Lanczos, power iteration and
Hutchinson's trace estimator on that operator. This module adapts them to what the
figures take: a loss closure and a model or a list of tensors.

For a quadratic loss lr = 1 / lambda_max is the lectures' safe step for linear
regression (GD converges for lr < 2 / lambda_max); ``sharpness`` is lambda_max of a
trained model's training loss (Keskar et al. 2017 use a related measure).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from optimlab import curvature
from optimlab.curvature import GradientGraph
from optimlab.errors import OptimlabError, check_range

LossClosure = Callable[[], Tensor]


def _params(params: Sequence[Tensor] | nn.Module) -> list[Tensor]:
    if isinstance(params, nn.Module):
        params = [p for p in params.parameters() if p.requires_grad]
    params = list(params)
    if not params:
        raise OptimlabError("invalid params: no tensors that require grad")
    return params


def _operator(loss: LossClosure, params: Sequence[Tensor] | nn.Module) -> GradientGraph:
    return GradientGraph.of_loss(loss(), _params(params))


def hvp(
    loss: LossClosure, params: Sequence[Tensor] | nn.Module, vec: Sequence[Tensor]
) -> list[Tensor]:
    """The Hessian-vector product H v, shaped like ``params``."""
    op = _operator(loss, params)
    return list(curvature.unflatten(op(curvature.flatten(list(vec))), op.params))


def power_iteration(
    loss: LossClosure,
    params: Sequence[Tensor] | nn.Module,
    k: int = 1,
    *,
    iters: int = 200,
    tol: float = 1e-7,
    seed: int = 0,
) -> Tensor:
    """The ``k`` eigenvalues of largest magnitude, by power iteration with deflation
    (``optimlab.curvature.power_iteration``)."""
    check_range("k", k, 1)
    check_range("iters", iters, 1)
    op = _operator(loss, params)
    g = op.gradient
    return curvature.power_iteration(op, op.size, k, iters=iters, tol=tol, seed=seed,
                                     dtype=g.dtype, device=g.device)  # fmt: skip


def lanczos(
    loss: LossClosure,
    params: Sequence[Tensor] | nn.Module,
    k: int = 1,
    *,
    steps: int = 40,
    seed: int = 0,
) -> Tensor:
    """The ``k`` algebraically largest eigenvalues (descending) from ``steps`` Lanczos
    steps with full reorthogonalization (exact once ``steps`` reaches the dimension)."""
    check_range("k", k, 1)
    op = _operator(loss, params)
    g = op.gradient
    steps = min(steps, op.size)
    check_range("k", k, 1, steps)
    ends = curvature.extreme_eigenvalues(op, op.size, k, steps=steps, seed=seed,
                                         dtype=g.dtype, device=g.device)  # fmt: skip
    return ends.largest


def hutchinson_trace(
    loss: LossClosure,
    params: Sequence[Tensor] | nn.Module,
    samples: int = 100,
    *,
    seed: int = 0,
) -> tuple[float, float]:
    """``(estimate, standard error)`` of tr(H) from ``samples`` Rademacher probes."""
    check_range("samples", samples, 2)
    op = _operator(loss, params)
    g = op.gradient
    return curvature.hutchinson_trace(op, op.size, samples, seed=seed, dtype=g.dtype,
                                      device=g.device)  # fmt: skip


def _data_loss(model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor], x: Tensor,
               y: Tensor) -> LossClosure:  # fmt: skip
    return lambda: loss_fn(model(x), y)


def sharpness(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    *,
    method: str = "lanczos",
    steps: int = 30,
) -> float:
    """lambda_max of the Hessian of ``loss_fn(model(x), y)`` at the model's weights.

    The model is put in eval mode for the measurement (dropout off, BN running stats),
    and restored afterwards.
    """
    if method not in ("lanczos", "power"):
        raise OptimlabError(f"invalid method {method!r}; valid methods: lanczos, power")
    was_training = model.training
    model.eval()
    try:
        closure = _data_loss(model, loss_fn, x, y)
        if method == "lanczos":
            return float(lanczos(closure, model, 1, steps=steps)[0])
        return float(power_iteration(closure, model, 1, iters=steps * 10)[0])
    finally:
        model.train(was_training)


def suggest_lr_linear_regression(problem: object = "linreg", *, seed: int = 0) -> float:
    """lr = 1 / lambda_max of the training loss's Hessian of a linear-regression problem.

    For f = 1/2 ||y - Xw||^2 the Hessian is X^T X (the lectures' rule lr = 1 /
    lambda_max(X^T X)); for the problem's mean-squared error it is (2/N) X~^T X~ with
    X~ = [X, 1]. GD at this rate converges (it is half the stability limit 2/lambda_max).
    ``problem`` is a problem name or a built Problem with an ``nn.Linear`` model.
    """
    from optimlab.problems import Problem, build

    built = build(problem, seed=seed) if isinstance(problem, str) else problem
    if not isinstance(built, Problem) or not isinstance(built.model, nn.Linear):
        raise OptimlabError("invalid problem: expected a linear-regression problem (nn.Linear)")
    if built.splits is None:
        raise OptimlabError(f"invalid problem {built.name!r}: it has no training data")
    x, y = built.splits.train.x, built.splits.train.y
    lam = sharpness(built.model, built.loss_fn, x, y, method="lanczos", steps=64)
    return 1.0 / lam
