"""Hogwild! on sparse against dense data: lock-free updates of one shared model.

Two logistic regressions, each trained with plain SGD by ``P`` processes sharing the
weights without locks (:func:`optimlab.parallel.hogwild.run_hogwild`, real processes;
``P = 1`` is the serial run): the sparse one (``sparse_logreg``, each example 10 of
1000 feature ids) and a dense one (``logreg_digits``, 64 pixels). Measured per problem,
``P`` and seed: the final training loss of the shared model and the wall time (on a
shared machine, so reported, not judged). Beside them, the collisions the paper's
argument rests on, from the data alone: the share of the weights one batch's gradient
touches, and the share two batches touch both (what two concurrent updates can
overwrite).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from optimlab.gallery import figures
from optimlab.gallery.decks import deck
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED, Context, Entry, Measured, Verdict

SPARSE, DENSE = "sparse_logreg", "logreg_digits"
#: A Hogwild! loss within this fraction of the serial loss counts as no loss.
MATCH = 0.05


def touched(x: Any, features: int) -> np.ndarray:
    """Which input features a batch's gradient touches (ids for sparse bags, nonzero
    columns for dense inputs), as a boolean mask of length ``features``."""
    import torch

    mask = np.zeros(features, dtype=bool)
    if not torch.is_floating_point(x):
        mask[np.unique(x.numpy().ravel())] = True
    else:
        mask[(x.reshape(len(x), -1) != 0).any(dim=0).numpy()] = True
    return mask


def collisions(problem: str, seed: int = 0) -> dict[str, float]:
    """Mean share of the features one batch touches, and that two consecutive batches
    of the training set both touch."""
    from optimlab import problems

    built = problems.build(problem, seed=seed)
    x = built.splits.train.x
    features = int(x.max()) + 1 if not x.is_floating_point() else x[0].numel()
    b = built.batch_size
    masks = [touched(x[i : i + b], features) for i in range(0, len(x) - b + 1, b)]
    one = float(np.mean([m.mean() for m in masks]))
    both = float(np.mean([(m & n).mean() for m, n in zip(masks, masks[1:], strict=False)]))
    return {"features": features, "batch": b, "touched": one, "touched_by_both": both}


def train(problem: str, budget: Mapping[str, Any], nproc: int, seed: int) -> dict[str, Any]:
    """One Hogwild! run: the shared model's final training loss and the wall time."""
    import time

    from optimlab.parallel.hogwild import run_hogwild
    from optimlab.run import RunConfig, build_run
    from optimlab.train.evaluate import evaluate

    config = RunConfig(problem=problem, optimizer="sgd", lr=budget["lr"][problem],
                       epochs=budget["epochs"][problem], parallel="hogwild", nproc=nproc,
                       threads=1, seed=seed)  # fmt: skip
    start = time.perf_counter()
    result = run_hogwild(config, timeout=budget["timeout"])
    seconds = time.perf_counter() - start
    built = build_run(config.replace(parallel="none", nproc=None)).problem
    x, y = built.splits.train.x, built.splits.train.y
    loss = float(evaluate(result.model, built.loss_fn, {}, x, y)["loss"])
    return {"loss": loss if np.isfinite(loss) else None, "seconds": seconds}


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    out: dict[str, Any] = {}
    for problem in (SPARSE, DENSE):
        runs = {str(p): [train(problem, budget, p, s) for s in range(budget["seeds"])]
                for p in budget["nproc"]}  # fmt: skip
        out[problem] = {
            "lr": budget["lr"][problem],
            "epochs": budget["epochs"][problem],
            "loss": {p: [r["loss"] for r in rs] for p, rs in runs.items()},
            "seconds": {p: [r["seconds"] for r in rs] for p, rs in runs.items()},
            **collisions(problem),
        }
    return Measured({"nproc": list(budget["nproc"]), "seeds": budget["seeds"], **out})


