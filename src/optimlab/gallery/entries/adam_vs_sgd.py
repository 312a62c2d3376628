"""Adam against SGD with a tuned learning rate and momentum, by the lab's protocol.

A small study (:func:`optimlab.lab.runner.run_study`): random search, ``trials`` draws
per contender, then the best draw by final validation accuracy rerun with ``seeds``
seeds. SGD with momentum (torch form) searches the rate log-uniformly in [1e-3, 1] and
the momentum uniformly in [0.5, 0.99]; Adam searches its rate log-uniformly in
[1e-4, 1e-1] (betas at their defaults). Every trial is a lab run, built by the run
builder, that checkpoints in the study's folder (the entry's work folder in a gallery
run, so a killed gallery resumes the study). The lab's verdict (:mod:`optimlab.lab.report.verdict`:
the gap of the two means against the larger seed standard deviation) decides whether
the two are separated; the test accuracy and the training loss of the final runs are
reported beside it.
"""

from __future__ import annotations

import json
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

SGD, ADAM = "sgd-momentum", "adam"
CONTENDERS = (SGD, ADAM)


def study_text(budget: Mapping[str, Any], data_dir: str | None = None) -> str:
    """The study file the entry runs (TOML, as ``optimlab study run`` reads it)."""
    run = "" if data_dir is None else f"\n[run]\ndata_dir = {json.dumps(data_dir)}\n"
    return f"""
name = "adam-vs-tuned-sgd"
problems = ["{budget["problem"]}"]
seeds = {budget["seeds"]}
threads = {budget.get("threads") or 1}

[budget]
epochs = {budget["epochs"]}

[protocol]
kind = "random"
trials = {budget["trials"]}

[[optimizers]]
name = "momentum"
label = "{SGD}"
search = {{ lr = {{ log_uniform = [1e-3, 1.0] }}, momentum = {{ uniform = [0.5, 0.99] }} }}

[[optimizers]]
name = "adam"
label = "{ADAM}"
search = {{ lr = {{ log_uniform = [1e-4, 1e-1] }} }}
{run}"""


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def summarize(records: list[dict[str, Any]], verdict: Any, stats: list[Any]) -> dict[str, Any]:
    """The entry's numbers from the study's records and the lab's verdict."""
    contenders = {}
    for label in CONTENDERS:
        finals = [r for r in records if r["phase"] == "final" and r["label"] == label]
        finals.sort(key=lambda r: r["seed"])
        stat = next((s for s in stats if s.label == label), None)
        curves = [r.get("history") or [] for r in finals]
        contenders[label] = {
            "params": {k: float(v) for k, v in (finals[0]["params"] if finals else {}).items()},
            "trials": sum(r["phase"] != "final" and r["label"] == label for r in records),
            "val_accuracy": [float(v) for v in stat.values] if stat else [],
            "diverged": stat.diverged if stat else len(finals),
            "test_accuracy": [
                _finite(c[-1].get("test_accuracy")) if c else None for c in curves
            ],  # fmt: skip
            "train_loss": [[_finite(h.get("loss")) for h in c] for c in curves],
            "test_curve": [[_finite(h.get("test_accuracy")) for h in c] for c in curves],
        }
    lab = {
        "best": verdict.best,
        "runner_up": verdict.runner_up,
        "gap": _finite(verdict.gap),
        "spread": _finite(verdict.spread),
        "separated": verdict.separated,
        "welch_t": _finite(verdict.welch.t) if verdict.welch is not None else None,
        "sentences": [s for s in verdict.sentences if s],
    }
    return {"metric": verdict.metric.key, "lab": lab, "contenders": contenders}


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    import tempfile

    from optimlab.lab.report import analyse_records, verdicts
    from optimlab.lab.runner import metric_for, run_study
    from optimlab.lab.spec import parse_study
    from optimlab.lab.store import open_study

    text = study_text(budget, context.data_dir)
    spec = parse_study(text, source="adam_vs_sgd")
    with tempfile.TemporaryDirectory(prefix="adam-vs-sgd-") as scratch:
        folder = context.study_folder(text, scratch)  # a killed gallery resumes the study
        run_study(spec, folder, report=False, quiet=True)
        records = list(open_study(folder).records())
    metric, mode = metric_for(spec, budget["problem"])
    study = {"name": spec.name, "metric": metric, "mode": mode, "protocol": spec.protocol,
             "seeds": spec.seeds, "epochs": budget["epochs"], "targets": spec.targets,
             "schedules": {}}  # fmt: skip
    analysis = analyse_records(records, study)
    problem = analysis.problems[0]
    numbers = summarize(records, verdicts(analysis)[0], problem.stats)
    numbers.update(problem=budget["problem"], epochs=budget["epochs"],
                   trials=budget["trials"], seeds=budget["seeds"])  # fmt: skip
    return Measured(numbers)


