"""Gradient clipping on an exploding network: a deep scalar chain with a cliff.

The net is the lectures' deep linear toy, ``z = w_8 ... w_1 x``, fitted to ``y = 2 x +
noise`` (the ``deep_linear`` problem), with every weight drawn from U(1.2, 1.5) (a
generator seeded by the run's seed), so the product starts between 4 and 26 times too
large. The gradient of one weight carries the product of all the others: steep walls
(Pascanu et al.'s cliffs) where a plain SGD step throws the weights further out and the
run diverges. Each rate of a log grid runs twice per seed through the run builder
(:func:`optimlab.run.build_run`): plain SGD, and SGD with the optimizer's
``clip_global_norm`` option (torch's ``clip_grad_norm_``, Keras' ``global_clipnorm``).
Measured: each run's final test MSE (None when it diverged) and its training loss per
epoch; a run counts as trained when its test MSE is at most ``TRAINED`` (the noise's
variance is 0.01). The rule judges only the rates where plain SGD diverges; at the small
rates clipping costs speed (each step is at most ``lr * clip`` long), which the table shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from optimlab.gallery import figures
from optimlab.gallery.decks import deck
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED, Context, Entry, Measured, Verdict

VARIANTS = ("plain", "clipped")
LABELS = {"plain": "SGD", "clipped": "SGD, global norm clipped"}
#: A test MSE at most this counts as trained (5x the noise variance 0.01).
TRAINED = 0.05
INIT = (1.2, 1.5)


def initial_weights(depth: int, seed: int) -> list[float]:
    """The chain's starting weights for one seed: U(1.2, 1.5), reproducible."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    low, high = INIT
    return (low + (high - low) * torch.rand(depth, generator=generator)).tolist()


def train(budget: Mapping[str, Any], variant: str, lr: float, seed: int) -> dict[str, Any]:
    """One run: its final test MSE (None when it diverged) and training loss per epoch."""
    import math

    from optimlab.nn.models import deep_linear
    from optimlab.run import RunConfig, build_run

    hp = {"clip_global_norm": budget["clip"]} if variant == "clipped" else {}
    config = RunConfig(problem="deep_linear", optimizer="sgd", lr=lr, hp=hp,
                       epochs=budget["epochs"], seed=seed, threads=1)  # fmt: skip
    model = deep_linear(depth=budget["depth"], init=initial_weights(budget["depth"], seed))
    result = build_run(config, model=model).fit()
    test = result.final.get("test_loss")
    ok = result.status != "diverged" and test is not None and math.isfinite(test)
    curve = [float(h["loss"]) for h in result.history if math.isfinite(h.get("loss", math.nan))]
    return {"test_mse": float(test) if ok else None, "curve": curve}


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    mse: dict[str, list[list[float | None]]] = {}
    curves: dict[str, list[list[list[float]]]] = {}
    for variant in VARIANTS:
        mse[variant], curves[variant] = [], []
        for lr in budget["lrs"]:
            runs = [train(budget, variant, lr, s) for s in range(budget["seeds"])]
            mse[variant].append([r["test_mse"] for r in runs])
            curves[variant].append([r["curve"] for r in runs])
    numbers = {"depth": budget["depth"], "epochs": budget["epochs"], "clip": budget["clip"],
               "seeds": budget["seeds"], "lrs": list(budget["lrs"]), "test_mse": mse}  # fmt: skip
    return Measured(numbers, {"curves": curves})


