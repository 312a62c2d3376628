"""Adversarial examples as training data (Goodfellow, Shlens & Szegedy 2015).

The same MLP trains on scikit-learn's digits with Adam three ways, through the run
builder and the ``regularize`` options of ``optimlab train``: plainly, with FGSM examples
replacing half of each batch, and with PGD examples (3 steps) replacing half of each
batch, at epsilon 0.1 in pixel units of [0, 1]. Every run logs its robust accuracy under
PGD-10 at the same epsilon (an example counts only when it is right both clean and
attacked). Measured, as the mean over seeds after the last epoch: the clean test accuracy
and the robust test accuracy of each.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from optimlab.gallery import figures
from optimlab.gallery.decks import deck
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED, Context, Entry, Measured, Verdict

SETTINGS = ("plain", "fgsm", "pgd")
#: How much adversarial training must lift robust accuracy to count as robust.
ROBUST_GAIN = 0.2


def options(setting: str, budget: Mapping[str, Any]) -> dict[str, Any]:
    """The ``regularize`` options of a setting."""
    out: dict[str, Any] = {"robust_epsilon": budget["epsilon"]}
    if setting != "plain":
        out |= {"adversarial": setting, "adversarial_epsilon": budget["epsilon"]}
    if setting == "pgd":
        out["adversarial_steps"] = budget["pgd_steps"]
    return out


def train(budget: Mapping[str, Any], setting: str, seed: int) -> dict[str, float]:
    from optimlab.run import RunConfig, build_run

    config = RunConfig(problem="digits_mlp", optimizer="adam", lr=budget["lr"],
                       epochs=budget["epochs"], seed=seed, threads=budget.get("threads"),
                       regularize=options(setting, budget))  # fmt: skip
    final = build_run(config).fit().final
    return {"test_accuracy": float(final["test_accuracy"]),
            "test_robust_accuracy": float(final["test_robust_accuracy"])}  # fmt: skip


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    rows = {}
    for setting in SETTINGS:
        runs = [train(budget, setting, seed) for seed in range(budget["seeds"])]
        rows[setting] = {
            key: float(np.mean([r[key] for r in runs]))
            for key in ("test_accuracy", "test_robust_accuracy")
        } | {"robust_per_seed": [r["test_robust_accuracy"] for r in runs],
             "clean_per_seed": [r["test_accuracy"] for r in runs]}  # fmt: skip
    numbers = {"epsilon": budget["epsilon"], "epochs": budget["epochs"],
               "seeds": budget["seeds"], "settings": rows}  # fmt: skip
    return Measured(numbers)


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.viz import style

    n = measured.numbers
    fig = figures.figure(8.0, 4.6)
    ax = fig.subplots()
    x = np.arange(len(SETTINGS))
    for offset, (key, label, colour) in enumerate(
        (("clean_per_seed", "clean test accuracy", 0), ("robust_per_seed", "robust", 3))
    ):
        means = [np.mean(n["settings"][s][key]) for s in SETTINGS]
        ax.bar(x + (offset - 0.5) * 0.38, means, width=0.36, color=style.PALETTE[colour],
               label=label if key == "clean_per_seed" else
               f"robust test accuracy (PGD-10, eps {n['epsilon']:g})")  # fmt: skip
        for i, s in enumerate(SETTINGS):
            ax.plot([x[i] + (offset - 0.5) * 0.38] * len(n["settings"][s][key]),
                    n["settings"][s][key], "k.", markersize=4)  # fmt: skip
    ax.set_xticks(x, ["plain training", "FGSM on half of each batch", "PGD-3 on half"])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy (dots: seeds)")
    ax.set_title(f"digits MLP, Adam, {n['epochs']} epochs, eps {n['epsilon']:g}")
    # Under the axes: inside, it sat on the bars.
    figures.legend_outside(fig, ax, ncols=2)
    ax.grid(True, axis="y", alpha=0.3, linewidth=0.6)
    return {"adversarial": fig}


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Two parts. Robustness: PGD training lifts the robust test accuracy by at least
    ``ROBUST_GAIN`` over plain training. Regularization: the best adversarially trained
    model's clean test accuracy is above plain training's. Reproduced when both hold."""
    s = numbers["settings"]
    plain, fgsm, pgd = s["plain"], s["fgsm"], s["pgd"]
    gain = pgd["test_robust_accuracy"] - plain["test_robust_accuracy"]
    robust = (
        f"robust test accuracy {plain['test_robust_accuracy']:.3f} plain, "
        f"{fgsm['test_robust_accuracy']:.3f} FGSM, {pgd['test_robust_accuracy']:.3f} PGD"
    )
    best_clean = max(fgsm["test_accuracy"], pgd["test_accuracy"])
    clean = (f"clean test accuracy {plain['test_accuracy']:.3f} plain, "
             f"{fgsm['test_accuracy']:.3f} FGSM, {pgd['test_accuracy']:.3f} PGD")  # fmt: skip
    if gain < ROBUST_GAIN:
        return Verdict(NOT_REPRODUCED, f"adversarial training did not make the model robust "
                       f"({robust}).")  # fmt: skip
    if not best_clean > plain["test_accuracy"]:
        return Verdict(NOT_REPRODUCED, f"the robustness reproduces ({robust}) but the "
                       f"regularization does not, no clean accuracy gained: {clean}.")  # fmt: skip
    return Verdict(REPRODUCED, f"{robust}; and clean accuracy gained: {clean}.")


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = [[s, f"{r['test_accuracy']:.3f}", f"{r['test_robust_accuracy']:.3f}"]
            for s, r in numbers["settings"].items()]  # fmt: skip
    return ["training", "clean test accuracy", "robust test accuracy"], rows


ENTRY = Entry(
    name="adversarial",
    title="Adversarial examples as training data",
    deck=deck("000"),
    slide="Regularization vs Overfitting: More data! Bad data! Adversarial Examples",
    claim="Adversarial examples are more (bad) data: training on them regularizes the model "
    "(Goodfellow et al. 2015: a maxout net's MNIST test error fell from 0.94% to 0.84%) and "
    "makes it resist the attack it was trained on.",
    tier="quick",
    version=2,
    budgets={
        "quick": {
            "epochs": 5,
            "seeds": 2,
            "lr": 0.003,
            "epsilon": 0.1,
            "pgd_steps": 3,
            "threads": 1,
        },
        "standard": {
            "epochs": 10,
            "seeds": 3,
            "lr": 0.003,
            "epsilon": 0.1,
            "pgd_steps": 3,
            "threads": 1,
        },
        "full": {
            "epochs": 30,
            "seeds": 5,
            "lr": 0.003,
            "epsilon": 0.1,
            "pgd_steps": 7,
            "threads": 1,
        },
    },  # fmt: skip
    compute=compute,
    draw=draw,
    rule=rule,
    threads=1,
    table=table,
    reference="Goodfellow, Shlens & Szegedy, Explaining and Harnessing Adversarial "
    "Examples, ICLR 2015; Madry et al., ICLR 2018",
)
