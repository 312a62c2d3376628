"""The loss landscape of a deep net with and without skip connections (Li et al. 2018).

Two 20-layer ReLU MLPs with batch norm and He initialization (the registered
``deep_mlp``, trained on ``digits_mlp``'s data through the run settings ``model`` and
``model_args``), identical but for the residual connections around their hidden layers,
train on scikit-learn's digits with SGD + momentum for the same budget, from each of
several seeds. Around each trained net the training loss is evaluated on a plane spanned
by two filter-normalized Gaussian directions (:mod:`optimlab.viz.landscape`, Li et al.'s
method; the same directions for both nets of a seed, other ones for each seed), on a
square grid over ``[-1, 1]^2``. At every interior grid point the plane's 2x2 Hessian is
estimated by central differences; like Li et al.'s convexity maps, a point counts as
non-convex when ``|lambda_min / lambda_max| > 0.1`` with ``lambda_min < 0``. The number
is the share of such points (and the final training loss of each net), per seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from optimlab.gallery import figures
from optimlab.gallery.decks import deck
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED, Context, Entry, Measured, Verdict
from optimlab.gallery.seeds import failing_seeds, mean_sd

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
    budget: Mapping[str, Any], residual: bool, context: Context, seed: int
) -> tuple[float, Any]:
    """Train one net from ``seed`` (a run of the registered ``deep_mlp`` on ``digits_mlp``'s
    data, built by :func:`optimlab.run.build_run`, checkpointed in the entry's work
    folder); its final training loss and the loss surface around it."""
    from optimlab.run import RunConfig, build_run
    from optimlab.viz import landscape

    args = {"in_features": 64, "out_features": 10, "depth": budget["depth"],
            "width": budget["width"], "activation": "relu", "norm": "batch",
            "init": "he_normal", "residual": residual}  # fmt: skip
    config = RunConfig(problem="digits_mlp", model="deep_mlp", model_args=args,
                       optimizer="momentum", lr=budget["lr"], hp={"momentum": 0.9},
                       epochs=budget["epochs"], seed=seed,
                       out=context.run_folder(budget=dict(budget), residual=residual,
                                              seed=seed))  # fmt: skip
    run = build_run(config)
    result = run.fit()
    model, problem = run.problem.model, run.problem
    directions = [landscape.random_direction(model, seed) for seed in (2 * seed + 1, 2 * seed + 2)]
    grid = np.linspace(-1.0, 1.0, budget["grid"])
    x, y = problem.splits.train.x, problem.splits.train.y
    surface = landscape.evaluate_plane(model, problem.loss_fn, x, y, directions, grid, grid)
    return float(result.final["loss"]), surface


KEYS = ("train_loss", "nonconvex_share", "loss_at_center", "loss_max_on_plane")


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    seeds = list(range(budget["seeds"]))
    numbers: dict[str, Any] = {"depth": budget["depth"], "grid": budget["grid"], "seeds": seeds}
    surfaces = {}  # the first seed's, for the figure
    for name, residual in NETS.items():
        numbers[name] = {key: [] for key in KEYS}
        for seed in seeds:
            loss, surface = train_and_probe(budget, residual, context, seed)
            step = float(surface.alphas[1] - surface.alphas[0])
            ratio = hessian_ratio(surface.z, step)
            middle = len(surface.z) // 2
            for key, value in zip(KEYS, (loss, float((ratio > CONCAVE_RATIO).mean()),
                                         float(surface.z[middle, middle]),
                                         float(surface.z.max())), strict=True):  # fmt: skip
                numbers[name][key].append(value)
            surfaces.setdefault(name, surface)
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
        ax.set_title(f"{name}, seed {measured.numbers['seeds'][0]}: "
                     f"{n['nonconvex_share'][0]:.0%} of the plane non-convex, "
                     f"train loss {n['train_loss'][0]:.3g}", fontsize=9)  # fmt: skip
        ax.set_xlabel("direction 1 (filter-normalized)")
        ax.set_ylabel("direction 2")
        ax.set_aspect("equal")
        fig.colorbar(contours, ax=ax, shrink=0.8, label="log10 training loss")
    fig.suptitle(f"loss around a trained {measured.numbers['depth']}-layer ReLU MLP with batch "
                 "norm, on digits, without and with skip connections")  # fmt: skip
    return {"skip_connections": fig}


def check(plain: float, residual: float) -> list[str]:
    """What contradicts the claim in one seed's non-convex shares."""
    if plain > 0 and plain >= MARGIN * residual:
        return []
    return [f"the plain net's surface ({plain:.1%} non-convex) is not markedly less convex "
            f"than the residual net's ({residual:.1%}; the rule asks for at least "
            f"{MARGIN:g} times)"]  # fmt: skip


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when, in every seed, the plain net's non-convex share is at least
    ``MARGIN`` times the residual net's (and positive); not reproduced otherwise."""
    plain, res = numbers["plain"], numbers["residual"]
    seeds = numbers["seeds"]
    pairs = list(zip(plain["nonconvex_share"], res["nonconvex_share"], strict=True))
    problems = failing_seeds(seeds, pairs, lambda pair: check(*pair))
    shares = (f"non-convex share of the plane over {len(seeds)} seeds (mean ± sd): plain "
              f"{mean_sd(plain['nonconvex_share'], '.1%')}, residual "
              f"{mean_sd(res['nonconvex_share'], '.1%')}")  # fmt: skip
    if problems:
        return Verdict(NOT_REPRODUCED, f"{'; '.join(problems)}; {shares}.")
    return Verdict(REPRODUCED, f"{shares}; in every seed the skip connections leave a "
                   f"smoother, more convex surface (training loss "
                   f"{mean_sd(plain['train_loss'])} against "
                   f"{mean_sd(res['train_loss'])}).")  # fmt: skip


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = [[name, mean_sd(numbers[name]["nonconvex_share"], ".1%"),
             mean_sd(numbers[name]["train_loss"]), mean_sd(numbers[name]["loss_max_on_plane"])]
            for name in NETS]  # fmt: skip
    headers = ["net", "non-convex share", "final training loss", "largest loss on the plane"]
    return [f"{h} (mean ± sd over {len(numbers['seeds'])} seeds)" if i else h
            for i, h in enumerate(headers)], rows  # fmt: skip


ENTRY = Entry(
    name="skip_connections",
    title="Skip connections smooth the loss landscape (Li et al. 2018)",
    deck=deck("000"),
    slide="Fighting against Vanishing Gradient",
    claim="Skip connections (residual networks) fight vanishing gradients, and Li et al.'s "
    "pictures show why deep nets train with them: without shortcuts the loss landscape of a "
    "deep net turns chaotic and non-convex, with them it stays smooth and nearly convex.",
    tier="quick",
    version=2,
    budgets={
        "quick": {"depth": 20, "width": 32, "epochs": 8, "lr": 0.05, "seeds": 3, "grid": 15},
        "standard": {"depth": 30, "width": 64, "epochs": 30, "lr": 0.05, "seeds": 3, "grid": 31},
        "full": {"depth": 56, "width": 64, "epochs": 60, "lr": 0.05, "seeds": 5, "grid": 51},
    },
    compute=compute,
    draw=draw,
    rule=rule,
    threads=1,
    table=table,
    reference="Li, Xu, Taylor & Goldstein, Visualizing the Loss Landscape of Neural Nets, "
    "NeurIPS 2018",
)
