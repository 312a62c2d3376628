"""Quasi-Newton on mini-batches: why the same batch should be used over several
iterations (lecture 001, "Second-order methods").

L-BFGS learns curvature from pairs ``s = w_{k+1} - w_k``, ``y = g(w_{k+1}) - g(w_k)``: for
one function, ``y`` is its Hessian (averaged along ``s``) times ``s``. When the two
gradients come from two different batches, ``y`` also holds the difference of the two
batches' gradients at one point: sampling noise, which does not shrink with ``s``.

The experiment trains ``logreg_digits`` with L-BFGS (optimlab's, one iteration per
batch, strong Wolfe line search, 10 pairs) through the trainer, a fresh batch every
iteration, and at every pair of consecutive iterates forms ``y`` both ways:

* ``fresh``: the gradient of iteration ``k + 1``'s batch at ``w_{k+1}`` minus that of
  iteration ``k``'s batch at ``w_k``: the pair of L-BFGS run on a fresh batch per
  iteration as textbooks and ``torch.optim.LBFGS`` form it;
* ``same``: iteration ``k``'s batch at both points: the pair a kept batch gives (and the
  one optimlab's L-BFGS forms inside each line search).

Each is measured against the full training set's secant at the same two points,
``y_F = grad F(w_{k+1}) - grad F(w_k)``: the relative error ``|y - y_F| / |y_F|``, and
the sign of ``s . y`` (L-BFGS drops a pair with ``s . y <= 1e-10``; each batch's loss is
convex, so its own secant always has ``s . y >= 0``). Then the same training with every
batch kept for ``repeats`` iterations (``batch_repeats``) gives the loss each way ends
at, after the same number of iterations.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from optimlab.errors import OptimlabError
from optimlab.optim import LBFGS
from optimlab.optim.closure import objective_of

PROBLEM = "logreg_digits"
HISTORY = 10
WAYS = ("fresh", "same")


@dataclass(frozen=True)
class Pairs:
    """Per pair of consecutive iterates that moved: the relative error of ``y`` against
    the full-set secant and ``s . y``, for each way of forming ``y``."""

    errors: dict[str, list[float]]
    curvatures: dict[str, list[float]]
    step_norms: list[float]
    unmoved: int  # pairs of iterates the line search did not move between


class _Recording(LBFGS):
    """optimlab's L-BFGS, keeping each step's point, batch gradient and batch (the
    first closure call's; the trainer's closures carry their batch)."""

    def __init__(self, params: Any, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.records: list[tuple[Tensor, Tensor, Any]] = []

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        first = True

        def recording() -> Any:
            nonlocal first
            loss = closure()
            if first:
                self.records.append((self._flat_params(), self._flat_grad().clone(),
                                     objective_of(closure)))  # fmt: skip
                first = False
            return loss

        return super().step(recording)


def _gradient(objective: Any, w: Tensor) -> Tensor:
    from torch.func import grad

    from optimlab.curvature.flat import flatten, unflatten

    return flatten(grad(objective.loss)(unflatten(w, objective.params())))


def pairs(*, steps: int, batch_size: int, seed: int) -> Pairs:
    """Train with a fresh batch per iteration; measure both pairs at every iterate."""
    from optimlab import problems
    from optimlab.curvature import ModelObjective
    from optimlab.train import fit

    problem = problems.build(PROBLEM, seed=seed)
    opt = _Recording(problem.model.parameters(), max_iter=1, history_size=HISTORY,
                     line_search_fn="strong_wolfe")  # fmt: skip
    fit(problem, opt, steps=steps, batch_size=batch_size, seed=seed, evaluate_test=False,
        train_metrics=False)  # fmt: skip
    train = problem.splits.train
    full = ModelObjective(problem.model, problem.loss_fn, train.x, train.y)
    full_grads = [_gradient(full, w) for w, _, _ in opt.records]
    errors: dict[str, list[float]] = {way: [] for way in WAYS}
    curvatures: dict[str, list[float]] = {way: [] for way in WAYS}
    unmoved, step_norms = 0, []
    for k in range(len(opt.records) - 1):
        (w0, g0, batch), (w1, g1, _) = opt.records[k], opt.records[k + 1]
        s = w1 - w0
        if not bool(s.any()):
            unmoved += 1
            continue
        y_full = full_grads[k + 1] - full_grads[k]
        step_norms.append(float(s.norm()))
        for way, y in (("fresh", g1 - g0), ("same", _gradient(batch, w1) - g0)):
            errors[way].append(float((y - y_full).norm() / y_full.norm()))
            curvatures[way].append(float(s.dot(y)))
    return Pairs(errors, curvatures, step_norms, unmoved)


def final_loss(repeats: int, *, steps: int, batch_size: int, seed: int) -> dict[str, float]:
    """Train with every batch kept for ``repeats`` iterations; the full training loss
    and the validation accuracy at the end."""
    from optimlab import problems
    from optimlab.train import fit
    from optimlab.train.evaluate import evaluate

    problem = problems.build(PROBLEM, seed=seed)
    opt = LBFGS(problem.model.parameters(), max_iter=1, history_size=HISTORY,
                line_search_fn="strong_wolfe")  # fmt: skip
    fit(problem, opt, steps=steps, batch_size=batch_size, batch_repeats=repeats, seed=seed,
        evaluate_test=False, train_metrics=False)  # fmt: skip
    splits = problem.splits
    train = evaluate(problem.model, problem.loss_fn, {}, splits.train.x, splits.train.y, 4096)
    val = evaluate(problem.model, problem.loss_fn, problem.metrics, splits.val.x, splits.val.y,
                   4096)  # fmt: skip
    return {"train_loss": float(train["loss"]), "val_accuracy": float(val["accuracy"])}


def summary(measured: list[Pairs], way: str) -> dict[str, Any]:
    """One way's pairs pooled over runs: their count, the median and largest relative
    error, the median over the pairs whose step is among the shortest third, the slope
    of ``log(error)`` against ``log(|s|)`` (least squares; -1 means the error grows as
    ``1/|s|``, as noise that does not shrink with the step would make it), and the share
    of pairs with ``s . y <= 0``."""
    errors = [e for m in measured for e in m.errors[way]]
    norms = [n for m in measured for n in m.step_norms]
    curvatures = [c for m in measured for c in m.curvatures[way]]
    if len(errors) < 3:
        raise OptimlabError(f"{len(errors)} pairs of iterates moved; too few to summarize")
    short = sorted(norms)[len(norms) // 3]
    xs = [math.log(n) for n in norms]
    ys = [math.log(e) for e in errors]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
    return {
        "pairs": len(errors),
        "median_error": statistics.median(errors),
        "max_error": max(errors),
        "short_step_median_error": statistics.median(
            [e for e, n in zip(errors, norms, strict=True) if n <= short]
        ),
        "slope": slope,
        "nonpositive": sum(c <= 0 for c in curvatures) / len(curvatures),
    }
