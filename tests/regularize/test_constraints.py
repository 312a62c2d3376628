"""Max-norm: per-unit norms after <= r, units below r untouched; Linear and Conv layouts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optimlab.errors import OptimlabError
from optimlab.regularize import MaxNorm, apply_max_norm, max_norm_


def test_linear_rows_by_hand():
    w = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])  # norms 5, 0.5, 0
    max_norm_(w, 2.0)
    expected = torch.tensor([[1.2, 1.6], [0.3, 0.4], [0.0, 0.0]])
    torch.testing.assert_close(w, expected)


def test_linear_layer_norm_over_in_dim():
    torch.manual_seed(0)
    layer = nn.Linear(30, 7)
    with torch.no_grad():
        layer.weight.mul_(torch.linspace(0.1, 10.0, 7)[:, None])
    before = layer.weight.detach().clone()
    bias = layer.bias.detach().clone()
    r = 1.5
    apply_max_norm(layer, r)
    norms_before = before.norm(dim=1)
    norms_after = layer.weight.detach().norm(dim=1)
    assert (norms_after <= r * (1 + 1e-6)).all()
    below = norms_before <= r
    assert below.any() and (~below).any()
    assert torch.equal(layer.weight[below], before[below])
    torch.testing.assert_close(norms_after[~below], torch.full_like(norms_after[~below], r))
    # direction kept
    cos = nn.functional.cosine_similarity(layer.weight.detach(), before, dim=1)
    torch.testing.assert_close(cos, torch.ones(7))
    assert torch.equal(layer.bias, bias)


def test_conv_norm_per_filter():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3)
    with torch.no_grad():
        conv.weight.mul_(torch.tensor([0.1, 1.0, 5.0, 20.0, 0.5])[:, None, None, None])
    before = conv.weight.detach().clone()
    r = 1.0
    apply_max_norm(conv, r)
    per_filter = lambda w: w.flatten(1).norm(dim=1)  # noqa: E731
    after = per_filter(conv.weight.detach())
    assert (after <= r * (1 + 1e-6)).all()
    below = per_filter(before) <= r
    assert below.any() and (~below).any()
    assert torch.equal(conv.weight[below], before[below])
    # the reference: scale each filter by min(1, r / ||w_j||)
    scale = torch.clamp(r / per_filter(before), max=1.0)
    torch.testing.assert_close(conv.weight.detach(), before * scale[:, None, None, None])


def test_callback_applies_after_each_step():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "train"))
    from train_toys import make_problem

    from optimlab.train import fit

    problem = make_problem()
    r = 0.3
    seen = []

    from optimlab.train.callback import Callback

    class Spy(Callback):
        order = 10  # after MaxNorm

        def on_batch_end(self, step, logs):
            seen.append(max(m.weight.norm(dim=1).max().item() for m in problem.model[::2]))

    opt = torch.optim.SGD(problem.model.parameters(), lr=1.0)
    fit(problem, opt, epochs=2, batch_size=32, callbacks=[MaxNorm(r), Spy()])
    assert len(seen) == 2 * 5
    assert max(seen) <= r * (1 + 1e-6)


def test_invalid_r():
    with pytest.raises(OptimlabError, match="max_norm"):
        MaxNorm(0.0)
    with pytest.raises(OptimlabError, match="max_norm"):
        max_norm_(torch.ones(2, 2), -1.0)
