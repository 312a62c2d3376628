"""Vanishing gradients in a deep MLP on digits: the activations, and three cures.

A 20-layer, width-64 MLP (the registered ``deep_mlp``, trained on ``digits_mlp``'s data
through the run settings ``model`` and ``model_args``) trains on scikit-learn's digits
with SGD + momentum for a short budget, over several seeds, in nine configurations:
sigmoid, tanh, ReLU, leaky ReLU and ELU units, each with the initialization made for it
(Glorot for the saturating units, He for the rectifiers); the first cure, the
initialization, against tanh and ReLU nets drawn from N(0, 0.01^2) (Krizhevsky et al.'s
Gaussian); and the sigmoid net with the other two cures, batch norm and residual
connections (``x + layer(x)`` around the hidden layers after the first). Measured, per
configuration and seed: the norm of dL/dW for every Linear layer on a fixed batch of 256
training examples, at initialization and after training (their first-to-last ratio is
the vanishing factor), each layer's relative weight change ``||W_end - W_0|| / ||W_0||``
over training, and the validation accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from optimlab.gallery import figures
from optimlab.gallery.decks import deck
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED, Context, Entry, Measured, Verdict
from optimlab.gallery.seeds import cell, failing_seeds, log_range, mean_sd

# label -> (activation, norm, init, residual)
CONFIGS = {
    "sigmoid": ("sigmoid", None, "glorot_normal", False),
    "tanh": ("tanh", None, "glorot_normal", False),
    "relu": ("relu", None, "he_normal", False),
    "leaky relu": ("leaky_relu", None, "he_normal", False),
    "elu": ("elu", None, "he_normal", False),
    "tanh, N(0, 0.01) init": ("tanh", None, "normal_0.01", False),
    "relu, N(0, 0.01) init": ("relu", None, "normal_0.01", False),
    "sigmoid + batch norm": ("sigmoid", "batch", "glorot_normal", False),
    "sigmoid + residual": ("sigmoid", None, "glorot_normal", True),
}
#: The units that do not saturate, whose gradient must not vanish next to sigmoid's.
NONSATURATING = ("tanh", "relu", "leaky relu", "elu")
#: The initialization cure, pairs of a net with its matched init and the same net from N(0, 0.01).
INIT_PAIRS = (("tanh", "tanh, N(0, 0.01) init"), ("relu", "relu, N(0, 0.01) init"))
#: The architectural cures of the sigmoid net.
CURES = ("sigmoid + batch norm", "sigmoid + residual")
VANISHED = 1e-3  # a first-to-last gradient ratio below this has vanished
FACTOR = 100.0  # "far larger": the margin every comparison of the rule asks for
PROBE = 256


def _finite(values: list[float]) -> list[float] | None:
    return values if all(np.isfinite(values)) else None


def _grad_norms(model: Any, loss_fn: Any, x: Any, y: Any) -> list[float]:
    import torch

    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    model.zero_grad()
    loss_fn(model(x), y).backward()
    return [float(m.weight.grad.norm()) for m in linears]


def model_args(label: str, budget: Mapping[str, Any]) -> dict[str, Any]:
    """The registered ``deep_mlp``'s arguments for one configuration on digits."""
    activation, norm, init, residual = CONFIGS[label]
    args = {"in_features": 64, "out_features": 10, "depth": budget["depth"],
            "width": budget["width"], "activation": activation, "init": init}  # fmt: skip
    if norm is not None:
        args["norm"] = norm
    if residual:
        args["residual"] = True
    return args


def run_config(label: str, budget: Mapping[str, Any], context: Context, seed: int) -> dict:
    """Train one configuration from one seed (a run of the registered ``deep_mlp`` on
    ``digits_mlp``'s data, built by :func:`optimlab.run.build_run`, checkpointed in the
    entry's work folder); its numbers (None for what overflowed)."""
    import torch

    from optimlab.run import RunConfig, build_run

    config = RunConfig(problem="digits_mlp", model="deep_mlp",
                       model_args=model_args(label, budget), optimizer="momentum",
                       lr=budget["lr"], hp={"momentum": 0.9}, epochs=budget["epochs"],
                       seed=seed,
                       out=context.run_folder(budget=dict(budget), label=label,
                                              seed=seed))  # fmt: skip
    # Measured on the fresh model: a resumed run loads its checkpoint only in fit().
    run = build_run(config)
    model, problem = run.problem.model, run.problem
    x, y = problem.splits.train.x[:PROBE], problem.splits.train.y[:PROBE]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    start = [m.weight.detach().clone() for m in linears]
    at_init = _grad_norms(model, problem.loss_fn, x, y)
    result = run.fit()
    change = [float((m.weight.detach() - w).norm() / w.norm()) for m, w in zip(linears, start,
              strict=True)]  # fmt: skip
    at_end = _grad_norms(model, problem.loss_fn, x, y)
    init_ok, end_ok = _finite(at_init), _finite(at_end)
    accuracy = result.final.get("val_accuracy")
    return {
        "status": result.status,
        "grad_norms_init": init_ok,
        "grad_norms_end": end_ok,
        "ratio_init": init_ok[0] / init_ok[-1] if init_ok and init_ok[-1] > 0 else None,
        "ratio_end": end_ok[0] / end_ok[-1] if end_ok and end_ok[-1] > 0 else None,
        "weight_change": _finite(change),
        "val_accuracy": float(accuracy) if accuracy is not None and np.isfinite(accuracy) else None,
    }


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    seeds = list(range(budget["seeds"]))
    runs = {label: [run_config(label, budget, context, s) for s in seeds] for label in CONFIGS}
    return Measured({"depth": budget["depth"], "seeds": seeds, "runs": runs})


