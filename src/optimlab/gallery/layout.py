"""Checks of a drawn figure's layout: nothing cut off at its edges, no legend over data.

``problems(fig)`` lays the figure out as saving it would and returns one line per fault:

- a title, label, tick label, legend or marker that reaches past the figure's edge
  (saved, it would be cut off);
- a legend over plotted data: a line's drawn segments or markers, scatter points, bars,
  or a heatmap. Contour lines are a background (the paths' legend may sit on them), and
  reference lines spanning the whole axes (``axhline``, ``axvline``) are left out.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection, QuadMesh
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.path import Path
from matplotlib.transforms import Bbox

#: pixels a box may pass the figure's edge by (antialiasing of a frame's line)
SLACK = 1.0


def problems(fig: Figure) -> list[str]:
    """Every layout fault of ``fig``, in words; empty when it reads cleanly."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    found = [f"{what} reaches past the figure's {edge}" for what, edge in _past_edges(fig)]
    legends = [(ax.get_legend(), ax) for ax in fig.axes if ax.get_legend() is not None]
    legends += [(legend, None) for legend in fig.legends]
    for legend, own in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            for what in _covered(ax, box):
                where = "its axes" if ax is own else f"axes {_name(ax)!r}"
                found.append(f"the legend {_legend_name(legend)!r} covers {what} in {where}")
    return found


def _past_edges(fig: Figure) -> Iterator[tuple[str, str]]:
    renderer = fig.canvas.get_renderer()
    edge = fig.bbox
    boxes = [(f"axes {_name(ax)!r} (its labels or markers)", ax.get_tightbbox(renderer))
             for ax in fig.axes]  # fmt: skip
    # fig.texts holds the suptitle too.
    boxes += [(f"the text {t.get_text()!r}", t.get_window_extent(renderer))
              for t in fig.texts if t.get_visible() and t.get_text()]  # fmt: skip
    boxes += [(f"the legend {_legend_name(g)!r}", g.get_window_extent(renderer))
              for g in fig.legends]  # fmt: skip
    for what, box in boxes:
        if box is None:
            continue
        sides = (
            ("left edge", box.x0 < edge.x0 - SLACK),
            ("right edge", box.x1 > edge.x1 + SLACK),
            ("bottom", box.y0 < edge.y0 - SLACK),
            ("top", box.y1 > edge.y1 + SLACK),
        )
        for side, past in sides:
            if past:
                yield what, side


def _covered(ax, box: Bbox) -> Iterator[str]:
    inside = ax.get_window_extent()
    if not box.overlaps(inside):
        return
    for line in ax.lines:
        if line.get_visible() and not _spans_axes(line) and _line_meets(line, box):
            yield f"the line {line.get_label()!r}"
    for patch in ax.patches:
        if isinstance(patch, Rectangle) and patch.get_visible():
            if patch.get_window_extent().overlaps(box) and patch.get_height() != 0:
                yield "a bar"
                break
    for collection in ax.collections:
        if not collection.get_visible():
            continue
        if isinstance(collection, PathCollection):  # scatter points (contours are not these)
            points = collection.get_offset_transform().transform(collection.get_offsets())
            if _any_inside(points, box):
                yield f"the points {collection.get_label()!r}"
        elif isinstance(collection, QuadMesh):
            yield "the heatmap"
    for image in ax.images:
        if isinstance(image, AxesImage) and image.get_visible():
            yield "the image"


def _spans_axes(line: Line2D) -> bool:
    """An ``axhline``/``axvline``: a reference level drawn across the whole axes."""
    x, y = line.get_xdata(orig=False), line.get_ydata(orig=False)
    ax = line.axes
    return len(x) == 2 and (
        line.get_transform() == ax.get_yaxis_transform()
        and list(x) == [0, 1]
        or line.get_transform() == ax.get_xaxis_transform()
        and list(y) == [0, 1]
    )


def _line_meets(line: Line2D, box: Bbox) -> bool:
    xy = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
    ok = np.isfinite(xy).all(axis=1)
    if line.get_marker() not in (None, "None", "none", "") and _any_inside(xy[ok], box):
        return True
    if line.get_linestyle() in ("None", "none", "", " "):
        return False
    for a, b, both in zip(xy[:-1], xy[1:], ok[:-1] & ok[1:], strict=True):
        if both and Path([a, b]).intersects_bbox(box, filled=False):
            return True
    return False


def _any_inside(points: np.ndarray, box: Bbox) -> bool:
    if len(points) == 0:
        return False
    x, y = points[:, 0], points[:, 1]
    return bool(np.any((x >= box.x0) & (x <= box.x1) & (y >= box.y0) & (y <= box.y1)))


def _name(ax) -> str:
    return ax.get_title() or ax.get_ylabel() or "untitled"


def _legend_name(legend: Legend) -> str:
    texts = [t.get_text() for t in legend.get_texts()]
    return texts[0] if texts else "empty"
