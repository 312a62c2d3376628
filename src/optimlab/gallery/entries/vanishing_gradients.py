"""Vanishing gradients in a deep MLP on digits: sigmoid, tanh, ReLU, and batch norm.

A 20-layer, width-64 MLP (the registered ``deep_mlp``, trained on ``digits_mlp``'s data
through the run settings ``model`` and ``model_args``) with sigmoid, tanh and ReLU
units (Glorot, Glorot and He initialization) and with sigmoid units behind batch norm is
trained on scikit-learn's digits with SGD + momentum for a short budget. Measured, per
configuration: the norm of dL/dW for every Linear layer on a fixed batch of 256 training
examples, at initialization and after training (their first-to-last ratio is the
vanishing factor), each layer's relative weight change ``||W_end - W_0|| / ||W_0||`` over
training, and the validation accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from optimlab.gallery import figures
from optimlab.gallery.decks import deck
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED, Context, Entry, Measured, Verdict

# label -> (activation, norm, init)
CONFIGS = {
    "sigmoid": ("sigmoid", None, "glorot_normal"),
    "tanh": ("tanh", None, "glorot_normal"),
    "relu": ("relu", None, "he_normal"),
    "sigmoid + batch norm": ("sigmoid", "batch", "glorot_normal"),
}
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
    activation, norm, init = CONFIGS[label]
    args = {"in_features": 64, "out_features": 10, "depth": budget["depth"],
            "width": budget["width"], "activation": activation, "init": init}  # fmt: skip
    if norm is not None:
        args["norm"] = norm
    return args


def run_config(label: str, budget: Mapping[str, Any], context: Context) -> dict[str, Any]:
    """Train one configuration (a run of the registered ``deep_mlp`` on ``digits_mlp``'s
    data, built by :func:`optimlab.run.build_run`, checkpointed in the entry's work
    folder); its numbers (None for what overflowed)."""
    import torch

    from optimlab.run import RunConfig, build_run

    config = RunConfig(problem="digits_mlp", model="deep_mlp",
                       model_args=model_args(label, budget), optimizer="momentum",
                       lr=budget["lr"], hp={"momentum": 0.9}, epochs=budget["epochs"],
                       seed=budget["seed"],
                       out=context.run_folder(budget=dict(budget), label=label))  # fmt: skip
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
    numbers = {label: run_config(label, budget, context) for label in CONFIGS}
    return Measured(numbers)


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.viz import style

    n = measured.numbers
    fig = figures.figure(13.0, 4.6)
    ax_grad, ax_change = fig.subplots(1, 2)
    for i, (label, r) in enumerate(n.items()):
        colour = style.PALETTE[i]
        for key, dash, when in (("grad_norms_init", "-", "init"), ("grad_norms_end", "--", "end")):
            if r[key]:
                layers = np.arange(1, len(r[key]) + 1)
                ax_grad.plot(layers, r[key], dash, color=colour, label=f"{label}, {when}")
        if r["weight_change"]:
            layers = np.arange(1, len(r["weight_change"]) + 1)
            ax_change.plot(layers, np.maximum(r["weight_change"], 1e-12), marker=".",
                           color=colour, label=label)  # fmt: skip
    ax_grad.set_yscale("log")
    ax_grad.set_xlabel("layer (1 = next to the input)")
    ax_grad.set_ylabel("||dL/dW||")
    ax_grad.set_title("gradient norm per layer, at initialization and after training")
    ax_grad.legend(fontsize=7, ncol=2)
    ax_change.set_yscale("log")
    ax_change.set_xlabel("layer (1 = next to the input)")
    ax_change.set_ylabel("||W_end - W_0|| / ||W_0|| (floor 1e-12)")
    ax_change.set_title("how much training moved each layer")
    ax_change.legend(fontsize=8)
    for ax in (ax_grad, ax_change):
        ax.grid(True, alpha=0.3, linewidth=0.6)
    fig.suptitle("vanishing gradients: a 20-layer MLP on digits, SGD + momentum")
    return {"vanishing_gradients": fig}


def _fmt(value: float | None) -> str:
    return "overflowed" if value is None else f"{value:.2g}"


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when, at initialization, the sigmoid net's first-to-last gradient ratio
    is below 1e-3 and 100 times below tanh's and ReLU's; training leaves its first layer
    virtually unchanged (a relative change 1000 times below its last layer's) while the
    ReLU net's first layer moves at least a tenth as much as its last; and batch norm
    lifts the sigmoid net's ratio 100-fold and its validation accuracy above the plain
    sigmoid net's."""
    sig, tanh, relu, bn = (numbers[k] for k in CONFIGS)
    problems = []
    s0 = sig["ratio_init"]
    others = {"tanh": tanh["ratio_init"], "relu": relu["ratio_init"]}
    if s0 is None or not (s0 < VANISHED and all(o is not None and o > FACTOR * s0
                                                 for o in others.values())):  # fmt: skip
        problems.append(
            f"the sigmoid net's gradient ratio at initialization ({_fmt(s0)}) does not vanish "
            f"next to tanh's ({_fmt(others['tanh'])}) and ReLU's ({_fmt(others['relu'])})"
        )

    def moved(r: Mapping[str, Any]) -> tuple[float, float] | None:
        return (r["weight_change"][0], r["weight_change"][-1]) if r["weight_change"] else None

    sig_moved, relu_moved = moved(sig), moved(relu)
    if sig_moved is None or not sig_moved[0] < sig_moved[1] / 1000:
        problems.append(f"training moved the sigmoid net's first layer (first, last: {sig_moved})")
    if relu_moved is None or not relu_moved[0] >= relu_moved[1] / 10:
        problems.append(f"training hardly moved the ReLU net's first layer ({relu_moved})")
    b0 = bn["ratio_init"]
    acc_sig, acc_bn = sig["val_accuracy"], bn["val_accuracy"]
    if b0 is None or s0 is None or not b0 > FACTOR * s0:
        problems.append(f"batch norm does not lift the sigmoid net's ratio ({_fmt(b0)})")
    if acc_bn is None or acc_sig is None or not acc_bn > acc_sig:
        problems.append(
            f"batch norm does not train the sigmoid net better (accuracy {acc_bn} vs {acc_sig})"
        )
    if problems:
        return Verdict(NOT_REPRODUCED, "; ".join(problems) + ".")
    return Verdict(
        REPRODUCED,
        f"at initialization ||dL/dW_1|| / ||dL/dW_last|| is {_fmt(s0)} with sigmoid units, "
        f"{_fmt(others['tanh'])} with tanh and {_fmt(others['relu'])} with ReLU; training "
        f"moves the sigmoid net's first layer by {sig_moved[0]:.2g} of its norm (its last by "
        f"{sig_moved[1]:.2g}); batch norm lifts the ratio to {_fmt(b0)} and the accuracy from "
        f"{acc_sig:.3f} to {acc_bn:.3f}.",
    )


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = []
    for label, r in numbers.items():
        change = r["weight_change"]
        rows.append([label, _fmt(r["ratio_init"]), _fmt(r["ratio_end"]),
                     "overflowed" if not change else f"{change[0]:.2g} / {change[-1]:.2g}",
                     "-" if r["val_accuracy"] is None else f"{r['val_accuracy']:.3f}"])  # fmt: skip
    headers = ["units", "gradient ratio, init", "gradient ratio, end",
               "weight change, first / last layer", "val accuracy"]  # fmt: skip
    return headers, rows


_BUDGET = {"depth": 20, "width": 64, "lr": 0.05, "seed": 0}
ENTRY = Entry(
    name="vanishing_gradients",
    title="Vanishing gradients: sigmoid, tanh, ReLU and batch norm",
    deck=deck("004"),
    slide="Vanishing/Exploding Gradients Problem (1/4); Overcoming the Vanishing Gradient",
    claim="Gradients often get smaller and smaller as backpropagation goes down to the lower "
    "layers (each sigmoid layer multiplies them by at most 1/4 times its weight), so gradient "
    "descent leaves the lower layers' weights virtually unchanged. Nonsaturating activations "
    "with a matching initialization, and batch normalization, overcome it.",
    tier="quick",
    version=1,
    budgets={
        "quick": {"epochs": 2, **_BUDGET},
        "standard": {"epochs": 5, **_BUDGET},
        "full": {"epochs": 20, **_BUDGET},
    },
    compute=compute,
    draw=draw,
    rule=rule,
    threads=1,
    table=table,
    reference="examples/vanishing_gradients.py; Glorot & Bengio 2010; Ioffe & Szegedy 2015",
)
