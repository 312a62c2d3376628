"""Curvature of a loss: Hessian-vector products, top eigenvalues, trace, sharpness.

Nothing here forms the Hessian H = d^2 L / dw^2. Everything uses the Hessian-vector
product Hv = d/dw (grad L . v) (Pearlmutter 1994), one double backward pass:

- power iteration v <- Hv / ||Hv|| finds the eigenvalue of largest magnitude; deflation
  (H - sum_j l_j u_j u_j^T) gives the next ones;
- Lanczos (with full reorthogonalization) builds an m x m tridiagonal T = Q^T H Q whose
  extreme eigenvalues approach H's (Golub & Van Loan, sec. 10.1);
- Hutchinson's estimator tr(H) ~ mean_k z_k^T H z_k with Rademacher z (Hutchinson 1990),
  unbiased with variance 2 (||H||_F^2 - sum_i H_ii^2) per sample.

For a quadratic loss lr = 1 / lambda_max is the lectures' safe step for linear
regression (GD converges for lr < 2 / lambda_max); ``sharpness`` is lambda_max of a
trained model's training loss (Keskar et al. 2017 use a related measure).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from optimlab.errors import OptimlabError, check_range

LossClosure = Callable[[], Tensor]


def _params(params: Sequence[Tensor] | nn.Module) -> list[Tensor]:
    if isinstance(params, nn.Module):
        params = [p for p in params.parameters() if p.requires_grad]
    params = list(params)
    if not params:
        raise OptimlabError("invalid params: no tensors that require grad")
    return params


def _flat(tensors: Sequence[Tensor]) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _unflat(vec: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    out, i = [], 0
    for t in like:
        out.append(vec[i : i + t.numel()].view_as(t))
        i += t.numel()
    return out


class HessianOperator:
    """v -> Hv for the Hessian of ``loss()`` at the current ``params``, on flat vectors.

    The gradient graph is built once and reused by every product (``retain_graph``).
    """

    def __init__(self, loss: LossClosure, params: Sequence[Tensor] | nn.Module) -> None:
        self.params = _params(params)
        value = loss()
        if value.dim() != 0:
            raise OptimlabError(f"invalid loss: expected a scalar, got shape {tuple(value.shape)}")
        grads = torch.autograd.grad(value, self.params, create_graph=True)
        self.grad = _flat(grads)
        self.size = self.grad.numel()
        self.dtype, self.device = self.grad.dtype, self.grad.device

    def __call__(self, vec: Tensor) -> Tensor:
        hv = torch.autograd.grad(self.grad, self.params, grad_outputs=vec, retain_graph=True,
                                 allow_unused=True)  # fmt: skip
        return _flat([torch.zeros_like(p) if h is None else h
                      for h, p in zip(hv, self.params, strict=True)])  # fmt: skip

    def random(self, generator: torch.Generator) -> Tensor:
        v = torch.randn(self.size, generator=generator, dtype=torch.float64)
        return (v / v.norm()).to(self.dtype).to(self.device)


def hvp(
    loss: LossClosure, params: Sequence[Tensor] | nn.Module, vec: Sequence[Tensor]
) -> list[Tensor]:
    """The Hessian-vector product H v, shaped like ``params``."""
    op = HessianOperator(loss, params)
    return _unflat(op(_flat(vec)), op.params)


def power_iteration(
    loss: LossClosure,
    params: Sequence[Tensor] | nn.Module,
    k: int = 1,
    *,
    iters: int = 200,
    tol: float = 1e-7,
    seed: int = 0,
) -> Tensor:
    """The ``k`` eigenvalues of largest magnitude, by power iteration with deflation.

    Each stops when the Rayleigh quotient changes by less than ``tol`` (relative).
    Converges at the rate ``|l_{j+1} / l_j|``, so close eigenvalues need many ``iters``.
    """
    check_range("k", k, 1)
    check_range("iters", iters, 1)
    op = HessianOperator(loss, params)
    check_range("k", k, 1, op.size)
    gen = torch.Generator().manual_seed(seed)
    values: list[Tensor] = []
    vectors: list[Tensor] = []

    def deflated(v: Tensor) -> Tensor:
        hv = op(v)
        for lam, u in zip(values, vectors, strict=True):
            hv = hv - lam * torch.dot(u, v) * u
        return hv

    for _ in range(k):
        v = op.random(gen)
        lam = torch.zeros((), dtype=op.dtype, device=op.device)
        for _ in range(iters):
            hv = deflated(v)
            new = torch.dot(v, hv)
            norm = hv.norm()
            if norm == 0:
                break
            v = hv / norm
            done = abs(float(new - lam)) <= tol * max(abs(float(new)), 1e-30)
            lam = new
            if done:
                break
        values.append(lam.detach())
        vectors.append(v.detach())
    return torch.stack(values)


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
    op = HessianOperator(loss, params)
    m = min(steps, op.size)
    check_range("k", k, 1, m)
    gen = torch.Generator().manual_seed(seed)
    q = op.random(gen).to(torch.float64)
    basis = [q]
    alphas, betas = [], []
    for j in range(m):
        w = op(basis[j].to(op.dtype)).to(torch.float64)
        alpha = torch.dot(w, basis[j])
        alphas.append(alpha)
        # Full reorthogonalization (twice, "twice is enough"): plain Lanczos loses
        # orthogonality in floating point and reports ghost copies of eigenvalues.
        q_mat = torch.stack(basis, dim=1)
        for _ in range(2):
            w = w - q_mat @ (q_mat.T @ w)
        beta = w.norm()
        if j == m - 1 or beta <= 1e-10 * max(1.0, abs(float(alpha))):
            break  # an invariant subspace: T's eigenvalues are exact eigenvalues of H
        betas.append(beta)
        basis.append(w / beta)
    n = len(alphas)
    t = torch.diag(torch.stack(alphas))
    if n > 1:
        off = torch.stack(betas[: n - 1])
        t = t + torch.diag(off, 1) + torch.diag(off, -1)
    evals = torch.linalg.eigvalsh(t).flip(0)
    if k > n:
        raise OptimlabError(f"invalid k: {k}; Lanczos found an invariant subspace of size {n}")
    return evals[:k].to(op.dtype)


def hutchinson_trace(
    loss: LossClosure,
    params: Sequence[Tensor] | nn.Module,
    samples: int = 100,
    *,
    seed: int = 0,
) -> tuple[float, float]:
    """``(estimate, standard error)`` of tr(H) from ``samples`` Rademacher probes."""
    check_range("samples", samples, 2)
    op = HessianOperator(loss, params)
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(samples):
        z = (torch.randint(0, 2, (op.size,), generator=gen) * 2 - 1).to(op.dtype).to(op.device)
        values.append(float(torch.dot(z, op(z))))
    mean = sum(values) / samples
    var = sum((v - mean) ** 2 for v in values) / (samples - 1)
    return mean, math.sqrt(var / samples)


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
