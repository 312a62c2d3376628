"""Losses by name, each ``loss(output, target) -> scalar mean over the batch``.

Conventions. Multiclass losses take raw scores (N, C) and int64 class indices.
Binary losses take one score per example ((N,) or (N, 1)) and labels in {0, 1}
(int or float), read as -1/+1 margins: the margin of example i is y_i * s_i with
y_i = 2 * label - 1. Regression losses take outputs and targets of equal size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from optimlab.errors import OptimlabError
from optimlab.registry import Registry

Loss = Callable[[Tensor, Tensor], Tensor]


def _binary_scores(output: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Scores (N,) and signs y in {-1, +1} (N,) from a binary output and 0/1 labels."""
    if output.ndim == 2 and output.shape[1] == 1:
        output = output[:, 0]
    if output.ndim != 1:
        raise OptimlabError(
            f"a binary loss needs one score per example, (N,) or (N, 1); got {tuple(output.shape)}"
        )
    signs = 2.0 * target.reshape(-1).to(output.dtype) - 1.0
    return output, signs


def cross_entropy(output: Tensor, target: Tensor) -> Tensor:
    """Softmax cross-entropy: mean of -log softmax(s)_y."""
    return F.cross_entropy(output, target)


def multiclass_svm(output: Tensor, target: Tensor, margin: float = 1.0) -> Tensor:
    """The lectures' multiclass SVM loss (Weston & Watkins form)::

        L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + margin),   L = mean_i L_i

    a sum over the wrong classes, not divided by the number of classes."""
    correct = output.gather(1, target.view(-1, 1))
    slack = (margin - correct + output).clamp_min(0.0)
    slack = slack.scatter(1, target.view(-1, 1), 0.0)  # the j = y term is not a violation
    return slack.sum(dim=1).mean()


def multiclass_hinge(output: Tensor, target: Tensor, margin: float = 1.0) -> Tensor:
    """``multiclass_svm`` divided by the number of classes C, which is how
    ``torch.nn.MultiMarginLoss`` scales it (a mean over classes, j = y included as 0)."""
    return multiclass_svm(output, target, margin) / output.shape[1]


def logistic(output: Tensor, target: Tensor) -> Tensor:
    """Binary logistic loss: mean of log(1 + exp(-y s)) (= BCE with logits)."""
    scores, signs = _binary_scores(output, target)
    return F.softplus(-signs * scores).mean()


def binary_hinge(output: Tensor, target: Tensor) -> Tensor:
    """Binary hinge (linear SVM): mean of max(0, 1 - y s)."""
    scores, signs = _binary_scores(output, target)
    return (1.0 - signs * scores).clamp_min(0.0).mean()


def exponential(output: Tensor, target: Tensor) -> Tensor:
    """Exponential loss (AdaBoost's): mean of exp(-y s)."""
    scores, signs = _binary_scores(output, target)
    return torch.exp(-signs * scores).mean()


def binary_squared(output: Tensor, target: Tensor) -> Tensor:
    """Least squares on -1/+1 labels: mean of (s - y)^2 (Wilson et al.'s toy loss)."""
    scores, signs = _binary_scores(output, target)
    return ((scores - signs) ** 2).mean()


def mse(output: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over all entries; (N,) and (N, 1) shapes are matched."""
    if output.shape != target.shape:
        if output.numel() != target.numel():
            raise OptimlabError(
                f"mse: output {tuple(output.shape)} and target {tuple(target.shape)} differ"
            )
        output = output.reshape(target.shape)
    return F.mse_loss(output, target.to(output.dtype))


def objective(output: Tensor, target: Tensor | None = None) -> Tensor:
    """For models whose output already is the loss (2-D functions, quadratics): its mean."""
    del target
    return output.mean()


@dataclass(frozen=True)
class LossRecord:
    name: str
    fn: Loss
    description: str
    kind: str  # "multiclass", "binary", "regression" or "objective"
    aliases: tuple[str, ...] = ()


LOSSES: Registry[LossRecord] = Registry("loss")
for _record in (
    LossRecord("cross_entropy", cross_entropy, "softmax cross-entropy", "multiclass", ("ce",)),
    LossRecord(
        "multiclass_svm",
        multiclass_svm,
        "multiclass SVM, the lectures' form: sum over j != y of max(0, s_j - s_y + 1)",
        "multiclass",
        ("svm",),
    ),
    LossRecord(
        "multiclass_hinge",
        multiclass_hinge,
        "multiclass SVM hinge (torch MultiMarginLoss)",
        "multiclass",
        ("hinge",),
    ),
    LossRecord("logistic", logistic, "binary logistic log(1 + exp(-ys))", "binary", ("bce",)),
    LossRecord("binary_hinge", binary_hinge, "binary hinge max(0, 1 - ys)", "binary"),
    LossRecord("exponential", exponential, "exponential exp(-ys)", "binary", ("exp",)),
    LossRecord("binary_squared", binary_squared, "(s - y)^2 with y in {-1, 1}", "binary"),
    LossRecord("mse", mse, "mean squared error", "regression", ("mean_squared_error",)),
    LossRecord("objective", objective, "the model output is the loss", "objective"),
):
    LOSSES.add(_record)


def get_loss(name: str) -> Loss:
    """The loss function registered as ``name``."""
    return LOSSES.get(name).fn
