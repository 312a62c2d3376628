"""Decoded dataset arrays before splitting and normalization."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class RawData:
    """A dataset as decoded: the training pool and the test set as numpy arrays.

    Image inputs are (N, C, H, W) with values in [0, 1] once divided by ``scale``
    (255 for 8-bit images); other inputs are (N, features) floats with scale 1.
    Classification targets are integer class indices; regression targets (N, outputs).
    The arrays are read-only because they are shared by the per-process cache.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    scale: float = 1.0
    class_names: tuple[str, ...] = ()
    origin: str = ""  # where the data came from: a folder, "scikit-learn", "generated"

    def __post_init__(self) -> None:
        for array in (self.train_x, self.train_y, self.test_x, self.test_y):
            array.flags.writeable = False
