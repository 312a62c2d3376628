"""Bias and variance of polynomial fits, measured over many draws of the training set.

The lectures' set-up (:mod:`optimlab.viz.bias_variance`): 21 noisy samples of
f(x) = 0.5 + x - 2 x^2 on [-1, 1], noise sd 0.3, fitted by least squares with degree 1,
2 and 20 (20 interpolates the 21 points), and by ridge on degree 20. Every fit is linear
in the targets, so its average over the noise, for the inputs x_k of draw k, is the fit
g_k of the noiseless targets f(x_k). Over K training draws (data seeds 0..K-1), on the
200-point test grid:

    bias^2 = mean_k mean_x (g_k(x) - f(x))^2,   variance = mean_k mean_x (y_k(x) - g_k(x))^2,

with y_k the fit of draw k's noisy targets; the test error is measured on each draw's own
noisy test targets, so the lecture's decomposition E[(y - model)^2] = Var[y] +
Var[model] + Bias^2 is checked with three independently measured terms.

Degree 20 through 21 random points is wildly unstable (its variance reaches 1e20 and
more): what the lecture calls overfitting, in the extreme.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from optimlab.gallery import figures
from optimlab.gallery.decks import deck
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED, Context, Entry, Measured, Verdict

DEGREES = (1, 2, 20)
RIDGE_DEGREE = 20
DECOMPOSITION_TOL = 0.05  # relative: the decomposition is checked by Monte Carlo
DOMINATES = 10.0  # "variance dominates": bias^2 at most a tenth of the variance


def _fits(draws: Sequence[Any], degree: int, lam: float, truth: np.ndarray,
          targets: np.ndarray) -> dict[str, float]:  # fmt: skip
    """Bias^2, variance, test and train error of one model over the draws (module doc)."""
    import torch

    from optimlab.data.synthetic import poly_truth
    from optimlab.viz import bias_variance as bv

    noisy, clean, train = [], [], []
    for d in draws:
        w = bv.ridge_closed_form(d.x_train, d.y_train, degree, lam)
        f_train = torch.from_numpy(poly_truth(d.x_train.numpy()))
        w0 = bv.ridge_closed_form(d.x_train, f_train, degree, lam)
        grid = bv.features(d.x_test, degree)
        noisy.append((grid @ w).numpy())
        clean.append((grid @ w0).numpy())
        train.append(bv.mse(w, d.x_train, d.y_train))
    fits, mean_fits = np.stack(noisy), np.stack(clean)
    return {
        "bias2": float(((mean_fits - truth) ** 2).mean()),
        "variance": float(((fits - mean_fits) ** 2).mean()),
        "test_mse": float(((targets - fits) ** 2).mean()),
        "train_mse": float(np.mean(train)),
    }, fits[0]


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    from optimlab.data.synthetic import poly_truth
    from optimlab.viz import bias_variance as bv

    draws = [bv.data(budget["n_train"], budget["noise"], seed) for seed in range(budget["draws"])]
    x = draws[0].x_test.numpy()
    truth = poly_truth(x)
    targets = np.stack([d.y_test.numpy() for d in draws])
    numbers: dict[str, Any] = {
        "draws": len(draws),
        "noise_variance": budget["noise"] ** 2,
        "degrees": {},
    }
    examples = {}
    for k in DEGREES:
        numbers["degrees"][str(k)], examples[k] = _fits(draws, k, 0.0, truth, targets)
    lambdas = [float(v) for v in np.logspace(-8, 2, budget["n_lambda"])]
    ridge = [{"lambda": lam, **_fits(draws, RIDGE_DEGREE, lam, truth, targets)[0]}
             for lam in lambdas]  # fmt: skip
    best = min(range(len(ridge)), key=lambda i: ridge[i]["test_mse"])
    numbers["ridge"] = {
        "degree": RIDGE_DEGREE,
        "lambdas": lambdas,
        "bias2": [r["bias2"] for r in ridge],
        "variance": [r["variance"] for r in ridge],
        "test_mse": [r["test_mse"] for r in ridge],
        "best_lambda": lambdas[best],
        "best": ridge[best],
    }
    data = {"x": x, "truth": truth, "examples": examples, "first": draws[0]}
    return Measured(numbers, data)


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.viz import style

    n, d = measured.numbers, measured.data
    fig = figures.figure(13.0, 4.8)
    ax_fit, ax_bar, ax_lam = fig.subplots(1, 3)
    first = d["first"]
    ax_fit.scatter(
        first.x_train, first.y_train, color="black", s=14, zorder=3, label="training draw 0"
    )
    ax_fit.plot(d["x"], d["truth"], color="0.4", linestyle="--", label="f(x) = 0.5 + x - 2x^2")
    for i, k in enumerate(DEGREES):
        ax_fit.plot(d["x"], d["examples"][k], color=style.PALETTE[i], label=f"degree {k}")
    ax_fit.set_ylim(float(first.y_train.min()) - 1, float(first.y_train.max()) + 1)
    ax_fit.set_title("least-squares fits\nto one training draw")
    ax_fit.set_xlabel("x")
    ax_fit.set_ylabel("y")
    # Under this panel: inside, degree 20's swings crossed it; a figure-wide legend would
    # read as the key to the other panels' colours too.
    ax_fit.legend(fontsize=8, ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    rows = n["degrees"]
    parts = [("bias2", "bias^2"), ("variance", "variance"), ("test_mse", "test MSE")]
    width = 0.26
    for j, (key, label) in enumerate(parts):
        ax_bar.bar(np.arange(len(DEGREES)) + (j - 1) * width, [rows[str(k)][key] for k in DEGREES],
                   width, color=style.PALETTE[j], label=label)  # fmt: skip
    ax_bar.axhline(n["noise_variance"], color="black", linewidth=0.8, linestyle=":",
                   label="noise variance")  # fmt: skip
    ax_bar.set_xticks(range(len(DEGREES)), [f"degree {k}" for k in DEGREES])
    ax_bar.set_yscale("log")
    ax_bar.set_ylim(bottom=1e-6)  # lower is rounding error: a bias of 0
    ax_bar.set_ylabel("squared error")
    ax_bar.set_title(f"mean over {n['draws']} training draws\n(bars below 1e-6 not shown)")
    ax_bar.legend(fontsize=8)
    r = n["ridge"]
    for j, (key, label) in enumerate(parts):
        ax_lam.plot(r["lambdas"], r[key], color=style.PALETTE[j], label=label)
    ax_lam.axvline(r["best_lambda"], color="black", linewidth=0.8, linestyle="--",
                   label=f"lowest test MSE, lambda = {r['best_lambda']:.2g}")  # fmt: skip
    ax_lam.set_xscale("log")
    ax_lam.set_yscale("log")
    ax_lam.set_xlabel("ridge lambda")
    ax_lam.set_ylabel("squared error")
    ax_lam.set_title(f"ridge on degree {r['degree']}:\nvariance traded for bias")
    ax_lam.legend(fontsize=8, loc="lower right")  # below the curves, clear of the optimum
    for ax in (ax_fit, ax_bar, ax_lam):
        ax.grid(True, alpha=0.3, linewidth=0.6)
    fig.suptitle("bias and variance: polynomial regression on 21 noisy points")
    return {"bias_variance": fig}


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when degree 1 underfits (its bias^2 exceeds its variance and degree 2's
    bias^2), degree 20 overfits (its variance exceeds degree 2's and ten times its bias^2),
    degree 2 has the lowest test error of the three, the test error equals bias^2 +
    variance + noise within 5 % for each degree, and along the ridge path on degree 20 the
    best lambda has less variance than the smallest lambda, less bias^2 than the largest,
    and a lower test error than plain degree 20."""
    d = {int(k): v for k, v in numbers["degrees"].items()}
    noise = numbers["noise_variance"]
    problems = []
    if not (d[1]["bias2"] > d[1]["variance"] and d[1]["bias2"] > d[2]["bias2"]):
        problems.append(
            f"degree 1 does not underfit (bias^2 {d[1]['bias2']:.3g}, variance "
            f"{d[1]['variance']:.3g}; degree 2's bias^2 {d[2]['bias2']:.3g})"
        )
    high = d[20]
    if not (high["variance"] > DOMINATES * high["bias2"] and high["variance"] > d[2]["variance"]):
        problems.append(
            f"degree 20 does not overfit (variance {high['variance']:.3g}, bias^2 "
            f"{high['bias2']:.3g}; degree 2's variance {d[2]['variance']:.3g})"
        )
    if not (d[2]["test_mse"] < d[1]["test_mse"] and d[2]["test_mse"] < d[20]["test_mse"]):
        problems.append(
            "degree 2 does not have the lowest test error ("
            + ", ".join(f"degree {k}: {d[k]['test_mse']:.3g}" for k in sorted(d))
            + ")"
        )
    for k, v in sorted(d.items()):
        parts = v["bias2"] + v["variance"] + noise
        if abs(v["test_mse"] - parts) > DECOMPOSITION_TOL * v["test_mse"]:
            problems.append(
                f"for degree {k} the test error {v['test_mse']:.4g} is not bias^2 + variance + "
                f"noise = {parts:.4g}"
            )
    r = numbers["ridge"]
    best = r["best"]
    trade = (best["variance"] < r["variance"][0] and best["bias2"] < r["bias2"][-1]
             and best["test_mse"] < high["test_mse"])  # fmt: skip
    if not trade:
        problems.append(
            f"ridge does not trade variance for bias (variance {r['variance'][0]:.3g} at the "
            f"smallest lambda, {best['variance']:.3g} at the best {best['lambda']:.2g}; bias^2 "
            f"{best['bias2']:.3g} there, {r['bias2'][-1]:.3g} at the largest; test error "
            f"{best['test_mse']:.3g} against {high['test_mse']:.3g} without the penalty)"
        )
    if problems:
        return Verdict(NOT_REPRODUCED, "; ".join(problems) + ".")
    return Verdict(
        REPRODUCED,
        f"degree 1 underfits (bias^2 {d[1]['bias2']:.3g} > variance {d[1]['variance']:.3g}), "
        f"degree 20 overfits (variance {high['variance']:.3g}, bias^2 {high['bias2']:.3g}), "
        f"degree 2 has the lowest test error ({d[2]['test_mse']:.3g}); the test error is "
        f"bias^2 + variance + noise for every degree; ridge at lambda {best['lambda']:.2g} "
        f"brings degree 20 to variance {best['variance']:.3g}, bias^2 {best['bias2']:.3g}, "
        f"test error {best['test_mse']:.3g}.",
    )


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = [
        [f"degree {k}", f"{v['bias2']:.3g}", f"{v['variance']:.3g}", f"{v['test_mse']:.3g}",
         f"{v['train_mse']:.3g}"]
        for k, v in numbers["degrees"].items()
    ]  # fmt: skip
    b = numbers["ridge"]["best"]
    rows.append([f"ridge, degree {numbers['ridge']['degree']}, lambda {b['lambda']:.2g}",
                 f"{b['bias2']:.3g}", f"{b['variance']:.3g}", f"{b['test_mse']:.3g}",
                 f"{b['train_mse']:.3g}"])  # fmt: skip
    return ["model", "bias^2", "variance", "test MSE", "train MSE"], rows


_BUDGET = {"n_train": 21, "noise": 0.3}
ENTRY = Entry(
    name="bias_variance",
    title="Bias and variance of polynomial fits, and ridge",
    deck=deck("000"),
    slide="Bias/Variance Tradeoff",
    claim="The expected squared error splits into Var[y] + Var[model] + Bias[model]^2. An "
    "underfitting model (here a line) has little variance but much bias; an overfitting one "
    "(degree 20 through 21 points) little bias but much variance; a penalty (ridge) trades "
    "variance for bias.",
    tier="quick",
    version=3,
    budgets={
        "quick": {"draws": 200, "n_lambda": 21, **_BUDGET},
        "standard": {"draws": 1000, "n_lambda": 41, **_BUDGET},
        "full": {"draws": 4000, "n_lambda": 81, **_BUDGET},
    },
    compute=compute,
    draw=draw,
    rule=rule,
    threads=1,
    table=table,
    reference="the lectures' Figure 4.5 set-up (optimlab.viz.bias_variance)",
)
