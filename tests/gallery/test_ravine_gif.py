"""The ravine entry's animation: ``gif_bytes(blit=True)`` (contours drawn once, moving
parts redrawn per frame, one palette) shows the same frames as full redraws."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from optimlab.viz import trajectories as tr


def frames(data: bytes) -> list[np.ndarray]:
    out = []
    with Image.open(io.BytesIO(data)) as gif:
        for k in range(gif.n_frames):
            gif.seek(k)
            out.append(np.asarray(gif.convert("RGB"), dtype=float))
    return out


def test_blitted_frames_match_full_redraws():
    lrs = {"sgd": 0.15, "momentum": 0.05, "nesterov": 0.05}
    paths = tr.compute("ravine", list(lrs), steps=20, lrs=lrs)
    full = frames(tr.gif_bytes("ravine", paths, frames=4, title="t"))
    fast = frames(tr.gif_bytes("ravine", paths, frames=4, title="t", blit=True))
    assert len(full) == len(fast) == 4
    for a, b in zip(full, fast, strict=True):
        assert a.shape == b.shape
        differ = np.abs(a - b).sum(axis=-1) > 60
        assert differ.mean() < 0.05  # a few colours and the stacking at axis lines
    # The frames differ from each other: the paths grow.
    assert np.abs(fast[0] - fast[-1]).sum(axis=-1).max() > 60
