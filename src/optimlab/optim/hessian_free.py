"""Hessian-free optimization: truncated Newton with Gauss-Newton products (Martens 2010)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from optimlab.curvature import GradientGraph, conjugate_gradient, ggn_operator
from optimlab.errors import OptimlabError
from optimlab.optim.closure import (
    Closure,
    check_bool,
    check_choice,
    check_float,
    check_int,
    objective_of,
)
from optimlab.optim.newton import Damped, check_damping

CURVATURES = ("auto", "gauss_newton", "hessian")
#: CG iterates are kept for backtracking at iterations ceil(KEEP_BASE^j) (Martens 2010)
KEEP_BASE = 1.3
MatVec = Callable[[Tensor], Tensor]


def kept_iterations(max_iter: int) -> set[int]:
    """The CG iterations whose iterates are kept: ``ceil(1.3^j)`` for ``j = 0, 1, ...``."""
    kept, j = set(), 0
    while (i := math.ceil(KEEP_BASE**j)) <= max_iter:
        kept.add(i)
        j += 1
    return kept


class HessianFree(Damped):
    """Hessian-free optimization: each step solves ``(G + lambda I) d = -g`` approximately
    by conjugate gradients on Gauss-Newton-vector products, then ``w <- w + lr d``.

    .. code-block:: text

        input: lr, damping (lambda), damping_update, curvature, cg_max_iter,
               cg_progress_tol (eps), cg_rtol, cg_decay (zeta), backtrack
        per step:
            f, g <- the loss and gradient at w (one closure call)
            A v = G v + lambda v, G the Gauss-Newton matrix J^T H_L J of the loss
              (curvature "gauss_newton"; "hessian": H, the true Hessian; "auto":
              Gauss-Newton where the closure carries its model, else the Hessian)
            CG on A d = -g from d_0 = zeta d_prev (the last step's CG solution), until
              cg_max_iter iterations, ||A d + g|| <= cg_rtol ||g||, or Martens' progress
              test: at iteration i > k = max(10, i/10), phi_i < 0 and
              (phi_i - phi_{i-k}) / phi_i < k eps, phi(d) = 1/2 d.A d + g.d
            backtrack: of the iterates kept at i = ceil(1.3^j) and the last, walk back
              from the last while the loss f(w + lr d_i) still falls; else the last
            w <- w + lr d
            levenberg_marquardt: rho <- (f(w + lr d) - f) / q,
                q = lr g.d + lr^2/2 d.G d, the undamped quadratic model's change
              lambda <- lambda * 3/2 if rho < 1/4;  lambda * 2/3 if rho > 3/4
              a step that raised the loss is undone

    ``G`` is positive semi-definite for a loss convex in the model's outputs (the cross-
    entropies, squared error), so with ``lambda > 0`` CG always meets positive curvature;
    with ``curvature="hessian"`` a direction of negative curvature ends CG with its
    iterate so far (``-g`` if that is still 0). Each product is one forward-mode pass
    and two backward passes through graphs built once per step
    (``optimlab.curvature.ggn_operator``); no matrix is formed. With ``lambda -> 0`` and
    CG run to convergence a step is the Gauss-Newton step ``-G^-1 g``, which on linear
    least squares is Newton's.

    Cost per step: one CG iteration is one curvature product (a few gradients' worth)
    and ``O(n)`` vector work; up to ``cg_max_iter`` of them, plus one closure call for
    the gradient and one per backtracking trial (one at least, for the
    Levenberg-Marquardt ratio). Memory: CG's four vectors, the previous solution, and
    with ``backtrack`` the kept iterates, about ``log(cg_max_iter) / log(1.3)`` vectors
    (20 at 250, and the last).

    The closure: Gauss-Newton products need the model's outputs, which a plain
    ``torch.optim`` closure hides; ``optimlab.optim.closure.attach_objective(closure,
    model, loss_fn, x, y)`` marks the closure as computing ``loss_fn(model(x), y)``, and
    the trainer's closures carry that mark. This keeps the closure a plain closure (it
    still returns the loss, so the trainer drives this optimizer as it drives L-BFGS),
    and the products are those of ``optimlab.curvature``, written once. With
    ``curvature="hessian"`` any closure works (double backward through it);
    ``"auto"`` (the default) takes Gauss-Newton products where the closure carries an
    objective whose model holds all the parameters, the Hessian otherwise. The
    curvature is that of ``loss_fn`` in the model's outputs: a penalty on the weights
    inside the loss enters the gradient but not ``G``. The products run the model as
    the closure does; batch-norm statistics are put back after them.

    Args:
        params: the parameters, one group (all are treated as one vector); with
            ``gauss_newton``, parameters of the closure's model.
        lr: the step along the CG solution.
        damping: ``lambda >= 0`` (the start value under ``levenberg_marquardt``, where
            it must be > 0).
        damping_update: ``"levenberg_marquardt"`` or ``"fixed"``.
        curvature: ``"auto"``, ``"gauss_newton"`` or ``"hessian"``.
        cg_max_iter: CG iterations per step at most (Martens: 250).
        cg_progress_tol: ``eps`` of the progress test (0: off; Martens: 5e-4).
        cg_rtol: CG's relative residual tolerance.
        cg_decay: ``zeta``, the warm start's factor (0: start CG from 0; Martens: 0.95).
        backtrack: backtrack over the kept CG iterates.
        tolerance_grad: no step when the largest gradient entry is at most this.

    State: ``damping`` (the current lambda), ``ratio`` (the last rho), ``solution`` (the
    last CG solution, for the warm start), ``cg_iterations``, ``cg_status``,
    ``curvature`` (the products the last step used), ``n_iter``.

    References:
        Martens 2010, "Deep learning via Hessian-free optimization", ICML (Alg. 1,
        sec. 4); Schraudolph 2002, "Fast curvature matrix-vector products for
        second-order gradient descent"; Nocedal & Wright, *Numerical Optimization*, 2nd
        ed., sec. 7.1 (truncated Newton).
    """

    registry_name = "hessian_free"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        damping: float = 1.0,
        damping_update: str = "levenberg_marquardt",
        curvature: str = "auto",
        *,
        cg_max_iter: int = 250,
        cg_progress_tol: float = 5e-4,
        cg_rtol: float = 1e-8,
        cg_decay: float = 0.95,
        backtrack: bool = True,
        tolerance_grad: float = 1e-7,
    ) -> None:
        check_float("lr", lr, 0, open_low=True)
        check_damping(damping, damping_update, "1.0")
        check_choice("curvature", curvature, CURVATURES)
        check_int("cg_max_iter", cg_max_iter, 1)
        check_float("cg_progress_tol", cg_progress_tol, 0, 1, open_high=True)
        check_float("cg_rtol", cg_rtol, 0, 1, open_low=True, open_high=True)
        check_float("cg_decay", cg_decay, 0, 1)
        check_bool("backtrack", backtrack)
        check_float("tolerance_grad", tolerance_grad, 0)
        defaults = dict(
            lr=lr,
            damping=damping,
            damping_update=damping_update,
            curvature=curvature,
            cg_max_iter=cg_max_iter,
            cg_progress_tol=cg_progress_tol,
            cg_rtol=cg_rtol,
            cg_decay=cg_decay,
            backtrack=backtrack,
            tolerance_grad=tolerance_grad,
        )
        super().__init__(params, defaults, None)

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> Any:  # type: ignore[override]
        """One truncated Newton step; return the loss before it."""
        group, state = self._begin(closure)
        kind = self._curvature(closure, group["curvature"])
        state["curvature"] = kind
        graph = None
        if kind == "hessian":
            loss, graph = GradientGraph.of_closure(closure, self._params)
            self._count_call()
            g = graph.gradient
        else:
            loss = self._call(closure)
            g = self._flat_grad()
        f0 = self._start_loss(loss)
        if g.abs().max() <= group["tolerance_grad"]:
            return loss
        lam = float(state["damping"])
        restore = None
        if graph is None:
            curvature, restore = self._gauss_newton(objective_of(closure))
        else:
            curvature = graph
        candidates = self._solve(state, group, curvature, g, lam)
        if restore is not None:
            restore()
        del curvature, graph  # frees the graphs before the loss is evaluated again
        x = self._flat_params()
        t = float(group["lr"])
        d, phi, f_new = self._choose(closure, candidates, x, t, group["backtrack"])
        self._add(t, d)
        if group["damping_update"] == "levenberg_marquardt":
            gd = float(g.dot(d))
            dgd = 2.0 * (phi - gd) - lam * float(d.dot(d))  # d.G d from phi = 1/2 d.A d + g.d
            self._adapt(state, lam, f0, f_new, t * gd + 0.5 * t * t * dgd, x)
        state["n_iter"] += 1
        return loss

    def _foreign(self, objective: Any) -> list[tuple[int, ...]]:
        """The shapes of the parameters that are not the objective's model's."""
        own = {id(p) for p in objective.model.parameters()}
        return [tuple(p.shape) for p in self._params if id(p) not in own]

    def _curvature(self, closure: Closure, kind: str) -> str:
        """``"gauss_newton"`` or ``"hessian"``: what this step multiplies by."""
        objective = objective_of(closure)
        if kind == "auto":
            usable = objective is not None and not self._foreign(objective)
            return "gauss_newton" if usable else "hessian"
        if kind == "gauss_newton" and objective is None:
            raise OptimlabError(
                "HessianFree: curvature='gauss_newton' needs the model's outputs; mark the "
                "closure with optimlab.optim.closure.attach_objective(closure, model, "
                "loss_fn, x, y) (the trainer's closures carry it), or use "
                "curvature='hessian', which works with any closure"
            )
        if kind == "gauss_newton" and (foreign := self._foreign(objective)):
            raise OptimlabError(
                f"HessianFree: parameters of shape {foreign} are not the closure's model's; "
                "Gauss-Newton products differentiate the model's outputs in its own "
                "parameters (use curvature='hessian' for others)"
            )
        return kind

    def _gauss_newton(self, objective: Any) -> tuple[MatVec, Callable[[], None]]:
        """``v -> G v`` on the flat parameters, and what puts the model's buffers back."""
        model = objective.model
        names = {id(p): n for n, p in model.named_parameters()}
        point = {names[id(p)]: p.detach() for p in self._params}
        buffers = {n: b.clone() for n, b in model.named_buffers()}
        matvec, _ = ggn_operator(objective, point)

        def restore() -> None:
            for n, b in model.named_buffers():
                b.copy_(buffers[n])

        return matvec, restore

    def _solve(
        self,
        state: dict[str, Any],
        group: dict[str, Any],
        curvature: MatVec,
        g: Tensor,
        lam: float,
    ) -> list[tuple[Tensor, float]]:
        """CG on ``(G + lambda I) d = -g``: the kept iterates ``(d_i, phi_i)``, the last
        one last."""
        counts = self._counts()

        def damped(v: Tensor) -> Tensor:
            counts["hvp"] += 1
            return curvature(v) + lam * v

        b = g.neg()
        max_iter, eps = group["cg_max_iter"], group["cg_progress_tol"]
        keep = kept_iterations(max_iter)
        phis: list[float] = []
        kept: list[tuple[Tensor, float]] = []
        last: list[tuple[Tensor, float]] = []

        def watch(i: int, d: Tensor, r: Tensor) -> bool:
            phi = -0.5 * float(d.dot(b + r))  # 1/2 d.A d + g.d, without a product
            phis.append(phi)
            last[:] = [(d, phi)]
            if i in keep:
                kept.append((d, phi))
            window = max(10, i // 10)
            if eps == 0 or i <= window or not phi < 0:
                return False
            return (phi - phis[i - window - 1]) / phi < window * eps

        prev = state.get("solution")
        x0 = None
        if group["cg_decay"] > 0 and prev is not None and prev.shape == g.shape:
            x0 = prev.mul(group["cg_decay"])
        result = conjugate_gradient(damped, b, x0, rtol=group["cg_rtol"], max_iter=max_iter,
                                    callback=watch)  # fmt: skip
        state["cg_iterations"], state["cg_status"] = result.iterations, result.status
        d = result.x
        if not bool(d.any()):  # negative curvature before the first step
            d = g.neg()
        state["solution"] = d
        if last and last[0][0] is d:
            if not kept or kept[-1][0] is not d:
                kept.append(last[0])
        else:
            # CG ended at its start or on negative curvature, at an iterate it did not
            # report: its phi costs one product
            kept.append((d, 0.5 * float(d.dot(damped(d))) + float(g.dot(d))))
        return kept

    def _choose(
        self,
        closure: Closure,
        candidates: list[tuple[Tensor, float]],
        x: Tensor,
        t: float,
        backtrack: bool,
    ) -> tuple[Tensor, float, float]:
        """``(d, phi, f(x + t d))`` of the iterate to step along."""
        d, phi = candidates[-1]
        f = self._loss_at(closure, x, t, d)
        if backtrack:
            for earlier, earlier_phi in reversed(candidates[:-1]):
                f_earlier = self._loss_at(closure, x, t, earlier)
                if not f_earlier < f:
                    break
                d, phi, f = earlier, earlier_phi, f_earlier
        return d, phi, f

    def _loss_at(self, closure: Closure, x: Tensor, t: float, d: Tensor) -> float:
        """The loss at ``x + t d`` (non-finite as inf); the parameters are put back."""
        value, _ = self._directional(closure, x, t, d)
        return value if math.isfinite(value) else math.inf
