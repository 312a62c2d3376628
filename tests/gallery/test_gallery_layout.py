"""The gallery's layout check on figures built to have one fault each, and on real entries'
figures: the legend moved off the data, titles that fit, ticks on whole epochs."""

from __future__ import annotations

import numpy as np
import pytest

from optimlab.gallery import figures, layout
from optimlab.gallery.entry import Context
from optimlab.gallery.registry import entries


def two_lines():
    fig = figures.figure(6.0, 4.0)
    ax = fig.subplots()
    x = np.linspace(0.0, 1.0, 50)
    ax.plot(x, np.ones_like(x), label="flat at the top")
    ax.plot(x, x, label="rising")
    return fig, ax


def test_a_legend_over_a_line_is_reported():
    fig, ax = two_lines()
    ax.legend(loc="upper left")
    found = layout.problems(fig)
    assert found and all("covers the line 'flat at the top'" in f for f in found)


def test_a_legend_outside_the_axes_covers_nothing():
    fig, ax = two_lines()
    figures.legend_outside(fig, ax, ncols=2)
    assert layout.problems(fig) == []


def test_a_legend_in_a_free_corner_and_a_reference_line_under_it_pass():
    fig, ax = two_lines()
    ax.set_ylim(0.0, 1.5)
    ax.axhline(0.1, color="grey", label="reference level")
    ax.axvline(0.9, color="grey")
    ax.legend(loc="lower right")  # over the reference lines only
    assert layout.problems(fig) == []


def test_bars_points_and_a_heatmap_under_a_legend_are_reported():
    fig = figures.figure(9.0, 3.0)
    bars, dots, heat = fig.subplots(1, 3)
    bars.bar([0, 1], [1.0, 1.0], label="bars")
    bars.legend(loc="center")
    dots.scatter([0.5], [0.5], label="one point")
    dots.set_xlim(0, 1), dots.set_ylim(0, 1)
    dots.legend(loc="center")
    heat.pcolormesh(np.arange(9.0).reshape(3, 3))
    heat.plot([], [], label="empty")
    heat.legend(loc="center")
    found = " | ".join(layout.problems(fig))
    assert "covers a bar" in found and "covers the points 'one point'" in found
    assert "covers the heatmap" in found


def test_a_title_wider_than_the_figure_is_reported():
    fig, _ = two_lines()
    fig.suptitle("a title far too long for a figure six inches wide " * 3)
    found = layout.problems(fig)
    assert any("reaches past the figure's left edge" in f for f in found)
    assert any("reaches past the figure's right edge" in f for f in found)


def test_an_empty_unclipped_marker_line_is_reported():
    # Drawn at (0, 0) of the canvas, it pulls the constrained layout off the figure.
    fig, ax = two_lines()
    ax.plot([], [], "x", transform=ax.get_xaxis_transform(), clip_on=False)
    assert any("reaches past the figure's" in f for f in layout.problems(fig))


def test_written_figures_carry_their_faults(tmp_path):
    fig, ax = two_lines()
    ax.legend(loc="upper left")
    clean, _ = two_lines()
    written = figures.write({"covered": fig, "clean": clean}, tmp_path)
    assert written[0]["layout"] == layout.problems(fig) != []
    assert "layout" not in written[1]


def test_whole_steps_puts_ticks_on_whole_numbers_only():
    fig = figures.figure(6.0, 4.0)
    ax = fig.subplots()
    ax.plot([1, 2, 3], [3.0, 2.0, 1.0])
    figures.whole_steps(ax)
    layout.problems(fig)  # lays it out
    ticks = [t for t in ax.get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)


# Entries whose quick run takes a few seconds; the quick-tier test checks every entry.
CHEAP = ["cyclical", "newton_units", "stale_gradients", "adversarial", "lr_range_test"]


@pytest.mark.parametrize("name", CHEAP)
def test_cheap_entries_draw_without_layout_faults(name):
    entry = entries().get(name)
    measured = entry.compute(entry.budget("quick"), Context())
    for stem, fig in entry.draw(measured).items():
        assert layout.problems(fig) == [], stem
