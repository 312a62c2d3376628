"""Deciding whether a monitored value improved: the shared core of early stopping,
plateau detection and best-checkpoint selection.

Two conventions exist. Keras compares with an absolute ``min_delta``: for a quantity to
minimise, ``current < best - min_delta``. torch's ReduceLROnPlateau defaults to a
relative threshold: ``current < best * (1 - threshold)``. Both are offered through
``threshold_mode`` ("abs", the default here as in Keras, or "rel").
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from optimlab.errors import OptimlabError, check_range

MODES = ("auto", "min", "max")
THRESHOLD_MODES = ("abs", "rel")

# Substrings that say which way a metric should move, for mode="auto". Checked in this
# order, so "top5_error" is minimised although it contains "top".
_MINIMISE = ("loss", "err", "mse", "mae", "perplexity", "nll")
_MAXIMISE = ("acc", "auc", "precision", "recall", "f1", "iou", "top", "score", "r2")


def resolve_mode(monitor: str, mode: str = "auto") -> str:
    """ "min" or "max" for ``monitor``; "auto" guesses from the metric's name."""
    if mode not in MODES:
        raise OptimlabError(f"invalid mode {mode!r}; valid modes: {', '.join(MODES)}")
    if mode != "auto":
        return mode
    name = monitor.lower()
    for prefix in ("val_", "test_", "train_"):
        name = name.removeprefix(prefix)
    if any(h in name for h in _MINIMISE):
        return "min"
    if any(h in name for h in _MAXIMISE):
        return "max"
    raise OptimlabError(
        f"cannot tell whether monitor {monitor!r} should be minimised or maximised; "
        "pass mode='min' or mode='max'"
    )


class Improvement:
    """``improved(current, reference)``: whether ``current`` beats ``reference`` by the
    margin; a reference of None is always beaten, and NaN never improves."""

    def __init__(self, mode: str, min_delta: float = 0.0, threshold_mode: str = "abs") -> None:
        if mode not in ("min", "max"):
            raise OptimlabError(f"invalid mode {mode!r}; valid modes: min, max")
        if threshold_mode not in THRESHOLD_MODES:
            raise OptimlabError(
                f"invalid threshold_mode {threshold_mode!r}; "
                f"valid threshold_modes: {', '.join(THRESHOLD_MODES)}"
            )
        check_range("min_delta", min_delta, 0.0)
        self.mode, self.min_delta, self.threshold_mode = mode, float(min_delta), threshold_mode

    def __call__(self, current: float, reference: float | None) -> bool:
        if current is None or math.isnan(current):
            return False
        if reference is None:
            return True
        d = self.min_delta
        if self.threshold_mode == "abs":
            if self.mode == "min":
                return current < reference - d
            return current > reference + d
        if self.mode == "min":
            return current < reference * (1.0 - d)
        return current > reference * (1.0 + d)


class MonitorReader:
    """Reads the monitored value from an epoch's logs; warns once when it is missing.

    Shared by the callbacks that watch a metric (early stopping, plateau, best
    checkpoint): a misspelt monitor should be said once, not every epoch, nor silently.
    """

    def __init__(self, owner: str, monitor: str, consequence: str = "it does nothing") -> None:
        self.owner, self.monitor, self.consequence = owner, monitor, consequence
        self.warned = False

    def __call__(self, logs: dict[str, Any]) -> Any:
        value = logs.get(self.monitor)
        if value is None and not self.warned:
            warnings.warn(
                f"{self.owner}: monitor {self.monitor!r} is not in the epoch logs "
                f"(available: {', '.join(sorted(logs))}); {self.consequence}",
                stacklevel=3,
            )
            self.warned = True
        return value
