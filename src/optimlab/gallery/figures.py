"""Writing an entry's figures: PNG and SVG for every figure, GIF for an animation.

Files are written atomically and without date or software stamps, so the same numbers
give the same bytes. ``figure`` gives entries the gallery's figure size, and
``legend_outside`` a legend that cannot cover the data, ``whole_steps`` ticks on
whole epochs or layers.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.ticker import MaxNLocator

from optimlab.gallery import layout
from optimlab.gallery.entry import Animation, Drawings, output_stem
from optimlab.io import atomic_write_bytes
from optimlab.viz.style import DPI


def _render(fig: Figure, fmt: str, stem: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "png":
        fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    else:
        # A fixed hash salt keeps the SVG's generated ids the same from run to run.
        with matplotlib.rc_context({"svg.hashsalt": stem}):
            fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return buffer.getvalue()


def write(drawings: Drawings, folder: Path) -> list[dict[str, object]]:
    """Write every drawing into ``folder``; one ``{"stem", "files"}`` per drawing, the
    first file being the one a page shows (the GIF of an animation, else the PNG), and
    ``"layout"``, the faults :func:`optimlab.gallery.layout.problems` finds in it, when
    there are any."""
    written = []
    for stem, drawing in drawings.items():
        output_stem(stem)
        still = drawing.still if isinstance(drawing, Animation) else drawing
        files = []
        if isinstance(drawing, Animation):
            atomic_write_bytes(folder / f"{stem}.gif", drawing.gif)
            files.append(f"{stem}.gif")
        for fmt in ("png", "svg"):
            atomic_write_bytes(folder / f"{stem}.{fmt}", _render(still, fmt, stem))
            files.append(f"{stem}.{fmt}")
        faults = layout.problems(still)
        written.append({"stem": stem, "files": files, **({"layout": faults} if faults else {})})
    return written


def figure(width: float = 10.0, height: float = 4.8) -> Figure:
    """A pyplot-free figure at the gallery's size: about a laptop screen's width at 110 dpi."""
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def legend_outside(
    fig: Figure, ax: Axes, where: str = "lower center", ncols: int = 1, **options: Any
) -> Legend:
    """The legend of ``ax``'s labelled artists, placed by the constrained layout outside
    every axes (``where``: e.g. ``"lower center"``, ``"right upper"``), for a panel whose
    data leaves no free corner; ``options`` go to ``Figure.legend``."""
    handles, labels = ax.get_legend_handles_labels()
    options.setdefault("fontsize", 8)
    return fig.legend(handles, labels, loc=f"outside {where}", ncols=ncols, **options)


def whole_steps(*axes: Axes) -> None:
    """Ticks only at whole numbers on each x-axis: epochs and layers have no halves."""
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
