"""Loss and metrics of a model over a whole split, in evaluation mode."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn


def evaluate(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    metrics: Mapping[str, Callable[[Tensor, Tensor], Any]],
    x: Tensor,
    y: Tensor,
    batch_size: int = 1024,
    prefix: str = "",
) -> dict[str, float]:
    """Sample-weighted means of the loss and of each metric over ``(x, y)``.

    ``loss_fn`` and the metrics are taken to return batch means, so weighting each batch
    by its size gives the mean over the split whatever the batch size. The model's
    train/eval mode is restored afterwards. One device sync for the whole split.
    """
    n = len(x)
    if n == 0:
        return {}
    was_training = model.training
    model.eval()
    names = ["loss", *metrics]
    sums = torch.zeros(len(names), dtype=torch.float64, device=x.device)
    try:
        with torch.no_grad():
            for i in range(0, n, batch_size):
                xb, yb = x[i : i + batch_size], y[i : i + batch_size]
                out = model(xb)
                m = xb.shape[0]
                sums[0] += loss_fn(out, yb).detach() * m
                for j, fn in enumerate(metrics.values(), start=1):
                    sums[j] += fn(out, yb) * m
    finally:
        model.train(was_training)
    values = (sums / n).tolist()
    return {f"{prefix}{name}": v for name, v in zip(names, values, strict=True)}
