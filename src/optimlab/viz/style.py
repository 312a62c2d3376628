"""The shared look of optimlab's viz figures, and atomic PNG/GIF writing.

The palette lives here, and the lab's report takes its colours from it, so an optimizer
has the same colour in every figure optimlab draws.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path

from matplotlib.figure import Figure

from optimlab.errors import OptimlabError
from optimlab.io import atomic_write_bytes

__all__ = ["DPI", "PALETTE", "colour_map", "figure", "save_figure", "SUFFIXES"]

SUFFIXES = (".png", ".svg", ".pdf")
CONTOUR_CMAP = "viridis"
SURFACE_CMAP = "viridis"
# Tableau 10, then the light half of Tableau 20: distinct hues first.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#c7c7c7",
    "#dbdb8d",
    "#9edae5",
)
DPI = 110


def colour_map(optimizers: Iterable[str]) -> dict[str, str]:
    """A colour per optimizer, assigned in sorted name order so every figure agrees."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(set(optimizers)))}


def figure(width: float = 6.4, height: float = 4.8) -> Figure:
    """A pyplot-free figure (Agg, no global state) with the constrained layout."""
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def check_suffix(path: str | os.PathLike[str], allowed: Iterable[str]) -> Path:
    """``path`` as a Path, or OptimlabError naming ``--out`` and the allowed suffixes."""
    out = Path(path)
    allowed = tuple(allowed)
    if out.suffix.lower() not in allowed:
        raise OptimlabError(
            f"invalid --out {os.fspath(path)!r}; valid suffixes: {', '.join(allowed)}"
        )
    return out


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Render ``fig`` to ``path`` (format from the suffix) atomically; return the path."""
    out = check_suffix(path, SUFFIXES)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=out.suffix[1:].lower(), dpi=DPI, metadata=_metadata(out))
    return atomic_write_bytes(out, buffer.getvalue())


def _metadata(out: Path) -> dict[str, None]:
    # No software/date stamps, so the same data gives the same bytes.
    if out.suffix.lower() == ".png":
        return {"Software": None}
    return {"Creator": None} if out.suffix.lower() == ".pdf" else {"Date": None, "Creator": None}
