"""Gradient accumulation: N micro-batches make the same update as one batch N times larger."""

from __future__ import annotations

import copy

import pytest
import torch
from train_toys import make_problem

from optimlab.train import fit


def big_batch_sgd(problem, lr, batch_size, epochs):
    """Plain SGD on consecutive chunks of ``batch_size`` samples (cyclic order)."""
    model = copy.deepcopy(problem.model)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    x, y = problem.splits.train.x, problem.splits.train.y
    for _ in range(epochs):
        for i in range(0, len(x), batch_size):
            opt.zero_grad()
            problem.loss_fn(model(x[i : i + batch_size]), y[i : i + batch_size]).backward()
            opt.step()
    return model


@pytest.mark.parametrize(("micro", "accum"), [(8, 4), (16, 2), (32, 1)])
def test_accumulated_steps_equal_large_batch_steps(micro, accum):
    # 144 samples: the last step of each epoch has 16 samples, not 32, so the
    # micro-batch weighting is checked on an uneven tail as well.
    problem = make_problem(dtype=torch.float64)
    ref = big_batch_sgd(problem, lr=0.3, batch_size=32, epochs=3)
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.3)
    result = fit(problem, opt, epochs=3, batch_size=micro, grad_accumulation=accum, order="cyclic")
    assert result.summary["steps"] == 3 * 5  # ceil(144 / 32) optimizer steps per epoch
    for p, q in zip(problem.model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)
        assert (p - q).abs().max() < 1e-12  # in float64 it is equal to rounding


def test_accumulation_changes_the_trajectory():
    # The same micro-batches stepped one by one give a different result: the test above
    # would catch an accumulation that silently stepped every micro-batch.
    problem = make_problem(dtype=torch.float64)
    ref = big_batch_sgd(problem, lr=0.3, batch_size=32, epochs=1)
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.3)
    fit(problem, opt, epochs=1, batch_size=8, order="cyclic")
    diff = max((p - q).abs().max() for p, q in zip(problem.model.parameters(), ref.parameters()))
    assert diff > 1e-4
