"""Nesterov's O(1/k^2) guarantee, and the heavy ball that fails on a strongly convex function.

Two measurements of lecture 003's accelerated-methods slides, both exact iterations in
float64 (no data, no randomness beyond a seeded design matrix):

- **NAG-C** (``nag_c``, lr ``s = 1/L``) on a least-squares problem: its gradient steps
  ``y_k`` against Su, Boyd & Candes' Theorem 6 bound
  ``f(y_k) - f* <= 2 ||x_0 - x*||^2 / (s (k+1)^2)``, and plain gradient descent (``sgd``,
  the same lr) against the same bound. The largest ratio gap/bound over every ``k`` is the
  number: at most 1 for NAG-C, above 1 somewhere for GD (GD's own guarantee is
  ``||x_0 - x*||^2 / (2 s k)``, an order slower).
- **Heavy ball** (``sgd`` with momentum) on Lessard, Recht & Packard's piecewise quadratic
  (``mu = 1``, ``L = 25``), with the lr and momentum that are optimal on every quadratic of
  that conditioning: its iterates settle on a cycle of period 3, while ``nag_sc`` with
  ``lr = 1/L`` converges. The numbers are the last iterates of both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from optimlab.gallery import figures
from optimlab.gallery.decks import deck
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED, Context, Entry, Measured, Verdict

#: Heavy ball counts as cycling when its last iterates stay this far from the minimum 0.
CYCLE_FLOOR = 0.1
#: Nesterov counts as converged when its last iterate is this close to the minimum.
CONVERGED = 1e-6


def least_squares(rows: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded design with decaying column scales (an ill-conditioned problem) and targets."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, dim)) * np.geomspace(1.0, 0.02, dim)
    return X, rng.standard_normal(rows)


def _iterate(make: Callable[[list[Any]], Any], loss, x0: np.ndarray, steps: int) -> np.ndarray:
    """The gradient steps ``y_k = x_k - lr g_k`` of an optimizer (y_0 = x_0), k = 0..steps."""
    import torch

    w = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = make([w])
    lr = opt.param_groups[0]["lr"]
    ys = [x0.copy()]
    for _ in range(steps):
        opt.zero_grad()
        loss(w).backward()
        ys.append((w - lr * w.grad).detach().numpy().copy())
        opt.step()
    return np.array(ys)


def nag_c_against_bound(steps: int, rows: int, dim: int, seed: int) -> dict[str, np.ndarray]:
    """Gaps ``f(y_k) - f*`` of NAG-C and GD, and the Theorem 6 bound, k = 0..steps."""
    import torch

    import optimlab.optim as oo

    X, b = least_squares(rows, dim, seed)
    Xt, bt = torch.tensor(X), torch.tensor(b)

    def f(x: np.ndarray) -> float:
        return float(0.5 * np.sum((X @ x - b) ** 2))

    def loss(w):
        return 0.5 * ((Xt @ w - bt) ** 2).sum()

    L = float(np.linalg.eigvalsh(X.T @ X).max())
    x_star = np.linalg.lstsq(X, b, rcond=None)[0]
    f_star = f(x_star)
    s = 1.0 / L
    x0 = np.full(dim, 3.0)
    k = np.arange(steps + 1)
    bound = 2 * np.sum((x0 - x_star) ** 2) / (s * (k + 1) ** 2)
    nag = _iterate(lambda p: oo.create("nag_c", p, lr=s), loss, x0, steps)
    gd = _iterate(lambda p: oo.SGD(p, lr=s), loss, x0, steps)
    return {
        "bound": bound,
        "nag_c": np.array([f(y) - f_star for y in nag]),
        "gd": np.array([f(y) - f_star for y in gd]),
    }


def lessard_paths(steps: int) -> dict[str, np.ndarray]:
    """Iterates of heavy ball (quadratic-optimal lr and momentum) and NAG-SC on Lessard's f."""
    import torch

    import optimlab.optim as oo
    from optimlab.problems import FUNCTIONS_1D

    fn = FUNCTIONS_1D.get("lessard")
    lr, momentum = fn.heavy_ball_parameters()
    out = {}
    for name, make in (
        ("heavy_ball", lambda p: oo.SGD(p, lr=lr, momentum=momentum)),
        ("nag_sc", lambda p: oo.create("nag_sc", p, lr=1 / fn.L, mu=fn.mu)),
    ):
        x = torch.tensor([fn.start], dtype=torch.float64, requires_grad=True)
        opt = make([x])
        xs = [fn.start]
        for _ in range(steps):
            opt.zero_grad()
            fn(x).sum().backward()
            opt.step()
            xs.append(float(x.detach()))
        out[name] = np.array(xs)
    return out


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    from optimlab.problems import FUNCTIONS_1D

    gaps = nag_c_against_bound(budget["steps"], budget["rows"], budget["dim"], budget["seed"])
    paths = lessard_paths(budget["lessard_steps"])
    fn = FUNCTIONS_1D.get("lessard")
    lr, momentum = fn.heavy_ball_parameters()
    ratio_nag = gaps["nag_c"] / gaps["bound"]
    ratio_gd = gaps["gd"] / gaps["bound"]
    first_break = np.flatnonzero(ratio_gd > 1)
    numbers = {
        "nag_c": {
            "steps": budget["steps"],
            "max_gap_over_bound": float(ratio_nag.max()),
            "final_gap": float(gaps["nag_c"][-1]),
        },
        "gd": {
            "max_gap_over_bound": float(ratio_gd.max()),
            "first_step_above_bound": int(first_break[0]) if first_break.size else None,
            "final_gap": float(gaps["gd"][-1]),
        },
        "lessard": {
            "start": fn.start,
            "heavy_ball_lr": lr,
            "heavy_ball_momentum": momentum,
            "steps": budget["lessard_steps"],
            "heavy_ball_last": [float(v) for v in paths["heavy_ball"][-3:]],
            "nag_sc_last": float(paths["nag_sc"][-1]),
        },
    }
    return Measured(numbers, {"gaps": gaps, "paths": paths})


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.viz import style

    gaps, paths = measured.data["gaps"], measured.data["paths"]
    fig = figures.figure(12.0, 4.6)
    ax, ax_hb = fig.subplots(1, 2)
    k = np.arange(1, len(gaps["bound"]))
    ax.loglog(k, gaps["bound"][1:], color="0.4", linestyle="--",
              label="2 ||x0 - x*||^2 / (s (k+1)^2)")  # fmt: skip
    ax.loglog(k, gaps["nag_c"][1:], color=style.PALETTE[0], label="NAG-C, s = 1/L")
    ax.loglog(k, gaps["gd"][1:], color=style.PALETTE[3], label="gradient descent, s = 1/L")
    ax.set_xlabel("iteration k")
    ax.set_ylabel("f(y_k) - f*")
    ax.set_title("least squares: NAG-C under its O(1/k^2) bound")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3, linewidth=0.6)
    for i, (name, label) in enumerate(
        (("heavy_ball", "heavy ball (quadratic-optimal lr, momentum)"), ("nag_sc", "NAG-SC"))
    ):
        ax_hb.plot(paths[name], marker=".", markersize=3, linewidth=0.8,
                   color=style.PALETTE[i + 1], label=label)  # fmt: skip
    ax_hb.axhline(0.0, color="0.5", linestyle=":", linewidth=0.8)
    ax_hb.set_xlabel("iteration")
    ax_hb.set_ylabel("x")
    ax_hb.set_title("Lessard et al.'s function (mu = 1, L = 25)")
    ax_hb.legend(fontsize=8)
    ax_hb.grid(True, alpha=0.3, linewidth=0.6)
    return {"accelerated": fig}


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when NAG-C stays under its bound at every step while GD breaks it, and
    heavy ball stays at least ``CYCLE_FLOOR`` from the minimum while NAG-SC converges."""
    nag, gd, les = numbers["nag_c"], numbers["gd"], numbers["lessard"]
    problems = []
    if nag["max_gap_over_bound"] > 1:
        problems.append(
            f"NAG-C's gap exceeds the O(1/k^2) bound (max ratio {nag['max_gap_over_bound']:.3g})"
        )
    if gd["first_step_above_bound"] is None:
        problems.append("gradient descent also stays under the bound, so it shows no gap")
    hb = les["heavy_ball_last"]
    if min(abs(v) for v in hb) < CYCLE_FLOOR:
        problems.append(f"heavy ball approaches the minimum (last iterates {hb})")
    if abs(les["nag_sc_last"]) > CONVERGED:
        problems.append(f"NAG-SC does not converge (last iterate {les['nag_sc_last']:.3g})")
    if problems:
        return Verdict(NOT_REPRODUCED, "; ".join(problems) + ".")
    return Verdict(
        REPRODUCED,
        f"over {nag['steps']} steps NAG-C's gap stays at most "
        f"{nag['max_gap_over_bound']:.3f} of the bound while gradient descent's exceeds it "
        f"from step {gd['first_step_above_bound']}; heavy ball cycles through "
        f"{', '.join(f'{v:.3f}' for v in hb)} after {les['steps']} steps while NAG-SC "
        f"reaches {les['nag_sc_last']:.1e}.",
    )


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    nag, gd, les = numbers["nag_c"], numbers["gd"], numbers["lessard"]
    rows = [
        ["NAG-C, least squares", f"max gap/bound {nag['max_gap_over_bound']:.3f}",
         f"{nag['final_gap']:.2e}"],
        ["GD, least squares", f"max gap/bound {gd['max_gap_over_bound']:.3f}",
         f"{gd['final_gap']:.2e}"],
        ["heavy ball, Lessard", "last three iterates " +
         ", ".join(f"{v:.3f}" for v in les["heavy_ball_last"]), "-"],
        ["NAG-SC, Lessard", f"last iterate {les['nag_sc_last']:.1e}", "-"],
    ]  # fmt: skip
    return ["method and problem", "measured", "final gap"], rows


ENTRY = Entry(
    name="accelerated",
    title="Nesterov's O(1/k^2) bound holds; heavy ball can fail on a strongly convex function",
    deck=deck("003"),
    slide="Nesterov ODE: convex; Momentum by Polyak 1964, heavy ball",
    claim="For a convex f with L-Lipschitz gradient NAG-C with step s <= 1/L guarantees "
    "f(y_k) - f* <= 2 ||x_0 - x*||^2 / (s (k+1)^2), an order faster than gradient descent; "
    "the heavy-ball method has no such global guarantee: even for strongly convex functions "
    "it can fail to converge (Lessard, Recht & Packard 2016).",
    tier="quick",
    version=1,
    budgets={
        "quick": {"steps": 1500, "rows": 60, "dim": 30, "seed": 0, "lessard_steps": 300},
        "standard": {"steps": 5000, "rows": 200, "dim": 100, "seed": 0, "lessard_steps": 1000},
        "full": {"steps": 20000, "rows": 500, "dim": 200, "seed": 0, "lessard_steps": 3000},
    },
    compute=compute,
    draw=draw,
    rule=rule,
    threads=1,
    table=table,
    reference="Su, Boyd & Candes 2016 (Theorem 6); Lessard, Recht & Packard 2016",
)
