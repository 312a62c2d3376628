"""Goh's momentum regimes on one eigen-direction, and the measured rate map (Distill 2017).

On f = 1/2 l w^2, heavy-ball momentum (optimlab's SGD with ``momentum=beta``) depends on
lr and l only through s = lr l. The five regimes the lecture names are run at one
example (s, beta) each and classified from the path alone: ``w_1 = 0`` (one-step
convergence), ``|w_T| > |w_0|`` (divergence), no sign change (monotonic decrease), a sign
change at nine steps in ten or more (monotonic oscillations), otherwise ripples.

The ripples' rate is measured at several s for one beta; the roots are complex there,
their product is beta, so theory gives sqrt(beta) whatever s (the slide prints
2 sqrt(beta), which exceeds 1 for beta > 1/4 and cannot be a rate of convergence).

The rate map (:func:`optimlab.viz.momentum_dynamics.rate_map`) measures the per-step
contraction on eigenvalues 1 and 100 over an (lr, beta) grid; its best cell is compared
with Goh's closed form, and the closed-form (lr, beta) is also run directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from optimlab.gallery import figures
from optimlab.gallery.decks import deck
from optimlab.gallery.entry import (
    AT_BUDGET,
    NOT_REPRODUCED,
    REPRODUCED,
    Context,
    Entry,
    Measured,
    Verdict,
)

# The lecture's five regimes and one example (s = lr * l, beta) of each.
REGIMES = {
    "ripples": (0.05, 0.9),
    "monotonic decrease": (0.05, 0.3),
    "1-step convergence": (1.0, 0.0),
    "monotonic oscillations": (1.8, 0.05),
    "divergence": (3.9, 0.9),
}
RIPPLE_BETA = 0.9
RIPPLE_S = (0.05, 0.5, 1.5, 3.0)  # all inside ((1 - sqrt b)^2, (1 + sqrt b)^2)
EIGENVALUES = (1.0, 100.0)
RATE_TOL = 0.01  # measured against closed-form rates
COARSE_TOL = 0.03  # the grid's best cell, when the grid is too coarse for RATE_TOL


def classify(path: Sequence[float]) -> str:
    """The regime a path w_0, w_1, ... shows (see the module doc)."""
    w = np.asarray(path, dtype=float)
    if abs(w[1]) <= 1e-12 * abs(w[0]):
        return "1-step convergence"
    if not np.isfinite(w[-1]) or abs(w[-1]) > abs(w[0]):
        return "divergence"
    signs = np.sign(w[w != 0])
    flips = float(np.mean(signs[1:] != signs[:-1])) if len(signs) > 1 else 0.0
    if flips == 0:
        return "monotonic decrease"
    return "monotonic oscillations" if flips >= 0.9 else "ripples"


def envelope_rate(path: Sequence[float]) -> float | None:
    """The per-step decay of ``|w_t|`` over the second half of a path: the least-squares
    slope of ``log |w|`` at its local maxima (where a rippling path peaks), or the ratio of
    the end points where there are fewer than three peaks (a monotone ``|w|``). None when
    the path reached 0 or overflowed."""
    w = np.abs(np.asarray(path, dtype=float))
    half = len(w) // 2
    tail = w[half:]
    if not np.all(np.isfinite(tail)) or np.any(tail == 0):
        return None
    inner = np.arange(1, len(tail) - 1)
    peaks = inner[(tail[inner] >= tail[inner - 1]) & (tail[inner] >= tail[inner + 1])]
    if len(peaks) >= 3:
        slope = np.polyfit(peaks.astype(float), np.log(tail[peaks]), 1)[0]
        return float(np.exp(slope))
    return float((tail[-1] / tail[0]) ** (1.0 / (len(tail) - 1)))


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    from optimlab.viz import momentum_dynamics as md

    regimes, paths = {}, {}
    for name, (s, beta) in REGIMES.items():
        path = md.direction_path(s, beta, budget["path_steps"])
        paths[name] = path
        regimes[name] = {
            "s": s,
            "beta": beta,
            "measured": classify(path),
            "spectral_radius": md.spectral_radius(s, beta),
            "measured_rate": envelope_rate(path) if name != "1-step convergence" else 0.0,
        }
    ripple_rates = [
        envelope_rate(md.direction_path(s, RIPPLE_BETA, budget["direct_steps"])) for s in RIPPLE_S
    ]
    l1, ln = EIGENVALUES
    rm = md.rate_map(l1, ln, n_lr=budget["grid"], n_beta=budget["grid"], steps=budget["steps"])
    rates = np.where(np.isfinite(rm.rates), rm.rates, np.inf)
    i, j = np.unravel_index(np.argmin(rates), rates.shape)
    lr, beta, rate = md.optimal_parameters(l1, ln)
    kappa = ln / l1
    numbers = {
        "regimes": regimes,
        "ripples": {
            "beta": RIPPLE_BETA,
            "s": list(RIPPLE_S),
            "measured_rates": ripple_rates,
            "sqrt_beta": math.sqrt(RIPPLE_BETA),
            "slide_2_sqrt_beta": 2 * math.sqrt(RIPPLE_BETA),
        },
        "optimum": {
            "eigenvalues": list(EIGENVALUES),
            "closed_lr": lr,
            "closed_beta": beta,
            "closed_rate": rate,
            "measured_rate_at_closed": md.measured_rate(
                EIGENVALUES, lr, beta, budget["direct_steps"]
            ),
            "grid_best_rate": float(rates[i, j]),
            "grid_best_lr": float(rm.lrs[j]),
            "grid_best_beta": float(rm.betas[i]),
            "grid_lr_step": float(rm.lrs[1] - rm.lrs[0]),
            "grid_beta_step": float(rm.betas[1] - rm.betas[0]),
            "gd_closed_rate": (kappa - 1) / (kappa + 1),
            "gd_grid_best_rate": float(rates[0].min()),  # the beta = 0 row
        },
    }
    return Measured(numbers, {"paths": paths, "rate_map": rm})


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.viz import momentum_dynamics as md
    from optimlab.viz import style

    numbers, paths = measured.numbers, measured.data["paths"]
    fig = figures.figure(13.0, 6.4)
    axes = fig.subplots(2, 3).ravel()
    for ax, (name, path) in zip(axes, paths.items(), strict=False):
        r = numbers["regimes"][name]
        ax.plot(path, marker=".", markersize=3, linewidth=1.0, color=style.PALETTE[0])
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.set_title(f"{name}\nlr*l = {r['s']:g}, beta = {r['beta']:g}; measured: {r['measured']}",
                     fontsize=9)  # fmt: skip
        if name == "divergence":
            ax.set_yscale("symlog", linthresh=1.0)
            ax.set_yticks(_decade_ticks(float(np.max(np.abs(path)))))
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3, linewidth=0.6)
    axes[0].set_ylabel("w (error along the eigenvector)")
    ax = axes[5]
    rip = numbers["ripples"]
    ax.plot(rip["s"], rip["measured_rates"], marker="o", linestyle="none", color=style.PALETTE[1],
            label="measured rate")  # fmt: skip
    ax.axhline(
        rip["sqrt_beta"], color=style.PALETTE[2], label=f"sqrt(beta) = {rip['sqrt_beta']:.3f}"
    )
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("lr * l")
    ax.set_ylabel("rate per step")
    ax.set_title(f"ripples' rate at beta = {rip['beta']:g}: independent of lr * l", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(True, alpha=0.3, linewidth=0.6)
    fig.suptitle("heavy-ball momentum on one eigen-direction: the five regimes (Goh 2017)")
    rate_map = md.plot_rate_map(measured.data["rate_map"])
    opt = numbers["optimum"]
    ax = rate_map.axes[0]
    for mesh in ax.collections:
        mesh.set_rasterized(True)  # an SVG of grid**2 vector cells would be slow and large
    ax.plot([opt["grid_best_lr"]], [opt["grid_best_beta"]], marker="X", color="white",
            markeredgecolor="black", markersize=11, linestyle="none",
            label=f"best measured cell, rate={opt['grid_best_rate']:.3f}")  # fmt: skip
    ax.get_legend().remove()
    # Under the map: in a corner it hid the cells along the divergence line.
    # Grey behind the keys: the divergence line and the best cell are drawn in white.
    figures.legend_outside(rate_map, ax, ncols=2, facecolor="0.75")
    return {"regimes": fig, "rate_map": rate_map}


def _decade_ticks(top: float) -> list[float]:
    """Symmetric-log ticks from -``top`` to 0 to ``top``, at most four decades a side, so
    the labels of a diverging path do not run into each other."""
    decades = max(1, int(np.ceil(np.log10(max(top, 10.0)))))
    step = int(np.ceil(decades / 4))
    up = [10.0**k for k in range(step, decades + 1, step)]
    return [-v for v in reversed(up)] + [0.0] + up


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when every example shows its regime, the ripples' rate is sqrt(beta) at
    every lr*l (within 0.01), the closed-form (lr, beta) converges at the closed-form rate,
    no grid cell beats it, GD's best rate is (kappa-1)/(kappa+1) and the grid's best cell
    is within 0.01 of the optimum's rate; at this budget only when the grid's best cell is
    within 0.03 only (a coarse grid); otherwise not reproduced."""
    wrong = [f"{n} looked like {r['measured']}" for n, r in numbers["regimes"].items()
             if r["measured"] != n]  # fmt: skip
    rip = numbers["ripples"]
    off = [r for r in rip["measured_rates"] if abs(r - rip["sqrt_beta"]) > RATE_TOL]
    o = numbers["optimum"]
    problems = list(wrong)
    if off:
        problems.append(
            "the ripples' rates "
            + ", ".join(f"{r:.3f}" for r in rip["measured_rates"])
            + f" are not all sqrt(beta) = {rip['sqrt_beta']:.3f}"
        )
    if abs(o["measured_rate_at_closed"] - o["closed_rate"]) > RATE_TOL:
        problems.append(
            "at the closed-form lr and beta the measured rate is "
            f"{o['measured_rate_at_closed']:.4f}, not {o['closed_rate']:.4f}"
        )
    if o["grid_best_rate"] < o["closed_rate"] - RATE_TOL:
        problems.append(
            f"a grid cell (lr {o['grid_best_lr']:.3g}, beta {o['grid_best_beta']:.3f}) converges "
            f"faster ({o['grid_best_rate']:.4f}) than the closed-form optimum "
            f"({o['closed_rate']:.4f})"
        )
    if abs(o["gd_grid_best_rate"] - o["gd_closed_rate"]) > RATE_TOL:
        problems.append(
            f"GD's best measured rate {o['gd_grid_best_rate']:.4f} is not (kappa-1)/(kappa+1) = "
            f"{o['gd_closed_rate']:.4f}"
        )
    gap = o["grid_best_rate"] - o["closed_rate"]
    if gap > COARSE_TOL:
        problems.append(
            f"the grid's best cell converges at {o['grid_best_rate']:.4f}, far above the "
            f"optimum's {o['closed_rate']:.4f}"
        )
    if problems:
        return Verdict(NOT_REPRODUCED, "; ".join(problems) + ".")
    summary = (
        f"all five regimes appear where the roots put them; the ripples converge at "
        f"sqrt(beta) = {rip['sqrt_beta']:.3f} whatever lr*l (the slide's 2 sqrt(beta) = "
        f"{rip['slide_2_sqrt_beta']:.3f} would diverge); the closed-form optimum lr "
        f"{o['closed_lr']:.4f}, beta {o['closed_beta']:.3f} converges at "
        f"{o['measured_rate_at_closed']:.4f} (formula {o['closed_rate']:.4f}) against GD's "
        f"{o['gd_grid_best_rate']:.4f} (formula {o['gd_closed_rate']:.4f})"
    )
    if gap > RATE_TOL:
        return Verdict(
            AT_BUDGET,
            f"{summary}; but the grid's best cell ({o['grid_best_rate']:.4f}) is within only "
            f"{COARSE_TOL} of the optimum: the grid is too coarse to locate it.",
        )
    return Verdict(
        REPRODUCED, f"{summary}; the grid's best cell converges at {o['grid_best_rate']:.4f}."
    )


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = [
        [name, f"{r['s']:g}", f"{r['beta']:g}", r["measured"], f"{r['spectral_radius']:.4f}",
         "-" if r["measured_rate"] is None else f"{r['measured_rate']:.4f}"]
        for name, r in numbers["regimes"].items()
    ]  # fmt: skip
    headers = ["regime", "lr * l", "beta", "measured regime", "max |root|", "measured rate"]
    return headers, rows


