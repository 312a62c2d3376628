"""Hessian tools against explicit Hessians (torch.autograd.functional.hessian, eigvalsh)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.func import functional_call

from optimlab.errors import OptimlabError
from optimlab.optim import SGD
from optimlab.problems import build
from optimlab.viz import hessian as hs


def _quadratic(n: int = 8, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=gen, dtype=torch.float64)
    a = m @ m.T + 0.1 * torch.eye(n, dtype=torch.float64)
    w = torch.randn(n, generator=gen, dtype=torch.float64, requires_grad=True)
    return a, w, (lambda: 0.5 * w @ a @ w)


def _tiny_mlp():
    gen = torch.Generator().manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    for p in model.parameters():
        with torch.no_grad():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    x = torch.randn(16, 3, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 2, (16,), generator=gen)
    loss_fn = nn.functional.cross_entropy
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def of_flat(v: torch.Tensor) -> torch.Tensor:
        parts, i = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            k = math.prod(shape)
            parts[name] = v[i : i + k].view(shape)
            i += k
        return loss_fn(functional_call(model, parts, (x,)), y)

    explicit = torch.autograd.functional.hessian(of_flat, flat)
    return model, (lambda: loss_fn(model(x), y)), explicit, (x, y, loss_fn)


def test_hvp_matches_explicit_products() -> None:
    a, w, loss = _quadratic()
    v = torch.randn(8, dtype=torch.float64)
    torch.testing.assert_close(hs.hvp(loss, [w], [v])[0], a @ v)
    model, closure, explicit, _ = _tiny_mlp()
    vs = [torch.randn_like(p) for p in model.parameters()]
    flat_v = torch.cat([t.reshape(-1) for t in vs])
    got = torch.cat([t.reshape(-1) for t in hs.hvp(closure, model, vs)])
    torch.testing.assert_close(got, explicit @ flat_v)


def test_top_eigenvalues_of_a_quadratic() -> None:
    a, w, loss = _quadratic()
    exact = torch.linalg.eigvalsh(a).flip(0)[:3]
    torch.testing.assert_close(hs.power_iteration(loss, [w], 3, iters=3000, tol=1e-12), exact,
                               rtol=1e-6, atol=0)  # fmt: skip
    torch.testing.assert_close(hs.lanczos(loss, [w], 3, steps=8), exact, rtol=1e-10, atol=0)


def test_top_eigenvalues_of_a_tiny_mlp() -> None:
    model, closure, explicit, _ = _tiny_mlp()
    evals = torch.linalg.eigvalsh(explicit)
    # Lanczos run to the full dimension is exact; a shorter run already pins the top one.
    torch.testing.assert_close(hs.lanczos(closure, model, 2, steps=explicit.shape[0]),
                               evals.flip(0)[:2], rtol=1e-8, atol=1e-10)  # fmt: skip
    assert float(hs.lanczos(closure, model, 1, steps=20)[0]) == pytest.approx(
        float(evals[-1]), rel=1e-6
    )
    largest_magnitude = evals[evals.abs().argmax()]
    power = hs.power_iteration(closure, model, 1, iters=5000, tol=1e-13)[0]
    assert float(power) == pytest.approx(float(largest_magnitude), rel=1e-4)


def test_hutchinson_trace_within_its_standard_error() -> None:
    model, closure, explicit, _ = _tiny_mlp()
    samples = 400
    # Rademacher probes: Var[z^T H z] = 2 (||H||_F^2 - sum_i H_ii^2), so the mean of
    # `samples` probes has this standard deviation; 4 of them fail with p < 1e-4.
    sd = math.sqrt(2 * (explicit.pow(2).sum() - explicit.diagonal().pow(2).sum()) / samples)
    estimate, stderr = hs.hutchinson_trace(closure, model, samples, seed=3)
    assert abs(estimate - float(explicit.trace())) < 4 * sd
    assert stderr == pytest.approx(sd, rel=0.3)  # the reported error is the right size


def test_lr_for_linear_regression_is_one_over_lambda_max() -> None:
    problem = build("linreg", seed=0)
    x, y = problem.splits.train.x.double(), problem.splits.train.y
    xa = torch.cat([x, torch.ones(len(x), 1, dtype=torch.float64)], dim=1)
    lam = torch.linalg.eigvalsh(2 / len(x) * xa.T @ xa).max()
    lr = hs.suggest_lr_linear_regression(problem)
    assert lr == pytest.approx(1 / float(lam), rel=1e-4)
    # Full-batch GD at that rate reaches the least-squares loss; past the stability limit
    # 2 / lambda_max it blows up, so the eigenvalue is the one that matters.
    best = torch.linalg.lstsq(xa, y.double()).solution
    least = float(((xa @ best - y.double()) ** 2).mean())
    assert _gd_losses(problem, lr, 40)[-1] == pytest.approx(least, rel=1e-4)
    fresh = build("linreg", seed=0)
    unstable = _gd_losses(fresh, 2.2 * lr, 40)
    assert unstable[-1] > 100 * unstable[0]


def _gd_losses(problem, lr: float, steps: int) -> list[float]:
    opt = SGD(problem.model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = problem.loss_fn(problem.model(problem.splits.train.x), problem.splits.train.y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_sharpness_restores_the_mode_and_matches_the_explicit_hessian() -> None:
    model, _, explicit, (x, y, loss_fn) = _tiny_mlp()
    model.train()
    value = hs.sharpness(model, loss_fn, x, y, steps=explicit.shape[0])
    assert model.training
    assert value == pytest.approx(float(torch.linalg.eigvalsh(explicit)[-1]), rel=1e-8)


def test_bad_input() -> None:
    _, w, loss = _quadratic()
    with pytest.raises(OptimlabError, match="k"):
        hs.power_iteration(loss, [w], 0)
    with pytest.raises(OptimlabError, match="method"):
        hs.sharpness(nn.Linear(2, 1), nn.functional.mse_loss, torch.zeros(1, 2),
                     torch.zeros(1, 1), method="qr")  # fmt: skip
    with pytest.raises(OptimlabError, match="problem"):
        hs.suggest_lr_linear_regression("digits_mlp")
