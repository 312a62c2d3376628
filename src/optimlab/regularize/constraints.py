"""Weight constraints applied after each optimizer step: max-norm (Srivastava et al.,
JMLR 2014, section 5.1).

Each unit's incoming weight vector ``w_j`` is rescaled to norm ``r`` when
``||w_j|| > r`` and left alone otherwise. ``nn.Linear.weight`` is (out, in), so unit
``j`` is row ``j`` and the norm runs over dim 1; for ``nn.Conv{1,2,3}d`` (out, in, k...)
it runs over every dim but 0 (one norm per output filter). Biases are not constrained.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from optimlab.errors import OptimlabError, check_range
from optimlab.train.callback import Callback

CONSTRAINED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@torch.no_grad()
def max_norm_(weight: Tensor, r: float, dim: int | tuple[int, ...] | None = None) -> Tensor:
    """Rescale, in place, the slices of ``weight`` whose L2 norm over ``dim`` exceeds ``r``.

    ``dim`` defaults to every dim but 0 (incoming weights of each output unit of a
    Linear or Conv layer). Returns ``weight``.
    """
    check_range("max_norm", r, 0.0, low_open=True)
    if weight.ndim < 2 and dim is None:
        raise OptimlabError(
            f"max_norm_ needs a weight with an output dim and input dims, got {weight.ndim}-D"
        )
    if dim is None:
        dim = tuple(range(1, weight.ndim))
    norms = torch.linalg.vector_norm(weight, dim=dim, keepdim=True)
    # Only the offending units are touched; the others are multiplied by exactly 1.
    scale = torch.where(norms > r, r / norms, torch.ones_like(norms))
    weight.mul_(scale)
    return weight


def constrained_layers(model: nn.Module) -> list[nn.Module]:
    """The Linear and Conv layers of ``model`` (the ones max-norm applies to)."""
    return [m for m in model.modules() if isinstance(m, CONSTRAINED)]


def apply_max_norm(modules: nn.Module | Iterable[nn.Module], r: float) -> None:
    """Apply max-norm ``r`` to every Linear/Conv weight in ``modules`` (a model or a list)."""
    layers = constrained_layers(modules) if isinstance(modules, nn.Module) else list(modules)
    for layer in layers:
        max_norm_(layer.weight, r)


class MaxNorm(Callback):
    """Apply max-norm ``r`` after every optimizer step (and once before training, so the
    constraint holds from the start). ``layers`` defaults to every Linear/Conv layer of
    the trainer's model; pass a subset to leave e.g. the output layer free."""

    def __init__(self, r: float, layers: Iterable[nn.Module] | None = None) -> None:
        super().__init__()
        check_range("max_norm", r, 0.0, low_open=True)
        self.r = float(r)
        self.layers = list(layers) if layers is not None else None

    def _layers(self) -> list[nn.Module]:
        if self.layers is None:
            self.layers = constrained_layers(self.trainer.model)
        return self.layers

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        apply_max_norm(self._layers(), self.r)

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        apply_max_norm(self._layers(), self.r)
