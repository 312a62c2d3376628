"""Snapshot ensembles (Huang et al. 2017): M cosine cycles, a snapshot at each cycle's end.

One run per seed through the run builder (:func:`optimlab.run.build_run`) with the
``snapshots`` regularization option: SGD with momentum 0.9 follows ``M`` equal cosine
cycles restarting at the rate ``lr`` (:class:`optimlab.schedules.SnapshotCycles`), and
the :class:`optimlab.regularize.ensembles.SnapshotEnsemble` callback saves the weights at
each cycle's end. Afterwards each snapshot alone and the ensembles of the first ``k``
snapshots (softmax outputs averaged) are evaluated on the test set. The ensemble of all
``M`` is compared with the best single snapshot, picked by its test accuracy (a choice
that favours the single model). The test NLL is reported beside the accuracy.
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
from optimlab.gallery.seeds import failing_seeds, mean_sd


def one_seed(budget: Mapping[str, Any], context: Context, seed: int) -> dict[str, Any]:
    """One run's snapshots, each alone and as growing ensembles, on the test set."""
    import copy

    from optimlab.regularize.ensembles import SnapshotEnsemble, SoftmaxEnsemble
    from optimlab.run import RunConfig, build_run
    from optimlab.train.evaluate import evaluate

    config = RunConfig(problem=budget["problem"], optimizer="sgd", lr=budget["lr"],
                       hp={"momentum": 0.9}, epochs=budget["epochs"], seed=seed,
                       threads=budget.get("threads"), regularize={"snapshots": budget["cycles"]},
                       data_dir=context.data_dir, download=context.download)  # fmt: skip
    run = build_run(config)
    result = run.fit()
    trainer = run.trainer
    snap = next(c for c in trainer.callbacks if isinstance(c, SnapshotEnsemble))
    x, y = trainer.test_xy

    def scores(model: Any) -> tuple[float, float]:
        logs = evaluate(model.eval(), trainer.loss_fn, trainer.metrics, x, y)
        return float(logs["accuracy"]), float(logs["loss"])

    members = []
    for state in snap.snapshots:
        member = copy.deepcopy(trainer.model)
        member.load_state_dict(state)
        members.append(member)
    single = [scores(m) for m in members]
    # Ensembles of the first k snapshots: what a run stopped after k cycles would have.
    growing = [scores(SoftmaxEnsemble(members[:k])) for k in range(1, len(members) + 1)]
    return {"status": result.status, "snapshot_steps": list(snap.steps),
            "single_accuracy": [a for a, _ in single], "single_nll": [n for _, n in single],
            "ensemble_accuracy": [a for a, _ in growing],
            "ensemble_nll": [n for _, n in growing]}  # fmt: skip


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    runs = [one_seed(budget, context, s) for s in range(budget["seeds"])]
    summary = {
        "best_single_accuracy": [max(r["single_accuracy"]) for r in runs],
        "ensemble_accuracy": [r["ensemble_accuracy"][-1] for r in runs],
        "best_single_nll": [min(r["single_nll"]) for r in runs],
        "ensemble_nll": [r["ensemble_nll"][-1] for r in runs],
    }
    numbers = {"problem": budget["problem"], "epochs": budget["epochs"], "lr": budget["lr"],
               "cycles": budget["cycles"], "seeds": budget["seeds"], **summary,
               "runs": runs}  # fmt: skip
    return Measured(numbers)


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.schedules import SnapshotCycles
    from optimlab.viz import style

    n = measured.numbers
    fig = figures.figure(11.0, 4.4)
    ax_lr, ax_acc = fig.subplots(1, 2)
    total = n["runs"][0]["snapshot_steps"][-1]
    schedule = SnapshotCycles(lr=n["lr"], total_steps=total, cycles=n["cycles"])
    steps = np.arange(total)
    ax_lr.plot(steps, [schedule(int(t)) for t in steps], color=style.PALETTE[0])
    ends = [e - 1 for e in n["runs"][0]["snapshot_steps"]]
    ax_lr.plot(ends, [schedule(e) for e in ends], "o", color=style.PALETTE[3],
               label="snapshot")  # fmt: skip
    ax_lr.set_xlabel("step")
    ax_lr.set_ylabel("learning rate")
    ax_lr.legend(fontsize=8)
    k = np.arange(1, n["cycles"] + 1)
    for s, run in enumerate(n["runs"]):
        ax_acc.plot(k[: len(run["single_accuracy"])], run["single_accuracy"], "o",
                    color=style.PALETTE[1], alpha=0.6,
                    label="snapshot k alone" if s == 0 else None)  # fmt: skip
    mean = np.mean([r["ensemble_accuracy"] for r in n["runs"]], axis=0)
    ax_acc.plot(k[: len(mean)], mean, "-s", color=style.PALETTE[2],
                label=f"ensemble of snapshots 1..k (mean of {n['seeds']} seeds)")  # fmt: skip
    ax_acc.set_xlabel("snapshot k")
    ax_acc.set_ylabel("test accuracy")
    ax_acc.set_xticks(k)
    ax_acc.legend(fontsize=8)
    for ax in (ax_lr, ax_acc):
        ax.grid(True, alpha=0.3, linewidth=0.6)
    fig.suptitle(f"{n['problem']}: {n['cycles']} cosine cycles from lr {n['lr']:g} "
                 f"over {n['epochs']} epochs (SGD, momentum 0.9)")  # fmt: skip
    return {"snapshot_ensemble": fig}


