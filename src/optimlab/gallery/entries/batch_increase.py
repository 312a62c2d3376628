"""Don't decay the learning rate, increase the batch size (Smith, Kindermans, Ying & Le 2018).

Three runs per seed on the same model, seeds and first batches, all built by
:func:`optimlab.run.build_run`: SGD at a constant LR (the control); the same with the LR
divided by ``factor`` at two milestones (``--schedule multistep``); and the same schedule
with ``--batch-schedule increase``, which multiplies the batch by ``factor`` at the
milestones instead, up to ``max_batch``, after which the LR takes the remaining factor
(:mod:`optimlab.run.batching`). Measured per epoch: the training loss and the test
accuracy (means over seeds), and each run's number of parameter updates. The paper's
claim: the decaying-LR and increasing-batch curves match epoch by epoch, while the
growing batch needs far fewer updates.
"""

from __future__ import annotations

import math
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

CONTENDERS = ("constant", "decay", "increase")
LABELS = {"constant": "constant LR (control)", "decay": "LR divided at the milestones",
          "increase": "batch multiplied at the milestones"}  # fmt: skip
#: The curves match when, from the first milestone on, the training losses of the decaying
#: and the increasing runs differ by at most this much on average, in natural log units
#: (0.15 is about 16 % apart).
MATCH = 0.15
#: The decay must matter, so the control's curve must be at least this many times farther
#: from the decaying run's than the increasing run's is, or matching shows nothing.
EFFECT = 2.0
#: The final test accuracies may differ by this much.
ACCURACY = 0.01


def settings(contender: str, budget: Mapping[str, Any], per_epoch: int) -> dict[str, Any]:
    """The ``RunConfig`` settings of one contender; milestones are whole epochs of the
    decaying run (``per_epoch`` steps each)."""
    out: dict[str, Any] = {"lr": budget["lr"]}
    if contender != "constant":
        milestones = [m * per_epoch for m in budget["milestones"]]
        args = {"milestones": milestones, "gamma": 1 / budget["factor"]}
        out.update(schedule="multistep", schedule_args=args)
    if contender == "increase":
        out.update(batch_schedule="increase", max_batch=budget["max_batch"])
    return out


def train(budget: Mapping[str, Any], context: Context, contender: str, seed: int,
          per_epoch: int) -> list[dict[str, Any]]:  # fmt: skip
    from optimlab.run import RunConfig, build_run

    config = RunConfig(problem=budget["problem"], optimizer="sgd", epochs=budget["epochs"],
                       seed=seed, threads=budget.get("threads"), data_dir=context.data_dir,
                       download=context.download,
                       **settings(contender, budget, per_epoch))  # fmt: skip
    return build_run(config).fit().history


def steps_per_epoch(budget: Mapping[str, Any], context: Context) -> int:
    """Steps per epoch at the problem's batch size (of the decaying run)."""
    from optimlab import problems

    problem = problems.build(budget["problem"], data_dir=context.data_dir,
                             download=context.download)  # fmt: skip
    return math.ceil(len(problem.splits.train.x) / problem.batch_size)


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    per_epoch = steps_per_epoch(budget, context)
    runs = {c: [train(budget, context, c, s, per_epoch) for s in range(budget["seeds"])]
            for c in CONTENDERS}  # fmt: skip

    def mean(contender: str, key: str) -> list[float]:
        return np.mean([[e[key] for e in h] for h in runs[contender]], axis=0).tolist()

    numbers = {
        "problem": budget["problem"], "epochs": budget["epochs"], "seeds": budget["seeds"],
        "lr": budget["lr"], "factor": budget["factor"], "milestones": list(budget["milestones"]),
        "max_batch": budget["max_batch"],
        "loss": {c: mean(c, "loss") for c in CONTENDERS},
        "test_accuracy": {c: mean(c, "test_accuracy") for c in CONTENDERS},
        "updates": {c: int(runs[c][0][-1]["step"]) for c in CONTENDERS},
        "batch_size": {c: [int(e["batch_size"]) for e in runs[c][0]] for c in CONTENDERS},
    }  # fmt: skip
    return Measured(numbers)


