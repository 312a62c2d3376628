"""The learning-rate range test, and what its suggestion is worth in training.

Smith's range test (:func:`optimlab.train.lr_find.lr_find`) sweeps the rate of SGD +
momentum 0.9 geometrically over a few hundred mini-batches and suggests the rate at the
steepest descent of the smoothed loss. The same model (same seed) is then trained for a
few epochs at three rates: the suggestion, a hundred times less, and the rate at which
the test saw the loss diverge. Test and trainings repeat from several seeds (the model's
initial weights and the batches). Quick tier: digits_mlp (embedded data); standard:
fmnist_mlp (Fashion-MNIST, a Debian package); full: mnist_mlp, whose files must be on disk
(or ``--download``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

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
from optimlab.gallery.seeds import failing_seeds, log_range, mean_sd

RUNS = ("small", "suggested", "diverging")


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    import torch

    if budget.get("threads"):
        torch.set_num_threads(budget["threads"])  # the runner restores the count
    seeds = list(range(budget["seeds"]))
    per_seed = [one_seed(budget, context, seed) for seed in seeds]
    return Measured({"problem": budget["problem"], "seeds": seeds, "per_seed": per_seed})


def one_seed(budget: Mapping[str, Any], context: Context, seed: int) -> dict[str, Any]:
    """The range test from ``seed`` and the three trainings it suggests, from the same
    seed (the same initial model and batches as the test's)."""
    from optimlab import optim, problems
    from optimlab.run import RunConfig, build_run
    from optimlab.train.lr_find import lr_find

    problem = problems.build(budget["problem"], seed=seed, data_dir=context.data_dir,
                             download=context.download)  # fmt: skip
    opt = optim.create("momentum", problem.model.parameters(), momentum=0.9)
    batches = problem.loader("train", None, seed=seed)
    found = lr_find(problem.model, opt, problem.loss_fn, batches, min_lr=budget["min_lr"],
                    max_lr=budget["max_lr"], steps=budget["steps"])  # fmt: skip
    suggested = _finite(found.suggested_lr)
    numbers: dict[str, Any] = {
        "suggested_lr": suggested,
        "bounds": [_finite(b) for b in found.bounds],
        "stopped_early": found.stopped_early,
        "note": found.note,
        "test_lrs": found.lrs,
        "test_losses": [_finite(v) for v in found.losses],
        "test_smoothed": [_finite(v) for v in found.smoothed],
        "runs": {},
    }
    if suggested is None:
        return numbers
    rates = {"small": suggested / 100, "suggested": suggested, "diverging": found.lrs[-1]}
    for name, lr in rates.items():
        # The same model and batches as the test's (same problem, same seed).
        config = RunConfig(problem=budget["problem"], optimizer="momentum", lr=lr,
                           hp={"momentum": 0.9}, epochs=budget["epochs"], seed=seed,
                           threads=budget.get("threads"), data_dir=context.data_dir,
                           download=context.download)  # fmt: skip
        result = build_run(config).fit()
        numbers["runs"][name] = {
            "lr": lr,
            "status": result.status,
            "val_loss": _finite(result.final.get("val_loss")),
            "val_accuracy": _finite(result.final.get("val_accuracy")),
            "val_loss_per_epoch": [_finite(h.get("val_loss")) for h in result.history],
        }
    return numbers


def _nan(values: list[float | None]) -> list[float]:
    return [float("nan") if v is None else v for v in values]


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.viz import style

    n = measured.numbers
    fig = figures.figure(13.0, 4.6)
    ax_test, ax_runs = fig.subplots(1, 2)
    raw: list[float] = []
    early: list[float] = []
    for k, (seed, one) in enumerate(zip(n["seeds"], n["per_seed"], strict=True)):
        colour = style.PALETTE[k]
        smoothed = [v for v in one["test_smoothed"] if v is not None]
        raw += [v for v in one["test_losses"] if v is not None] + smoothed
        early += smoothed[: max(1, len(smoothed) // 2)]
        ax_test.plot(one["test_lrs"], _nan(one["test_smoothed"]), color=colour,
                     label=f"seed {seed}, smoothed loss")  # fmt: skip
        if one["suggested_lr"] is not None:
            ax_test.axvline(one["suggested_lr"], color=colour, linestyle="--", linewidth=0.8)
    for i, name in enumerate(RUNS):
        colour = style.PALETTE[len(n["seeds"]) + i]
        for k, one in enumerate(n["per_seed"]):
            run = one["runs"].get(name)
            if run is None:
                continue
            epochs = range(1, len(run["val_loss_per_epoch"]) + 1)
            ax_runs.plot(epochs, _nan(run["val_loss_per_epoch"]), marker="o", color=colour,
                         alpha=0.8, label=name if k == 0 else None)  # fmt: skip
    if raw:  # from the lowest loss to well above the start: the blow-up is cut off
        ax_test.set_ylim(min(raw) * 0.9, max(early) * 1.6)
    ax_test.set_xscale("log")
    ax_test.set_xlabel("learning rate (dashed: each seed's suggestion)")
    ax_test.set_ylabel("training loss")
    ax_test.set_title(f"range test on {n['problem']}, SGD + momentum 0.9")
    ax_test.legend(fontsize=8)
    ax_runs.set_xlabel("epoch")
    ax_runs.set_ylabel("validation loss")
    ax_runs.set_title("training at the suggestion, 100x less and the diverging rate")
    ax_runs.legend(fontsize=8)
    figures.whole_steps(ax_runs)
    for ax in (ax_test, ax_runs):
        ax.grid(True, alpha=0.3, linewidth=0.6)
    fig.suptitle(f"the learning-rate range test (Smith 2017), {len(n['seeds'])} seeds")
    return {"lr_range_test": fig}


def _loss(run: Mapping[str, Any]) -> float:
    """A run's final validation loss; one that blew up counts as worst."""
    value = run["val_loss"]
    return math.inf if value is None or run["status"] == "diverged" else value


def check(one: Mapping[str, Any]) -> list[str]:
    """What contradicts the claim in one seed's range test and trainings."""
    if one["suggested_lr"] is None:
        return [f"the range test made no suggestion: {one['note']}"]
    problems = []
    if not one["stopped_early"]:
        problems.append("the loss never diverged within the sweep, so no upper limit showed")
    runs = one["runs"]
    best = _loss(runs["suggested"])
    worse = [n for n in ("small", "diverging") if not _loss(runs[n]) > best]
    if worse or not math.isfinite(best):
        shown = ", ".join(f"{n} (lr {runs[n]['lr']:.3g}): {_loss(runs[n]):.3g}" for n in RUNS)
        problems.append(f"the suggested rate does not train best (validation loss {shown})")
    return problems


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when, in every seed, the test found a suggestion, the loss diverged
    before the end of the sweep, and training at the suggestion ends with a lower
    validation loss than at a hundred times less and than at the diverging rate (a run
    that blew up counts as worst)."""
    seeds, per_seed = numbers["seeds"], numbers["per_seed"]
    problems = failing_seeds(seeds, per_seed, check)
    if problems:
        return Verdict(NOT_REPRODUCED, "; ".join(problems) + ".")

    def rate(name: str) -> str:
        return log_range([one["runs"][name]["lr"] for one in per_seed], ".3g")

    def loss(name: str) -> str:
        values = [_loss(one["runs"][name]) for one in per_seed]
        blown = sum(not math.isfinite(v) for v in values)
        return f"blew up in {blown} of {len(values)} seeds" if blown else mean_sd(values)

    accuracy = mean_sd([one["runs"]["suggested"]["val_accuracy"] for one in per_seed])
    return Verdict(
        REPRODUCED,
        f"in each of {len(seeds)} seeds (geometric mean and range of the rates, mean ± sd "
        f"of the losses): the loss diverged near lr {rate('diverging')}; the suggested lr "
        f"{rate('suggested')} ends at validation loss {loss('suggested')} (accuracy "
        f"{accuracy}) against {loss('small')} at a hundred times less (too small: slow) and "
        f"{loss('diverging')} at the diverging rate (too big).",
    )


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Per rate, over the seeds: the rates, how many runs completed, mean ± sd of the
    final validation loss and accuracy (over the seeds where it is finite)."""
    per_seed = [one for one in numbers["per_seed"] if one["runs"]]
    rows = []
    for name in RUNS:
        runs = [one["runs"][name] for one in per_seed]
        done = sum(r["status"] == "completed" for r in runs)

        def finite(key: str, runs: list = runs) -> list[float]:
            return [r[key] for r in runs if r[key] is not None]

        rows.append([name, log_range([r["lr"] for r in runs], ".3g"), f"{done}/{len(runs)}",
                     mean_sd(finite("val_loss")), mean_sd(finite("val_accuracy"))])  # fmt: skip
    return ["rate", "lr (geometric mean, range)", "completed", "val loss", "val accuracy"], rows


_BUDGET = {"min_lr": 1e-5, "max_lr": 10.0, "seeds": 3}
ENTRY = Entry(
    name="lr_range_test",
    title="The learning-rate range test",
    deck=deck("000"),
    slide="Learning Rate; SGD with Learning Rate Schedule: New problems.... new ideas!",
    claim="Choosing a proper learning rate is difficult: too small a rate makes slow "
    "progress, too big a one makes the loss blow up. A short run whose rate grows every step "
    "(Smith's range test, used to set cyclical bounds) shows where the rates that train lie.",
    tier="quick",
    version=3,
    budgets={
        "quick": {"problem": "digits_mlp", "steps": 200, "epochs": 3, "threads": 1, **_BUDGET},
        "standard": {"problem": "fmnist_mlp", "steps": 300, "epochs": 1, **_BUDGET},
        "full": {"problem": "mnist_mlp", "steps": 400, "epochs": 3, **_BUDGET},
    },
    compute=compute,
    draw=draw,
    rule=rule,
    requires=problem_data,
    table=table,
    reference="Smith, Cyclical Learning Rates, WACV 2017, sec. 3.3",
)