def _trained(value: float | None) -> bool:
    return value is not None and value <= TRAINED


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.viz import style

    n = measured.numbers
    fig = figures.figure(11.0, 4.4)
    ax_lr, ax_curve = fig.subplots(1, 2)
    lrs = np.array(n["lrs"])
    # Diverged runs are marked x on the top edge of each panel.
    top_lr, top_curve = ax_lr.get_xaxis_transform(), ax_curve.get_xaxis_transform()
    for i, variant in enumerate(VARIANTS):
        colour = style.PALETTE[i]
        grid = n["test_mse"][variant]
        for s in range(n["seeds"]):
            values = np.array([np.nan if row[s] is None else row[s] for row in grid])
            shift = 1.0 + 0.04 * (s - (n["seeds"] - 1) / 2) + 0.02 * i
            ok = np.isfinite(values)
            ax_lr.plot(lrs[ok] * shift, values[ok], "o", color=colour,
                       label=LABELS[variant] if s == 0 else None)  # fmt: skip
            if not ok.all():  # an empty unclipped line would pull the layout to (0, 0)
                ax_lr.plot(lrs[~ok] * shift, np.full((~ok).sum(), 0.97), "x", color=colour,
                           markersize=9, transform=top_lr, clip_on=False)  # fmt: skip
        top = measured.data["curves"][variant][-1]
        for s, curve in enumerate(top):
            ax_curve.plot(np.arange(1, len(curve) + 1), curve, color=colour,
                          label=LABELS[variant] if s == 0 else None)  # fmt: skip
            if n["test_mse"][variant][-1][s] is None:
                ax_curve.plot([len(curve) + 1], [0.97], "x", color=colour, markersize=9,
                              transform=top_curve, clip_on=False)  # fmt: skip
    ax_lr.axhline(TRAINED, color="grey", linewidth=0.8, linestyle="--",
                  label=f"trained: test MSE {TRAINED:g}")  # fmt: skip
    ax_lr.set_xscale("log")
    ax_lr.set_yscale("log")
    ax_lr.set_xlabel("learning rate")
    ax_lr.set_ylabel(f"test MSE after {n['epochs']} epochs (x: diverged)")
    ax_lr.legend(fontsize=8)
    ax_curve.set_yscale("log")
    ax_curve.set_xlabel("epoch")
    ax_curve.set_ylabel(f"training loss at lr {n['lrs'][-1]:g} (x: diverged)")
    ax_curve.set_title(f"the largest rate, lr {n['lrs'][-1]:g}: each seed")
    ax_curve.legend(fontsize=8)
    figures.whole_steps(ax_curve)
    for ax in (ax_lr, ax_curve):
        ax.grid(True, alpha=0.3, linewidth=0.6)
    fig.suptitle(f"depth-{n['depth']} scalar chain from weights U{INIT}, {n['seeds']} seeds; "
                 f"clipping at global norm {n['clip']:g}")  # fmt: skip
    return {"gradient_clipping": fig}


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when plain SGD diverges (in some seed) at one rate of the grid or more,
    and at each such rate the clipped run trains (test MSE <= ``TRAINED``) in every seed;
    not reproduced when no rate diverges (nothing exploded) or clipping fails at one."""
    lrs, mse = numbers["lrs"], numbers["test_mse"]
    exploded = [i for i, row in enumerate(mse["plain"]) if any(v is None for v in row)]

    def listing(variant: str, i: int) -> str:
        return ", ".join("diverged" if v is None else f"{v:.3g}" for v in mse[variant][i])

    if not exploded:
        grid = ", ".join(f"{lr:g}" for lr in lrs)
        return Verdict(NOT_REPRODUCED, f"plain SGD diverged at no rate of the grid ({grid}): "
                       "nothing exploded to be tamed.")  # fmt: skip
    failed = [i for i in exploded if not all(_trained(v) for v in mse["clipped"][i])]
    detail = "; ".join(f"lr {lrs[i]:g}: plain {listing('plain', i)}, clipped "
                       f"{listing('clipped', i)}" for i in exploded)  # fmt: skip
    if failed:
        return Verdict(NOT_REPRODUCED, f"where plain SGD diverges, the clipped run does not "
                       f"train in every seed at lr {', '.join(f'{lrs[i]:g}' for i in failed)} "
                       f"(test MSE per seed, {detail}).")  # fmt: skip
    return Verdict(REPRODUCED, f"at every rate where plain SGD diverges the clipped run "
                   f"trains in every seed (test MSE <= {TRAINED:g}; {detail}).")  # fmt: skip


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = []
    for variant in VARIANTS:
        for lr, row in zip(numbers["lrs"], numbers["test_mse"][variant], strict=True):
            trained = sum(_trained(v) for v in row)
            diverged = sum(v is None for v in row)
            finite = [v for v in row if v is not None]
            median = f"{np.median(finite):.3g}" if finite else "-"
            rows.append([LABELS[variant], f"{lr:g}", f"{trained}/{len(row)}",
                         f"{diverged}/{len(row)}", median])  # fmt: skip
    return ["run", "lr", "seeds trained", "seeds diverged", "median test MSE (finite)"], rows


_CHAIN = {"depth": 8, "clip": 1.0, "lrs": [0.001, 0.003, 0.01, 0.02, 0.05]}
ENTRY = Entry(
    name="gradient_clipping",
    title="Gradient clipping on an exploding network",
    deck=deck("004"),
    slide="Gradient Clipping",
    claim="Exploding gradients make training unstable; clipping the gradients during "
    "backpropagation so that they never exceed a threshold (Keras' clipnorm, Pascanu et "
    "al. 2013) keeps training stable where the unclipped run diverges.",
    tier="quick",
    version=2,
    budgets={
        "quick": {"epochs": 20, "seeds": 3, **_CHAIN},
        "standard": {"epochs": 40, "seeds": 5, **_CHAIN},
        "full": {"epochs": 40, "seeds": 10, **_CHAIN},
    },
    compute=compute,
    draw=draw,
    rule=rule,
    threads=1,
    table=table,
    reference="Pascanu, Mikolov & Bengio, On the difficulty of training recurrent neural "
    "networks, ICML 2013",
)