def _mean_curve(curves: list[list[float | None]]) -> np.ndarray:
    if not curves:
        return np.array([])
    n = max(len(c) for c in curves)
    rows = np.array([[np.nan if v is None else v for v in c] + [np.nan] * (n - len(c))
                     for c in curves])  # fmt: skip
    return np.nanmean(rows, axis=0) if rows.size else np.array([])


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.viz import style

    n = measured.numbers
    fig = figures.figure(11.0, 4.4)
    ax_acc, ax_loss = fig.subplots(1, 2)
    for i, label in enumerate(CONTENDERS):
        c = n["contenders"][label]
        hp = ", ".join(f"{k} {v:.3g}" for k, v in c["params"].items())
        colour = style.PALETTE[i]
        for curve in c["test_curve"]:
            values = [np.nan if v is None else v for v in curve]
            ax_acc.plot(np.arange(1, len(values) + 1), values, color=colour, alpha=0.35,
                        linewidth=0.8)  # fmt: skip
        acc = _mean_curve(c["test_curve"])
        ax_acc.plot(np.arange(1, len(acc) + 1), acc, color=colour, linewidth=2,
                    label=f"{label} ({hp})")  # fmt: skip
        loss = _mean_curve(c["train_loss"])
        ax_loss.plot(np.arange(1, len(loss) + 1), loss, color=colour, linewidth=2,
                     label=label)  # fmt: skip
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("test accuracy (thin: each seed; thick: mean)")
    ax_acc.legend(fontsize=8, loc="lower right")
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss, mean over seeds")
    ax_loss.legend(fontsize=8)
    for ax in (ax_acc, ax_loss):
        ax.grid(True, alpha=0.3, linewidth=0.6)
    fig.suptitle(f"{n['problem']}: each tuned by random search ({n['trials']} trials), "
                 f"then {n['seeds']} seeds of {n['epochs']} epochs")  # fmt: skip
    return {"adam_vs_sgd": fig}


def _mean(values: list[float | None]) -> str:
    finite = [v for v in values if v is not None]
    return f"{np.mean(finite):.4f}" if finite else "-"


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Tuned SGD is competitive with Adam when the lab ranks it first, or ranks Adam first
    by a gap within the seed spread (not separated): reproduced. Not reproduced when Adam
    is ahead by more than the seed spread, or when the lab cannot compare the two."""
    lab = numbers["lab"]
    tests = ", ".join(f"{label} {_mean(numbers['contenders'][label]['test_accuracy'])}"
                      for label in CONTENDERS)  # fmt: skip
    said = " ".join(lab["sentences"][:2])
    tail = f" Mean test accuracy: {tests}."
    if lab["best"] is None or lab["runner_up"] is None or lab["separated"] is None:
        return Verdict(NOT_REPRODUCED, f"the lab cannot compare the two: {said}{tail}")
    if lab["best"] == SGD:
        return Verdict(REPRODUCED, f"tuned SGD with momentum ranks first: {said}{tail}")
    if not lab["separated"]:
        return Verdict(REPRODUCED, f"Adam is ahead by less than the seed spread: {said}{tail}")
    return Verdict(NOT_REPRODUCED, f"Adam is ahead by more than the seed spread: {said}{tail}")


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = []
    for label in CONTENDERS:
        c = numbers["contenders"][label]
        val = c["val_accuracy"]
        spread = f" ± {np.std(val, ddof=1):.4f}" if len(val) > 1 else ""
        rows.append([label, ", ".join(f"{k} {v:.3g}" for k, v in c["params"].items()),
                     f"{np.mean(val):.4f}{spread}" if val else "-", _mean(c["test_accuracy"]),
                     str(c["diverged"])])  # fmt: skip
    metric = numbers["metric"]
    return ["contender", "tuned setting", f"final {metric} (mean ± sd)",
            "mean test accuracy", "diverged finals"], rows  # fmt: skip


ENTRY = Entry(
    name="adam_vs_sgd",
    title="Adam against tuned SGD with momentum",
    deck=deck("003"),
    slide="Adam vs. Tuned SGD",
    claim="SGD with tuned learning rate and momentum is competitive with Adam (Zhang et "
    "al. 2017b): tuned with the same protocol and budget, Adam does not beat it by more "
    "than the spread over seeds.",
    tier="standard",
    version=1,
    budgets={
        "standard": {"problem": "digits_mlp", "epochs": 15, "trials": 12, "seeds": 5, "threads": 1},
        "full": {"problem": "fmnist_mlp", "epochs": 10, "trials": 16, "seeds": 5, "threads": None},
    },  # fmt: skip
    compute=compute,
    draw=draw,
    rule=rule,
    requires=problem_data,
    threads=1,
    table=table,
    reference="Zhang, Mitliagkas & Ré, YellowFin and the art of momentum tuning, 2017; "
    "Wilson et al., The marginal value of adaptive gradient methods, NeurIPS 2017",
)
