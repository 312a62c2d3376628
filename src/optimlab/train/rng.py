"""Seeding and saving the random number generators a training run touches.

Dropout and other stochastic layers draw from torch's global generator; user code may
draw from numpy's and Python's. Saving all of them in a checkpoint is what makes a
resumed run continue on the same random stream as an uninterrupted one.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy's global generator and Python's ``random``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    # torch.manual_seed would also queue a lazy CUDA seeding, which records a traceback
    # (about a millisecond) even where CUDA is absent; seed CUDA only where it exists.
    torch.default_generator.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def get_rng_state() -> dict[str, Any]:
    """The state of every global generator, as tensors and plain Python values.

    Plain values (no numpy arrays) keep checkpoints loadable with ``weights_only=True``.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators saved by :func:`get_rng_state`."""
    torch.set_rng_state(state["torch"])
    npst = state["numpy"]
    keys = npst["keys"].numpy().astype(np.uint32)
    np.random.set_state(
        (npst["kind"], keys, npst["pos"], npst["has_gauss"], npst["cached_gaussian"])
    )
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
