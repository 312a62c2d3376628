"""The loss landscape of a deep net with and without skip connections (Li et al. 2018).

Two 20-layer ReLU MLPs with batch norm and He initialization (the registered
``deep_mlp``, trained on ``digits_mlp``'s data through the run settings ``model`` and
``model_args``), identical but for the residual connections around
their hidden layers, train on scikit-learn's digits with SGD + momentum for the same
budget and seed. Around each trained net the training loss is evaluated on a plane
spanned by two filter-normalized Gaussian directions (:mod:`optimlab.viz.landscape`, Li
et al.'s method; same direction seeds for both nets), on a square grid over
``[-1, 1]^2``. At every interior grid point the plane's 2x2 Hessian is estimated by
central differences; like Li et al.'s convexity maps, a point counts as non-convex when
``|lambda_min / lambda_max| > 0.1`` with ``lambda_min < 0``. The number is the share of
such points (and the final training loss of each net).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from optimlab.gallery import figures
from optimlab.gallery.decks import deck
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED, Context, Entry, Measured, Verdict

NETS = {"plain": False, "residual": True}
#: ``|lambda_min / lambda_max|`` above this (with lambda_min < 0) marks a non-convex point.
CONCAVE_RATIO = 0.1
#: The verdict needs the plain net's non-convex share this many times the residual one's.
MARGIN = 2.0


def hessian_ratio(z: np.ndarray, step: float) -> np.ndarray:
    """``|min(lambda_min, 0)| / |lambda_max|`` of the central-difference 2x2 Hessian of a
    surface ``z[i, j]`` (rows along the second direction), at each interior point."""
    zxx = (z[1:-1, 2:] - 2 * z[1:-1, 1:-1] + z[1:-1, :-2]) / step**2
    zyy = (z[2:, 1:-1] - 2 * z[1:-1, 1:-1] + z[:-2, 1:-1]) / step**2
    zxy = (z[2:, 2:] - z[2:, :-2] - z[:-2, 2:] + z[:-2, :-2]) / (4 * step**2)
    half_trace = (zxx + zyy) / 2
    root = np.sqrt(np.maximum(half_trace**2 - (zxx * zyy - zxy**2), 0.0))
    lmax, lmin = half_trace + root, half_trace - root
    return np.abs(np.minimum(lmin, 0.0)) / np.maximum(np.abs(lmax), 1e-12)


def train_and_probe(
    budget: Mapping[str, Any], residual: bool, context: Context
) -> tuple[float, Any]:
    """Train one net (a run of the registered ``deep_mlp`` on ``digits_mlp``'s data, built
    by :func:`optimlab.run.build_run`, checkpointed in the entry's work folder); its final
    training loss and the loss surface around it."""
    from optimlab.run import RunConfig, build_run
    from optimlab.viz import landscape

    args = {"in_features": 64, "out_features": 10, "depth": budget["depth"],
            "width": budget["width"], "activation": "relu", "norm": "batch",
            "init": "he_normal", "residual": residual}  # fmt: skip
    config = RunConfig(problem="digits_mlp", model="deep_mlp", model_args=args,
                       optimizer="momentum", lr=budget["lr"], hp={"momentum": 0.9},
                       epochs=budget["epochs"], seed=budget["seed"],
                       out=context.run_folder(budget=dict(budget), residual=residual))  # fmt: skip
    run = build_run(config)
    result = run.fit()
    model, problem = run.problem.model, run.problem
    directions = [landscape.random_direction(model, seed) for seed in (1, 2)]
    grid = np.linspace(-1.0, 1.0, budget["grid"])
    x, y = problem.splits.train.x, problem.splits.train.y
    surface = landscape.evaluate_plane(model, problem.loss_fn, x, y, directions, grid, grid)
    return float(result.final["loss"]), surface


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    numbers: dict[str, Any] = {"depth": budget["depth"], "grid": budget["grid"]}
    surfaces = {}
    for name, residual in NETS.items():
        loss, surface = train_and_probe(budget, residual, context)
        step = float(surface.alphas[1] - surface.alphas[0])
        ratio = hessian_ratio(surface.z, step)
        numbers[name] = {
            "train_loss": loss,
            "nonconvex_share": float((ratio > CONCAVE_RATIO).mean()),
            "loss_at_center": float(surface.z[len(surface.z) // 2, len(surface.z) // 2]),
            "loss_max_on_plane": float(surface.z.max()),
        }
        surfaces[name] = surface
    return Measured(numbers, surfaces)


def draw(measured: Measured) -> dict[str, Any]:
    fig = figures.figure(12.0, 5.2)
    axes = fig.subplots(1, 2)
    for ax, (name, surface) in zip(axes, measured.data.items(), strict=True):
        z = np.log10(np.maximum(surface.z, 1e-6))
        contours = ax.contourf(surface.alphas, surface.betas, z, levels=30, cmap="viridis")
        ax.contour(surface.alphas, surface.betas, z, levels=15, colors="white",
                   linewidths=0.4, alpha=0.6)  # fmt: skip
        n = measured.numbers[name]
        ax.set_title(f"{name}: {n['nonconvex_share']:.0%} of the plane non-convex, "
                     f"train loss {n['train_loss']:.3g}", fontsize=9)  # fmt: skip
        ax.set_xlabel("direction 1 (filter-normalized)")
        ax.set_ylabel("direction 2")
        ax.set_aspect("equal")
        fig.colorbar(contours, ax=ax, shrink=0.8, label="log10 training loss")
    fig.suptitle(f"loss around a trained {measured.numbers['depth']}-layer ReLU MLP with batch "
                 "norm, on digits, without and with skip connections")  # fmt: skip
    return {"skip_connections": fig}


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when the plain net's non-convex share is at least ``MARGIN`` times the
    residual net's (and positive), not reproduced otherwise."""
    plain, res = numbers["plain"]["nonconvex_share"], numbers["residual"]["nonconvex_share"]
    shares = f"non-convex share of the plane: plain {plain:.1%}, residual {res:.1%}"
    if plain > 0 and plain >= MARGIN * res:
        return Verdict(REPRODUCED, f"{shares}; the skip connections leave a smoother, more "
                       f"convex surface (training loss {numbers['plain']['train_loss']:.3g} "
                       f"against {numbers['residual']['train_loss']:.3g}).")  # fmt: skip
    return Verdict(NOT_REPRODUCED, f"{shares}: the plain net's surface is not markedly less "
                   f"convex (the rule asks for at least {MARGIN:g} times).")  # fmt: skip


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = [[name, f"{numbers[name]['nonconvex_share']:.1%}", f"{numbers[name]['train_loss']:.3g}",
             f"{numbers[name]['loss_max_on_plane']:.3g}"] for name in NETS]  # fmt: skip
    return ["net", "non-convex share", "final training loss", "largest loss on the plane"], rows


ENTRY = Entry(
    name="skip_connections",
    title="Skip connections smooth the loss landscape (Li et al. 2018)",
    deck=deck("000"),
    slide="Fighting against Vanishing Gradient",
    claim="Skip connections (residual networks) fight vanishing gradients, and Li et al.'s "
    "pictures show why deep nets train with them: without shortcuts the loss landscape of a "
    "deep net turns chaotic and non-convex, with them it stays smooth and nearly convex.",
    tier="quick",
    version=1,
    budgets={
        "quick": {"depth": 20, "width": 32, "epochs": 15, "lr": 0.05, "seed": 0, "grid": 21},
        "standard": {"depth": 30, "width": 64, "epochs": 30, "lr": 0.05, "seed": 0, "grid": 31},
        "full": {"depth": 56, "width": 64, "epochs": 60, "lr": 0.05, "seed": 0, "grid": 51},
    },
    compute=compute,
    draw=draw,
    rule=rule,
    threads=1,
    table=table,
    reference="Li, Xu, Taylor & Goldstein, Visualizing the Loss Landscape of Neural Nets, "
    "NeurIPS 2018",
)