def check(pair: tuple[float, float]) -> list[str]:
    """Whether one seed's ensemble of all snapshots (first) is at least as accurate as
    its best single snapshot (second)."""
    ensemble, best = pair
    if ensemble >= best:
        return []
    return [f"the ensemble ({ensemble:.4f}) is less accurate than its best snapshot ({best:.4f})"]


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Judged seed by seed: reproduced when the ensemble of all snapshots is at least as
    accurate on the test set as the best single snapshot in every seed, and more accurate
    on the mean over seeds; not reproduced otherwise."""
    ens = numbers["ensemble_accuracy"]
    best = numbers["best_single_accuracy"]
    gaps = [e - b for e, b in zip(ens, best, strict=True)]
    text = (f"test accuracy over {len(ens)} seeds (mean ± sd): ensemble of "
            f"{numbers['cycles']} snapshots {mean_sd(ens, '.4f')}, best single snapshot "
            f"{mean_sd(best, '.4f')}; test NLL: ensemble "
            f"{mean_sd(numbers['ensemble_nll'])}, best snapshot "
            f"{mean_sd(numbers['best_single_nll'])}")  # fmt: skip
    problems = failing_seeds(range(len(ens)), list(zip(ens, best, strict=True)), check)
    if problems:
        return Verdict(NOT_REPRODUCED, f"{'; '.join(problems)} ({text}).")
    if not np.mean(gaps) > 0:
        return Verdict(NOT_REPRODUCED, f"the ensemble only ties its best snapshot ({text}).")
    gain = np.mean(gaps) * 100
    return Verdict(REPRODUCED, f"the ensemble beats its best snapshot by {gain:.2f} points "
                   f"on average and loses in no seed ({text}).")  # fmt: skip


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = []
    for s, run in enumerate(numbers["runs"]):
        rows.append([str(s), *(f"{a:.4f}" for a in run["single_accuracy"]),
                     f"{run['ensemble_accuracy'][-1]:.4f}"])  # fmt: skip
    cycles = numbers["cycles"]
    return ["seed", *(f"snapshot {k}" for k in range(1, cycles + 1)), "ensemble"], rows


ENTRY = Entry(
    name="snapshot_ensemble",
    title="Snapshot ensemble against its best snapshot",
    deck=deck("000"),
    slide="SGD with Learning Rate Schedule: New problems.... new ideas!",
    claim="Snapshot Ensembles: train 1, get M for free (Huang et al. 2017): with a cyclic "
    "cosine learning rate, the models saved at the end of each cycle form an ensemble that "
    "is more accurate than any one of them, at the cost of a single training run.",
    tier="quick",
    version=2,
    budgets={
        "quick": {
            "problem": "digits_mlp",
            "epochs": 20,
            "cycles": 5,
            "lr": 0.1,
            "seeds": 3,
            "threads": 1,
        },
        "standard": {
            "problem": "fmnist_mlp",
            "epochs": 10,
            "cycles": 5,
            "lr": 0.1,
            "seeds": 3,
            "threads": None,
        },
        "full": {
            "problem": "fmnist_mlp",
            "epochs": 40,
            "cycles": 5,
            "lr": 0.1,
            "seeds": 5,
            "threads": None,
        },
    },  # fmt: skip
    compute=compute,
    draw=draw,
    rule=rule,
    requires=problem_data,
    threads=1,
    table=table,
    reference="Huang, Li, Pleiss, Liu, Hopcroft & Weinberger, Snapshot Ensembles: Train 1, "
    "get M for free, ICLR 2017",
)
