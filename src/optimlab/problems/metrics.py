"""Metrics ``metric(output, target) -> 0-d tensor``, batch means like the losses.

They return tensors rather than Python floats so that a trainer can accumulate them
on the device without a synchronization per batch.
"""

from __future__ import annotations

from torch import Tensor

from optimlab.problems.losses import mse


def accuracy(output: Tensor, target: Tensor) -> Tensor:
    """Fraction classified correctly: argmax of (N, C) scores, or the sign of one score
    per example ((N,) or (N, 1)) against 0/1 labels."""
    if output.ndim == 1 or (output.ndim == 2 and output.shape[1] == 1):
        predicted = (output.reshape(-1) > 0).long()
    else:
        predicted = output.argmax(dim=1)
    return (predicted == target.reshape(-1).long()).float().mean()


def error_rate(output: Tensor, target: Tensor) -> Tensor:
    """1 - accuracy."""
    return 1.0 - accuracy(output, target)


def mean_squared_error(output: Tensor, target: Tensor) -> Tensor:
    """Mean squared error (the same quantity as the ``mse`` loss)."""
    return mse(output.detach(), target)


CLASSIFICATION = {"accuracy": accuracy}
REGRESSION = {"mse": mean_squared_error}
