"""Curriculum learning against a random order (Bengio et al. 2009; Hacohen & Weinshall 2019).

Two runs per seed on the same model, seeds, optimizer and number of optimizer steps, both
built by :func:`optimlab.run.build_run`: examples in a fresh random order every epoch,
and ``--order curriculum``, which starts from the easiest ``start`` fraction of the
training set and admits harder examples epoch by epoch (exponential pacing), the
difficulty of an example being its loss under a reference model of the same
architecture trained for one epoch (Hacohen & Weinshall's transfer scoring,
:mod:`optimlab.run.curriculum`). A curriculum's early epochs are shorter, so the test
accuracies are compared at the same optimizer steps: the curriculum's curve is
interpolated at the random run's epoch ends. The claim: the curriculum learns faster at
first and ends no worse.
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
    problem_data,
)

CONTENDERS = ("random", "curriculum")
LABELS = {"random": "random order", "curriculum": "curriculum (easiest first)"}
#: The curriculum may end this much below the random order and still count as no worse.
ACCURACY = 0.01


def settings(contender: str, budget: Mapping[str, Any]) -> dict[str, Any]:
    """The ``RunConfig`` order settings of one contender."""
    if contender == "random":
        return {"order": "random"}
    pacing = {"start": budget["start"], "pacing": budget["pacing"],
              "epochs": budget["pacing_epochs"]}  # fmt: skip
    return {"order": "curriculum", "curriculum": pacing}


def train(budget: Mapping[str, Any], context: Context, contender: str,
          seed: int) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
    """The run's history, and how many classes the first epoch's examples cover."""
    from optimlab.run import RunConfig, build_run

    order = settings(contender, budget)
    config = RunConfig(problem=budget["problem"], optimizer="sgd", lr=budget["lr"],
                       steps=budget["steps"], seed=seed, threads=budget.get("threads"),
                       data_dir=context.data_dir, download=context.download,
                       **order)  # fmt: skip
    run = build_run(config)
    first = run.trainer.loader.indices(0)
    labels = run.problem.splits.train.y
    classes = len(set((labels if first is None else labels[first]).tolist()))
    return run.fit().history, classes


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    trained = {c: [train(budget, context, c, s) for s in range(budget["seeds"])]
               for c in CONTENDERS}  # fmt: skip
    runs = {c: [history for history, _ in trained[c]] for c in CONTENDERS}
    curves = {}
    for c in CONTENDERS:
        steps = [e["step"] for e in runs[c][0]]  # the same for every seed: pools are fixed
        accuracy = np.mean([[e["test_accuracy"] for e in h] for h in runs[c]], axis=0)
        curves[c] = {"steps": steps, "test_accuracy": accuracy.tolist()}
    at = curves["random"]["steps"]
    matched = np.interp(at, curves["curriculum"]["steps"], curves["curriculum"]["test_accuracy"])
    numbers = {
        "problem": budget["problem"], "steps": budget["steps"], "seeds": budget["seeds"],
        "lr": budget["lr"], "start": budget["start"], "pacing": budget["pacing"],
        "pacing_epochs": budget["pacing_epochs"], "curves": curves,
        "at": at, "curriculum_at": matched.tolist(),
        "first_epoch_classes": {c: [k for _, k in trained[c]] for c in CONTENDERS},
    }  # fmt: skip
    return Measured(numbers)


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when, at the random order's epoch ends in the first half of the run,
    the curriculum's test accuracy is higher on average (it learns faster at first), and
    its final accuracy is at most ``ACCURACY`` below the random order's."""
    at = np.asarray(numbers["at"])
    random = np.asarray(numbers["curves"]["random"]["test_accuracy"])
    curriculum = np.asarray(numbers["curriculum_at"])
    early = at <= numbers["steps"] / 2
    gain = float(np.mean(curriculum[early] - random[early]))
    final = float(curriculum[-1] - random[-1])
    classes = numbers["first_epoch_classes"]
    facts = (f"over the first {int(at[early][-1])} steps the curriculum's test accuracy is "
             f"{gain:+.1%} against the random order's on average (at the same steps), and "
             f"{final:+.1%} at the end (step {int(at[-1])}); its first epoch's "
             f"{numbers['start']:.0%} easiest examples cover "
             f"{', '.join(map(str, classes['curriculum']))} classes (by seed) against "
             f"{max(classes['random'])} in a random epoch")  # fmt: skip
    failed = []
    if gain <= 0:
        failed.append("the curriculum does not learn faster at first")
    if final < -ACCURACY:
        failed.append(f"it ends more than {ACCURACY:.0%} below")
    if failed:
        return Verdict(NOT_REPRODUCED, f"{facts}: {'; '.join(failed)}.")
    return Verdict(REPRODUCED, f"{facts}.")


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.viz import style

    n = measured.numbers
    fig = figures.figure(7.5, 4.6)
    ax = fig.subplots()
    for i, c in enumerate(CONTENDERS):
        curve = n["curves"][c]
        ax.plot(curve["steps"], curve["test_accuracy"], marker="o", markersize=3,
                color=style.PALETTE[i], label=LABELS[c])  # fmt: skip
    ax.axvline(n["steps"] / 2, color="0.6", linestyle=":", linewidth=0.8,
               label="half of the run")  # fmt: skip
    ax.set_xlabel("optimizer steps")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{n['problem']}: SGD lr {n['lr']:g}, mean of {n['seeds']} seeds\n"
                 f"curriculum from the easiest {n['start']:.0%}, {n['pacing']} pacing over "
                 f"{n['pacing_epochs']} epochs")  # fmt: skip
    ax.grid(True, alpha=0.3, linewidth=0.6)
    ax.legend(fontsize=8)
    return {"curriculum": fig}


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    random = numbers["curves"]["random"]["test_accuracy"]
    pairs = zip(numbers["at"], random, numbers["curriculum_at"], strict=True)
    rows = [[str(step), f"{r:.2%}", f"{c:.2%}"] for step, r, c in pairs]
    return ["step", "random order", "curriculum (interpolated)"], rows


ENTRY = Entry(
    name="curriculum",
    title="Curriculum learning against a random order",
    deck=deck("003"),
    slide="Additional Strategies for SGD: Shuffling and Curriculum Learning",
    claim="Ordering training examples to solve progressively harder problems (Bengio et al. "
    "2009) is infrequently used in practice; Hacohen and Weinshall (2019) report that "
    "a curriculum scored by a reference network's losses speeds up learning at first "
    "and ends at least as accurate as a random order.",
    tier="quick",
    version=1,
    budgets={
        "quick": {
            "problem": "digits_mlp",
            "steps": 300,
            "seeds": 3,
            "threads": 1,
            "lr": 0.1,
            "start": 0.2,
            "pacing": "exp",
            "pacing_epochs": 4,
        },
        "standard": {
            "problem": "fmnist_mlp",
            "steps": 3000,
            "seeds": 2,
            "threads": None,
            "lr": 0.05,
            "start": 0.2,
            "pacing": "exp",
            "pacing_epochs": 4,
        },
        "full": {
            "problem": "fmnist_mlp",
            "steps": 12000,
            "seeds": 3,
            "threads": None,
            "lr": 0.05,
            "start": 0.2,
            "pacing": "exp",
            "pacing_epochs": 8,
        },
    },  # fmt: skip
    compute=compute,
    draw=draw,
    rule=rule,
    requires=problem_data,
    threads=1,
    table=table,
    reference="Bengio, Louradour, Collobert & Weston, Curriculum Learning, ICML 2009; "
    "Hacohen & Weinshall, On the Power of Curriculum Learning in Training Deep Networks, "
    "ICML 2019",
)