def log_gap(a: list[float], b: list[float], start: int) -> float:
    """Mean ``|ln a - ln b|`` over the epochs from ``start`` (0-based)."""
    x, y = np.log(np.asarray(a[start:])), np.log(np.asarray(b[start:]))
    return float(np.mean(np.abs(x - y)))


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when, from the first milestone on, the increasing run's training loss
    stays within ``MATCH`` (mean log gap) of the decaying run's, the control is at least
    ``EFFECT`` times farther away (the decay changed the curve, and the batch reproduced
    the change), the final test accuracies are within ``ACCURACY``, and the increasing
    run took fewer updates."""
    loss, acc, updates = numbers["loss"], numbers["test_accuracy"], numbers["updates"]
    start = min(numbers["milestones"])
    match = log_gap(loss["increase"], loss["decay"], start)
    control = log_gap(loss["constant"], loss["decay"], start)
    accuracy = acc["increase"][-1] - acc["decay"][-1]
    fewer = updates["increase"] / updates["decay"]
    facts = (f"from epoch {start + 1} the training losses differ by {match:.3f} in log units "
             f"on average (the constant-LR control by {control:.3f}), the final test "
             f"accuracies by {accuracy:+.2%}, and the growing batch took {updates['increase']} "
             f"updates against {updates['decay']} ({fewer:.0%})")  # fmt: skip
    failed = []
    if control < EFFECT * match:
        failed.append(f"the decay barely changed the curve (control gap under {EFFECT:g} "
                      "times the match gap), so matching it shows nothing")  # fmt: skip
    if match > MATCH:
        failed.append(f"the curves do not match (gap above {MATCH:g})")
    if abs(accuracy) > ACCURACY:
        failed.append(f"the test accuracies differ by more than {ACCURACY:.0%}")
    if fewer >= 1:
        failed.append("the growing batch did not save updates")
    if failed:
        return Verdict(NOT_REPRODUCED, f"{facts}: {'; '.join(failed)}.")
    return Verdict(REPRODUCED, f"{facts}.")


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.viz import style

    n = measured.numbers
    fig = figures.figure(12.0, 4.6)
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = np.arange(1, n["epochs"] + 1)
    for i, c in enumerate(CONTENDERS):
        label = f"{LABELS[c]} ({n['updates'][c]} updates)"
        style_ = {"color": style.PALETTE[i], "linestyle": "--" if c == "increase" else "-"}
        ax_loss.plot(epochs, n["loss"][c], label=label, **style_)
        ax_acc.plot(epochs, n["test_accuracy"][c], label=LABELS[c], **style_)
    for ax in (ax_loss, ax_acc):
        for m in n["milestones"]:
            ax.axvline(m + 0.5, color="0.6", linestyle=":", linewidth=0.8)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3, linewidth=0.6)
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("training loss")
    ax_loss.legend(fontsize=8)
    ax_acc.set_ylabel("test accuracy")
    ax_loss.set_title(f"{n['problem']}: SGD, lr {n['lr']:g}, factor {n['factor']:g} at the "
                      f"dotted lines, mean of {n['seeds']} seeds")  # fmt: skip
    ax_acc.set_title(f"batch sizes by epoch: {_sizes(n['batch_size']['increase'])}")
    return {"batch_increase": fig}


def _sizes(batches: list[int]) -> str:
    """``32 x5, 160 x5, 320 x5``: runs of equal batch sizes."""
    runs: list[list[int]] = []
    for b in batches:
        if runs and runs[-1][0] == b:
            runs[-1][1] += 1
        else:
            runs.append([b, 1])
    return ", ".join(f"{b} x{k}" for b, k in runs)


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = [[LABELS[c], str(numbers["updates"][c]), _sizes(numbers["batch_size"][c]),
             f"{numbers['loss'][c][-1]:.4g}", f"{numbers['test_accuracy'][c][-1]:.2%}"]
            for c in CONTENDERS]  # fmt: skip
    return ["run", "updates", "batch sizes", "final training loss", "final test accuracy"], rows


ENTRY = Entry(
    name="batch_increase",
    title="Increase the batch size instead of decaying the learning rate",
    deck=deck("000"),
    slide="SGD with Learning Rate Schedule: New problems.... new ideas!",
    claim="Smith, Kindermans, Ying and Le (2018): wherever a schedule would divide the "
    "learning rate by k, multiplying the batch size by k instead gives the same training "
    "curve epoch by epoch, with far fewer parameter updates; lecture 003 adds that "
    "increasing the batch size may have the same effect as decaying the learning rate.",
    tier="quick",
    version=1,
    budgets={
        "quick": {
            "problem": "digits_mlp",
            "epochs": 15,
            "seeds": 3,
            "threads": 1,
            "lr": 0.2,
            "milestones": [5, 10],
            "factor": 5,
            "max_batch": 320,
        },
        "standard": {
            "problem": "fmnist_mlp",
            "epochs": 12,
            "seeds": 2,
            "threads": None,
            "lr": 0.05,
            "milestones": [4, 8],
            "factor": 5,
            "max_batch": 1280,
        },
        "full": {
            "problem": "fmnist_mlp",
            "epochs": 30,
            "seeds": 3,
            "threads": None,
            "lr": 0.05,
            "milestones": [10, 20],
            "factor": 5,
            "max_batch": 3200,
        },
    },  # fmt: skip
    compute=compute,
    draw=draw,
    rule=rule,
    requires=problem_data,
    threads=1,
    table=table,
    reference="Smith, Kindermans, Ying & Le, Don't Decay the Learning Rate, Increase the "
    "Batch Size, ICLR 2018",
)
