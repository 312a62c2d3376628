"""``make demo``: compare the lectures' optimizers on an ill-conditioned quadratic.

A stand-in for the lab's full comparison: each optimizer gets the best learning
rate of a small log grid (by final loss), and the table shows the loss reached.
"""

from __future__ import annotations

import math

import torch

import optimlab.optim as oo

DIM, STEPS = 50, 300
LR_GRID = [10.0**k for k in range(-4, 1)]


def quadratic(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """1/2 w'Aw with eigenvalues log-spaced in [0.01, 1] (kappa = 100), randomly rotated."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(DIM, DIM, generator=gen, dtype=torch.float64))
    eigs = torch.logspace(-2, 0, DIM, dtype=torch.float64)
    w0 = torch.randn(DIM, generator=gen, dtype=torch.float64)
    return q @ torch.diag(eigs) @ q.T, w0


def final_loss(name: str, lr: float, A: torch.Tensor, w0: torch.Tensor) -> float:
    w = w0.clone().requires_grad_()
    opt = oo.create(name, [w], lr=lr)
    for _ in range(STEPS):
        w.grad = A @ w.detach()
        opt.step()
    loss = 0.5 * float(w.detach() @ A @ w.detach())
    return loss if math.isfinite(loss) else math.inf


def main() -> None:
    A, w0 = quadratic()
    start = 0.5 * float(w0 @ A @ w0)
    print(f"1/2 w'Aw, {DIM}-D, kappa = 100, {STEPS} steps, start loss {start:.3g}")
    print(f"{'optimizer':10s} {'best lr':>8s} {'final loss':>11s}")
    results = []
    for name in oo.available():
        best = min((final_loss(name, lr, A, w0), lr) for lr in LR_GRID)
        results.append((best[0], name, best[1]))
    for loss, name, lr in sorted(results):
        print(f"{name:10s} {lr:8.0e} {loss:11.3e}")


if __name__ == "__main__":
    main()
