"""Wilson et al.'s separable toy: adaptive methods fit it but do not generalize.

Wilson, Roelofs, Stern, Srebro & Recht, "The Marginal Value of Adaptive Gradient Methods
in Machine Learning", NeurIPS 2017, sec. 3.3. On their linearly separable data, full-batch
gradient descent from w = 0 stays in the span of the data, w_t = X^T c_t, and tends to
the minimum-norm (max-margin) direction, which labels new points correctly. AdaGrad,
RMSprop and Adam instead drive w towards a multiple of sign(X^T y) and give almost every
new point the label of the training majority (test error near the minority share).

:func:`compute` trains the four methods full batch, each with the learning rate from a
small grid that reaches the lowest final training loss, and records training loss and
test error after every step; :func:`plot` draws both against steps.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from optimlab import optim
from optimlab.errors import OptimlabError, check_range
from optimlab.viz import style

#: Optimizer name -> class; "sgd" with full batches is plain gradient descent.
METHODS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": optim.SGD,
    "adagrad": optim.Adagrad,
    "rmsprop": optim.RMSprop,
    "adam": optim.Adam,
}
#: Learning-rate grids searched per method (three decades each).
GRIDS: dict[str, tuple[float, ...]] = {
    "sgd": (0.01, 0.1, 1.0),
    "adagrad": (0.001, 0.01, 0.1),
    "rmsprop": (0.001, 0.01, 0.1),
    "adam": (0.001, 0.01, 0.1),
}
LABELS = {"sgd": "GD", "adagrad": "AdaGrad", "rmsprop": "RMSprop", "adam": "Adam"}


@dataclass(frozen=True)
class Curve:
    """One method's run: its rate, and per-step training loss and test error.

    Index 0 is the start (w = 0), index t the value after t steps.
    """

    optimizer: str
    lr: float
    train_loss: np.ndarray
    test_error: np.ndarray


def _run(name: str, lr: float, steps: int, seed: int, loss: str) -> Curve:
    from optimlab.problems import build

    problem = build("wilson_separable", seed=seed, loss=loss)
    model, loss_fn = problem.model, problem.loss_fn
    train, test = problem.splits.train, problem.splits.test
    accuracy = problem.metrics["accuracy"]
    opt = METHODS[name](model.parameters(), lr=lr)
    losses, errors = [], []
    for step in range(steps + 1):
        out = model(train.x)  # full batch, as the paper's argument needs
        value = loss_fn(out, train.y)
        losses.append(float(value.detach()))
        with torch.no_grad():
            errors.append(1.0 - float(accuracy(model(test.x), test.y)))
        if step == steps:
            break
        opt.zero_grad()
        value.backward()
        opt.step()
    return Curve(name, lr, np.asarray(losses), np.asarray(errors))


def compute(
    *,
    steps: int = 300,
    seed: int = 0,
    loss: str = "logistic",
    lrs: Mapping[str, float] | None = None,
    grids: Mapping[str, Sequence[float]] | None = None,
) -> list[Curve]:
    """Train GD, AdaGrad, RMSprop and Adam full batch; one :class:`Curve` each.

    With ``lrs`` (a rate for every method) those are used as given; otherwise each
    method's rate is the one in ``grids`` (default :data:`GRIDS`) with the lowest final
    training loss (diverged runs, with a non-finite loss, are never picked).
    """
    check_range("steps", steps, 1)
    if lrs is not None and set(lrs) != set(METHODS):
        raise OptimlabError(f"invalid lrs: give one rate for each of {', '.join(METHODS)}")
    grids = dict(GRIDS if grids is None else grids)
    if lrs is None and set(grids) != set(METHODS):
        raise OptimlabError(f"invalid grids: give a grid for each of {', '.join(METHODS)}")
    curves = []
    for name in METHODS:
        candidates = [lrs[name]] if lrs is not None else list(grids[name])
        if not candidates or any(not (math.isfinite(v) and v > 0) for v in candidates):
            raise OptimlabError(f"invalid learning rates for {name}: {candidates!r}")
        runs = [_run(name, lr, steps, seed, loss) for lr in candidates]
        finite = [r for r in runs if math.isfinite(r.train_loss[-1])] or runs
        curves.append(min(finite, key=lambda r: r.train_loss[-1]))
    return curves


def plot(curves: Sequence[Curve], title: str | None = None) -> Figure:
    """Training loss (log scale) and test error against steps, one colour per method."""
    colours = style.colour_map(c.optimizer for c in curves)
    fig = style.figure(11.0, 4.2)
    ax_loss, ax_err = fig.subplots(1, 2)
    for c in curves:
        label = f"{LABELS.get(c.optimizer, c.optimizer)} (lr={c.lr:g})"
        steps = np.arange(len(c.train_loss))
        ax_loss.plot(steps, c.train_loss, color=colours[c.optimizer], label=label, linewidth=1.6)
        ax_err.plot(steps, c.test_error, color=colours[c.optimizer], label=label, linewidth=1.6)
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("training loss")
    ax_err.set_ylabel("test error")
    ax_err.set_ylim(-0.02, max(0.6, max(float(c.test_error.max()) for c in curves) + 0.05))
    for ax in (ax_loss, ax_err):
        ax.set_xlabel("step (full batch)")
        ax.grid(True, alpha=0.3, linewidth=0.6)
    ax_err.legend(fontsize=8)
    fig.suptitle(
        title or "Wilson et al. 2017 separable toy: GD generalizes, adaptive methods do not"
    )
    return fig


def write(path: str | os.PathLike[str], **kwargs: object) -> tuple[Path, list[Curve]]:
    """Compute the curves (``kwargs`` go to :func:`compute`), save the figure atomically
    to ``path`` (.png, .svg or .pdf) and return the path and the curves."""
    style.check_suffix(path, style.SUFFIXES)
    curves = compute(**kwargs)  # type: ignore[arg-type]
    return style.save_figure(plot(curves), path), curves
