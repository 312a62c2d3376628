"""Radford's Beale-function animation: seven optimizers from one start.

Beale's function (minimum 0 at (3, 0.5)) is started at the lab's start (1, 1.5). SGD,
momentum and Nesterov (torch form, momentum 0.9), Adagrad, RMSprop and Adam each get the
rate of a log grid whose path ends nearest the minimum
(:func:`optimlab.viz.trajectories.tune_lr`); Adadelta, whose rate is only a multiplier,
gets Zeiler's rho 0.95 and its multiplier tuned on its own grid. Measured per method: the
final distance to the minimum, the first step within ``TOLERANCE`` of it and the path's
length against the straight line from the start (1 for a path that heads straight there;
a path led off-track and rolling back is longer).

The reading checked is Ruder's (2016) of Radford's animation: the adaptive methods head
off in the right direction (shorter paths than momentum and NAG), momentum and NAG are
led off-track, and NAG corrects its course sooner than momentum (a shorter path). The
steps to the tolerance are reported but not judged: that reading says nothing of them.
Which rate wins on the grid decides a good part of the picture; the grid is the same for
every tier.
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

FUNCTION = "beale"
MINIMUM = (3.0, 0.5)
TOLERANCE = 0.05
SGD_FAMILY = ("sgd", "momentum", "nesterov")
#: Radford's adaptive methods (his animation has no Adam; it is shown, not judged).
ADAPTIVE = ("adagrad", "adadelta", "rmsprop")
METHODS = (*SGD_FAMILY, *ADAPTIVE, "adam")
#: Adadelta's rate multiplies its unit-free step, so it gets a grid around 1..100.
ADADELTA = {"rho": 0.95}


def distances(points: np.ndarray) -> np.ndarray:
    """Distance of each iterate from the minimum."""
    return np.hypot(*(np.asarray(points, dtype=float) - np.asarray(MINIMUM)).T)


def reached_at(points: np.ndarray) -> int | None:
    """The first step within ``TOLERANCE`` of the minimum; None if never."""
    hits = np.flatnonzero(distances(points) <= TOLERANCE)
    return int(hits[0]) if hits.size else None


def detour(points: np.ndarray) -> float:
    """Path length over the straight distance from the start to the minimum."""
    points = np.asarray(points, dtype=float)
    length = float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())
    return length / float(distances(points[:1])[0])


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    from optimlab.viz import trajectories as tr

    low, high, per = budget["lr_low"], budget["lr_high"], budget["per_decade"]
    paths, numbers = [], {}
    for name in METHODS:
        if name == "adadelta":
            grid, hp = tr.lr_grid(*budget["adadelta_lrs"], per), ADADELTA
        else:
            grid, hp = tr.lr_grid(low, high, per), {}
        lr, path = tr.tune_lr(FUNCTION, name, budget["steps"], grid=grid, **hp)
        paths.append(path)
        numbers[name] = {
            "lr": lr,
            "final_distance": None if path.diverged else float(distances(path.points)[-1]),
            "reached_at": reached_at(path.points),
            "detour": None if path.diverged else detour(path.points),
        }
    return Measured({"steps": budget["steps"], "tolerance": TOLERANCE, "methods": numbers},
                    {"paths": paths, "frames": budget["frames"]})  # fmt: skip


def _fmt(value: float | None, spec: str = ".3g") -> str:
    return "-" if value is None else format(value, spec)


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.viz import trajectories as tr

    paths = measured.data["paths"]
    rows = measured.numbers["methods"]
    # Two lines: on one, the title ran past both edges of the figure.
    title = f"Beale from (1, 1.5)\nstep within {TOLERANCE:g} of (3, 0.5): " + ", ".join(
        f"{n} {_fmt(r['reached_at'], 'd')}" for n, r in rows.items()
    )
    still = tr.plot(FUNCTION, paths, title)
    gif = tr.gif_bytes(FUNCTION, paths, frames=measured.data["frames"], title=title, blit=True)
    return {"beale": Animation(gif, still)}


def _inf(value: float | None) -> float:
    return float("inf") if value is None else float(value)


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when every adaptive method (Adagrad, Adadelta, RMSprop) takes a shorter
    path than both momentum and NAG (they head the right way; momentum and NAG overshoot),
    and NAG's path is shorter than momentum's (it corrects its course sooner); not
    reproduced otherwise. The steps to the tolerance are reported, not judged."""
    rows = numbers["methods"]
    detours = {n: _inf(rows[n]["detour"]) for n in rows}
    lengths = ", ".join(f"{n} {_fmt(rows[n]['detour'])}" for n in rows)
    steps = ", ".join(f"{n} {_fmt(rows[n]['reached_at'], 'd')}" for n in rows)
    problems = []
    longest_adaptive = max(ADAPTIVE, key=detours.__getitem__)
    shortest_heavy = min(("momentum", "nesterov"), key=detours.__getitem__)
    if not detours[longest_adaptive] < detours[shortest_heavy]:
        problems.append(f"{longest_adaptive}'s path is not shorter than {shortest_heavy}'s")
    if not detours["nesterov"] < detours["momentum"]:
        problems.append("NAG's path is not shorter than momentum's")
    tail = f" (path length / straight line: {lengths}; steps to within {TOLERANCE:g}: {steps})."
    if problems:
        return Verdict(NOT_REPRODUCED, "; ".join(problems) + tail)
    return Verdict(
        REPRODUCED,
        f"Adagrad, Adadelta and RMSprop take paths at most {detours[longest_adaptive]:.3g} "
        f"times the straight line, momentum {detours['momentum']:.3g} and NAG, correcting "
        f"sooner, {detours['nesterov']:.3g}" + tail,
    )


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = [
        [n, f"{r['lr']:.3g}", "diverged" if r["final_distance"] is None
         else f"{r['final_distance']:.3g}", _fmt(r["reached_at"], "d"), _fmt(r["detour"])]
        for n, r in numbers["methods"].items()
    ]  # fmt: skip
    headers = ["method", "tuned lr", "final distance to (3, 0.5)",
               f"step within {TOLERANCE:g}", "path / straight line"]  # fmt: skip
    return headers, rows


_GRID = {"lr_low": 1e-4, "lr_high": 3.0, "per_decade": 2, "adadelta_lrs": (0.1, 100.0)}
ENTRY = Entry(
    name="beale",
    title="Seven optimizers on Beale's function (Radford's animation)",
    deck=deck("003"),
    slide="SGD optimization on loss surface contours (Source and full animations: Alec Radford)",
    claim="In Radford's animation the lecture shows, Adagrad, Adadelta and RMSprop head off "
    "in the right direction almost at once, while momentum and NAG are led off-track like "
    "a ball rolling down a hill; NAG, looking ahead, corrects its course sooner and heads "
    "to the minimum (the animation's reading in Ruder 2016). Adam is added to the "
    "picture and the numbers.",
    tier="quick",
    version=2,
    budgets={
        "quick": {"steps": 300, "frames": 40, **_GRID},
        "standard": {"steps": 300, "frames": 80, **_GRID},
        "full": {"steps": 300, "frames": 120, **_GRID},
    },
    compute=compute,
    draw=draw,
    rule=rule,
    threads=1,
    table=table,
    reference="Radford 2014 (animations); Ruder, An overview of gradient descent "
    "optimization algorithms, 2016; Beale 1958",
)
