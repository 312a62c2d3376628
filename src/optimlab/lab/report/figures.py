"""Shared figure plumbing of the report: file names, and atomic PNG + SVG saving.

Colours and the resolution come from :mod:`optimlab.viz.style`, shared by every figure.

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot), which renders
with Agg, keeps no global state and needs no display.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from optimlab.io import atomic_write_bytes
from optimlab.viz.style import DPI


@dataclass(frozen=True)
class FigureFile:
    """A saved figure: its title and caption, the two files, and the PNG bytes to embed."""

    stem: str
    title: str
    caption: str
    png: Path
    svg: Path
    png_bytes: bytes


def slug(text: str) -> str:
    """A file-name-safe version of ``text`` (problem names come from users)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "x"


def new_figure(panels: int = 1, height: float = 3.6, columns: int = 3) -> tuple[Figure, list]:
    """A figure with ``panels`` axes, at most ``columns`` to a row."""
    cols = min(panels, columns)
    rows = -(-panels // cols)
    fig = Figure(figsize=(4.6 * cols + 1.4, height * rows), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[panels:]:
        ax.set_visible(False)
    for ax in axes[:panels]:
        ax.grid(True, alpha=0.3, linewidth=0.6)
    return fig, list(axes[:panels])


def save(fig: Figure, out_dir: Path, stem: str, title: str, caption: str) -> FigureFile:
    """Write ``stem.png`` and ``stem.svg`` atomically into ``out_dir``."""
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=DPI, metadata={"Software": None})
    # The PNG render fixed the layout; solving it again for the SVG would only cost time.
    fig.set_layout_engine("none")
    svg = io.BytesIO()
    # No date, and a fixed hash salt: the same data gives the same SVG bytes.
    with matplotlib.rc_context({"svg.hashsalt": stem}):
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    png_path = atomic_write_bytes(out_dir / f"{stem}.png", png.getvalue())
    svg_path = atomic_write_bytes(out_dir / f"{stem}.svg", svg.getvalue())
    return FigureFile(stem, title, caption, png_path, svg_path, png.getvalue())
