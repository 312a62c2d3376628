"""Early stopping: the epoch it keeps, and that model's test accuracy against training on.

One network trains on the same seeds and batches three times, every run built by
:func:`optimlab.run.build_run` (so each checkpoints in the entry's work folder and a
killed gallery resumes it): to the end of the budget; with the run's ``early_stopping``
setting (the trainer's :class:`optimlab.train.EarlyStopping` on the validation loss,
Keras' default monitor); and with the same callback on the validation accuracy (the
lecture's rule: stop when the validation error has stopped falling), passed to the
builder. Both stopping runs keep the weights of their best epoch. Measured per seed: the
epoch each run stopped at, the epoch whose weights it kept, and the test accuracy of the
model it returned (evaluated on the test split after training, so a restore that did not
happen would show), and for the run to the end its validation-loss curve: the epoch
where it is lowest and how far it has risen by the end.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    problem_data,
)

#: The runs, in the order the page shows them.
VARIANTS = ("to the end", "stop on val_loss", "stop on val_error")
#: The run the verdict judges (the lecture stops on the validation error).
JUDGED = "stop on val_error"
#: The run to the end counts as overfitting when its final validation loss is this much
#: above its minimum (the figure's rising validation curve).
OVERFIT_RISE = 0.10
#: How far (half a percentage point) the stopped run's mean test accuracy may fall below
#: the run to the end's for a verdict of this budget only, not "not reproduced".
SLACK = 0.005


def train(budget: Mapping[str, Any], context: Context, variant: str, seed: int) -> dict[str, Any]:
    """One run: the epochs it trained, the epoch it kept, its returned model's test
    accuracy, and its per-epoch validation loss and accuracy and test accuracy."""
    from optimlab.run import RunConfig, build_run
    from optimlab.train import EarlyStopping
    from optimlab.train.evaluate import evaluate

    patience = budget["patience"]
    callbacks = []
    if variant == "stop on val_error":
        callbacks.append(EarlyStopping("val_accuracy", patience=patience,
                                       restore_best_weights=True))  # fmt: skip
    config = RunConfig(problem=budget["problem"], optimizer="momentum", lr=budget["lr"],
                       hp={"momentum": 0.9}, epochs=budget["epochs"], seed=seed,
                       threads=budget.get("threads"),
                       early_stopping=patience if variant == "stop on val_loss" else None,
                       out=context.run_folder(budget=dict(budget), variant=variant, seed=seed),
                       data_dir=context.data_dir, download=context.download)  # fmt: skip
    run = build_run(config, callbacks=callbacks)
    result = run.fit()
    test = run.problem.splits.test
    kept = evaluate(run.problem.model, run.problem.loss_fn, run.problem.metrics, test.x, test.y)
    history = result.history
    return {
        "epochs_trained": len(history),
        "kept_epoch": result.summary.get("restored_epoch") or len(history),
        "test_accuracy": float(kept["accuracy"]),
        "val_loss": [float(e["val_loss"]) for e in history],
        "val_accuracy": [float(e["val_accuracy"]) for e in history],
        "test_accuracy_by_epoch": [float(e["test_accuracy"]) for e in history],
    }


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    runs = {v: [train(budget, context, v, seed) for seed in range(budget["seeds"])]
            for v in VARIANTS}  # fmt: skip
    variants = {}
    for variant, per_seed in runs.items():
        acc = [r["test_accuracy"] for r in per_seed]
        variants[variant] = {
            "epochs_trained": [r["epochs_trained"] for r in per_seed],
            "kept_epoch": [r["kept_epoch"] for r in per_seed],
            "test_accuracy": acc,
            "test_accuracy_mean": float(np.mean(acc)),
            "test_accuracy_range": float(np.ptp(acc)),
        }
    full = runs["to the end"]
    low = [int(np.argmin(r["val_loss"])) for r in full]
    numbers = {
        "problem": budget["problem"],
        "epochs": budget["epochs"],
        "seeds": budget["seeds"],
        "patience": budget["patience"],
        "variants": variants,
        "to_the_end": {
            "val_loss_min_epoch": [i + 1 for i in low],  # epochs count from 1
            "rise": [float(r["val_loss"][-1] / r["val_loss"][i] - 1) for r, i in zip(full, low)],
        },
    }
    curves = {v: [(r["val_loss"], r["val_accuracy"]) for r in per_seed]
              for v, per_seed in runs.items()}  # fmt: skip
    return Measured(numbers, curves)


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.viz import style

    n = measured.numbers
    fig = figures.figure(12.0, 4.6)
    ax_loss, ax_acc = fig.subplots(1, 2)
    full = measured.data["to the end"]
    for s, (loss, acc) in enumerate(full):
        epochs = np.arange(1, len(loss) + 1)
        label = "run to the end" if s == 0 else None
        ax_loss.plot(epochs, loss, color=style.PALETTE[0], alpha=0.8, label=label)
        ax_acc.plot(epochs, 100 * (1 - np.array(acc)), color=style.PALETTE[0], alpha=0.8,
                    label=label)  # fmt: skip
    for i, variant in enumerate(VARIANTS[1:], start=1):
        kept = n["variants"][variant]["kept_epoch"]
        for s, epoch in enumerate(kept):
            loss, acc = full[s]
            label = f"{variant}: kept epoch" if s == 0 else None
            ax_loss.plot([epoch], [loss[epoch - 1]], "o", color=style.PALETTE[i], label=label)
            ax_acc.plot([epoch], [100 * (1 - acc[epoch - 1])], "o", color=style.PALETTE[i],
                        label=label)  # fmt: skip
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("validation loss")
    ax_acc.set_ylabel("validation error (%)")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3, linewidth=0.6)
        ax.legend(fontsize=8)
    fig.suptitle(f"{n['problem']}, {n['seeds']} seeds: validation curves of the run to the end "
                 f"and the epochs early stopping (patience {n['patience']}) keeps")  # fmt: skip
    return {"early_stopping": fig}


def _accuracy(v: Mapping[str, Any]) -> str:
    return f"{100 * v['test_accuracy_mean']:.2f}% (range {100 * v['test_accuracy_range']:.2f})"


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Judges the run that stops on the validation error. Not reproduced when the run to
    the end did not overfit (mean validation-loss rise below ``OVERFIT_RISE``: nothing to
    stop), when the stopped run trained to the end in some seed, or when its mean test
    accuracy is more than ``SLACK`` below the run to the end's. Reproduced when it is at
    least as high; reproduced at this budget only when it is lower by at most ``SLACK``."""
    end, stop = numbers["variants"]["to the end"], numbers["variants"][JUDGED]
    rise = float(np.mean(numbers["to_the_end"]["rise"]))
    epochs = numbers["epochs"]
    if rise < OVERFIT_RISE:
        return Verdict(NOT_REPRODUCED, f"the run to the end did not overfit in {epochs} epochs "
                       f"(validation loss {rise:+.0%} from its minimum to the end, mean of "
                       f"{numbers['seeds']} seeds): there was nothing to stop.")  # fmt: skip
    trained = stop["epochs_trained"]
    if any(t >= epochs for t in trained):
        return Verdict(
            NOT_REPRODUCED,
            "early stopping on the validation error did not stop "
            f"before epoch {epochs} in every seed (epochs trained: {trained}).",
        )
    gap = stop["test_accuracy_mean"] - end["test_accuracy_mean"]
    compared = (f"stopping on the validation error after {trained} epochs of {epochs} (weights "
                f"of epochs {stop['kept_epoch']} kept) gives test accuracy {_accuracy(stop)} "
                f"against {_accuracy(end)} trained to the end, whose validation loss rose "
                f"{rise:+.0%} from its minimum")  # fmt: skip
    if gap >= 0:
        return Verdict(REPRODUCED, f"{compared}.")
    if gap >= -SLACK:
        return Verdict(AT_BUDGET, f"{compared}: {100 * -gap:.2f} points lower, within the "
                       f"{100 * SLACK:g}-point tolerance of this budget.")  # fmt: skip
    return Verdict(NOT_REPRODUCED, f"{compared}: {100 * -gap:.2f} points lower.")


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    def listing(values: list[int]) -> str:
        return ", ".join(map(str, values))

    rows = [[variant, listing(v["epochs_trained"]), listing(v["kept_epoch"]), _accuracy(v)]
            for variant, v in numbers["variants"].items()]  # fmt: skip
    return ["run", "epochs trained (per seed)", "epoch kept (per seed)", "test accuracy"], rows


