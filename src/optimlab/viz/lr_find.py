"""The LR range test's figure: loss against learning rate on a log axis (Smith 2017, fig. 3
shows the accuracy form of the same plot)."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from optimlab.errors import OptimlabError

if TYPE_CHECKING:
    from optimlab.train.lr_find import LRFindResult

FORMATS = ("png", "svg", "pdf")


def figure_format(path: str | os.PathLike[str]) -> str:
    """The file format named by ``path``'s extension; an error unless png, svg or pdf."""
    fmt = Path(path).suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise OptimlabError(f"invalid path: {str(path)!r}; use a .png, .svg or .pdf file name")
    return fmt


def _y_limits(losses: list[float], smoothed: list[float]) -> tuple[float, float] | None:
    """From a little below the lowest point to a quarter of the drop above the smoothed
    loss's highest value before its minimum, so that the divergence does not flatten
    the interesting part; None when nothing is finite."""
    finite = [(i, s) for i, s in enumerate(smoothed) if math.isfinite(s)]
    values = [v for v in losses + smoothed if math.isfinite(v)]
    if not finite or not values:
        return None
    i_min, s_min = min(finite, key=lambda p: p[1])
    s_top = max(s for i, s in finite if i <= i_min)
    low = min(values)
    span = max(s_top - low, 1e-12 * max(1.0, abs(s_top)))
    return low - 0.05 * span, s_top + 0.25 * span


def plot_lr_find(result: LRFindResult, path: str | os.PathLike[str], *, title: str = "") -> Path:
    """Draw the raw loss (faint) and the smoothed loss against the LR (log axis), the
    suggested LR (a marker on the smoothed curve) and the cyclical bounds (a shaded band);
    write PNG, SVG or PDF by ``path``'s extension, atomically. Returns the path."""
    fmt = figure_format(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from optimlab.io import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    try:
        ax.plot(result.lrs, result.losses, color="tab:blue", alpha=0.25, lw=1, label="loss")
        ax.plot(result.lrs, result.smoothed, color="tab:blue", lw=2, label="smoothed loss")
        base, top = result.bounds
        if math.isfinite(base) and math.isfinite(top):
            ax.axvspan(base, top, color="tab:green", alpha=0.12, lw=0)
            for x in (base, top):
                ax.axvline(x, color="tab:green", ls="--", lw=1)
            ax.plot([], [], color="tab:green", ls="--", label=f"bounds {base:.3g} .. {top:.3g}")
        lr = result.suggested_lr
        if math.isfinite(lr):
            i = min(range(len(result.lrs)), key=lambda k: abs(result.lrs[k] - lr))
            ax.plot(
                [lr], [result.smoothed[i]], marker="o", ms=8, color="tab:red", ls="none",
                label=f"suggested lr {lr:.3g}",
            )  # fmt: skip
        if result.stopped_early:
            ax.plot([], [], ls="none", label="stopped: loss diverged")
        limits = _y_limits(result.losses, result.smoothed)
        if limits is not None:
            ax.set_ylim(*limits)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.set_title(title or "LR range test")
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize="small")
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=120)
    finally:
        plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())
