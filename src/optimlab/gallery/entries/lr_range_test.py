"""The learning-rate range test, and what its suggestion is worth in training.

Smith's range test (:func:`optimlab.train.lr_find.lr_find`) sweeps the rate of SGD +
momentum 0.9 geometrically over a few hundred mini-batches and suggests the rate at the
steepest descent of the smoothed loss. The same model (same seed) is then trained for a
few epochs at three rates: the suggestion, a hundred times less, and the rate at which
the test saw the loss diverge. Quick tier: digits_mlp (embedded data); standard and full:
mnist_mlp, whose files must be on disk (or ``--download``).
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

RUNS = ("small", "suggested", "diverging")


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    import torch

    from optimlab import optim, problems
    from optimlab.run import RunConfig, build_run
    from optimlab.train.lr_find import lr_find

    if budget.get("threads"):
        torch.set_num_threads(budget["threads"])  # the runner restores the count

    problem = problems.build(budget["problem"], seed=budget["seed"], data_dir=context.data_dir,
                             download=context.download)  # fmt: skip
    opt = optim.create("momentum", problem.model.parameters(), momentum=0.9)
    batches = problem.loader("train", None, seed=budget["seed"])
    found = lr_find(problem.model, opt, problem.loss_fn, batches, min_lr=budget["min_lr"],
                    max_lr=budget["max_lr"], steps=budget["steps"])  # fmt: skip
    suggested = _finite(found.suggested_lr)
    numbers: dict[str, Any] = {
        "problem": budget["problem"],
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
        return Measured(numbers)
    rates = {"small": suggested / 100, "suggested": suggested, "diverging": found.lrs[-1]}
    for name, lr in rates.items():
        # The same model and batches as the test's (same problem, same seed).
        config = RunConfig(problem=budget["problem"], optimizer="momentum", lr=lr,
                           hp={"momentum": 0.9}, epochs=budget["epochs"], seed=budget["seed"],
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
    return Measured(numbers)


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.viz import style

    n = measured.numbers
    fig = figures.figure(13.0, 4.6)
    ax_test, ax_runs = fig.subplots(1, 2)
    lrs = n["test_lrs"]
    ax_test.plot(lrs, [float("nan") if v is None else v for v in n["test_losses"]],
                 color=style.PALETTE[0], alpha=0.3, label="loss")  # fmt: skip
    ax_test.plot(lrs, [float("nan") if v is None else v for v in n["test_smoothed"]],
                 color=style.PALETTE[0], label="smoothed loss")  # fmt: skip
    for i, (name, run) in enumerate(n["runs"].items()):
        ax_test.axvline(run["lr"], color=style.PALETTE[i + 1], linestyle="--",
                        label=f"{name}: lr {run['lr']:.3g}")  # fmt: skip
        epochs = range(1, len(run["val_loss_per_epoch"]) + 1)
        losses = [float("nan") if v is None else v for v in run["val_loss_per_epoch"]]
        ax_runs.plot(epochs, losses, marker="o", color=style.PALETTE[i + 1],
                     label=f"{name} (lr {run['lr']:.3g}): {run['status']}")  # fmt: skip
    smoothed = [v for v in n["test_smoothed"] if v is not None]
    raw = [v for v in n["test_losses"] if v is not None]
    if smoothed:  # from the lowest loss to well above the start: the blow-up is cut off
        ax_test.set_ylim(
            min(raw + smoothed) * 0.9, max(smoothed[: max(1, len(smoothed) // 2)]) * 1.6
        )
    ax_test.set_xscale("log")
    ax_test.set_xlabel("learning rate")
    ax_test.set_ylabel("training loss")
    ax_test.set_title(f"range test on {n['problem']}, SGD + momentum 0.9")
    ax_test.legend(fontsize=8)
    ax_runs.set_xlabel("epoch")
    ax_runs.set_ylabel("validation loss")
    ax_runs.set_title("training at the three rates (same seed)")
    ax_runs.legend(fontsize=8)
    for ax in (ax_test, ax_runs):
        ax.grid(True, alpha=0.3, linewidth=0.6)
    fig.suptitle("the learning-rate range test (Smith 2017)")
    return {"lr_range_test": fig}


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when the test found a suggestion, the loss diverged before the end of
    the sweep, and training at the suggestion ends with a lower validation loss than at a
    hundred times less and than at the diverging rate (a run that blew up counts as
    worst)."""
    if numbers["suggested_lr"] is None:
        return Verdict(NOT_REPRODUCED, f"the range test made no suggestion: {numbers['note']}")
    problems = []
    if not numbers["stopped_early"]:
        problems.append("the loss never diverged within the sweep, so no upper limit showed")
    runs = numbers["runs"]

    def loss(name: str) -> float:
        value = runs[name]["val_loss"]
        return math.inf if value is None or runs[name]["status"] == "diverged" else value

    best = loss("suggested")
    worse = [n for n in ("small", "diverging") if not loss(n) > best]
    if worse or not math.isfinite(best):
        shown = ", ".join(f"{n} (lr {runs[n]['lr']:.3g}): {loss(n):.3g}" for n in RUNS)
        problems.append(f"the suggested rate does not train best (validation loss {shown})")
    if problems:
        return Verdict(NOT_REPRODUCED, "; ".join(problems) + ".")
    s, d, m = runs["small"], runs["diverging"], runs["suggested"]
    return Verdict(
        REPRODUCED,
        f"the loss diverged near lr {d['lr']:.3g}; the suggested lr {m['lr']:.3g} ends at "
        f"validation loss {m['val_loss']:.3g} (accuracy {m['val_accuracy']:.3f}) against "
        f"{loss('small'):.3g} at lr {s['lr']:.3g} (too small: slow) and {loss('diverging'):.3g} "
        f"at lr {d['lr']:.3g} (too big).",
    )


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    def f(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    rows = [
        [name, f"{r['lr']:.3g}", r["status"], f(r["val_loss"], ".3g"), f(r["val_accuracy"], ".3f")]
        for name, r in numbers["runs"].items()
    ]
    return ["rate", "lr", "status", "val loss", "val accuracy"], rows


_BUDGET = {"min_lr": 1e-5, "max_lr": 10.0, "seed": 0}
ENTRY = Entry(
    name="lr_range_test",
    title="The learning-rate range test",
    deck=deck("000"),
    slide="Learning Rate; SGD with Learning Rate Schedule: New problems.... new ideas!",
    claim="Choosing a proper learning rate is difficult: too small a rate makes slow "
    "progress, too big a one makes the loss blow up. A short run whose rate grows every step "
    "(Smith's range test, used to set cyclical bounds) shows where the rates that train lie.",
    tier="quick",
    version=1,
    budgets={
        "quick": {"problem": "digits_mlp", "steps": 200, "epochs": 3, "threads": 1, **_BUDGET},
        "standard": {"problem": "mnist_mlp", "steps": 300, "epochs": 1, **_BUDGET},
        "full": {"problem": "mnist_mlp", "steps": 400, "epochs": 3, **_BUDGET},
    },
    compute=compute,
    draw=draw,
    rule=rule,
    requires=problem_data,
    table=table,
    reference="Smith, Cyclical Learning Rates, WACV 2017, sec. 3.3",
)
