"""Mixup: the soft-target loss equals the lambda-mix of the two targets' losses; the
trainer's batch_transform hook applies it to training batches only, reproducibly."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from optimlab import problems
from optimlab.errors import OptimlabError
from optimlab.regularize import Mixup, l2, mixup_problem, with_penalty
from optimlab.train import Trainer


def test_mix_by_hand():
    mix = Mixup(0.2, num_classes=3)
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    y = torch.tensor([0, 2])
    xm, t = mix.mix(x, y, 0.75, torch.tensor([1, 0]))
    torch.testing.assert_close(xm, torch.tensor([[0.75, 0.5], [0.25, 1.5]]))
    torch.testing.assert_close(t, torch.tensor([[0.75, 0.0, 0.25], [0.25, 0.0, 0.75]]))


@pytest.mark.parametrize("penalized", [False, True])
def test_loss_is_lambda_mix_of_two_losses(penalized):
    problem = problems.build("digits_mlp", seed=0)
    pen = l2(problem.model, 0.01)
    if penalized:
        problem = with_penalty(problem, pen)
    mixed = mixup_problem(problem)
    x, y = problem.splits.train.x[:16], problem.splits.train.y[:16]
    lam, perm = 0.3, torch.randperm(16, generator=torch.Generator().manual_seed(0))
    xm, t = Mixup(0.4, num_classes=10).mix(x, y, lam, perm)
    out = problem.model(xm)
    expected = lam * F.cross_entropy(out, y) + (1 - lam) * F.cross_entropy(out, y[perm])
    if penalized:
        expected = expected + pen()
    torch.testing.assert_close(mixed.loss_fn(out, t), expected, rtol=1e-5, atol=1e-6)
    # hard targets go to the problem's own loss; metrics score the dominant label
    torch.testing.assert_close(mixed.loss_fn(out, y), problem.loss_fn(out, y))
    acc = mixed.metrics["accuracy"](out, t)
    # lam < 0.5, so the dominant label is y[perm] (also where y == y[perm])
    torch.testing.assert_close(acc, (out.argmax(1) == y[perm]).float().mean())


def test_call_reproducible_and_beta_mean():
    mix = Mixup(1.0, num_classes=4, seed=7)
    x, y = torch.randn(8, 3), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    a, b = mix(x, y, 11), mix(x, y, 11)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(mix(x, y, 12)[0], a[0])
    # Beta(1, 1) is uniform: the mean of n lambdas is 0.5 within 5 sd (sd = sqrt(1/(12 n))).
    # Mixing the identity, xm = lam I + (1 - lam) I[perm]: xm[i, i] = lam where perm[i] != i.
    n = 400
    lams = []
    for step in range(n):
        xm, _ = mix(torch.eye(8), torch.arange(8) % 4, step)
        lams.append(xm.diagonal().min().item())
    assert all(0.0 <= v <= 1.0 for v in lams)
    assert abs(sum(lams) / n - 0.5) <= 5 * math.sqrt(1 / 12 / n)


def test_alpha_zero_is_one_hot():
    x, y = torch.randn(5, 2), torch.tensor([0, 1, 2, 1, 0])
    xm, t = Mixup(0.0, num_classes=3)(x, y, 0)
    torch.testing.assert_close(xm, x)
    torch.testing.assert_close(t, F.one_hot(y, 3).float())


def test_trainer_batch_transform_hook():
    problem = mixup_problem(problems.build("digits_mlp", seed=0))
    seen = []

    def transform(x, y, step):
        seen.append(step)
        return Mixup(0.2, 10)(x, y, step)

    opt = torch.optim.SGD(problem.model.parameters(), lr=0.05)
    n_batches = math.ceil(len(problem.splits.train.x) / 64)
    result = Trainer(problem, opt, epochs=2, batch_size=64, batch_transform=transform).run()
    assert seen == list(range(2 * n_batches))
    assert result.status == "completed" and math.isfinite(result.final["val_loss"])


def test_refuses_non_cross_entropy():
    with pytest.raises(OptimlabError, match="cross_entropy"):
        mixup_problem(problems.build("logreg_digits", seed=0, loss="multiclass_hinge"))
