"""Example orders for the batch loader: shuffling rules and curriculum learning.

Every rule gives the order of epoch ``e`` as a pure function of ``(seed, e)`` (and of
its own settings), so a resumed run needs only the epoch and the batch reached:

- ``random``: a fresh permutation every epoch ("shuffle training data after every epoch
  to break biases", as the lectures put it).
- ``shuffle_once``: one permutation, drawn from the seed, reused every epoch.
- ``cyclic``: the stored order every epoch.
- ``curriculum``: easy examples first (Bengio, Louradour, Collobert & Weston 2009).
  Examples are ranked by a score (low = easy), e.g. each example's loss under a
  reference model (Hacohen & Weinshall 2019, "transfer scoring"). In epoch ``e`` only
  the ``ceil(c(e) * n)`` easiest examples are used, where the pacing ``c`` grows from
  ``start`` to 1 over ``epochs`` epochs; within that pool the order is shuffled by
  ``(seed, e)``. Pacing functions, with ``t = min(e / epochs, 1)`` and ``c0 = start``:

  * ``linear``: ``c = c0 + (1 - c0) t``
  * ``root``:   ``c = sqrt(c0^2 + (1 - c0^2) t)`` (Platanios et al. 2019): the pool grows
    fast at first and slower later (``dc/dt`` falls as ``1/c``), as a new example is a
    smaller share of a larger pool
  * ``exp``:    ``c = c0^(1 - t)`` (geometric growth: the pool grows by a fixed factor
    per epoch, like Hacohen & Weinshall's exponential pacing)
  * ``step``:   ``c = c0 + (1 - c0) floor(t * stages) / stages`` with ``stages`` steps
    ("baby steps": the pool jumps at fixed epochs)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from optimlab.errors import OptimlabError, check_range, unknown_name

# Stream tags mixed into the seed so the streams never coincide; LOADER_STREAM keeps
# the value the loader has always used, so "random" orders are unchanged.
LOADER_STREAM = 0x10AD
ONCE_STREAM = 0x0DCE
CURRICULUM_STREAM = 0xC0C0


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The example order of ``epoch``: a permutation of range(n) fixed by (seed, epoch)."""
    return np.random.default_rng([LOADER_STREAM, seed, epoch]).permutation(n)


class Ordering(Protocol):
    """What the loader asks of an order rule."""

    name: str

    def indices(self, n: int, seed: int, epoch: int) -> np.ndarray | None:
        """The example indices of ``epoch`` in order, or None for the stored order."""
        ...

    def pool_size(self, n: int, epoch: int) -> int:
        """How many examples ``epoch`` visits (n unless the rule holds some back)."""
        ...


class Shuffle:
    """``random``: a fresh permutation each epoch."""

    name = "random"

    def indices(self, n: int, seed: int, epoch: int) -> np.ndarray | None:
        return epoch_permutation(n, seed, epoch)

    def pool_size(self, n: int, epoch: int) -> int:
        return n


class ShuffleOnce:
    """``shuffle_once``: one permutation fixed by the seed, the same every epoch."""

    name = "shuffle_once"

    def indices(self, n: int, seed: int, epoch: int) -> np.ndarray | None:
        return np.random.default_rng([ONCE_STREAM, seed]).permutation(n)

    def pool_size(self, n: int, epoch: int) -> int:
        return n


class Cyclic:
    """``cyclic``: the stored order every epoch."""

    name = "cyclic"

    def indices(self, n: int, seed: int, epoch: int) -> np.ndarray | None:
        return None

    def pool_size(self, n: int, epoch: int) -> int:
        return n


def _linear(t: float, c0: float, stages: int) -> float:
    return c0 + (1.0 - c0) * t


def _root(t: float, c0: float, stages: int) -> float:
    return math.sqrt(c0 * c0 + (1.0 - c0 * c0) * t)


def _exp(t: float, c0: float, stages: int) -> float:
    return c0 ** (1.0 - t)


def _step(t: float, c0: float, stages: int) -> float:
    return c0 + (1.0 - c0) * math.floor(t * stages) / stages


PACINGS: dict[str, Callable[[float, float, int], float]] = {
    "linear": _linear,
    "root": _root,
    "exp": _exp,
    "step": _step,
}


def pacing_fraction(
    epoch: int, start: float, epochs: int, pacing: str = "linear", stages: int = 4
) -> float:
    """The fraction c(epoch) of the data a curriculum admits (formulas in the module doc)."""
    if pacing not in PACINGS:
        raise unknown_name("pacing", pacing, PACINGS)
    check_range("start", start, 0.0, 1.0, low_open=True)
    check_range("epochs", epochs, 0)
    check_range("stages", stages, 1)
    check_range("epoch", epoch, 0)
    t = 1.0 if epochs == 0 else min(epoch / epochs, 1.0)
    return min(PACINGS[pacing](t, float(start), int(stages)), 1.0)


