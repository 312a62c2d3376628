"""Losses against torch's own implementations and exact values; metrics."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from optimlab.errors import OptimlabError
from optimlab.problems import LOSSES, get_loss
from optimlab.problems.losses import multiclass_hinge
from optimlab.problems.metrics import accuracy


@pytest.mark.parametrize("margin", [1.0, 0.5])
def test_multiclass_hinge_matches_multimarginloss(margin):
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(64, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 7, (64,), generator=gen)
    mine = multiclass_hinge(scores, target, margin=margin)
    reference = torch.nn.MultiMarginLoss(margin=margin)(scores, target)
    torch.testing.assert_close(mine, reference)
    (g_mine,) = torch.autograd.grad(mine, scores)
    (g_ref,) = torch.autograd.grad(reference, scores)
    torch.testing.assert_close(g_mine, g_ref)
    if margin == 1.0:  # the registered loss uses torch's default margin
        torch.testing.assert_close(get_loss("multiclass_hinge")(scores, target), reference)


def test_cross_entropy_is_mean_negative_log_softmax():
    scores = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    target = torch.tensor([0, 2])
    z = math.exp(2) + 1 + math.exp(-1)
    expected = (-(2 - math.log(z)) + math.log(3)) / 2
    assert get_loss("cross_entropy")(scores, target).item() == pytest.approx(expected)


@pytest.mark.parametrize("shape", [(9,), (9, 1)])
def test_logistic_equals_bce_with_logits(shape):
    gen = torch.Generator().manual_seed(1)
    scores = torch.randn(shape, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 2, (9,), generator=gen)
    reference = F.binary_cross_entropy_with_logits(scores.reshape(-1), labels.double())
    torch.testing.assert_close(get_loss("logistic")(scores, labels), reference)


def test_margin_losses_exact_values():
    scores = torch.tensor([0.0, math.log(2.0), 2.0, -0.5], dtype=torch.float64)
    labels = torch.tensor([1, 0, 1, 1])  # signs +1, -1, +1, +1; margins 0, -ln2, 2, -0.5
    assert get_loss("exponential")(scores, labels).item() == pytest.approx(
        (1 + 2 + math.exp(-2) + math.exp(0.5)) / 4
    )
    assert get_loss("binary_hinge")(scores, labels).item() == pytest.approx(
        (1 + (1 + math.log(2)) + 0 + 1.5) / 4
    )
    assert get_loss("binary_squared")(scores, labels).item() == pytest.approx(
        (1 + (math.log(2) + 1) ** 2 + 1 + 2.25) / 4
    )
    with pytest.raises(OptimlabError, match="one score per example"):
        get_loss("logistic")(torch.zeros(4, 2), labels)


def test_mse_shapes():
    out = torch.tensor([[1.0], [2.0], [4.0]])
    target = torch.tensor([1.0, 0.0, 1.0])
    assert get_loss("mse")(out, target).item() == pytest.approx((0 + 4 + 9) / 3)
    torch.testing.assert_close(
        get_loss("mse")(out, target.reshape(3, 1)), F.mse_loss(out, target.reshape(3, 1))
    )
    with pytest.raises(OptimlabError, match="mse: output"):
        get_loss("mse")(out, torch.zeros(4))


def test_names_and_aliases():
    assert get_loss("SVM") is get_loss("multiclass_svm")  # the lectures' form
    assert get_loss("hinge") is get_loss("multiclass_hinge")
    assert get_loss("ce") is get_loss("cross_entropy")
    assert {"cross_entropy", "multiclass_hinge", "logistic", "mse", "exponential"} <= set(
        LOSSES.names()
    )
    with pytest.raises(OptimlabError, match="unknown loss 'l3'.*cross_entropy"):
        get_loss("l3")


def test_accuracy_multiclass_and_binary():
    scores = torch.tensor([[0.1, 0.9], [2.0, -1.0], [0.0, 3.0], [5.0, 1.0]])
    assert accuracy(scores, torch.tensor([1, 0, 0, 1])).item() == 0.5
    binary = torch.tensor([[0.3], [-2.0], [1.0]])
    assert accuracy(binary, torch.tensor([1, 0, 0])).item() == pytest.approx(2 / 3)
