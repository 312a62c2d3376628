"""The ranking of activation functions in a deep MLP on digits.

The same 20-layer, width-64 MLP (the registered ``deep_mlp``, trained on ``digits_mlp``'s
data through the run settings ``model`` and ``model_args``, each run built by
:func:`optimlab.run.build_run` and checkpointed in the entry's work folder) with ELU,
leaky ReLU, ReLU, tanh and sigmoid units, each with the initialization made for it (He
for the rectifiers, Glorot for tanh and sigmoid), trains with SGD + momentum for a short
budget over several seeds. Measured per activation and seed: the validation accuracy
after the last epoch, and at initialization the first-to-last ratio of the per-layer
gradient norms (on a fixed batch of training examples), where vanishing shows first.
The ranking is judged seed by seed (:mod:`optimlab.gallery.seeds`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from optimlab.gallery import figures
from optimlab.gallery.decks import deck
from optimlab.gallery.entry import (
    NOT_REPRODUCED,
    REPRODUCED,
    Context,
    Entry,
    Measured,
    Verdict,
)
from optimlab.gallery.seeds import cell, failing_seeds, log_range, mean_sd

#: The ranking to test, best first, and each activation's initialization.
RANKING = {
    "elu": "he_normal",
    "leaky_relu": "he_normal",
    "relu": "he_normal",
    "tanh": "glorot_normal",
    "sigmoid": "glorot_normal",
}
PROBE = 256


def train(budget: Mapping[str, Any], context: Context, activation: str, seed: int) -> dict:
    """One run: the gradient ratio at initialization and the final validation accuracy
    (a run that diverged counts as accuracy 0: it learned nothing usable)."""
    from optimlab.gallery.entries.vanishing_gradients import _grad_norms
    from optimlab.run import RunConfig, build_run

    args = {
        "in_features": 64,
        "out_features": 10,
        "depth": budget["depth"],
        "width": budget["width"],
        "activation": activation,
        "init": RANKING[activation],
    }
    config = RunConfig(problem="digits_mlp", model="deep_mlp", model_args=args,
                       optimizer="momentum", lr=budget["lr"], hp={"momentum": 0.9},
                       epochs=budget["epochs"], seed=seed,
                       out=context.run_folder(budget=dict(budget), activation=activation,
                                              seed=seed))  # fmt: skip
    run = build_run(config)
    problem = run.problem
    x, y = problem.splits.train.x[:PROBE], problem.splits.train.y[:PROBE]
    norms = _grad_norms(problem.model, problem.loss_fn, x, y)  # the fresh model's
    ratio = norms[0] / norms[-1] if norms[-1] > 0 else float("nan")
    accuracy = run.fit().final.get("val_accuracy")
    return {
        "ratio_init": float(ratio) if np.isfinite(ratio) else None,
        "val_accuracy": float(accuracy) if accuracy is not None and np.isfinite(accuracy) else 0.0,
    }


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    seeds = list(range(budget["seeds"]))
    numbers: dict[str, Any] = {"depth": budget["depth"], "epochs": budget["epochs"],
                               "seeds": seeds, "activations": {}}  # fmt: skip
    for activation in RANKING:
        runs = [train(budget, context, activation, s) for s in seeds]
        numbers["activations"][activation] = {
            "init": RANKING[activation],
            "val_accuracy": [r["val_accuracy"] for r in runs],
            "ratio_init": [r["ratio_init"] for r in runs],
        }
    return Measured(numbers)


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.viz import style

    n = measured.numbers["activations"]
    fig = figures.figure(12.0, 4.4)
    ax_acc, ax_ratio = fig.subplots(1, 2)
    names = list(n)
    colours = [style.PALETTE[i] for i in range(len(names))]
    means = [100 * float(np.mean(n[a]["val_accuracy"])) for a in names]
    ax_acc.bar(names, means, color=colours)
    for i, a in enumerate(names):
        ax_acc.plot([i] * len(n[a]["val_accuracy"]), [100 * v for v in n[a]["val_accuracy"]],
                    "o", color="black", markersize=4)  # fmt: skip
    ax_acc.set_ylabel("validation accuracy after the last epoch (%)")
    ax_acc.set_title("the lecture's ranking, best first (bars: mean; dots: seeds)")
    for i, a in enumerate(names):
        ratios = [r for r in n[a]["ratio_init"] if r is not None and r > 0]
        ax_ratio.plot([i] * len(ratios), ratios, "o", color=colours[i])
    ax_ratio.set_xticks(range(len(names)), names)
    ax_ratio.set_yscale("log")
    ax_ratio.set_ylabel("||dL/dW_1|| / ||dL/dW_last|| at initialization")
    ax_ratio.set_title("gradient reaching the first layer")
    for ax in (ax_acc, ax_ratio):
        ax.grid(True, axis="y", alpha=0.3, linewidth=0.6)
    m = measured.numbers
    fig.suptitle(f"{m['depth']}-layer MLP on digits, {m['epochs']} epochs of SGD + momentum, "
                 f"{len(m['seeds'])} seeds")  # fmt: skip
    return {"activations": fig}


def _percent(values: list[float]) -> str:
    return mean_sd([100 * v for v in values], ".1f") + "%"


def check(accuracy: Mapping[str, float]) -> list[str]:
    """The neighbouring pairs of the ranking out of order in one seed (``activation ->
    validation accuracy``); a tie counts as out of order: it does not show the ranking."""
    order = list(RANKING)
    return [
        f"{better} {100 * accuracy[better]:.1f}% is not above {worse} {100 * accuracy[worse]:.1f}%"
        for better, worse in zip(order, order[1:])
        if not accuracy[better] > accuracy[worse]
    ]


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Judged seed by seed, reproduced only when, in every seed, each neighbouring pair of
    the ranking is in the ranking's order by validation accuracy after the last epoch;
    not reproduced when any seed puts a pair out of order (or ties it). There is no
    middle verdict: the accuracies come from the end of each run alone, so nothing in
    the numbers says whether a longer budget would settle a broken pair."""
    seeds, acts = numbers["seeds"], numbers["activations"]
    per_seed = [{a: acts[a]["val_accuracy"][i] for a in RANKING} for i in range(len(seeds))]
    problems = failing_seeds(seeds, per_seed, check)
    listing = ", ".join(f"{a} {_percent(acts[a]['val_accuracy'])}" for a in RANKING)
    tail = f"validation accuracy over {len(seeds)} seeds (mean ± sd), best first: {listing}"
    if problems:
        return Verdict(NOT_REPRODUCED, f"{'; '.join(problems)}; {tail}.")
    return Verdict(REPRODUCED, f"the ranking holds in each of {len(seeds)} seeds: {tail}.")


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = [
        [name, a["init"], mean_sd([100 * v for v in a["val_accuracy"]], ".1f"),
         cell(a["ratio_init"], log_range, "overflowed")]
        for name, a in numbers["activations"].items()
    ]  # fmt: skip
    return ["units", "init", "val accuracy % (mean ± sd)",
            "gradient ratio at init (geometric mean and range)"], rows  # fmt: skip


# lr 0.01: at 0.05 (the vanishing-gradients entry's rate) the ELU net diverged in both
# seeds it was tried with at the quick budget, which would rank the rate, not the units.
_NET = {"depth": 20, "width": 64, "lr": 0.01}
ENTRY = Entry(
    name="activations",
    title="The ranking of activation functions: ELU, leaky ReLU, ReLU, tanh, sigmoid",
    deck=deck("004"),
    slide="Nonsaturating Activation Functions (3/4)",
    claim="Saturating units make deep nets hard to train; nonsaturating ones fix it. The "
    "ranking the course gives (after Geron): in general ELU > leaky ReLU > ReLU > tanh > "
    "logistic (sigmoid).",
    tier="quick",
    version=2,
    budgets={
        "quick": {"epochs": 3, "seeds": 3, **_NET},
        "standard": {"epochs": 10, "seeds": 3, **_NET},
        "full": {"epochs": 30, "seeds": 5, **_NET},
    },
    compute=compute,
    draw=draw,
    rule=rule,
    threads=1,
    table=table,
    reference="Geron, Hands-On Machine Learning, ch. 11; Clevert et al. 2016; Maas et al. 2013",
)