def _layer_mean(rows: list[list[float] | None]) -> np.ndarray | None:
    """The geometric mean over seeds of a per-layer quantity (floor 1e-30, so a layer
    whose gradient underflowed to 0 still shows); None when a seed overflowed."""
    if not rows or any(r is None for r in rows):
        return None
    return np.exp(np.log(np.maximum(np.asarray(rows, dtype=float), 1e-30)).mean(axis=0))


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.viz import style

    n = measured.numbers
    fig = figures.figure(13.0, 5.0)
    ax_grad, ax_change = fig.subplots(1, 2)
    for i, (label, runs) in enumerate(n["runs"].items()):
        dash = ":" if "N(0" in label else "-"
        colour = style.PALETTE[i]
        grads = _layer_mean([r["grad_norms_init"] for r in runs])
        if grads is not None:
            ax_grad.plot(np.arange(1, len(grads) + 1), grads, dash, color=colour, label=label)
        change = _layer_mean([r["weight_change"] for r in runs])
        if change is not None:
            ax_change.plot(np.arange(1, len(change) + 1), np.maximum(change, 1e-12), dash,
                           marker=".", color=colour, label=label)  # fmt: skip
    ax_grad.set_yscale("log")
    ax_grad.set_xlabel("layer (1 = next to the input)")
    ax_grad.set_ylabel("||dL/dW|| at initialization (floor 1e-30)")
    ax_grad.set_title("gradient norm per layer at initialization")
    ax_grad.legend(fontsize=7, ncol=2)
    ax_change.set_yscale("log")
    ax_change.set_xlabel("layer (1 = next to the input)")
    ax_change.set_ylabel("||W_end - W_0|| / ||W_0|| (floor 1e-12)")
    ax_change.set_title("how much training moved each layer (overflowed runs left out)")
    ax_change.legend(fontsize=7, ncol=2)
    figures.whole_steps(ax_grad, ax_change)
    for ax in (ax_grad, ax_change):
        ax.grid(True, alpha=0.3, linewidth=0.6)
    fig.suptitle(f"vanishing gradients: a {n['depth']}-layer MLP on digits, SGD + momentum; "
                 f"geometric means over {len(n['seeds'])} seeds")  # fmt: skip
    return {"vanishing_gradients": fig}


def _fmt(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.2g}"


def _first(r: Mapping[str, Any], key: str) -> float | None:
    return r[key][0] if r[key] else None


