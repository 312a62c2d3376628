"""The lectures' multiclass SVM loss on the slide's example (lecture 003: three images,
three classes), against torch's multi_margin_loss, which also divides by the classes."""

import pytest
import torch
import torch.nn.functional as F

from optimlab.problems import LOSSES, get_loss
from optimlab.problems.losses import multiclass_hinge, multiclass_svm

# Scores f(x, W) of the slide, one row per image (cat, car, frog), columns the classes
# cat, car, frog; the correct class of image i is class i.
SCORES = torch.tensor([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]], dtype=torch.float64)
LABELS = torch.tensor([0, 1, 2])


def slide_losses(scores, labels):
    """L_i = sum over j != y_i of max(0, s_j - s_{y_i} + 1), by loops."""
    out = []
    for s, y in zip(scores.tolist(), labels.tolist(), strict=True):
        out.append(sum(max(0.0, s[j] - s[y] + 1.0) for j in range(len(s)) if j != y))
    return out


def test_the_slides_example():
    assert slide_losses(SCORES, LABELS) == pytest.approx([2.9, 0.0, 12.9])
    loss = get_loss("multiclass_svm")(SCORES, LABELS)
    assert get_loss("svm")(SCORES, LABELS).item() == loss.item()  # the short name: this form
    assert loss.item() == pytest.approx((2.9 + 0.0 + 12.9) / 3)
    assert round(loss.item(), 2) == 5.27
    for i in range(3):  # one example at a time: that example's loss
        one = multiclass_svm(SCORES[i : i + 1], LABELS[i : i + 1])
        assert one.item() == pytest.approx([2.9, 0.0, 12.9][i])


def test_torch_divides_by_the_number_of_classes():
    torch_loss = F.multi_margin_loss(SCORES, LABELS)
    assert torch_loss.item() == pytest.approx(5.2667 / 3, abs=1e-4)
    torch.testing.assert_close(multiclass_hinge(SCORES, LABELS), torch_loss)
    torch.testing.assert_close(multiclass_svm(SCORES, LABELS), 3 * torch_loss)


def test_random_scores_match_the_loop_and_the_registry():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(7, 5, generator=gen, dtype=torch.float64) * 2
    labels = torch.randint(0, 5, (7,), generator=gen)
    expected = sum(slide_losses(scores, labels)) / 7
    assert multiclass_svm(scores, labels).item() == pytest.approx(expected)
    assert LOSSES.get("multiclass_svm").kind == "multiclass"
