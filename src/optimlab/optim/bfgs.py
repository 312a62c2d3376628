"""BFGS with a dense inverse-Hessian estimate: for small models."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from optimlab.optim.lbfgs import CURVATURE_FLOOR
from optimlab.optim.quasi_newton import QuasiNewton

#: The default parameter limit. H has n^2 entries, 200 MB in float64 at 5000 parameters.
MAX_PARAMS = 5000


class BFGS(QuasiNewton):
    """Broyden-Fletcher-Goldfarb-Shanno with a dense inverse Hessian ``H``.

    .. code-block:: text

        input: lr, line_search_fn, max_iter, max_eval, tolerance_grad,
               tolerance_change, max_params
        H <- I
        per iteration (a step runs up to max_iter of them; see quasi_newton):
            d <- -H g
            t <- line search along d (or lr);  w <- w + t d
            s <- t d;  y <- g_new - g;  rho <- 1 / (s . y)
            if s . y > 1e-10:
                before the first update: H <- (s . y / y . y) I
                H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T

    The update keeps ``H`` symmetric positive definite whenever ``s . y > 0``, which a
    Wolfe line search guarantees. With exact line searches on a quadratic
    ``1/2 w^T A w - b^T w`` the iterates are those of conjugate gradients: they reach
    the minimizer within ``n`` iterations, and after ``n`` updates ``H = A^-1``.

    Cost per iteration: ``O(n^2)`` time and memory for ``H`` (one matrix-vector
    product and a rank-two update), plus the line search's closure calls. Models
    above ``max_params`` are refused: use ``lbfgs``.

    Args:
        params: the parameters, one group (all are treated as one vector).
        lr: the first trial step of each line search, or the step without one.
        max_iter: iterations per call to ``step``.
        max_eval: closure calls per ``step`` (default ``max(max_iter * 5 // 4, max_ls)``;
            torch's is ``max_iter * 5 // 4``, the same for ``max_iter >= 20``).
        tolerance_grad: stop when the largest gradient entry is at most this.
        tolerance_change: stop when the step, the loss change or ``g . d`` is smaller.
        line_search_fn: ``"strong_wolfe"`` (default), ``"backtracking"`` (Armijo),
            ``"exact"`` or ``None`` (fixed step ``lr``).
        c1, c2: the sufficient-decrease and curvature constants, ``0 < c1 < c2 < 1``.
        max_ls: at most this many evaluations in one line search.
        max_params: refuse a model with more parameters (``H`` takes ``n^2`` floats).

    State: ``inverse_hessian`` (``H``), ``updates`` (pairs used), ``n_iter``,
    ``func_evals``.

    References:
        Broyden 1970; Fletcher 1970; Goldfarb 1970; Shanno 1970. Nocedal & Wright,
        *Numerical Optimization*, 2nd ed., Alg. 6.1 and eq. (6.17), (6.20).
    """

    registry_name = "bfgs"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        line_search_fn: str | None = "strong_wolfe",
        *,
        c1: float = 1e-4,
        c2: float = 0.9,
        max_ls: int = 25,
        max_params: int | None = MAX_PARAMS,
    ) -> None:
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
            max_params=max_params,
        )

    def _reset(self, state: dict[str, Any]) -> None:
        p = self._params[0]
        state["inverse_hessian"] = torch.eye(self.numel, dtype=p.dtype, device=p.device)
        state["updates"] = 0

    def _direction(self, state: dict[str, Any], g: Tensor) -> Tensor:
        return -(state["inverse_hessian"] @ g)

    def _update(self, state: dict[str, Any], s: Tensor, y: Tensor) -> None:
        sy = y.dot(s)
        if sy <= CURVATURE_FLOOR:
            return
        h = state["inverse_hessian"]
        if state["updates"] == 0:
            h = h * (sy / y.dot(y))
        rho = 1.0 / sy
        hy = h @ y
        # (I - rho s y^T) H (I - rho y s^T) + rho s s^T, expanded (H symmetric)
        h = h - rho * (torch.outer(s, hy) + torch.outer(hy, s))
        h = h + (rho * rho * y.dot(hy) + rho) * torch.outer(s, s)
        state["inverse_hessian"] = h
        state["updates"] += 1

    def inverse_hessian(self) -> Tensor:
        """The current estimate ``H`` of the inverse Hessian, ``(n, n)``."""
        state = self.state[self._params[0]]
        if "inverse_hessian" not in state:
            return torch.eye(self.numel, dtype=self._params[0].dtype)
        return state["inverse_hessian"].clone()
