"""The quasi-Newton loop that BFGS and L-BFGS share (``optimlab.optim.bfgs``,
``optimlab.optim.lbfgs``).

Each iteration takes the direction ``d = -H g`` from the method's inverse-Hessian
estimate ``H``, a step ``t`` along it (a line search, or ``lr``), moves
``w <- w + t d`` and gives the method the pair ``s = t d``, ``y = g_new - g`` to update
``H`` with (the secant condition ``H_new y = s``). A call to ``step`` runs up to
``max_iter`` iterations and ``max_eval`` closure evaluations, with the stopping tests
of ``torch.optim.LBFGS``:

* the largest gradient entry is at most ``tolerance_grad``;
* the directional derivative ``g . d`` is above ``-tolerance_change``;
* the step ``t d`` moved no entry by more than ``tolerance_change``, or the loss
  changed by less than ``tolerance_change``.

The first iteration ever goes along ``-g`` with ``t = min(1, 1 / ||g||_1) lr``, later
ones start from ``t = lr`` (a method whose directions carry no natural scale, such as
nonlinear conjugate gradients, may choose its own first trial: ``_trial_step``).
As in ``torch.optim.LBFGS``, a line search may use one
evaluation more than ``max_eval`` leaves; ``max_ls`` caps one search on its own.
``max_eval`` defaults to ``max(max_iter * 5 // 4, max_ls)``: torch's value for
``max_iter >= 20`` (its default), and room for a line search when ``max_iter`` is
small, where torch's ``max_iter * 5 // 4`` leaves one trial (``max_iter=1``: one
evaluation, so a first trial that does not lower the loss stops all progress).
Without a line search the last iteration of a step does not evaluate the loss at the
new point: its pair is completed at the start of the next ``step``.

State (under the first parameter, as ``torch.optim.LBFGS`` keeps it): ``n_iter`` and
``func_evals`` (all steps), the method's own estimate, and ``pending_s``/``pending_g``
while a pair waits for its gradient.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from optimlab.errors import OptimlabError
from optimlab.optim import linesearch
from optimlab.optim.closure import (
    Closure,
    ClosureOptimizer,
    check_choice,
    check_float,
    check_int,
)

LINE_SEARCHES = (None, "strong_wolfe", "backtracking", "exact")


class QuasiNewton(ClosureOptimizer):
    """Base class: subclasses keep an inverse-Hessian estimate in the state and
    implement ``_reset``, ``_direction`` and ``_update``."""

    def __init__(
        self,
        params: Iterable[Any],
        *,
        lr: float,
        max_iter: int,
        max_eval: int | None,
        tolerance_grad: float,
        tolerance_change: float,
        line_search_fn: str | None,
        c1: float,
        c2: float,
        max_ls: int,
        max_params: int | None,
        **method: Any,
    ) -> None:
        if isinstance(lr, Tensor):
            if lr.numel() != 1:
                raise OptimlabError(f"invalid lr: a tensor of {lr.numel()} entries; valid: one")
            check_float("lr", float(lr), 0, open_low=True)
        else:
            check_float("lr", lr, 0, open_low=True)
        check_int("max_iter", max_iter, 1)
        check_int("max_ls", max_ls, 1)
        # torch's default, max_iter * 5 // 4, leaves a line search a single trial when
        # max_iter is 1 (it then stalls wherever t = lr does not lower the loss)
        max_eval = max(max_iter * 5 // 4, max_ls) if max_eval is None else max_eval
        check_int("max_eval", max_eval, 1)
        check_float("tolerance_grad", tolerance_grad, 0)
        check_float("tolerance_change", tolerance_change, 0)
        check_choice("line_search_fn", line_search_fn, LINE_SEARCHES)
        check_float("c1", c1, 0, 1, open_low=True, open_high=True)
        check_float("c2", c2, c1, 1, open_low=True, open_high=True)
        if max_params is not None:
            check_int("max_params", max_params, 1)
        defaults = dict(
            lr=lr,
            max_iter=max_iter,
            max_eval=max_eval,
            tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change,
            line_search_fn=line_search_fn,
            c1=c1,
            c2=c2,
            max_ls=max_ls,
            **method,
        )
        super().__init__(params, defaults, max_params)

    # -- the method ---------------------------------------------------------------

    def _reset(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def _direction(self, state: dict[str, Any], g: Tensor) -> Tensor:
        raise NotImplementedError

    def _update(self, state: dict[str, Any], s: Tensor, y: Tensor) -> None:
        raise NotImplementedError

    def _trial_step(self, state: dict[str, Any], g: Tensor, d: Tensor, t: float) -> float:
        """The line search's first trial along ``d`` (``t``: the loop's choice, above)."""
        return t

    # -- the loop -----------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> Any:  # type: ignore[override]
        """Run up to ``max_iter`` iterations; return the loss at the start."""
        group = self.param_groups[0]
        lr = float(group["lr"])
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        search = group["line_search_fn"]
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        first_loss = self._call(closure)
        loss = self._start_loss(first_loss)
        evals = 1
        state["func_evals"] += 1
        g = self._flat_grad()
        if g.abs().max() <= tolerance_grad:
            return first_loss
        if "pending_s" in state:  # the last fixed step of the previous call
            self._update(state, state.pop("pending_s"), g - state.pop("pending_g"))

        iterations = 0
        while iterations < max_iter:
            iterations += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                self._reset(state)
                t = min(1.0, 1.0 / float(g.abs().sum())) * lr
            else:
                t = lr
            d = self._direction(state, g)
            t = self._trial_step(state, g, d, t)
            prev_loss = loss
            slope = float(g.dot(d))
            if slope > -tolerance_change:
                break

            if search is None:
                self._add(t, d)
                if iterations == max_iter:
                    state["pending_s"], state["pending_g"] = d.mul(t), g
                    break
                loss = self._start_loss(self._call(closure))
                g_new = self._flat_grad()
                used = 1
            else:
                loss, g_new, t, used = self._line_search(closure, group, d, loss, g, slope, t,
                                                         max_eval - evals + 1)  # fmt: skip
                self._add(t, d)
            self._update(state, d.mul(t), g_new.sub(g))
            g = g_new
            evals += used
            state["func_evals"] += used

            if iterations == max_iter or evals >= max_eval:
                break
            if g.abs().max() <= tolerance_grad:
                break
            if d.mul(t).abs().max() <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break
        return first_loss

    def _line_search(
        self,
        closure: Closure,
        group: dict[str, Any],
        d: Tensor,
        f0: float,
        g0: Tensor,
        slope: float,
        t: float,
        budget: int,
    ) -> tuple[float, Tensor, float, int]:
        """``(loss, gradient, t, evaluations)`` at the step the group's search accepts."""
        x = self._flat_params()
        name = group["line_search_fn"]
        limit = min(group["max_ls"], budget)

        def evaluate(step: float) -> tuple[float, Tensor]:
            return self._directional(closure, x, step, d)

        if name == "strong_wolfe":
            result = linesearch.strong_wolfe(
                evaluate, d, f0, g0, slope, t, c1=group["c1"], c2=group["c2"],
                tolerance_change=group["tolerance_change"], max_evals=limit,
            )  # fmt: skip
        elif name == "backtracking":
            result = linesearch.backtracking(
                evaluate, d, f0, g0, slope, t, c1=group["c1"], max_evals=limit
            )
        else:
            result = linesearch.exact(evaluate, d, f0, g0, slope, t, max_evals=limit)
        cut_by_budget = result.out_of_budget and limit < group["max_ls"]
        if (
            result.status == "no_decrease"
            and not cut_by_budget
            and not linesearch.precision_limited(result.smallest_trial, f0, slope)
        ):
            raise OptimlabError(
                linesearch.failure_message(type(self).__name__, name, result, f0, slope)
            )
        return result.f, result.g, result.t, result.evals
