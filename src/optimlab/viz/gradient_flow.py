"""Gradient-flow figures: a layer x step heatmap of gradient norms, per-layer histograms.

Both draw on a bare ``matplotlib.figure.Figure`` (Agg, no pyplot state) and are written
atomically as PNG. The numbers come from ``optimlab.train.diagnostics.GradientFlow``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from optimlab.io import atomic_write_bytes

DPI = 110
MAX_PANELS = 20


def _save_png(fig: Figure, path: str | Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return atomic_write_bytes(path, buffer.getvalue())


def heatmap(
    layers: Sequence[str],
    steps: Sequence[int],
    grad_norms: Sequence[Sequence[float]],
    path: str | Path,
    title: str = "gradient norm per layer",
) -> Path:
    """Layers (rows, input side at the top) x sampled steps (columns), colour = ||dL/dW||
    on a log scale; non-finite or zero entries are left blank."""
    data = np.array(grad_norms, dtype=float).reshape(len(layers), len(steps))
    masked = np.ma.masked_where(~np.isfinite(data) | (data <= 0), data)
    fig = Figure(figsize=(7.5, 1.2 + 0.22 * len(layers)), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    if masked.count():
        lo, hi = float(masked.min()), float(masked.max())
        norm = LogNorm(vmin=lo, vmax=hi if hi > lo else lo * 10)
        image = ax.imshow(masked, aspect="auto", interpolation="nearest", norm=norm, cmap="magma")
        fig.colorbar(image, ax=ax, label="||dL/dW||")
    ax.set_yticks(range(len(layers)), [f"{k}: {n}" for k, n in enumerate(layers)], fontsize=7)
    ticks = np.unique(np.linspace(0, len(steps) - 1, min(len(steps), 8)).round().astype(int))
    ax.set_xticks(ticks, [str(steps[t]) for t in ticks])
    ax.set_xlabel("step")
    ax.set_ylabel("layer (input at top)")
    ax.set_title(title)
    return _save_png(fig, path)


def histograms(
    samples: Mapping[str, torch.Tensor | np.ndarray],
    path: str | Path,
    title: str = "activations per layer (last sampled step)",
    bins: int = 40,
) -> Path:
    """One histogram panel per layer (at most ``MAX_PANELS``, evenly spread over depth)."""
    names = list(samples)
    if len(names) > MAX_PANELS:
        keep = np.unique(np.linspace(0, len(names) - 1, MAX_PANELS).round().astype(int))
        names = [names[k] for k in keep]
    cols = min(5, max(len(names), 1))
    rows = max(math.ceil(len(names) / cols), 1)
    fig = Figure(figsize=(2.6 * cols, 2.0 * rows + 0.5), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    for ax, name in zip(axes, names, strict=False):
        values = samples[name]
        if isinstance(values, torch.Tensor):
            values = values.detach().float().cpu().numpy()
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        ax.hist(values, bins=bins, color="#1f77b4")
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(title)
    return _save_png(fig, path)