def check(one: Mapping[str, Any]) -> list[str]:
    """What contradicts the claim in one seed's runs (``label -> numbers``)."""
    # a run that diverged has no end-of-training numbers: say so first, so that the
    # comparisons below that lack them read as a consequence, not a mystery
    problems = [f"the {label} net {r['status']}" for label, r in one.items()
                if r["status"] != "completed"]  # fmt: skip
    sig = one["sigmoid"]
    s0 = sig["ratio_init"]
    others = {k: one[k]["ratio_init"] for k in NONSATURATING}
    if s0 is None or not (s0 < VANISHED and all(o is not None and o > FACTOR * s0
                                                 for o in others.values())):  # fmt: skip
        listing = ", ".join(f"{k} {_fmt(v)}" for k, v in others.items())
        problems.append(
            f"the sigmoid net's gradient ratio at initialization ({_fmt(s0)}) does not vanish "
            f"next to the nonsaturating units' ({listing})"
        )

    def moved(r: Mapping[str, Any]) -> tuple[float, float] | None:
        return (r["weight_change"][0], r["weight_change"][-1]) if r["weight_change"] else None

    sig_moved, relu_moved = moved(sig), moved(one["relu"])
    if sig_moved is None or not sig_moved[0] < sig_moved[1] / 1000:
        problems.append(f"training moved the sigmoid net's first layer (first, last: {sig_moved})")
    if relu_moved is None or not relu_moved[0] >= relu_moved[1] / 10:
        problems.append(f"training hardly moved the ReLU net's first layer ({relu_moved})")
    for matched, naive in INIT_PAIRS:
        g_m, g_n = _first(one[matched], "grad_norms_init"), _first(one[naive], "grad_norms_init")
        w_m, w_n = _first(one[matched], "weight_change"), _first(one[naive], "weight_change")
        if g_m is None or g_n is None or not g_m > FACTOR * g_n:
            problems.append(f"the {matched} net's initialization does not lift the first "
                            f"layer's gradient ({_fmt(g_m)} against {_fmt(g_n)} from "
                            f"N(0, 0.01))")  # fmt: skip
        if w_m is None or w_n is None or not w_m > FACTOR * w_n:
            problems.append(f"the {matched} net's initialization does not let training move "
                            f"the first layer more ({_fmt(w_m)} against {_fmt(w_n)} from "
                            f"N(0, 0.01))")  # fmt: skip
    for cure in CURES:
        c0, acc, acc_sig = one[cure]["ratio_init"], one[cure]["val_accuracy"], sig["val_accuracy"]
        if c0 is None or s0 is None or not c0 > FACTOR * s0:
            problems.append(f"{cure} does not lift the sigmoid net's ratio ({_fmt(c0)})")
        if acc is None or acc_sig is None or not acc > acc_sig:
            problems.append(f"{cure} does not train the sigmoid net better (accuracy {acc} "
                            f"against {acc_sig})")  # fmt: skip
    return problems


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Judged seed by seed, reproduced only when it holds in every seed: at
    initialization the sigmoid net's first-to-last gradient ratio is below 1e-3 and 100
    times below that of tanh, ReLU, leaky ReLU and ELU; training leaves its first layer
    virtually unchanged (a relative change 1000 times below its last layer's) while the
    ReLU net's first layer moves at least a tenth as much as its last; the matched
    initialization (Glorot for tanh, He for ReLU) gives the first layer a gradient and a
    weight change 100 times those of the same net drawn from N(0, 0.01); and batch norm
    and residual connections each lift the sigmoid net's ratio 100-fold and its
    validation accuracy above the plain sigmoid net's."""
    seeds, runs = numbers["seeds"], numbers["runs"]
    per_seed = [{label: runs[label][i] for label in runs} for i in range(len(seeds))]
    problems = failing_seeds(seeds, per_seed, check)
    if problems:
        return Verdict(NOT_REPRODUCED, "; ".join(problems) + ".")

    def ratio(label: str) -> str:
        return log_range([r["ratio_init"] for r in runs[label]])

    def first(label: str, key: str) -> str:
        return log_range([_first(r, key) for r in runs[label]])

    def acc(label: str) -> str:
        return mean_sd([r["val_accuracy"] for r in runs[label]])

    units = ", ".join(f"{k} {ratio(k)}" for k in NONSATURATING)
    inits = "; ".join(
        f"{m} {first(m, 'grad_norms_init')} against {first(n, 'grad_norms_init')} from "
        f"N(0, 0.01), first-layer weight change {first(m, 'weight_change')} against "
        f"{first(n, 'weight_change')}" for m, n in INIT_PAIRS
    )  # fmt: skip
    cures = "; ".join(f"{c}: ratio {ratio(c)}, accuracy {acc(c)}" for c in CURES)
    return Verdict(
        REPRODUCED,
        f"in each of {len(seeds)} seeds (geometric mean and range, or mean ± sd): at "
        f"initialization ||dL/dW_1|| / ||dL/dW_last|| is {ratio('sigmoid')} with sigmoid "
        f"units against {units}; training moves the sigmoid net's first layer by "
        f"{first('sigmoid', 'weight_change')} of its norm. The cures: the matched "
        f"initialization gives the first layer a gradient of {inits}; on the sigmoid net "
        f"(accuracy {acc('sigmoid')}) {cures}.",
    )


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = []
    for label, runs in numbers["runs"].items():
        rows.append([label, cell([r["ratio_init"] for r in runs], log_range),
                     cell([_first(r, "grad_norms_init") for r in runs], log_range),
                     cell([_first(r, "weight_change") for r in runs], log_range),
                     cell([r["val_accuracy"] for r in runs], mean_sd)])  # fmt: skip
    headers = ["units", "gradient ratio first / last, init", "||dL/dW_1||, init",
               "first layer's weight change", "val accuracy"]  # fmt: skip
    return headers, rows


_BUDGET = {"depth": 20, "width": 64, "lr": 0.05}
ENTRY = Entry(
    name="vanishing_gradients",
    title="Vanishing gradients: the activations, and initialization, batch norm and residuals",
    deck=deck("004"),
    slide="Vanishing/Exploding Gradients Problem (1/4); Overcoming the Vanishing Gradient",
    claim="Gradients often get smaller and smaller as backpropagation goes down to the lower "
    "layers (each sigmoid layer multiplies them by at most 1/4 times its weight), so gradient "
    "descent leaves the lower layers' weights virtually unchanged. Parameter initialization "
    "(Glorot for sigmoid and tanh, He for ReLU), nonsaturating activations and batch "
    'normalization overcome it; so do skip connections (lecture 000, slide "Fighting '
    'against Vanishing Gradient").',
    tier="quick",
    version=3,
    budgets={
        "quick": {"epochs": 2, "seeds": 3, **_BUDGET},
        "standard": {"epochs": 5, "seeds": 5, **_BUDGET},
        "full": {"epochs": 20, "seeds": 5, **_BUDGET},
    },
    compute=compute,
    draw=draw,
    rule=rule,
    threads=1,
    table=table,
    reference="examples/vanishing_gradients.py; Glorot & Bengio 2010; He et al. 2015; "
    "Ioffe & Szegedy 2015; He et al. 2016",
)
