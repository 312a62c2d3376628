"""SGD, momentum and Nesterov in a ravine (the lectures' zig-zag picture).

The ravine is f = 0.5 (0.1 x^2 + 10 y^2) (condition number 100), started at (-8, 1).
Each method's learning rate is tuned on a log grid for the step budget (the rate whose
path ends nearest the minimum; see :func:`optimlab.viz.trajectories.tune_lr`), so the
comparison is between each method at its best, not at one shared rate. Measured: the
final value, the value at half the budget and the share of steps that turn back on the
previous one (``Trajectory.turn_backs``: an angle over 90 degrees, the zig-zag).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optimlab.gallery.decks import deck
from optimlab.gallery.entry import (
    AT_BUDGET,
    NOT_REPRODUCED,
    REPRODUCED,
    Animation,
    Context,
    Entry,
    Measured,
    Verdict,
)

METHODS = ("sgd", "momentum", "nesterov")
FUNCTION = "ravine"


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    from optimlab.viz import trajectories as tr

    steps, half = budget["steps"], budget["steps"] // 2
    grid = tr.lr_grid(budget["lr_low"], budget["lr_high"], budget["per_decade"])
    paths, numbers = [], {}
    for name in METHODS:
        lr, path = tr.tune_lr(FUNCTION, name, steps, grid=grid)
        paths.append(path)
        numbers[name] = {
            "lr": lr,
            "final_f": None if path.diverged else float(path.losses[-1]),
            "half_f": float(path.losses[half]) if len(path.losses) > half else None,
            "turn_backs": path.turn_backs(),
            "steps_to_1e-6": path.steps_to(1e-6),
        }
    return Measured(numbers, {"paths": paths, "frames": budget["frames"]})


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.viz import trajectories as tr

    paths = measured.data["paths"]
    title = tr.title(tr.get_preset(FUNCTION), paths)
    still = tr.plot(FUNCTION, paths, title)
    gif = tr.gif_bytes(FUNCTION, paths, frames=measured.data["frames"], title=title, blit=True)
    return {"ravine": Animation(gif, still)}


def _value(numbers: Mapping[str, Any], method: str, key: str) -> float:
    value = numbers[method][key]
    return float("inf") if value is None else float(value)


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when momentum and Nesterov both end lower than SGD and turn back less
    often; at this budget only when they end lower but were not yet lower at half the
    budget; not reproduced when either part fails."""
    sgd = {k: _value(numbers, "sgd", k) for k in ("final_f", "half_f", "turn_backs")}
    slower = [m for m in METHODS[1:] if not _value(numbers, m, "final_f") < sgd["final_f"]]
    zigzag = [m for m in METHODS[1:] if not _value(numbers, m, "turn_backs") < sgd["turn_backs"]]
    shares = ", ".join(f"{m} {_value(numbers, m, 'turn_backs'):.0%}" for m in METHODS)
    finals = ", ".join(f"{m} {_value(numbers, m, 'final_f'):.3g}" for m in METHODS)
    if slower or zigzag:
        parts = []
        if slower:
            parts.append(f"{' and '.join(slower)} did not end below SGD (final f: {finals})")
        if zigzag:
            parts.append(
                f"{' and '.join(zigzag)} turned back at least as often as SGD "
                f"(steps turning back: {shares})"
            )
        return Verdict(NOT_REPRODUCED, "; ".join(parts) + ", each at its tuned learning rate.")
    late = [m for m in METHODS[1:] if not _value(numbers, m, "half_f") < sgd["half_f"]]
    if late:
        return Verdict(
            AT_BUDGET,
            f"at the end momentum and Nesterov are below SGD (final f: {finals}) and zig-zag "
            f"less ({shares}), but at half the budget {' and '.join(late)} was not yet below.",
        )
    return Verdict(
        REPRODUCED,
        f"momentum and Nesterov end below SGD (final f: {finals}) and turn back less often "
        f"({shares}), each at its tuned learning rate.",
    )


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    def f(value: float | None) -> str:
        return "diverged" if value is None else f"{value:.3g}"

    rows = [
        [m, f"{numbers[m]['lr']:.3g}", f(numbers[m]["half_f"]), f(numbers[m]["final_f"]),
         f"{numbers[m]['turn_backs']:.0%}"]
        for m in METHODS
    ]  # fmt: skip
    return ["method", "tuned lr", "f at half the steps", "final f", "steps turning back"], rows


_BUDGET = {"lr_low": 1e-4, "lr_high": 1.0}
ENTRY = Entry(
    name="ravine",
    title="SGD, momentum and Nesterov in a ravine",
    deck=deck("003"),
    slide="Momentum in Deep Learning",
    claim="SGD has trouble navigating ravines: it zig-zags across the steep direction and "
    "crawls along the flat one. Momentum (and Nesterov's look-ahead) damps the updates whose "
    "gradients change direction and accelerates along the valley, so it gets further in "
    "the same number of steps.",
    tier="quick",
    version=1,
    budgets={
        "quick": {"steps": 100, "per_decade": 3, "frames": 30, **_BUDGET},
        "standard": {"steps": 100, "per_decade": 6, "frames": 60, **_BUDGET},
        "full": {"steps": 200, "per_decade": 12, "frames": 80, **_BUDGET},
    },
    compute=compute,
    draw=draw,
    rule=rule,
    threads=1,
    table=table,
    reference="Qian 1999; Nesterov 1983; function 0.5 (0.1 x^2 + 10 y^2) from (-8, 1)",
)