ENTRY = Entry(
    name="early_stopping",
    title="Early stopping against training to the end",
    deck=deck("002"),
    slide="Early Stopping",
    claim="When a network overfits, its validation error stops falling and its validation "
    "loss climbs while training goes on. Early stopping ends training once the validation "
    "error has not improved for a few epochs and keeps the weights of its best epoch: a "
    "model as good on the test set as the one trained to the end, for a fraction of the "
    "epochs.",
    tier="quick",
    version=1,
    budgets={
        "quick": {
            "problem": "digits_mlp",
            "epochs": 40,
            "seeds": 3,
            "lr": 0.05,
            "patience": 5,
            "threads": 1,
        },
        "standard": {
            "problem": "fmnist_overfit",
            "epochs": 30,
            "seeds": 2,
            "lr": 0.05,
            "patience": 5,
            "threads": None,
        },
        "full": {
            "problem": "fmnist_overfit",
            "epochs": 60,
            "seeds": 3,
            "lr": 0.05,
            "patience": 10,
            "threads": None,
        },
    },  # fmt: skip
    compute=compute,
    draw=draw,
    rule=rule,
    requires=problem_data,
    threads=1,
    table=table,
    reference="Prechelt, Early Stopping - But When?, 1998; Keras' EarlyStopping",
)
