"""DeepOBS's noisy quadratic with a deep-learning-like spectrum (``quadratic_deep``).

The Hessian Q = R^T diag(l) R has 90 eigenvalues drawn U(0, 1) and 10 drawn U(30, 60)
(a few large outliers above a bulk, as reported for neural networks), R a rotation
drawn uniformly (Haar). Noise model: example i is a point x_i ~ N(0, sigma^2 I) with
sigma = 0.6 and contributes 0.5 (theta - x_i)^T Q (theta - x_i); a mini-batch loss is
the batch mean, an unbiased estimate of
E[loss] = 0.5 theta^T Q theta + 0.5 sigma^2 tr(Q),
minimized at theta = 0 with value 0.5 sigma^2 tr(Q). Training starts at theta = 1 (all
ones), as in DeepOBS. The instance (Q and the data) is fixed by ``instance_seed``, not
by the run's seed; 1000 training points as in DeepOBS, 100 more for validation, and
1000 test points.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from optimlab.data.splits import Split, Splits, split_indices

NOISE_STD = 0.6
_STREAM = 0x0AD


def random_rotation(dim: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-distributed orthogonal matrix: QR of a Gaussian matrix, signs fixed so
    that the distribution is uniform (Mezzadri 2007)."""
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


def deep_spectrum(rng: np.random.Generator, bulk: int = 90, outliers: int = 10) -> np.ndarray:
    """``bulk`` eigenvalues U(0, 1) followed by ``outliers`` U(30, 60)."""
    return np.concatenate([rng.uniform(0.0, 1.0, bulk), rng.uniform(30.0, 60.0, outliers)])


def hessian(instance_seed: int = 42, dim: int = 100) -> np.ndarray:
    """Q = R^T diag(eigenvalues) R in float64 (90/10 split scaled to ``dim``)."""
    rng = np.random.default_rng([_STREAM, instance_seed])
    outliers = dim // 10
    eig = deep_spectrum(rng, dim - outliers, outliers)
    rot = random_rotation(dim, rng)
    q = rot.T @ np.diag(eig) @ rot
    return (q + q.T) / 2  # exact symmetry despite rounding


class NoisyQuadratic(nn.Module):
    """Per-example losses 0.5 (theta - x_i)^T Q (theta - x_i); parameter ``theta``."""

    def __init__(self, q: Tensor, init: float = 1.0) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.full((q.shape[0],), float(init), dtype=q.dtype))
        # Not saved in state_dict: Q is rebuilt from the instance seed.
        self.register_buffer("q", q, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        diff = self.theta - x
        return 0.5 * ((diff @ self.q) * diff).sum(dim=1)


def quadratic_splits(
    instance_seed: int = 42,
    dim: int = 100,
    n_train: int = 1000,
    n_val: int = 100,
    n_test: int = 1000,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> Splits:
    """The noise points as splits; targets are unused zeros (the model is the loss)."""
    rng = np.random.default_rng([_STREAM, instance_seed, 1])
    pool = rng.normal(0.0, NOISE_STD, (n_train + n_val, dim))
    test = rng.normal(0.0, NOISE_STD, (n_test, dim))
    train_idx, val_idx = split_indices(n_train + n_val, n_val, seed)

    def split(x: np.ndarray) -> Split:
        return Split(torch.tensor(x, dtype=dtype), torch.zeros(len(x), dtype=dtype))

    return Splits(
        name="quadratic_deep",
        train=split(pool[train_idx]),
        val=split(pool[val_idx]),
        test=split(test),
        task="objective",
        input_shape=(dim,),
    )
