"""Convex test problems with exact minimizers, for the convergence facts of the
accelerated and plain gradient methods: least squares and logistic regression, both
in float64, each with its smoothness constant L and its minimizer found independently
of the optimizers under test (NumPy's lstsq; Newton's method)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class LeastSquares:
    """f(w) = 1/2 ||X w - y||^2 (lecture 002), L = lambda_max(X^T X)."""

    X: np.ndarray
    y: np.ndarray

    @classmethod
    def random(cls, n: int = 40, d: int = 12, decay: float = 2.0, seed: int = 0) -> LeastSquares:
        """Columns scaled from 1 down to 10^-decay: ill-conditioned, so the sublinear
        phase where the O(1/k) and O(1/k^2) bounds bite lasts many steps."""
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((n, d)) @ np.diag(np.logspace(0, -decay, d))
        return cls(X, rng.standard_normal(n))

    @property
    def L(self) -> float:
        return float(np.linalg.eigvalsh(self.X.T @ self.X).max())

    @property
    def minimizer(self) -> np.ndarray:
        return np.linalg.lstsq(self.X, self.y, rcond=None)[0]

    def value(self, w: np.ndarray) -> float:
        return 0.5 * float(np.sum((self.X @ w - self.y) ** 2))

    def grad(self, w: np.ndarray) -> np.ndarray:
        return self.X.T @ (self.X @ w - self.y)

    def loss(self, w: torch.Tensor) -> torch.Tensor:
        r = torch.as_tensor(self.X) @ w - torch.as_tensor(self.y)
        return 0.5 * (r * r).sum()


@dataclass(frozen=True)
class Logistic:
    """f(w) = mean_i log(1 + exp(-y_i x_i^T w)), labels +-1 with flips (so the data
    are not separable and a minimizer exists); L = lambda_max(X^T X) / (4 n)."""

    X: np.ndarray
    y: np.ndarray

    @classmethod
    def random(cls, n: int = 200, d: int = 5, seed: int = 0) -> Logistic:
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((n, d)) * np.linspace(3.0, 0.3, d)
        y = np.sign(X @ rng.standard_normal(d) + 0.01)
        flip = rng.random(n) < 0.15
        return cls(X, np.where(flip, -y, y))

    @property
    def L(self) -> float:
        return float(np.linalg.eigvalsh(self.X.T @ self.X).max()) / (4 * len(self.y))

    def value(self, w: np.ndarray) -> float:
        return float(np.mean(np.logaddexp(0.0, -self.y * (self.X @ w))))

    def grad(self, w: np.ndarray) -> np.ndarray:
        sigma = 0.5 * (1 - np.tanh(0.5 * self.y * (self.X @ w)))  # 1/(1+exp(y x^T w))
        return -(self.X.T @ (self.y * sigma)) / len(self.y)

    @property
    def minimizer(self) -> np.ndarray:
        """Newton's method to the gradient's rounding floor."""
        w = np.zeros(self.X.shape[1])
        for _ in range(50):
            p = 0.5 * (1 - np.tanh(0.5 * (self.X @ w)))
            hess = (self.X.T * (p * (1 - p))) @ self.X / len(self.y)
            w = w - np.linalg.solve(hess, self.grad(w))
            if np.linalg.norm(self.grad(w)) < 1e-15:
                break
        return w

    def loss(self, w: torch.Tensor) -> torch.Tensor:
        margins = torch.as_tensor(self.y) * (torch.as_tensor(self.X) @ w)
        return torch.nn.functional.softplus(-margins).mean()