ENTRY = Entry(
    name="momentum_regimes",
    title="Momentum's regimes and the optimal rate (Goh 2017)",
    deck=deck("001"),
    slide="Phase space along a single eigenvector; Momentum: multiple eigenvalues",
    claim="Along one eigenvector heavy-ball momentum shows five regimes: ripples (complex "
    "roots, a rate independent of the step size and the eigenvalue), monotonic decrease, "
    "1-step convergence (lr = 1/l, beta = 0), monotonic oscillations (lr > 1/l) and "
    "divergence. With eigenvalues l1..ln the optimal lr = (2/(sqrt(l1)+sqrt(ln)))^2 and "
    "beta = ((sqrt(ln)-sqrt(l1))/(sqrt(ln)+sqrt(l1)))^2 give the rate "
    "(sqrt(kappa)-1)/(sqrt(kappa)+1), against (kappa-1)/(kappa+1) for gradient descent.",
    tier="quick",
    version=2,
    budgets={
        "quick": {"grid": 40, "steps": 200, "path_steps": 60, "direct_steps": 400},
        "standard": {"grid": 60, "steps": 300, "path_steps": 60, "direct_steps": 800},
        "full": {"grid": 120, "steps": 400, "path_steps": 80, "direct_steps": 1600},
    },
    compute=compute,
    draw=draw,
    rule=rule,
    threads=1,
    table=table,
    reference="Goh, Why Momentum Really Works, Distill 2017; eigenvalues 1 and 100",
)
