"""Radford's saddle-point animation: which methods break the symmetry of a saddle.

The saddle is f = x^2 - y^2, started at (1, 0.001), just off the ridge y = 0 where the
gradient along y vanishes. Radford's six methods run from there: SGD, momentum and
Nesterov (torch form, momentum 0.9) and Adagrad, RMSprop (lr 0.05 each) and Adadelta
(lr 1, its paper has no rate). The measured number is the step at which each method
leaves the ridge, ``|y| >= 0.1`` (a hundred times the start): SGD multiplies ``y`` by
``1 + 2 lr`` a step, while the adaptive methods divide the tiny gradient by its own scale
and move at the rate's size from the first step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from optimlab.gallery.decks import deck
from optimlab.gallery.entry import (
    NOT_REPRODUCED,
    REPRODUCED,
    Animation,
    Context,
    Entry,
    Measured,
    Verdict,
)

FUNCTION = "saddle"
START = (1.0, 1e-3)
LEFT_RIDGE = 0.1
SGD_FAMILY = ("sgd", "momentum", "nesterov")
ADAPTIVE = ("adagrad", "adadelta", "rmsprop")
LRS = {"sgd": 0.05, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.05, "adadelta": 1.0,
       "rmsprop": 0.05}  # fmt: skip


def left_ridge_at(points: np.ndarray) -> int | None:
    """The first step whose ``|y|`` reaches ``LEFT_RIDGE``; None if the path never does."""
    hits = np.flatnonzero(np.abs(points[:, 1]) >= LEFT_RIDGE)
    return int(hits[0]) if hits.size else None


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    from optimlab.viz import trajectories as tr

    paths, numbers = [], {}
    for name in (*SGD_FAMILY, *ADAPTIVE):
        path = tr.run_path(FUNCTION, name, LRS[name], budget["steps"], start=START)
        paths.append(path)
        numbers[name] = {"lr": LRS[name], "left_ridge_at": left_ridge_at(path.points)}
    return Measured({"start": list(START), "methods": numbers},
                    {"paths": paths, "frames": budget["frames"]})  # fmt: skip


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.viz import trajectories as tr

    paths = measured.data["paths"]
    rows = measured.numbers["methods"]
    # Two lines: on one, the title ran past both edges of the figure.
    title = "saddle x^2 - y^2 from (1, 0.001)\nstep leaving the ridge: " + ", ".join(
        f"{n} {'-' if r['left_ridge_at'] is None else r['left_ridge_at']}" for n, r in rows.items()
    )
    still = tr.plot(FUNCTION, paths, title)
    gif = tr.gif_bytes(FUNCTION, paths, frames=measured.data["frames"], title=title, blit=True)
    return {"saddle": Animation(gif, still)}


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when every adaptive method leaves the ridge before every SGD-family
    method, and momentum and Nesterov leave it before plain SGD (they do escape)."""
    steps = {n: r["left_ridge_at"] for n, r in numbers["methods"].items()}
    listing = ", ".join(f"{n} {'never' if s is None else s}" for n, s in steps.items())

    def at(name: str) -> float:
        return float("inf") if steps[name] is None else float(steps[name])

    problems = []
    slowest_adaptive = max(ADAPTIVE, key=at)
    fastest_sgd = min(SGD_FAMILY, key=at)
    if not at(slowest_adaptive) < at(fastest_sgd):
        problems.append(f"{slowest_adaptive} does not leave the ridge before {fastest_sgd}")
    stuck = [m for m in ("momentum", "nesterov") if not at(m) < at("sgd")]
    if stuck:
        problems.append(f"{' and '.join(stuck)} do not leave it before plain SGD")
    if problems:
        return Verdict(NOT_REPRODUCED, "; ".join(problems) + f" (steps: {listing}).")
    return Verdict(
        REPRODUCED,
        f"the adaptive methods leave the ridge within {at(slowest_adaptive):.0f} steps, SGD "
        f"after {at('sgd'):.0f}, momentum and Nesterov in between (steps to |y| >= "
        f"{LEFT_RIDGE:g}: {listing}).",
    )


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = [
        [name, f"{r['lr']:g}", "never" if r["left_ridge_at"] is None else str(r["left_ridge_at"])]
        for name, r in numbers["methods"].items()
    ]
    return ["method", "lr", f"step reaching |y| >= {LEFT_RIDGE:g}"], rows


ENTRY = Entry(
    name="saddle",
    title="Breaking the symmetry of a saddle point (Radford's animation)",
    deck=deck("003"),
    slide="SGD optimization on saddle point (Source and full animations: Alec Radford)",
    claim="In Radford's animation the lecture shows, SGD, momentum and NAG have difficulty "
    "breaking the symmetry of a saddle point (momentum and NAG eventually escape), while "
    "Adagrad, RMSprop and Adadelta quickly head down the negative slope (the animation's "
    "reading in Ruder 2016, which the lecture's list of methods follows).",
    tier="quick",
    version=2,
    budgets={
        "quick": {"steps": 60, "frames": 40},
        "standard": {"steps": 100, "frames": 80},
        "full": {"steps": 150, "frames": 120},
    },
    compute=compute,
    draw=draw,
    rule=rule,
    threads=1,
    table=table,
    reference="Radford 2014 (animations); Ruder, An overview of gradient descent "
    "optimization algorithms, 2016",
)
