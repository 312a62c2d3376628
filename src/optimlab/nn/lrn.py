"""Local response normalization in Krizhevsky et al.'s (2012) convention.

For the activity a^i at channel i of N channels, at one position::

    b^i = a^i / (k + alpha * sum_{j = max(0, i - n/2)}^{min(N - 1, i + n/2)} (a^j)^2) ** beta

with n/2 rounded down; AlexNet uses k = 2, n = 5, alpha = 1e-4, beta = 0.75.

``torch.nn.LocalResponseNorm(size, alpha, beta, k)`` divides ``alpha`` by the window
size: it computes ``k + (alpha / n) * sum(...)``. Passing AlexNet's alpha = 1e-4 to
torch's layer therefore normalizes five times more weakly than the paper; this module
takes the paper's alpha and hands torch ``alpha * n``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from optimlab.errors import OptimlabError, check_range

ALEXNET_LRN = {"n": 5, "k": 2.0, "alpha": 1e-4, "beta": 0.75}


class LocalResponseNorm(nn.Module):
    """Krizhevsky's local response normalization across channels (module docstring).

    ``n`` must be odd: the paper's window (n/2 channels on each side) is symmetric
    only then, while torch pads an even window unevenly.
    """

    def __init__(self, n: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75) -> None:
        super().__init__()
        if isinstance(n, bool) or not isinstance(n, int) or n < 1 or n % 2 == 0:
            raise OptimlabError(f"invalid n: {n!r}; valid values are odd integers >= 1")
        check_range("k", k, 0.0)
        check_range("alpha", alpha, 0.0)
        check_range("beta", beta, 0.0)
        self.n, self.k, self.alpha, self.beta = n, float(k), float(alpha), float(beta)

    def forward(self, x: Tensor) -> Tensor:
        # torch's layer scales its alpha by 1/n; undo that so the paper's alpha applies
        return F.local_response_norm(x, self.n, self.alpha * self.n, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"n={self.n}, k={self.k:g}, alpha={self.alpha:g}, beta={self.beta:g}"
