"""Newton's method with the exact Hessian: for small models."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from optimlab.curvature import GradientGraph, conjugate_gradient
from optimlab.errors import OptimlabError
from optimlab.optim import linesearch
from optimlab.optim.closure import (
    Closure,
    ClosureOptimizer,
    check_choice,
    check_float,
    check_int,
)

#: The default parameter limit. The Hessian has n^2 entries and its factorization
#: costs n^3 / 3, so 5000 parameters take 200 MB in float64 and seconds per step.
MAX_PARAMS = 5000
DAMPING_UPDATES = ("fixed", "levenberg_marquardt")
INDEFINITE = ("shift", "solve")
SOLVERS = ("cholesky", "cg")
LINE_SEARCHES = (None, "backtracking")
# Levenberg-Marquardt: shrink the damping after a step the quadratic model predicted
# well, grow it after one it predicted badly (Martens 2010, sec. 4.1)
LM_GOOD, LM_BAD, LM_SHRINK, LM_GROW = 0.75, 0.25, 2.0 / 3.0, 1.5


def check_damping(damping: float, damping_update: str, example: str) -> None:
    """Raise unless ``damping >= 0`` and ``damping_update`` is valid, with a start value
    > 0 (``example`` suggests one) where the Levenberg-Marquardt rule scales it."""
    check_float("damping", damping, 0)
    check_choice("damping_update", damping_update, DAMPING_UPDATES)
    if damping_update == "levenberg_marquardt" and damping == 0:
        raise OptimlabError(
            "invalid damping: 0 with damping_update='levenberg_marquardt', which scales "
            f"it up and down; give a start value > 0 (say {example})"
        )


def levenberg_marquardt(damping: float, ratio: float) -> float:
    """The next damping after a step whose actual over predicted decrease was ``ratio``:
    ``* 2/3`` above 3/4, ``* 3/2`` below 1/4 (NaN included), unchanged between."""
    if ratio > LM_GOOD:
        return damping * LM_SHRINK
    if not ratio >= LM_BAD:
        return damping * LM_GROW
    return damping


class Damped(ClosureOptimizer):
    """Base of the damped Newton methods (``Newton``, ``HessianFree``): a damping
    ``lambda`` in the state, adapted by the Levenberg-Marquardt rule."""

    def _begin(self, closure: Closure | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """The group and the state, initialized; a missing closure is refused."""
        group = self.param_groups[0]
        state = self.state[self._params[0]]
        state.setdefault("n_iter", 0)
        state.setdefault("damping", group["damping"])
        if closure is None:
            self._call(None)  # raises, naming what the closure must do
        return group, state

    def _adapt(self, state: dict[str, Any], lam: float, f0: float, f_new: float, change: float,
               x: Tensor) -> None:  # fmt: skip
        """After a step from ``x``: ``rho = (f_new - f0) / change``, ``change`` the
        quadratic model's change of the loss (< 0; none predicted gives ``rho = -inf``),
        the next ``lambda`` by the rule, and the step undone if it raised the loss."""
        ratio = (f_new - f0) / change if change < 0 else -math.inf
        state["ratio"] = ratio
        state["damping"] = levenberg_marquardt(lam, ratio)
        if not f_new <= f0:  # also NaN
            self._set(x)


class Newton(Damped):
    """Newton's method: solve ``(H + lambda I) d = -g`` with the exact Hessian, step
    ``w <- w + t d``.

    .. code-block:: text

        input: lr (t), damping (lambda), damping_update, line_search_fn, solver,
               indefinite, cg_rtol, max_params
        per step:
            f, g <- the loss and gradient at w, with the gradient's graph kept
            A = H + lambda I, H the exact Hessian (optimlab.curvature.GradientGraph)
            solver "cholesky": form H (n Hessian-vector products), then
              "shift":  tau <- 0, then max(2 tau, 1e-3 max|A_ii|) until A + tau I has
                        a Cholesky factor L L^T; d <- -(L L^T)^-1 g
              "solve":  d <- -A^-1 g by LU (pure Newton: may head for a saddle point)
            solver "cg": conjugate gradients on A d = -g, one Hessian-vector product
              per iteration, until ||A d + g|| <= eta ||g||, eta = cg_rtol or
              min(1/2, sqrt(||g||)); on a direction of negative curvature it stops
              with the iterate so far (-g if that is still 0): Newton-CG
            t <- lr, or Armijo backtracking from lr (line_search_fn="backtracking")
            w <- w + t d
            levenberg_marquardt: r <- (f - f(w + t d)) / -(t g.d + t^2/2 d^T H d)
                lambda <- lambda * 2/3 if r > 3/4;  lambda * 3/2 if r < 1/4
                a step that raised the loss is undone

    The system is solved, never inverted: by Cholesky when ``A`` is positive definite,
    adding a multiple of the identity when it is not (Nocedal & Wright, Alg. 3.3), so
    ``d`` is always a descent direction. Parameters the loss does not depend on (a
    zero row in ``H`` and a zero gradient) are left out of the solve and do not move.

    With ``lr=1`` and no damping it minimizes a positive-definite quadratic in one
    step, and its iterates do not depend on an affine change of variables ``w = D u``
    (those of gradient descent do).

    Cost per step: ``n`` Hessian-vector products (each a few gradients' worth),
    ``n^3 / 3`` for the factorization, ``n^2`` memory; with ``solver="cg"`` one
    product per CG iteration (at most ``n``, usually far fewer) and a few vectors of
    memory. Plus a closure call per backtracking trial or for the Levenberg-Marquardt
    ratio. With the Cholesky solver, models above ``max_params`` are refused.

    The closure is a plain ``torch.optim`` closure (zero the gradients, evaluate the
    loss, ``loss.backward()``, return the loss): ``step`` makes its ``backward`` keep
    the graph (``optimlab.curvature.backward_creates_graph``) to differentiate the
    gradient again.

    Args:
        params: the parameters, one group (all are treated as one vector).
        lr: the step ``t``, or the first trial of the line search.
        damping: ``lambda >= 0`` added to the Hessian's diagonal (the start value
            under ``levenberg_marquardt``, where it must be > 0).
        damping_update: ``"fixed"`` or ``"levenberg_marquardt"``.
        line_search_fn: ``None`` or ``"backtracking"`` (Armijo).
        c1: the sufficient-decrease constant of the line search, in ``(0, 1)``.
        backtrack: the factor the line search shrinks ``t`` by, in ``(0, 1)``.
        max_ls: at most this many trials in one line search.
        tolerance_grad: no step when the largest gradient entry is at most this.
        solver: ``"cholesky"`` (forms ``H``) or ``"cg"`` (matrix-free).
        indefinite: ``"shift"`` or ``"solve"``, for a Hessian that is not positive
            definite (see above; the Cholesky solver only).
        cg_rtol: the CG solver's relative residual tolerance ``eta`` (default: the
            forcing sequence ``min(1/2, sqrt(||g||))``, which keeps Newton's fast
            local convergence: Nocedal & Wright, Theorem 7.2).
        max_params: refuse a model with more parameters (the Cholesky solver).

    State: ``damping`` (the current lambda), ``shift`` (the last tau), ``ratio`` (the
    last Levenberg-Marquardt r), ``n_iter``.

    References:
        Nocedal & Wright, *Numerical Optimization*, 2nd ed., sec. 3.3-3.4 (Newton
        with Hessian modification, Alg. 3.3), Alg. 3.1 (backtracking), Alg. 7.1
        (line-search Newton-CG); Dembo, Eisenstat & Steihaug 1982; Levenberg
        1944; Marquardt 1963; Martens 2010, "Deep learning via Hessian-free
        optimization", sec. 4.1.
    """

    registry_name = "newton"
    large_model_hint = ", use solver='cg' (no n x n matrix),"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        damping: float = 0.0,
        damping_update: str = "fixed",
        line_search_fn: str | None = None,
        *,
        c1: float = 1e-4,
        backtrack: float = 0.5,
        max_ls: int = 25,
        tolerance_grad: float = 1e-7,
        solver: str = "cholesky",
        indefinite: str = "shift",
        cg_rtol: float | None = None,
        max_params: int | None = MAX_PARAMS,
    ) -> None:
        check_float("lr", lr, 0, open_low=True)
        check_damping(damping, damping_update, "1e-3")
        check_choice("line_search_fn", line_search_fn, LINE_SEARCHES)
        check_float("c1", c1, 0, 1, open_low=True, open_high=True)
        check_float("backtrack", backtrack, 0, 1, open_low=True, open_high=True)
        check_int("max_ls", max_ls, 1)
        check_float("tolerance_grad", tolerance_grad, 0)
        check_choice("solver", solver, SOLVERS)
        check_choice("indefinite", indefinite, INDEFINITE)
        if cg_rtol is not None:
            check_float("cg_rtol", cg_rtol, 0, 1, open_low=True, open_high=True)
        if max_params is not None:
            check_int("max_params", max_params, 1)
        defaults = dict(
            lr=lr,
            damping=damping,
            damping_update=damping_update,
            line_search_fn=line_search_fn,
            c1=c1,
            backtrack=backtrack,
            max_ls=max_ls,
            tolerance_grad=tolerance_grad,
            solver=solver,
            indefinite=indefinite,
            cg_rtol=cg_rtol,
        )
        # the limit guards the n x n matrix, which the CG solver never forms
        super().__init__(params, defaults, max_params if solver == "cholesky" else None)

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> Any:  # type: ignore[override]
        """One Newton step; return the loss before it."""
        group, state = self._begin(closure)
        loss, graph = GradientGraph.of_closure(closure, self._params)
        self._count_call()
        f0 = self._start_loss(loss)
        g = graph.gradient
        if g.abs().max() <= group["tolerance_grad"]:
            return loss
        lam = float(state["damping"])
        if group["solver"] == "cg":
            d = self._solve_cg(graph, g, lam, group["cg_rtol"])
            state["shift"] = 0.0
        else:
            h = graph.matrix()
            d, state["shift"] = self._solve(h, g, lam, group["indefinite"])
        # d^T H d, for the Levenberg-Marquardt ratio's predicted decrease
        curvature = 0.0
        if group["damping_update"] == "levenberg_marquardt":
            curvature = float(d.dot(graph(d) if group["solver"] == "cg" else h @ d))
        self._counts()["hvp"] += graph.products
        del graph  # frees the gradient's graph before the line search
        slope = float(g.dot(d))
        x = self._flat_params()
        t, f_new = float(group["lr"]), None
        if group["line_search_fn"] == "backtracking":
            t, f_new = self._backtrack(closure, group, x, d, f0, g, slope)
        self._add(t, d)
        if group["damping_update"] == "levenberg_marquardt":
            if f_new is None:
                f_new = self._evaluate_loss(closure)
            self._adapt(state, lam, f0, f_new, t * slope + 0.5 * t * t * curvature, x)
        state["n_iter"] += 1
        return loss

    def _solve_cg(self, graph: GradientGraph, g: Tensor, lam: float, rtol: float | None) -> Tensor:
        """Newton-CG's direction (Nocedal & Wright, Alg. 7.1)."""
        g_norm = float(g.norm())
        eta = min(0.5, g_norm**0.5) if rtol is None else rtol
        result = conjugate_gradient(lambda v: graph(v) + lam * v, -g, rtol=eta, max_iter=graph.size)
        if not bool(result.x.any()):  # negative curvature before the first step
            return -g
        return result.x

    def _evaluate_loss(self, closure: Closure) -> float:
        loss = self._call(closure)
        return float(loss.detach()) if isinstance(loss, Tensor) else float(loss)

    def _backtrack(
        self,
        closure: Closure,
        group: dict[str, Any],
        x: Tensor,
        d: Tensor,
        f0: float,
        g: Tensor,
        slope: float,
    ) -> tuple[float, float]:
        if slope >= 0:
            raise OptimlabError(
                f"Newton: the Newton direction is not a descent direction (slope {slope:.3g}): "
                f"the Hessian is not positive definite here; use indefinite='shift' or damping"
            )
        result = linesearch.backtracking(
            lambda t: self._directional(closure, x, t, d), d, f0, g, slope, float(group["lr"]),
            c1=group["c1"], factor=group["backtrack"], max_evals=group["max_ls"],
        )  # fmt: skip
        if result.status == "no_decrease" and not linesearch.precision_limited(
            result.smallest_trial, f0, slope
        ):
            raise OptimlabError(
                linesearch.failure_message("Newton", "backtracking", result, f0, slope)
            )
        return result.t, result.f

    def _solve(self, h: Tensor, g: Tensor, lam: float, indefinite: str) -> tuple[Tensor, float]:
        """``(d, tau)``: the Newton direction and the shift it needed."""
        # parameters the loss does not depend on: a zero row and a zero gradient
        active = (h != 0).any(dim=1) | (g != 0)
        d = torch.zeros_like(g)
        if not bool(active.any()):
            return d, 0.0
        a = h[active][:, active]
        ga = g[active]
        eye = torch.eye(a.shape[0], dtype=a.dtype, device=a.device)
        a = a + lam * eye
        if indefinite == "solve":
            solution, info = torch.linalg.solve_ex(a, -ga)
            if int(info) != 0 or not bool(torch.isfinite(solution).all()):
                raise OptimlabError(
                    "Newton: the Hessian is singular here, so H d = -g has no unique "
                    "solution; use damping > 0 or indefinite='shift'"
                )
            d[active] = solution
            return d, 0.0
        floor = 1e-3 * float(a.diagonal().abs().max()) or 1e-3
        tau = 0.0
        for _ in range(200):
            factor, info = torch.linalg.cholesky_ex(a + tau * eye)
            if int(info) == 0:
                d[active] = torch.cholesky_solve(-ga.unsqueeze(1), factor).squeeze(1)
                return d, tau
            tau = max(2 * tau, floor)
        raise OptimlabError(
            "Newton: no shift made the Hessian positive definite (it has non-finite "
            "entries?); check the loss"
        )
