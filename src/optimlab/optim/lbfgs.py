"""L-BFGS: BFGS's inverse Hessian from the last ``m`` curvature pairs, never formed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import Tensor

from optimlab.optim.closure import check_int
from optimlab.optim.quasi_newton import QuasiNewton

#: pairs with s . y at most this are skipped (no positive curvature along s)
CURVATURE_FLOOR = 1e-10


class LBFGS(QuasiNewton):
    """Limited-memory BFGS with a two-loop recursion, drop-in for ``torch.optim.LBFGS``.

    .. code-block:: text

        input: lr, history_size m, line_search_fn, max_iter, max_eval,
               tolerance_grad, tolerance_change
        per iteration (a step runs up to max_iter of them; see quasi_newton):
            q <- -g
            for i = k-1 down to k-m:   a_i <- rho_i s_i . q;   q <- q - a_i y_i
            r <- gamma q,  gamma = s_{k-1} . y_{k-1} / (y_{k-1} . y_{k-1})
            for i = k-m up to k-1:     b <- rho_i y_i . r;     r <- r + (a_i - b) s_i
            d <- r                     (= -H_k g, H_k the BFGS matrix of the m pairs)
            t <- line search along d (or lr);  w <- w + t d
            s_k <- t d;  y_k <- g_new - g;  rho_k <- 1 / (s_k . y_k)
            keep the pair if s_k . y_k > 1e-10, dropping the oldest beyond m

    Cost per iteration: about ``4 m n`` multiply-adds for the direction, plus the
    line search's closure calls (one when the first trial ``t = lr = 1`` is accepted,
    as it mostly is); memory ``2 m + 2`` vectors of ``n`` (the pairs, the direction,
    the previous gradient while a pair is pending).

    With the same arguments and ``line_search_fn="strong_wolfe"`` it takes the steps
    ``torch.optim.LBFGS`` takes (the same line-search safeguards; see
    ``optimlab.optim.linesearch``). Differences: ``"backtracking"`` and ``"exact"``
    line searches too; ``c1``, ``c2`` and ``max_ls`` are arguments; a pair is added as
    soon as the new gradient is known (torch adds it at the next iteration, with the
    gradient of the next call to the closure); a non-finite loss at the start of a step
    and a line search that finds no decrease raise ``OptimlabError``; evaluations are
    counted in ``state["counts"]``.

    Args:
        params: the parameters, one group (all are treated as one vector).
        lr: the first trial step of each line search, or the step without one.
        max_iter: iterations per call to ``step``.
        max_eval: closure calls per ``step`` (default ``max(max_iter * 5 // 4, max_ls)``;
            torch's is ``max_iter * 5 // 4``, the same for ``max_iter >= 20``).
        tolerance_grad: stop when the largest gradient entry is at most this.
        tolerance_change: stop when the step, the loss change or ``g . d`` is smaller.
        history_size: ``m``, the number of pairs kept.
        line_search_fn: ``None`` (fixed step ``lr``), ``"strong_wolfe"``,
            ``"backtracking"`` (Armijo) or ``"exact"``.
        c1, c2: the sufficient-decrease and curvature constants, ``0 < c1 < c2 < 1``.
        max_ls: at most this many evaluations in one line search.

    State: ``s_history``, ``y_history``, ``rho`` (the pairs), ``gamma`` (the initial
    scale ``s . y / y . y`` of the newest pair), ``n_iter``, ``func_evals``.

    References:
        Nocedal 1980, "Updating quasi-Newton matrices with limited storage";
        Liu & Nocedal 1989, "On the limited memory BFGS method for large scale
        optimization"; Nocedal & Wright, *Numerical Optimization*, Alg. 7.4 and 7.5.
    """

    registry_name = "lbfgs"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
        *,
        c1: float = 1e-4,
        c2: float = 0.9,
        max_ls: int = 25,
    ) -> None:
        check_int("history_size", history_size, 1)
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
            history_size=history_size,
        )

    def _reset(self, state: dict[str, Any]) -> None:
        state["s_history"], state["y_history"], state["rho"] = [], [], []
        state["gamma"] = 1.0

    def _direction(self, state: dict[str, Any], g: Tensor) -> Tensor:
        s_hist, y_hist, rho = state["s_history"], state["y_history"], state["rho"]
        q = g.neg()
        alphas = [0.0] * len(s_hist)
        for i in reversed(range(len(s_hist))):
            alphas[i] = s_hist[i].dot(q) * rho[i]
            q.add_(y_hist[i], alpha=-alphas[i])
        r = q.mul(state["gamma"])
        for i in range(len(s_hist)):
            beta = y_hist[i].dot(r) * rho[i]
            r.add_(s_hist[i], alpha=alphas[i] - beta)
        return r

    def _update(self, state: dict[str, Any], s: Tensor, y: Tensor) -> None:
        sy = y.dot(s)
        if sy <= CURVATURE_FLOOR:
            return
        if len(state["s_history"]) == self.param_groups[0]["history_size"]:
            for key in ("s_history", "y_history", "rho"):
                state[key].pop(0)
        state["s_history"].append(s)
        state["y_history"].append(y)
        state["rho"].append(1.0 / sy)
        state["gamma"] = sy / y.dot(y)
