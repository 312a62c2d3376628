"""Ridge regression in closed form, in the convention of the ``l2`` penalty.

A linear model ``x @ W + b`` trained with torch's mean squared error (the mean over all
``n * k`` entries of an ``(n, k)`` target) and the ``l2`` penalty ``lam * ||W||^2`` on the
weights (not on the bias) minimizes::

    J(W, b) = ||X W + 1 b - Y||_F^2 / (n k) + lam * ||W||_F^2

Setting the gradient to zero with centered data ``Xc = X - mean(X)``,
``Yc = Y - mean(Y)`` (the unpenalized bias absorbs the means; Hastie, Tibshirani &
Friedman, *The Elements of Statistical Learning*, 2nd ed., section 3.4.1) gives::

    W(lam) = (Xc^T Xc + n k lam I)^-1 Xc^T Yc,      b = mean(Y) - mean(X) W(lam)

In the SVD ``Xc = U diag(s) V^T`` each component is ``s_i / (s_i^2 + n k lam) * u_i^T Yc``,
every one shrinking as ``lam`` grows, so ``||W(lam)||`` decreases monotonically in
``lam`` (strictly, unless ``Xc^T Yc = 0``) from the least-squares solution toward 0.
"""

from __future__ import annotations

import torch
from torch import Tensor

from optimlab.errors import OptimlabError, check_range


def ridge_solution(
    x: Tensor, y: Tensor, lam: float, *, intercept: bool = True
) -> tuple[Tensor, Tensor]:
    """``(W, b)`` minimizing ``J`` above for ``x`` (n, d) and ``y`` (n,) or (n, k).

    ``W`` is (d,) or (d, k) like ``y`` (an ``nn.Linear``'s weight is its transpose);
    ``b`` is 0 (or zeros) without ``intercept``. Solved in float64.
    """
    check_range("l2", lam, 0.0)
    if x.ndim != 2 or y.ndim not in (1, 2) or y.shape[0] != x.shape[0]:
        raise OptimlabError(
            f"ridge_solution needs x of shape (n, d) and y of shape (n,) or (n, k) with the same "
            f"n; got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    xd, yd = x.to(torch.float64), y.to(torch.float64)
    n = xd.shape[0]
    k = 1 if yd.ndim == 1 else yd.shape[1]
    x_mean = xd.mean(dim=0) if intercept else torch.zeros_like(xd[0])
    y_mean = yd.mean(dim=0) if intercept else torch.zeros_like(yd[0])
    xc, yc = xd - x_mean, yd - y_mean
    gram = xc.T @ xc + (n * k * lam) * torch.eye(xd.shape[1], dtype=torch.float64)
    w = torch.linalg.solve(gram, xc.T @ yc)
    b = y_mean - x_mean @ w
    return w, b
