"""Units of measurement: one feature in a unit 1000 times smaller, Newton against GD.

The lab's units experiment (:mod:`optimlab.lab.units`): a logistic regression with bias
on the lectures' two standardized features, float64, full batch, once as it is and once
with the first feature times 1000. Newton's method (unit step) and gradient descent run
on both from zero; each scaled run's iterates ``u_k`` are mapped back as ``S u_k`` and
compared with the unscaled run's ``w_k``. Gradient descent runs on the scaled problem at
the unscaled problem's step size ``1/L`` and at one retuned to the scaled ``1/L``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from optimlab.gallery import figures
from optimlab.gallery.decks import deck
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED, Context, Entry, Measured, Verdict

#: Newton's mapped iterates must match the unscaled ones to this relative distance
#: (float64 rounding through a Hessian whose condition grew by 1000^2 stays far below)
MAP_TOL = 1e-8
#: gradient descent's mapped iterates must end at least this far from the unscaled ones
MISS = 0.1
#: Newton and the unscaled GD run must get this close to the minimum, relative to f(0) - f*
CONVERGED = 1e-8

PAIRS = (
    ("newton_scaled", "newton", "Newton"),
    ("gd_scaled_same_lr", "gd", "GD at the unscaled 1/L"),
    ("gd_scaled_retuned", "gd", "GD at the scaled 1/L"),
)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    from optimlab.lab import units

    steps = {"newton_steps": budget["newton_steps"], "gd_steps": budget["gd_steps"]}
    runs = {r.name: r for r in units.run(budget["n"], seed=budget["seed"], **steps)}
    f0 = runs["newton"].losses[0]
    f_star = min(x for r in runs.values() for x in r.losses if math.isfinite(x))
    numbers: dict[str, Any] = {"scale": units.SCALE, "f_star": f_star, "n": budget["n"]}
    for name, r in runs.items():
        numbers[name] = {
            "lr": r.lr,
            "steps": len(r.losses) - 1,
            "final_gap": _finite((r.losses[-1] - f_star) / (f0 - f_star)),
        }
    for scaled, plain, _ in PAIRS:
        errors = units.map_errors(runs[plain], runs[scaled])
        numbers[scaled]["max_map_error"] = _finite(max(errors))
        numbers[scaled]["final_map_error"] = _finite(errors[-1])
    return Measured(numbers, {"runs": runs, "f0": f0, "f_star": f_star})


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.lab import units
    from optimlab.viz import style

    runs, f0, f_star = (measured.data[k] for k in ("runs", "f0", "f_star"))
    fig = figures.figure(12.5, 4.6)
    ax_loss, ax_map = fig.subplots(1, 2)
    looks = {
        "newton": dict(color=style.PALETTE[0], marker="o", label="Newton, unscaled"),
        "newton_scaled": dict(color=style.PALETTE[1], marker="x", linestyle="--",
                              label="Newton, feature 1 x 1000"),
        "gd": dict(color=style.PALETTE[2], label="GD, unscaled (lr = 1/L)"),
        "gd_scaled_same_lr": dict(color=style.PALETTE[3],
                                  label="GD, feature 1 x 1000, same lr"),
        "gd_scaled_retuned": dict(color=style.PALETTE[4],
                                  label="GD, feature 1 x 1000, lr = its 1/L"),
    }  # fmt: skip
    floor = 1e-17  # zero gaps and exact matches on a log axis
    for name, r in runs.items():
        gaps = [max((x - f_star) / (f0 - f_star), floor) for x in r.losses]
        ax_loss.plot(range(len(gaps)), gaps, markersize=4, linewidth=1.2, **looks[name])
    for scaled, plain, label in PAIRS:
        errors = [max(e, floor) for e in units.map_errors(runs[plain], runs[scaled])]
        ax_map.plot(range(1, len(errors) + 1), errors, color=looks[scaled]["color"],
                    marker=looks[scaled].get("marker"), markersize=4, label=label)  # fmt: skip
    ax_map.axhline(MAP_TOL, color="0.5", linestyle=":", linewidth=1, label="Newton's tolerance")
    for ax in (ax_loss, ax_map):
        ax.set_xscale("symlog", linthresh=10)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_xlim(left=0)
        ax.grid(True, alpha=0.3, linewidth=0.6)
    ax_map.legend(fontsize=7)
    # Below the figure: inside, it covered Newton's fall to the minimum.
    figures.legend_outside(fig, ax_loss, ncols=5)
    ax_loss.set_ylabel("(f - f*) / (f(0) - f*)")
    ax_loss.set_title("loss, both problems (0 drawn at 1e-17)")
    ax_map.set_ylabel("||S u_k - w_k|| / ||w_k||")
    ax_map.set_title("scaled run mapped back (w = S u) against the unscaled run")
    fig.suptitle("logistic regression, feature 1 measured in a unit 1000 times smaller")
    return {"newton_units": fig}


def _show(x: float | None) -> str:
    return "not finite" if x is None else f"{x:.2g}"


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when Newton's scaled iterates, mapped back, match the unscaled run's
    to 1e-8 relative at every step while both Newton runs and the unscaled GD run reach
    the minimum (gap at most 1e-8 of the start's), and both scaled GD runs end at least
    0.1 relative away from the unscaled GD run's iterate. A non-finite value counts as
    a mismatch for Newton and as a miss for GD."""
    problems = []
    newton = numbers["newton_scaled"]
    if newton["max_map_error"] is None or newton["max_map_error"] > MAP_TOL:
        problems.append(f"Newton's mapped iterates are {_show(newton['max_map_error'])} "
                        f"relative away from the unscaled ones, above {MAP_TOL:g}")  # fmt: skip
    for name, label in (("newton", "Newton"), ("newton_scaled", "Newton on the scaled "
                        "problem"), ("gd", "unscaled GD")):  # fmt: skip
        gap = numbers[name]["final_gap"]
        if gap is None or gap > CONVERGED:
            problems.append(f"{label} ends at a gap of {_show(gap)}, not the minimum")
    for name, _, label in PAIRS[1:]:
        miss = numbers[name]["final_map_error"]
        if miss is not None and miss < MISS:
            problems.append(
                f"{label} ends {miss:.2g} relative from the unscaled GD iterate, "
                f"below {MISS:g}: its iterates map onto the unscaled run's"
            )
    if problems:
        return Verdict(NOT_REPRODUCED, "; ".join(problems) + ".")
    same, retuned = numbers["gd_scaled_same_lr"], numbers["gd_scaled_retuned"]
    return Verdict(
        REPRODUCED,
        f"Newton's iterates on the scaled problem, mapped back by w = S u, match the "
        f"unscaled run's to {newton['max_map_error']:.1g} at every one of its "
        f"{newton['steps']} steps; gradient descent's end {_show(same['final_map_error'])} "
        f"relative away at the unscaled step size (gap {_show(same['final_gap'])}) and "
        f"{_show(retuned['final_map_error'])} at the retuned one (gap "
        f"{_show(retuned['final_gap'])}, against {_show(numbers['gd']['final_gap'])} "
        f"unscaled, after {retuned['steps']} steps).",
    )


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Per run: its step size, steps, final gap and, for a scaled run, how far its
    mapped iterates are from the unscaled run's."""
    rows = []
    for name in ("newton", "newton_scaled", "gd", "gd_scaled_same_lr", "gd_scaled_retuned"):
        r = numbers[name]
        mapped = "-" if "final_map_error" not in r else (
            f"{_show(r['max_map_error'])} / {_show(r['final_map_error'])}")  # fmt: skip
        rows.append([name, f"{r['lr']:.3g}", str(r["steps"]), _show(r["final_gap"]), mapped])
    headers = ["run", "lr", "steps", "(f - f*) / (f(0) - f*) at the end",
               "||S u - w|| / ||w||, max / end"]  # fmt: skip
    return headers, rows


_BUDGET = {"n": 200, "seed": 0, "newton_steps": 10}
ENTRY = Entry(
    name="newton_units",
    title="Units of measurement: Newton is consistent, GD is not",
    deck=deck("001"),
    slide="Units of measurements",
    claim="Newton's method is consistent in the units of measurement: measure one input "
    "in a unit 1000 times smaller and its iterates are the same model's, step for step "
    "(w = S u). Gradient descent's are not: the step size that suited one unit oscillates "
    "in the other, and one retuned to it crawls in every other direction.",
    tier="quick",
    version=2,
    budgets={
        "quick": {"gd_steps": 200, **_BUDGET},
        "standard": {"gd_steps": 1000, **_BUDGET},
        "full": {"gd_steps": 1000, **_BUDGET},
    },
    compute=compute,
    draw=draw,
    rule=rule,
    threads=1,
    table=table,
    reference="the lab's units experiment (optimlab.lab.units); Nocedal & Wright, "
    "Numerical Optimization, sec. 2.2 (scaling) and 3.3 (Newton's affine invariance)",
)
