import numpy as np
import pytest
import torch

from optimlab.data import splits
from optimlab.data.splits import fit_normalization


@pytest.mark.parametrize("mode", ["channel", "feature"])
def test_statistics_match_float64_across_chunks(monkeypatch, mode):
    monkeypatch.setattr(splits, "NORMALIZATION_CHUNK", 7)  # 50 rows: several chunks
    gen = torch.Generator().manual_seed(0)
    shape = (50, 3, 5, 4) if mode == "channel" else (50, 6)
    x = torch.rand(shape, generator=gen) * 3 + 100  # a large mean: cancellation shows
    mean, std = fit_normalization(x, mode)
    axes = (0, 2, 3) if mode == "channel" else (0,)
    ref = x.double().numpy()
    np.testing.assert_allclose(mean.numpy(), ref.mean(axis=axes, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(std.numpy(), ref.std(axis=axes, keepdims=True), rtol=1e-5)
    assert mean.dtype == std.dtype == torch.float32


def test_constant_channel_gets_unit_std():
    x = torch.zeros(9, 2, 3, 3)
    x[:, 1] = torch.arange(9.0).view(9, 1, 1)
    mean, std = fit_normalization(x, "channel")
    assert std[0, 0].item() == 1.0 and mean[0, 1].item() == pytest.approx(4.0)
