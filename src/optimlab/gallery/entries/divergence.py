"""Where heavy-ball momentum diverges on a quadratic: lr * lambda = 2 + 2 beta.

For each momentum beta, bisection on s = lr * lambda finds where optimlab's SGD
(``momentum=beta``, torch form, lr = 1 on f = 1/2 s w^2 from w = 1) stops converging.
A run of T steps counts as diverged when its largest ``|w|`` over the last quarter exceeds
its largest ``|w|`` over the second quarter (or it overflowed): windows, not single points,
so that two modes cancelling at one step cannot fool it. All betas are bisected at once,
one parameter group each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from optimlab.gallery import figures
from optimlab.gallery.decks import deck
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED, Context, Entry, Measured, Verdict

BETAS = (0.0, 0.25, 0.5, 0.75, 0.9, 0.99)
LOW, HIGH = 0.5, 8.0  # the bracket: every beta here converges at LOW and diverges at HIGH
REL_TOL = 1e-3


def paths(s: Sequence[float], betas: Sequence[float], steps: int) -> np.ndarray:
    """``|w_t|`` (t = 0..steps, one column per beta) under optimlab's SGD on 1/2 s_k w^2."""
    import torch

    from optimlab.optim import SGD

    params = [torch.ones(1, dtype=torch.float64, requires_grad=True) for _ in betas]
    opt = SGD([{"params": [p], "momentum": b} for p, b in zip(params, betas, strict=True)], lr=1.0)
    curvature = torch.tensor(list(s), dtype=torch.float64)
    out = [torch.ones(len(betas), dtype=torch.float64)]
    for _ in range(steps):
        opt.zero_grad()
        w = torch.cat(params)
        (0.5 * (curvature * w * w).sum()).backward()
        opt.step()
        out.append(torch.cat(params).detach().abs())
    return torch.stack(out).numpy()


def diverged(norms: np.ndarray) -> np.ndarray:
    """Per column: overflowed, or the last quarter's peak above the second quarter's."""
    q = (norms.shape[0] - 1) // 4
    late = norms[-q:].max(axis=0)
    early = norms[q : 2 * q].max(axis=0)
    return ~np.isfinite(late) | (late > early)


def thresholds(betas: Sequence[float], steps: int, iterations: int) -> list[float | None]:
    """The measured divergence threshold of s for each beta (None if the bracket fails)."""
    lo = np.full(len(betas), LOW)
    hi = np.full(len(betas), HIGH)
    ok = ~diverged(paths(lo, betas, steps)) & diverged(paths(hi, betas, steps))
    for _ in range(iterations):
        mid = (lo + hi) / 2
        bad = diverged(paths(mid, betas, steps))
        hi = np.where(bad, mid, hi)
        lo = np.where(bad, lo, mid)
    return [float((a + b) / 2) if good else None for a, b, good in zip(lo, hi, ok, strict=True)]


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    measured = thresholds(BETAS, budget["steps"], budget["iterations"])
    rows = []
    for beta, m in zip(BETAS, measured, strict=True):
        formula = 2 + 2 * beta
        rows.append({
            "beta": beta,
            "formula": formula,
            "measured": m,
            "relative_error": None if m is None else abs(m - formula) / formula,
        })  # fmt: skip
    # The figure's second panel: |w_t| 2 % below and above the measured threshold at 0.9.
    k = BETAS.index(0.9)
    near = None
    if measured[k] is not None:
        s = [measured[k] * 0.98, measured[k] * 1.02]
        near = (s, paths(s, [0.9, 0.9], budget["steps"]))
    return Measured({"betas": rows, "bracket": [LOW, HIGH]}, near)


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.viz import style

    rows = measured.numbers["betas"]
    fig = figures.figure(12.0, 4.6)
    ax, ax_path = fig.subplots(1, 2)
    b = np.linspace(0, 0.999, 200)
    ax.plot(b, 2 + 2 * b, color=style.PALETTE[0], label="2 + 2 beta (Goh 2017)")
    ax.axhline(2.0, color="0.5", linestyle=":", label="2 (gradient descent's limit)")
    got = [(r["beta"], r["measured"]) for r in rows if r["measured"] is not None]
    ax.plot(*zip(*got, strict=True), marker="o", linestyle="none", color=style.PALETTE[3],
            label="measured by bisection")  # fmt: skip
    ax.set_xlabel("momentum beta")
    ax.set_ylabel("lr * lambda at which the iteration diverges")
    ax.set_title("heavy ball on 1/2 lambda w^2: the divergence threshold")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3, linewidth=0.6)
    if measured.data is not None:
        (below, above), norms = measured.data
        for col, (s, label) in enumerate(((below, "2% below"), (above, "2% above"))):
            ax_path.plot(norms[:, col], color=style.PALETTE[col + 1],
                         label=f"lr*lambda = {s:.4f} ({label})")  # fmt: skip
        ax_path.set_yscale("log")
        ax_path.set_xlabel("step")
        ax_path.set_ylabel("|w|")
        ax_path.set_title("beta = 0.9, either side of the measured threshold")
        ax_path.legend(fontsize=8)
        ax_path.grid(True, alpha=0.3, linewidth=0.6)
    return {"divergence": fig}


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when every beta's measured threshold is within 0.1 % of 2 + 2 beta."""
    rows = numbers["betas"]
    missing = [r["beta"] for r in rows if r["measured"] is None]
    if missing:
        lo, hi = numbers["bracket"]
        return Verdict(
            NOT_REPRODUCED,
            f"for beta {', '.join(map(str, missing))} the iteration did not converge at "
            f"lr*lambda = {lo:g} and diverge at {hi:g}, so there was no threshold to bisect.",
        )
    worst = max(rows, key=lambda r: r["relative_error"])
    listing = ", ".join(
        f"beta {r['beta']:g}: {r['measured']:.4f} vs {r['formula']:.4f}" for r in rows
    )
    if worst["relative_error"] > REL_TOL:
        return Verdict(
            NOT_REPRODUCED,
            f"at beta {worst['beta']:g} the iteration diverges from lr*lambda = "
            f"{worst['measured']:.4f}, not {worst['formula']:.4f} ({listing}).",
        )
    return Verdict(
        REPRODUCED,
        f"the measured thresholds match 2 + 2 beta within {worst['relative_error']:.1e} "
        f"({listing}); momentum lets the rate go up to twice GD's limit.",
    )


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = [
        [f"{r['beta']:g}", f"{r['formula']:.4f}",
         "-" if r["measured"] is None else f"{r['measured']:.6f}",
         "-" if r["relative_error"] is None else f"{r['relative_error']:.1e}"]
        for r in numbers["betas"]
    ]  # fmt: skip
    return ["beta", "2 + 2 beta", "measured threshold", "relative error"], rows


ENTRY = Entry(
    name="divergence",
    title="Heavy-ball momentum diverges at lr * lambda = 2 + 2 beta",
    deck=deck("001"),
    slide="The effect of the momentum",
    claim="Momentum allows a larger step size: on a quadratic, heavy-ball momentum converges "
    "if and only if 0 < lr * lambda < 2 + 2 beta (0 <= beta < 1), so the largest stable rate "
    "grows from gradient descent's 2/lambda towards 4/lambda as beta approaches 1.",
    tier="quick",
    version=1,
    budgets={
        "quick": {"steps": 200, "iterations": 20},
        "standard": {"steps": 1000, "iterations": 30},
        "full": {"steps": 4000, "iterations": 40},
    },
    compute=compute,
    draw=draw,
    rule=rule,
    threads=1,
    table=table,
    reference="Goh, Why Momentum Really Works, Distill 2017; Polyak 1964",
)
