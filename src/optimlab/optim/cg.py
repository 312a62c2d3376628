"""Nonlinear conjugate gradients: linear CG's directions for any smooth loss, with
restarts and a line search."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from torch import Tensor

from optimlab.optim.closure import check_choice, check_float, check_int
from optimlab.optim.quasi_newton import QuasiNewton

BETAS = ("polak_ribiere_plus", "fletcher_reeves", "hestenes_stiefel")


def conjugate_direction(
    g: Tensor, g_prev: Tensor, d_prev: Tensor, beta: str, powell: float | None
) -> tuple[Tensor, float, bool]:
    """``(d, beta, restarted)``: the next direction ``d = -g + beta d_prev``, or ``-g``
    (``restarted``) when Powell's test or the descent test asks for a restart.

    Args:
        g, g_prev: the gradient now and at the previous iterate.
        d_prev: the previous direction.
        beta: ``"polak_ribiere_plus"``, ``"fletcher_reeves"`` or ``"hestenes_stiefel"``.
        powell: restart when ``|g . g_prev| >= powell ||g||^2`` (None: never).
    """
    gg = float(g.dot(g))
    if powell is not None and abs(float(g.dot(g_prev))) >= powell * gg:
        return -g, 0.0, True
    y = g - g_prev
    if beta == "fletcher_reeves":
        num, den = gg, float(g_prev.dot(g_prev))
    elif beta == "polak_ribiere_plus":
        num, den = float(g.dot(y)), float(g_prev.dot(g_prev))
    else:
        num, den = float(g.dot(y)), float(d_prev.dot(y))
    value = num / den if den != 0 else math.nan
    if beta == "polak_ribiere_plus":
        value = max(value, 0.0)
    if not math.isfinite(value):
        return -g, 0.0, True
    d = d_prev.mul(value).sub_(g)
    if float(g.dot(d)) >= 0:  # not a descent direction
        return -g, 0.0, True
    return d, value, False


class NonlinearCG(QuasiNewton):
    """Nonlinear conjugate gradients (Fletcher-Reeves, Polak-Ribiere+, Hestenes-Stiefel)
    with restarts and a line search.

    .. code-block:: text

        input: lr, beta, restart (default n), powell, line_search_fn, max_iter,
               max_eval, c1, c2, tolerance_grad, tolerance_change
        d <- -g
        per iteration (a step runs up to max_iter of them; see quasi_newton):
            t <- line search along d, first trial t_prev (g_prev . d_prev) / (g . d)
            w <- w + t d;  g_new <- the gradient there;  y <- g_new - g
            beta_FR  = g_new . g_new / (g . g)               (Fletcher & Reeves 1964)
            beta_PR+ = max(0, g_new . y / (g . g))           (Polak & Ribiere 1969; Powell 1986)
            beta_HS  = g_new . y / (d . y)                   (Hestenes & Stiefel 1952)
            d <- -g_new + beta d
            restart, d <- -g_new, when: restart iterations have passed since the last
              one; |g_new . g| >= powell ||g_new||^2 (Powell 1977: the gradients are
              far from orthogonal); g_new . d >= 0 (not a descent direction); or beta
              is not finite

    On the quadratic ``1/2 w^T A w - b^T w`` with exact line searches
    (``line_search_fn="exact"``) the three betas coincide and the iterates are those of
    linear conjugate gradients on ``A w = b`` (``optimlab.curvature.conjugate_gradient``):
    the minimizer within ``n`` iterations in exact arithmetic. Otherwise the strong
    Wolfe conditions with ``c2 < 1/2`` make every Fletcher-Reeves direction a descent
    direction (Al-Baali 1985); Polak-Ribiere+ restarts by itself (``beta = 0``) after a
    step that made little progress, which is why it is the default.

    The first trial step of each line search is Nocedal & Wright's eq. (3.60), the
    previous step scaled so that the first-order change of the loss repeats: a CG
    direction carries no natural step length (a Newton or quasi-Newton direction's is
    1). The first iteration ever tries ``min(1, 1/||g||_1) lr``, as L-BFGS does; without
    a line search every step is ``lr``.

    Cost per iteration: three dot products and one vector update (``O(n)``), plus the
    line search's closure calls (each a loss and gradient); memory: two vectors of ``n``
    (the previous gradient and the direction), against L-BFGS's ``2 m``.

    Args:
        params: the parameters, one group (all are treated as one vector).
        lr: the first trial step of the first line search, or the step without one.
        beta: ``"polak_ribiere_plus"`` (default), ``"fletcher_reeves"`` or
            ``"hestenes_stiefel"``.
        restart: restart every this many iterations (default: the number of
            parameters ``n``, after which linear CG would have ended on a quadratic).
        powell: Powell's restart threshold ``nu`` (None: no such restarts).
        max_iter: iterations per call to ``step``.
        max_eval: closure calls per ``step`` (default ``max(max_iter * 5 // 4, max_ls)``).
        tolerance_grad: stop when the largest gradient entry is at most this.
        tolerance_change: stop when the step, the loss change or ``g . d`` is smaller.
        line_search_fn: ``"strong_wolfe"`` (default), ``"exact"``, ``"backtracking"``
            (Armijo) or ``None`` (fixed step ``lr``).
        c1, c2: the sufficient-decrease and curvature constants, ``0 < c1 < c2 < 1``
            (``c2 = 0.1`` by default, Nocedal & Wright's value for CG).
        max_ls: at most this many evaluations in one line search.

    State: ``prev_g``, ``prev_d`` (the previous gradient and direction), ``beta`` (the
    last value), ``since_restart``, ``restarts`` (all restarts after the first
    direction), ``last_decrease`` (``t g . d`` of the last step), ``n_iter``,
    ``func_evals``.

    References:
        Fletcher & Reeves 1964; Polak & Ribiere 1969; Hestenes & Stiefel 1952;
        Powell 1977, "Restart procedures for the conjugate gradient method"; Nocedal &
        Wright, *Numerical Optimization*, 2nd ed., sec. 5.2 (Alg. 5.4, eq. 5.49).
    """

    registry_name = "cg"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        beta: str = "polak_ribiere_plus",
        restart: int | None = None,
        powell: float | None = 0.2,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        line_search_fn: str | None = "strong_wolfe",
        *,
        c1: float = 1e-4,
        c2: float = 0.1,
        max_ls: int = 25,
    ) -> None:
        check_choice("beta", beta, BETAS)
        if restart is not None:
            check_int("restart", restart, 1)
        if powell is not None:
            check_float("powell", powell, 0, open_low=True)
        super().__init__(
            params,
            lr=lr,
            max_iter=max_iter,
            max_eval=max_eval,
            tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change,
            line_search_fn=line_search_fn,
            c1=c1,
            c2=c2,
            max_ls=max_ls,
            max_params=None,
            beta=beta,
            restart=restart,
            powell=powell,
        )

    def _reset(self, state: dict[str, Any]) -> None:
        for key in ("prev_g", "prev_d", "last_decrease"):
            state.pop(key, None)
        state["since_restart"] = 0
        state["restarts"] = 0
        state["beta"] = 0.0

    def _direction(self, state: dict[str, Any], g: Tensor) -> Tensor:
        group = self.param_groups[0]
        period = group["restart"] or self.numel
        if "prev_g" not in state:
            d, state["beta"], state["since_restart"] = g.neg(), 0.0, 0
        elif state["since_restart"] + 1 >= period:
            d, state["beta"], state["since_restart"] = g.neg(), 0.0, 0
            state["restarts"] += 1
        else:
            d, state["beta"], restarted = conjugate_direction(
                g, state["prev_g"], state["prev_d"], group["beta"], group["powell"]
            )
            state["since_restart"] = 0 if restarted else state["since_restart"] + 1
            state["restarts"] += int(restarted)
        state["prev_g"], state["prev_d"] = g, d
        return d

    def _update(self, state: dict[str, Any], s: Tensor, y: Tensor) -> None:
        state["last_decrease"] = float(s.dot(state["prev_g"]))

    def _trial_step(self, state: dict[str, Any], g: Tensor, d: Tensor, t: float) -> float:
        if self.param_groups[0]["line_search_fn"] is None or "last_decrease" not in state:
            return t
        guess = state["last_decrease"] / float(g.dot(d))
        return guess if math.isfinite(guess) and guess > 0 else t
