"""Train/validation/test splits held as tensors, and how they are made.

The validation set is carved out of the training pool by a permutation that depends on
the seed alone; normalization statistics come from the training split only, so nothing
about the validation or test examples leaks into training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from optimlab.errors import OptimlabError

# Mixed into the seed so that the split stream never coincides with a loader stream.
SPLIT_STREAM = 0x5E11


@dataclass(frozen=True, eq=False)
class Split:
    """Inputs ``x`` (first dimension = examples) and targets ``y`` of one split."""

    x: Tensor
    y: Tensor

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise OptimlabError(f"split has {self.x.shape[0]} inputs but {self.y.shape[0]} targets")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def to(self, device: str | torch.device) -> Split:
        return Split(self.x.to(device), self.y.to(device))


@dataclass(frozen=True, eq=False)
class Splits:
    """A dataset ready for training: three splits plus what a model needs to know.

    ``x`` is float (NCHW for image sets); ``y`` is int64 class indices for
    classification and float (N, outputs) for regression. ``mean``/``std`` are the
    training-split statistics used for normalization (None when not normalized), shaped
    to broadcast against ``x``.
    """

    name: str
    train: Split
    val: Split
    test: Split
    task: str
    input_shape: tuple[int, ...]
    num_classes: int | None = None
    class_names: tuple[str, ...] = ()
    mean: Tensor | None = None
    std: Tensor | None = None

    def to(self, device: str | torch.device) -> Splits:
        def move(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device)

        return Splits(
            name=self.name,
            train=self.train.to(device),
            val=self.val.to(device),
            test=self.test.to(device),
            task=self.task,
            input_shape=self.input_shape,
            num_classes=self.num_classes,
            class_names=self.class_names,
            mean=move(self.mean),
            std=move(self.std),
        )


def num_val(val_size: float | int, pool: int) -> int:
    """How many of ``pool`` examples go to validation: a fraction in [0, 1) or a count."""
    if isinstance(val_size, bool) or not isinstance(val_size, int | float):
        raise OptimlabError(f"invalid val_size: {val_size!r}; give a fraction or a count")
    if isinstance(val_size, float):
        if not 0.0 <= val_size < 1.0:
            raise OptimlabError(f"invalid val_size: {val_size!r}; a fraction must be in [0, 1)")
        return int(round(val_size * pool))
    if not 0 <= val_size < pool:
        raise OptimlabError(
            f"invalid val_size: {val_size}; a count must be in [0, {pool}) "
            f"(the training pool has {pool} examples)"
        )
    return val_size


def split_indices(
    pool: int, val_size: float | int, seed: int, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, val) index arrays; a pure function of the arguments.

    With ``labels`` (classification) the split is stratified: the examples are shuffled,
    grouped by class, and every (pool / n_val)-th one goes to validation, so each class
    keeps its share in both splits up to one example.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise OptimlabError(f"invalid seed: {seed!r}; valid seeds are integers >= 0")
    n_val = num_val(val_size, pool)
    perm = np.random.default_rng([SPLIT_STREAM, seed]).permutation(pool)
    if labels is None:
        val, train = perm[:n_val], perm[n_val:]
    else:
        grouped = perm[np.argsort(labels[perm], kind="stable")]  # random order within class
        ticks = (np.arange(1, pool + 1) * n_val) // pool
        chosen = np.diff(ticks, prepend=0) > 0  # exactly n_val evenly spaced positions
        val, train = grouped[chosen], grouped[~chosen]
    return np.sort(train), np.sort(val)


#: Rows per chunk of the variance pass of fit_normalization
NORMALIZATION_CHUNK = 8192


def _sum64(x: Tensor, dims: list[int]) -> Tensor:
    """``x`` summed over ``dims`` (kept), accumulated in float64 across examples.

    Float32 sums over ~10^8 values lose digits, but casting every element to float64
    made loading Fashion-MNIST take seconds; so each example's own values (at most one
    image) are summed in x's dtype, and only those per-example sums in float64.
    """
    inner = [d for d in dims if d != 0]
    if inner:
        x = x.sum(dim=inner, keepdim=True)
    return x.sum(dim=0, keepdim=True, dtype=torch.float64)


def fit_normalization(x: Tensor, mode: str) -> tuple[Tensor, Tensor] | tuple[None, None]:
    """Mean and std of training inputs: per channel (``"channel"``, NCHW input), per
    feature (``"feature"``) or none (``"none"``). Constant features get std 1."""
    if mode == "none":
        return None, None
    if mode == "channel":
        dims = [0, *range(2, x.ndim)]
    elif mode == "feature":
        dims = [0]
    else:
        raise OptimlabError(f"unknown normalization {mode!r}; valid: channel, feature, none")
    count = x.numel() // np.prod([x.shape[d] for d in range(x.ndim) if d not in dims])
    mean = _sum64(x, dims) / count
    var = torch.zeros_like(mean)
    for chunk in x.split(NORMALIZATION_CHUNK):  # chunks: no full-size temporary
        centered = chunk - mean.to(x.dtype)
        var += _sum64(centered.mul_(centered), dims)
    var /= count
    std = var.sqrt()
    std = torch.where(std > 1e-12, std, torch.ones_like(std))
    return mean.to(x.dtype), std.to(x.dtype)
