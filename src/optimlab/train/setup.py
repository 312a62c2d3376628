"""Reading what the trainer needs from a Problem, or from a plain tuple, by duck typing.

The trainer accepts anything with ``model``, ``loss_fn``, ``metrics`` and ``splits``
attributes (``optimlab.problems.Problem`` is one), or a tuple
``(model, loss_fn, metrics, splits)``. ``splits`` has ``train``/``val``/``test``
(attributes or mapping keys), each an object with ``x`` and ``y`` or an ``(x, y)``
pair; ``val`` and ``test`` may be missing or None. ``splits=None`` means a problem
without data (a 2-D function: the model's output for input None is the objective);
each epoch is then one full step on ``loss_fn(model(None), None)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from optimlab.errors import OptimlabError

Metric = Callable[[Tensor, Tensor], Any]
XY = tuple[Tensor, Tensor]


@dataclass
class TrainingSetup:
    """Model, loss, metrics and data of one training run."""

    model: nn.Module
    loss_fn: Callable[[Tensor, Tensor], Tensor]
    metrics: dict[str, Metric]
    train: XY | None  # None: no data (see the module docstring)
    val: XY | None = None
    test: XY | None = None
    batch_size: int | None = None
    epochs: int | None = None
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _xy(split: Any, which: str) -> XY | None:
    if split is None:
        return None
    if isinstance(split, tuple | list) and len(split) == 2:
        x, y = split
    else:
        x, y = _get(split, "x"), _get(split, "y")
    if x is None or y is None:
        raise OptimlabError(f"split {which!r} must have x and y tensors (or be an (x, y) pair)")
    if len(x) != len(y):
        raise OptimlabError(f"split {which!r}: x and y differ in length ({len(x)} != {len(y)})")
    return x, y


def as_setup(problem: Any) -> TrainingSetup:
    """Turn a Problem-like object or a ``(model, loss_fn, metrics, splits)`` tuple into a
    :class:`TrainingSetup`."""
    if isinstance(problem, TrainingSetup):
        return problem
    if isinstance(problem, tuple | list):
        if len(problem) != 4:
            raise OptimlabError(
                f"problem tuple must be (model, loss_fn, metrics, splits); got {len(problem)} items"
            )
        model, loss_fn, metrics, splits = problem
        batch_size = epochs = None
        name = ""
    else:
        model, loss_fn = _get(problem, "model"), _get(problem, "loss_fn")
        metrics, splits = _get(problem, "metrics"), _get(problem, "splits")
        batch_size, epochs = _get(problem, "batch_size"), _get(problem, "epochs")
        name = _get(problem, "name") or ""
    if not isinstance(model, nn.Module):
        raise OptimlabError(f"problem model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise OptimlabError("problem loss_fn must be callable as loss_fn(output, target)")
    if splits is None:
        return TrainingSetup(model, loss_fn, dict(metrics or {}), None, None, None,
                             batch_size, epochs, name)  # fmt: skip
    train = _xy(_get(splits, "train"), "train")
    if train is None:
        raise OptimlabError("problem splits have no 'train' split")
    return TrainingSetup(
        model=model,
        loss_fn=loss_fn,
        metrics=dict(metrics or {}),
        train=train,
        val=_xy(_get(splits, "val"), "val"),
        test=_xy(_get(splits, "test"), "test"),
        batch_size=batch_size,
        epochs=epochs,
        name=name,
    )