def gap(numbers: Mapping[str, Any], problem: str) -> float:
    """The largest relative excess of a Hogwild! run's mean loss over the serial one
    (infinity when a run diverged)."""
    losses = numbers[problem]["loss"]
    if any(v is None for vs in losses.values() for v in vs):
        return float("inf")
    serial = float(np.mean(losses["1"]))
    return max(float(np.mean(v)) / serial - 1 for p, v in losses.items() if p != "1")


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.viz import style

    n = measured.numbers
    fig = figures.figure(11.0, 4.2)
    ax_loss, ax_hit = fig.subplots(1, 2)
    procs = [str(p) for p in n["nproc"]]
    width = 0.38
    for i, problem in enumerate((SPARSE, DENSE)):
        losses = n[problem]["loss"]
        serial = np.mean(losses["1"])
        rel = [np.mean([np.nan if v is None else v for v in losses[p]]) / serial for p in procs]
        xs = np.arange(len(procs)) + (i - 0.5) * width
        ax_loss.bar(xs, rel, width, color=style.PALETTE[i], label=problem)
    ax_loss.axhline(1 + MATCH, color="grey", linestyle="--", linewidth=0.8)
    ax_loss.set_xticks(np.arange(len(procs)), [f"P = {p}" for p in procs])
    ax_loss.set_ylabel("final training loss / serial (P = 1)")
    ax_loss.set_ylim(0.9, max(1.2, ax_loss.get_ylim()[1]))
    ax_loss.legend(fontsize=8)
    labels = ["touched by one batch", "touched by two batches"]
    for i, problem in enumerate((SPARSE, DENSE)):
        values = [n[problem]["touched"], n[problem]["touched_by_both"]]
        ax_hit.bar(np.arange(2) + (i - 0.5) * width, values, width, color=style.PALETTE[i],
                   label=problem)  # fmt: skip
    ax_hit.set_xticks(np.arange(2), labels)
    ax_hit.set_ylabel("share of the weights")
    ax_hit.set_ylim(0, 1.2)
    ax_hit.legend(fontsize=8, loc="upper left")
    for ax in (ax_loss, ax_hit):
        ax.grid(True, axis="y", alpha=0.3, linewidth=0.6)
    fig.suptitle(f"Hogwild! with plain SGD, {n['seeds']} seeds; processes share the weights "
                 "without locks")  # fmt: skip
    return {"hogwild_sparse": fig}


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when Hogwild! matches the serial loss on the sparse problem (within
    ``MATCH``) but not on the dense one (its excess above ``MATCH`` and above the sparse
    one's); not reproduced when the sparse run loses more, or the dense one does not."""
    sparse, dense = gap(numbers, SPARSE), gap(numbers, DENSE)
    hit = {p: numbers[p]["touched_by_both"] for p in (SPARSE, DENSE)}
    both = (f"touched by two batches at once: {hit[SPARSE]:.1%} of the sparse weights, "
            f"{hit[DENSE]:.1%} of the dense")  # fmt: skip
    losses = (f"loss over the serial run's: sparse {sparse:+.1%}, dense {dense:+.1%} with "
              f"{max(numbers['nproc'])} processes")  # fmt: skip
    if not sparse <= MATCH:
        return Verdict(NOT_REPRODUCED, f"Hogwild! loses on the sparse problem ({losses}; "
                       f"{both}).")  # fmt: skip
    if not (dense > MATCH and dense > sparse):
        return Verdict(NOT_REPRODUCED, f"Hogwild! matches serial SGD on the dense problem "
                       f"too, at this number of processes ({losses}; {both}).")  # fmt: skip
    return Verdict(REPRODUCED, f"Hogwild! matches serial SGD on sparse data only ({losses}; "
                   f"{both}).")  # fmt: skip


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = []
    for problem in (SPARSE, DENSE):
        for p in (str(q) for q in numbers["nproc"]):
            losses = numbers[problem]["loss"][p]
            shown = ", ".join("diverged" if v is None else f"{v:.4f}" for v in losses)
            rows.append([problem, p, shown, f"{np.mean(numbers[problem]['seconds'][p]):.1f}"])
    return ["problem", "processes", "final training loss per seed", "mean seconds"], rows


_LR = {SPARSE: 0.5, DENSE: 0.1}
ENTRY = Entry(
    name="hogwild_sparse",
    title="Hogwild! on sparse against dense data",
    deck=deck("003"),
    slide="Parallel and Distributed SGD",
    claim="Hogwild! (Niu et al. 2011) runs SGD updates in parallel on a CPU, with shared "
    "memory access and no parameter lock; it only works for sparse input data, where "
    "concurrent updates rarely touch the same weights.",
    tier="standard",
    version=1,
    budgets={
        "standard": {
            "nproc": [1, 2],
            "seeds": 2,
            "lr": _LR,
            "timeout": 600,
            "epochs": {SPARSE: 2, DENSE: 5},
        },
        "full": {
            "nproc": [1, 2, 4],
            "seeds": 3,
            "lr": _LR,
            "timeout": 1200,
            "epochs": {SPARSE: 5, DENSE: 20},
        },
    },  # fmt: skip
    compute=compute,
    draw=draw,
    rule=rule,
    threads=1,
    table=table,
    reference="Niu, Recht, Ré & Wright, HOGWILD!: A Lock-Free Approach to Parallelizing "
    "Stochastic Gradient Descent, NeurIPS 2011",
)
