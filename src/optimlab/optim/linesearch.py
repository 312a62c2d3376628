"""Line searches along a direction ``d``: how far to go, given ``phi(t) = f(w + t d)``.

Each takes ``evaluate(t) -> (f, g)`` (loss and flat gradient at ``w + t d``), the
loss ``f0``, gradient ``g0`` and slope ``phi'(0) = g0 . d`` (negative: a descent
direction) at ``t = 0``, and a first trial ``t``; it returns a ``Step``.

- ``backtracking`` (Armijo 1966; Nocedal & Wright, *Numerical Optimization*, 2nd ed.,
  Alg. 3.1): ``t <- factor * t`` until the sufficient-decrease (Armijo) condition
  ``phi(t) <= phi(0) + c1 t phi'(0)`` holds.
- ``strong_wolfe`` (Nocedal & Wright Alg. 3.5 and 3.6): bracket a step that
  satisfies Armijo and the curvature condition ``|phi'(t)| <= c2 |phi'(0)|``, then
  zoom into the bracket with cubic interpolation. The safeguards are those of Mark
  Schmidt's minFunc, as ``torch.optim.LBFGS`` also uses, so that the two take the same
  steps: extrapolate to at most ``10 t`` and at least ``t + 0.01 (t - t_prev)``;
  in the zoom, a trial within a tenth of the bracket's width of its ends is moved a
  tenth of the width inside when the previous trial already made little progress
  or the trial lies outside the bracket; stop when the bracket is narrower than
  ``tolerance_change`` (measured as ``width * max|d|``).
- ``exact``: minimize ``phi`` along ``d``, to ``|phi'(t)| <= tol |phi'(0)|`` by secant
  steps on ``phi'`` (extrapolating while ``phi`` still descends, then within the
  bracket, bisecting when a secant step leaves it). On a quadratic ``phi'`` is linear,
  so one secant step lands on the exact minimizer. The textbook line search of the
  conjugate-gradient and BFGS convergence theorems; costs more evaluations than the
  inexact ones.

A trial whose loss is not finite (an overflow) fails the Armijo condition and
shrinks the step.

``Step.status``: ``"ok"`` (the search's condition holds), ``"decrease"`` (it stopped
early, at a step that lowers the loss) or ``"no_decrease"`` (no trial lowered the loss:
the step is ``t = 0``). Optimizers treat a search that ends without a decrease, when
its evaluation budget was not what stopped it, as a failure (``failure_message``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

from torch import Tensor

Evaluate = Callable[[float], tuple[float, Tensor]]
NAMES = ("strong_wolfe", "backtracking", "exact")


class Step(NamedTuple):
    """A line search's result: the step ``t``, the loss and gradient there, how many
    evaluations it made, its status, whether it ran out of evaluations, and the
    smallest step it tried."""

    t: float
    f: float
    g: Tensor
    evals: int
    status: str
    out_of_budget: bool
    smallest_trial: float


class _Point(NamedTuple):
    t: float
    f: float
    g: Tensor
    slope: float


def _finite(x: float) -> bool:
    return math.isfinite(x)


def backtracking(
    evaluate: Evaluate,
    d: Tensor,
    f0: float,
    g0: Tensor,
    slope0: float,
    t: float,
    *,
    c1: float = 1e-4,
    factor: float = 0.5,
    max_evals: int = 25,
) -> Step:
    """Armijo backtracking from ``t``: at most ``max_evals`` evaluations."""
    for k in range(1, max_evals + 1):
        f, g = evaluate(t)
        if _finite(f) and f <= f0 + c1 * t * slope0:
            return Step(t, f, g, k, "ok", False, t)
        if k < max_evals:
            t *= factor
    return Step(0.0, f0, g0, max_evals, "no_decrease", True, t)


def _divide(a: float, b: float) -> float:
    """``a / b`` as IEEE arithmetic has it (torch's search divides tensors): a zero ``b``
    gives an infinity or NaN, not an exception."""
    if b != 0:
        return a / b
    return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1, b)


def _cubic_minimizer(a: _Point, b: _Point, low: float, high: float) -> float:
    """The minimizer of the cubic through ``(t, f, phi')`` at ``a`` and ``b``, clamped to
    ``[low, high]``; the middle of ``[low, high]`` if the cubic has none (N&W eq. 3.59)."""
    theta = a.slope + b.slope - 3 * _divide(a.f - b.f, a.t - b.t)
    disc = theta * theta - a.slope * b.slope
    if not disc >= 0:  # also catches NaN
        return (low + high) / 2
    gamma = math.sqrt(disc)
    # written from the larger of the two points
    near, far = (a, b) if a.t <= b.t else (b, a)
    ratio = _divide(far.slope + gamma - theta, far.slope - near.slope + 2 * gamma)
    t = far.t - (far.t - near.t) * ratio
    if math.isnan(t):  # torch would try NaN; the middle is a step that can be evaluated
        return (low + high) / 2
    return min(max(t, low), high)


def strong_wolfe(
    evaluate: Evaluate,
    d: Tensor,
    f0: float,
    g0: Tensor,
    slope0: float,
    t: float,
    *,
    c1: float = 1e-4,
    c2: float = 0.9,
    tolerance_change: float = 1e-9,
    max_evals: int = 25,
) -> Step:
    """A step satisfying the strong Wolfe conditions, with at most ``max_evals``
    evaluations (the first trial included)."""
    d_max = float(d.abs().max())
    start = _Point(0.0, f0, g0, slope0)

    trials: list[float] = []

    def at(t: float) -> _Point:
        trials.append(t)
        f, g = evaluate(t)
        return _Point(t, f, g, float(g.dot(d)))

    def armijo_fails(p: _Point) -> bool:
        return not _finite(p.f) or p.f > f0 + c1 * p.t * slope0

    def curvature_holds(p: _Point) -> bool:
        return abs(p.slope) <= -c2 * slope0

    point = at(t)
    evals = 1
    prev = start
    bracket: list[_Point] = []
    done = False
    # bracketing: grow the step until the interval (prev, point) must hold a good step
    while evals < max_evals:
        if armijo_fails(point) or (evals > 2 and point.f >= prev.f):
            bracket = [prev, point]
            break
        if curvature_holds(point):
            bracket, done = [point], True
            break
        if point.slope >= 0:
            bracket = [prev, point]
            break
        grow_to = _cubic_minimizer(prev, point, point.t + 0.01 * (point.t - prev.t), 10 * point.t)
        prev, point = point, at(grow_to)
        evals += 1
    if not bracket:  # out of evaluations while still growing
        bracket = [start, point]
    low, high = (0, 1) if bracket[0].f <= bracket[-1].f else (1, 0)
    # zoom: shrink the bracket around a good step
    little_progress = False
    while not done and evals < max_evals:
        lo_t = min(bracket[0].t, bracket[1].t)
        hi_t = max(bracket[0].t, bracket[1].t)
        if (hi_t - lo_t) * d_max < tolerance_change:
            break
        if _finite(bracket[0].f) and _finite(bracket[1].f):
            trial = _cubic_minimizer(bracket[0], bracket[1], lo_t, hi_t)
        else:
            trial = (lo_t + hi_t) / 2
        margin = 0.1 * (hi_t - lo_t)
        if min(hi_t - trial, trial - lo_t) < margin:
            if little_progress or trial >= hi_t or trial <= lo_t:
                trial = hi_t - margin if abs(trial - hi_t) < abs(trial - lo_t) else lo_t + margin
                little_progress = False
            else:
                little_progress = True
        else:
            little_progress = False
        point = at(trial)
        evals += 1
        if armijo_fails(point) or point.f >= bracket[low].f:
            bracket[high] = point
            low, high = (0, 1) if bracket[0].f <= bracket[1].f else (1, 0)
        else:
            if curvature_holds(point):
                done = True
            elif point.slope * (bracket[high].t - bracket[low].t) >= 0:
                bracket[high] = bracket[low]
            bracket[low] = point
    best = bracket[low]
    if done:
        status = "ok"
    elif best.t != 0 and _finite(best.f) and best.f < f0:
        status = "decrease"
    else:
        status = "no_decrease"
    out = evals >= max_evals and not done
    return Step(best.t, best.f, best.g, evals, status, out, min(trials))


def exact(
    evaluate: Evaluate,
    d: Tensor,
    f0: float,
    g0: Tensor,
    slope0: float,
    t: float,
    *,
    tol: float = 1e-10,
    max_evals: int = 50,
) -> Step:
    """The minimizer of ``phi`` along ``d``, to ``|phi'(t)| <= tol |phi'(0)|``."""
    low = _Point(0.0, f0, g0, slope0)
    before_low: _Point | None = None
    high: _Point | None = None
    best = low
    trial = smallest = t
    for k in range(1, max_evals + 1):
        smallest = min(smallest, trial)
        f, g = evaluate(trial)
        point = _Point(trial, f, g, float(g.dot(d)))
        if _finite(point.f) and point.f < best.f:
            best = point
        if _finite(point.f) and point.f <= f0 and abs(point.slope) <= tol * abs(slope0):
            return Step(point.t, point.f, point.g, k, "ok", False, smallest)
        if not _finite(point.f) or point.slope > 0 or point.f > low.f:
            high = point  # the minimizer lies between low and this point
        else:
            before_low, low = low, point
        if high is None and before_low is not None:
            # still descending: extrapolate phi' linearly to its root, at most 10x
            growth = (low.slope - before_low.slope) / (low.t - before_low.t)
            root = low.t - low.slope / growth if growth > 0 else math.inf
            trial = min(max(root, 1.1 * low.t), 10 * low.t)
        elif high is not None:
            width = high.t - low.t
            trial = low.t + width / 2
            if _finite(high.f) and _finite(high.slope) and high.slope > low.slope:
                secant = low.t - low.slope * width / (high.slope - low.slope)
                if low.t < secant < high.t:
                    trial = secant
    status = "decrease" if best.t != 0 else "no_decrease"
    return Step(best.t, best.f, best.g, max_evals, status, True, smallest)


def failure_message(optimizer: str, search: str, step: Step, f0: float, slope0: float) -> str:
    """The error for a line search that found no decrease along a descent direction."""
    return (
        f"{optimizer}: the {search} line search found no step that lowers the loss "
        f"({step.evals} evaluations from loss {f0:.6g}, slope {slope0:.3g} along the "
        f"search direction). The closure's loss and gradient disagree: is it stochastic "
        f"(a new batch or dropout on every call)? These methods need a deterministic "
        f"closure: one fixed batch, the model in eval mode"
    )


def precision_limited(step_size: float, f0: float, slope0: float) -> bool:
    """Whether the decrease a step of ``step_size`` promises, ``|t phi'(0)|``, is below
    what rounding lets float64 see in a loss of size ``f0`` (near a minimum, say)."""
    return abs(step_size * slope0) <= 1e-12 * max(1.0, abs(f0))
