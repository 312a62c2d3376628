"""Our optimizers, configured for the lectures' conventions, against plain NumPy
transcriptions of the equations in REFERENCE.md (g = gradient, t from 1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import optimlab.optim as oo

DIM, STEPS = 6, 80
RNG = np.random.default_rng(0)
M = RNG.standard_normal((DIM, DIM))
A = M @ M.T / DIM + np.eye(DIM) * 0.1  # symmetric positive definite
B = RNG.standard_normal(DIM)
W0 = RNG.standard_normal(DIM)
NOISE = RNG.standard_normal((STEPS, DIM)) * 0.1


def grad(w: np.ndarray, t: int) -> np.ndarray:
    """Gradient of 1/2 w'Aw - b'w plus a fixed noise sequence (a stochastic gradient)."""
    return A @ w - B + NOISE[t]


def run_ours(opt_fn, steps: int = STEPS) -> np.ndarray:
    w = torch.tensor(W0, requires_grad=True)
    opt = opt_fn([w])
    for t in range(steps):
        w.grad = torch.from_numpy(grad(w.detach().numpy(), t))
        opt.step()
    return w.detach().numpy()


def close(ours: np.ndarray, ref: np.ndarray) -> None:
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)


def test_gradient_descent():
    lr, w = 0.1, W0.copy()
    for t in range(STEPS):
        w = w - lr * grad(w, t)
    close(run_ours(lambda p: oo.SGD(p, lr=lr)), w)


@pytest.mark.parametrize("convention", ["lecture", "torch"])
def test_momentum_velocity_form(convention):
    """v <- mu v - lr g ; w <- w + v (equal to torch's form while lr is constant)."""
    lr, mu = 0.05, 0.9
    w, v = W0.copy(), np.zeros(DIM)
    for t in range(STEPS):
        v = mu * v - lr * grad(w, t)
        w = w + v
    close(run_ours(lambda p: oo.SGD(p, lr=lr, momentum=mu, convention=convention)), w)


def test_velocity_form_with_changing_lr():
    """With a schedule the two forms differ; the lecture form matches its equation."""
    mu = 0.9

    def lr_of(t: int) -> float:
        return 0.05 if t < 30 else 0.005

    w, v = W0.copy(), np.zeros(DIM)
    b, w_torch = np.zeros(DIM), W0.copy()
    for t in range(STEPS):
        v = mu * v - lr_of(t) * grad(w, t)
        w = w + v
        b = mu * b + grad(w_torch, t) if t else grad(w_torch, t)
        w_torch = w_torch - lr_of(t) * b
    lecture = run_ours(lambda p: oo.SGD(p, lr=lr_of, momentum=mu, convention="lecture"))
    torch_form = run_ours(lambda p: oo.SGD(p, lr=lr_of, momentum=mu))
    close(lecture, w)
    close(torch_form, w_torch)
    assert np.abs(lecture - torch_form).max() > 1e-4


@pytest.mark.parametrize("convention", ["lecture", "torch"])
def test_nesterov_lookahead(convention):
    """NAG: v <- mu v - lr grad(w + mu v); w <- w + v. Our parameters hold the
    look-ahead point w + mu v, where the gradient is evaluated."""
    lr, mu = 0.05, 0.9
    w, v = W0.copy(), np.zeros(DIM)
    for t in range(STEPS):
        v = mu * v - lr * grad(w + mu * v, t)
        w = w + v
    ours = run_ours(lambda p: oo.SGD(p, lr=lr, momentum=mu, nesterov=True, convention=convention))
    close(ours, w + mu * v)


def test_adagrad_eps_inside():
    """G <- G + g^2 ; w <- w - lr g / sqrt(G + eps)."""
    lr, eps = 0.5, 1e-3
    w, G = W0.copy(), np.zeros(DIM)
    for t in range(STEPS):
        g = grad(w, t)
        G = G + g * g
        w = w - lr * g / np.sqrt(G + eps)
    close(run_ours(lambda p: oo.Adagrad(p, lr=lr, eps=0.0, eps_root=eps)), w)


def test_rmsprop_eps_inside():
    """s <- rho s + (1 - rho) g^2 ; w <- w - lr g / sqrt(s + eps)."""
    lr, rho, eps = 0.01, 0.9, 1e-4
    w, s = W0.copy(), np.zeros(DIM)
    for t in range(STEPS):
        g = grad(w, t)
        s = rho * s + (1 - rho) * g * g
        w = w - lr * g / np.sqrt(s + eps)
    close(run_ours(lambda p: oo.RMSprop(p, lr=lr, alpha=rho, eps=0.0, eps_root=eps)), w)


def test_adadelta():
    rho, eps, lr = 0.95, 1e-6, 1.0
    w, s, u = W0.copy(), np.zeros(DIM), np.zeros(DIM)
    for t in range(STEPS):
        g = grad(w, t)
        s = rho * s + (1 - rho) * g * g
        dx = -np.sqrt(u + eps) / np.sqrt(s + eps) * g
        u = rho * u + (1 - rho) * dx * dx
        w = w + lr * dx
    close(run_ours(lambda p: oo.Adadelta(p, lr=lr, rho=rho, eps=eps)), w)


def adam_reference(lr, b1, b2, eps, amsgrad=False, wd_decoupled=0.0):
    w, m, v, vmax = W0.copy(), np.zeros(DIM), np.zeros(DIM), np.zeros(DIM)
    for t in range(1, STEPS + 1):
        g = grad(w, t - 1)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        m_hat = m / (1 - b1**t)
        v_hat = (vmax if amsgrad else v) / (1 - b2**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps) - lr * wd_decoupled * w
    return w


def test_adam():
    close(
        run_ours(lambda p: oo.Adam(p, lr=0.05, betas=(0.9, 0.99), eps=1e-8)),
        adam_reference(0.05, 0.9, 0.99, 1e-8),
    )


def test_amsgrad():
    close(
        run_ours(lambda p: oo.Adam(p, lr=0.05, amsgrad=True)),
        adam_reference(0.05, 0.9, 0.999, 1e-8, amsgrad=True),
    )


def test_adamw_decoupled_decay():
    close(
        run_ours(lambda p: oo.AdamW(p, lr=0.05, weight_decay=0.2)),
        adam_reference(0.05, 0.9, 0.999, 1e-8, wd_decoupled=0.2),
    )


def test_adamax_eps_in_denominator():
    """u <- max(b2 u, |g|) ; w <- w - (lr / (1 - b1^t)) m / (u + eps)."""
    lr, b1, b2, eps = 0.05, 0.9, 0.999, 1e-8
    w, m, u = W0.copy(), np.zeros(DIM), np.zeros(DIM)
    for t in range(1, STEPS + 1):
        g = grad(w, t - 1)
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g))
        w = w - (lr / (1 - b1**t)) * m / (u + eps)
    close(run_ours(lambda p: oo.Adamax(p, lr=lr, eps_mode="denominator")), w)


def test_keras_l2_equals_double_weight_decay():
    """Keras L2(l) adds l*||w||^2 to the loss: SGD with weight_decay = 2l."""
    lr, l2 = 0.1, 0.05
    w = W0.copy()
    for t in range(STEPS):
        w = w - lr * (grad(w, t) + 2 * l2 * w)
    close(run_ours(lambda p: oo.SGD(p, lr=lr, weight_decay=2 * l2)), w)


def test_gradient_noise_variance():
    """sigma_t^2 = eta / (1 + t)^gamma, t from 0: the added noise has that variance."""
    eta, gamma, n = 0.3, 0.55, 200_000
    torch.manual_seed(0)
    w = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    opt = oo.SGD([w], lr=1.0, grad_noise=eta, grad_noise_decay=gamma)
    previous = w.detach().clone()
    for t in range(3):
        w.grad = torch.zeros_like(w)
        opt.step()
        moved = w.detach() - previous
        previous = w.detach().clone()
        expected = eta / (1 + t) ** gamma
        assert abs(moved.var().item() / expected - 1) < 0.02  # ~0.3% std at this n
        assert abs(moved.mean().item()) < 5 * (expected / n) ** 0.5