def pool_size(n: int, fraction: float) -> int:
    """The examples a curriculum admits out of ``n`` at ``fraction``: ``ceil(fraction * n)``,
    at least 1."""
    # The 1e-9 keeps c * n = 10.000000001 from admitting an 11th example.
    return max(1, min(n, math.ceil(fraction * n - 1e-9)))


class Curriculum:
    """``curriculum``: the easiest examples first, admitting more each epoch.

    Args:
        scores: one difficulty score per training example (lower = easier), e.g. from
            :func:`reference_losses`. Ties keep the stored order.
        start: the fraction admitted in epoch 0, in (0, 1].
        epochs: epochs over which the pool grows to the whole set (0: all at once).
        pacing: "linear", "root", "exp" or "step" (see the module doc).
        stages: the number of jumps of the "step" pacing.
        shuffle: shuffle the pool by (seed, epoch); False visits it easiest first.
    """

    name = "curriculum"

    def __init__(
        self,
        scores: Sequence[float] | np.ndarray | Tensor,
        *,
        start: float = 0.2,
        epochs: int = 10,
        pacing: str = "linear",
        stages: int = 4,
        shuffle: bool = True,
    ) -> None:
        if isinstance(scores, Tensor):
            scores = scores.detach().cpu().numpy()
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim != 1 or scores.size == 0 or not np.isfinite(scores).all():
            raise OptimlabError(
                f"invalid curriculum scores: need a non-empty 1-D array of finite numbers, "
                f"one per example; got shape {scores.shape}"
            )
        pacing_fraction(0, start, epochs, pacing, stages)  # checks the settings
        self.scores = scores
        self.start, self.epochs, self.pacing = float(start), int(epochs), pacing
        self.stages, self.shuffle = int(stages), bool(shuffle)
        # Easiest first; a stable sort keeps ties in stored order.
        self.ranking = np.argsort(scores, kind="stable")

    def fraction(self, epoch: int) -> float:
        return pacing_fraction(epoch, self.start, self.epochs, self.pacing, self.stages)

    def pool_size(self, n: int, epoch: int) -> int:
        self._check_n(n)
        return pool_size(n, self.fraction(epoch))

    def indices(self, n: int, seed: int, epoch: int) -> np.ndarray | None:
        pool = self.ranking[: self.pool_size(n, epoch)]
        if not self.shuffle:
            return pool.copy()
        rng = np.random.default_rng([CURRICULUM_STREAM, seed, epoch])
        return pool[rng.permutation(pool.size)]

    def _check_n(self, n: int) -> None:
        if n != self.scores.size:
            raise OptimlabError(
                f"curriculum has {self.scores.size} scores but the data has {n} examples"
            )


ORDERINGS: dict[str, Callable[..., Any]] = {
    "random": Shuffle,
    "shuffle_once": ShuffleOnce,
    "cyclic": Cyclic,
    "curriculum": Curriculum,
}


def create(name: str, **kwargs: Any) -> Ordering:
    """An order rule by name; ``curriculum`` takes ``scores`` and the pacing settings."""
    if name not in ORDERINGS:
        raise unknown_name("order", name, [*ORDERINGS, "full"])
    if name == "curriculum" and "scores" not in kwargs:
        raise OptimlabError("order 'curriculum' needs scores=... (one per training example)")
    if name != "curriculum" and kwargs:
        raise OptimlabError(f"order {name!r} takes no settings; got {', '.join(kwargs)}")
    return ORDERINGS[name](**kwargs)


@torch.no_grad()
def reference_losses(
    model: nn.Module, x: Tensor, y: Tensor, task: str = "classification", batch_size: int = 1024
) -> Tensor:
    """Per-example losses of a (reference) model, as curriculum difficulty scores.

    Cross-entropy for ``task="classification"`` (``y`` class indices), squared error
    summed over outputs for ``"regression"``. The model runs in eval mode; its mode is
    restored afterwards.
    """
    if task not in ("classification", "regression"):
        raise OptimlabError(f"invalid task {task!r}; valid tasks: classification, regression")
    check_range("batch_size", batch_size, 1)
    was_training = model.training
    model.eval()
    try:
        out = []
        for i in range(0, x.shape[0], batch_size):
            pred, target = model(x[i : i + batch_size]), y[i : i + batch_size]
            if task == "classification":
                out.append(nn.functional.cross_entropy(pred, target, reduction="none"))
            else:
                err = (pred - target.reshape(pred.shape)) ** 2
                out.append(err.reshape(err.shape[0], -1).sum(1))
        return torch.cat(out).cpu()
    finally:
        model.train(was_training)
