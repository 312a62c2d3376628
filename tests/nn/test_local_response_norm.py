"""Local response normalization with AlexNet's settings against a plain transcription
of Krizhevsky et al.'s (2012) formula, and torch's alpha / n convention."""

import pytest
import torch

from optimlab.errors import OptimlabError
from optimlab.nn.lrn import ALEXNET_LRN, LocalResponseNorm


def krizhevsky(a, k=2.0, n=5, alpha=1e-4, beta=0.75):
    """b^i = a^i / (k + alpha * sum_{j=max(0, i-n/2)}^{min(N-1, i+n/2)} (a^j)^2)^beta, by loops."""
    channels = a.shape[1]
    b = torch.empty_like(a)
    for i in range(channels):
        lo, hi = max(0, i - n // 2), min(channels - 1, i + n // 2)
        total = sum(a[:, j] ** 2 for j in range(lo, hi + 1))
        b[:, i] = a[:, i] / (k + alpha * total) ** beta
    return b


@pytest.mark.parametrize("channels", [1, 3, 8])
def test_alexnet_settings_match_the_papers_formula(channels):
    torch.manual_seed(0)
    # ReLU outputs of the size where LRN matters: alpha * sum a^2 comparable to k
    a = 60.0 * torch.rand(2, channels, 4, 5, dtype=torch.float64)
    assert ALEXNET_LRN == {"n": 5, "k": 2.0, "alpha": 1e-4, "beta": 0.75}
    torch.testing.assert_close(LocalResponseNorm(**ALEXNET_LRN)(a), krizhevsky(a))
    torch.testing.assert_close(
        LocalResponseNorm(n=3, k=1.0, alpha=1e-3, beta=0.5)(a),
        krizhevsky(a, k=1.0, n=3, alpha=1e-3, beta=0.5),
    )


def test_torch_divides_alpha_by_n():
    torch.manual_seed(1)
    a = 60.0 * torch.rand(2, 8, 3, 3, dtype=torch.float64)
    paper = krizhevsky(a)
    as_torch = torch.nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)(a)
    assert not torch.allclose(as_torch, paper, rtol=1e-3)  # five times weaker
    torch.testing.assert_close(as_torch, krizhevsky(a, alpha=1e-4 / 5))
    torch.testing.assert_close(torch.nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0)(a), paper)


def test_bad_arguments():
    with pytest.raises(OptimlabError, match="odd integers"):
        LocalResponseNorm(n=4)
    with pytest.raises(OptimlabError, match="invalid alpha"):
        LocalResponseNorm(alpha=-1.0)
