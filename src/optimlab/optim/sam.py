"""Sharpness-aware minimization (Foret et al. 2021, "Sharpness-Aware Minimization for
Efficiently Improving Generalization") and its adaptive form ASAM (Kwon et al. 2021,
"ASAM: Adaptive Sharpness-Aware Minimization for Scale-Invariant Learning of Deep Neural
Networks"), in the pytorch-optimizer package's form: ``SAM``.

Each step takes the gradient at the worst point of a small ball around the weights: the
loss and its gradient at ``w``, an ascent step ``e`` of length ``rho`` along that gradient,
the gradient again at ``w + e``, and the base optimizer's step from ``w`` with that second
gradient. So ``step`` needs a closure, evaluated twice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import torch

from optimlab.errors import OptimlabError, check_range
from optimlab.optim.wrapper import Base, WrapperOptimizer


class SAM(WrapperOptimizer):
    """SAM / ASAM: the base optimizer's step with the gradient at the worst nearby point.

    .. code-block:: text

        input: a base optimizer, rho, adaptive, eta, perturb_eps
        each step(closure):
            g <- grad f(w)                                  (first closure call)
            T = |w| + eta if adaptive else 1                (elementwise)
            e = rho * T^2 g / (||T g|| + perturb_eps)       (||.|| over every group)
            g <- grad f(w + e)                              (second closure call)
            w <- base step of w with g
        returns the loss at w

    Args:
        params: the optimizer to wrap, or parameters / param groups for ``base``.
        base: the base optimizer's registry name or class (default "sgd").
        rho: the neighbourhood's radius >= 0 (default 0.05, the paper's and the
            reference's; ASAM's scaled perturbation usually wants a larger one).
        adaptive: ASAM's scale-invariant neighbourhood (default False).
        eta: ASAM's ``eta`` >= 0 in ``T = |w| + eta`` (default 0, the reference's; the
            ASAM paper's is 0.01).
        perturb_eps: added to the norm (default 1e-12).
        norm_dtype: the dtype the norm ``||T g||`` is summed in; None (the default) is the
            parameters' own. The reference sums in float32 whatever the parameters'
            dtype (``torch.float32`` reproduces it to the last bit); with float64
            parameters that rounds ``e`` to about 1e-8 relative, which is why the
            default differs.
        **base_hyperparameters: the base's (``lr``, ``momentum``, ...), when it is built here.

    The closure must zero the gradients, evaluate the loss, call ``backward()`` and return
    the loss; ``step`` without one raises. The reference expects the first gradient to
    be computed before ``step`` and calls the closure once; here ``step`` calls it for
    both, so that it fits every training loop that hands optimizers a closure.

    References:
        Foret et al. 2021, Algorithm 1; Kwon et al. 2021, Algorithm 1; pytorch-optimizer
        4.1.0, ``SAM``.
    """

    needs_closure = True

    def __init__(
        self,
        params: Iterable[Any] | torch.optim.Optimizer,
        base: Base = "sgd",
        rho: float = 0.05,
        adaptive: bool = False,
        eta: float = 0.0,
        perturb_eps: float = 1e-12,
        norm_dtype: torch.dtype | None = None,
        **base_hyperparameters: Any,
    ) -> None:
        check_range("rho", float(rho), 0.0)
        check_range("eta", float(eta), 0.0)
        check_range("perturb_eps", float(perturb_eps), 0.0)
        if not isinstance(adaptive, bool):
            raise OptimlabError(f"invalid adaptive: {adaptive!r}; expected True or False")
        self.rho, self.adaptive, self.eta = float(rho), adaptive, float(eta)
        if norm_dtype is not None and not (
            isinstance(norm_dtype, torch.dtype) and norm_dtype.is_floating_point
        ):
            raise OptimlabError(
                f"invalid norm_dtype: {norm_dtype!r}; valid: None (the parameters') "
                "or a floating-point torch.dtype"
            )
        self.perturb_eps, self.norm_dtype = float(perturb_eps), norm_dtype
        own = {
            "rho": self.rho,
            "adaptive": adaptive,
            "eta": self.eta,
            "perturb_eps": perturb_eps,
            "norm_dtype": norm_dtype,
        }
        super().__init__(params, base, base_hyperparameters, own)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One SAM step; ``closure`` is evaluated at ``w`` and at ``w + e``."""
        if closure is None:
            raise OptimlabError(
                f"{type(self).__name__}.step needs a closure that zeroes the gradients, "
                "evaluates the loss, calls backward() and returns the loss; it is "
                "evaluated twice per step, at w and at the perturbed w + e"
            )
        with torch.enable_grad():
            loss = closure()
        moved = self._perturb()
        self.zero_grad()
        with torch.enable_grad():
            closure()
        for p, old in moved:
            p.copy_(old)
        self.base.step()
        return loss

    def _scale(self, p: torch.Tensor) -> torch.Tensor | float:
        """``T``: ``|w| + eta`` for ASAM, 1 for SAM."""
        return p.abs() + self.eta if self.adaptive else 1.0

    def _perturb(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Move every parameter with a gradient to ``w + e``; return them with their ``w``."""
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        if not params:
            return []
        dtype = self.norm_dtype or functools.reduce(torch.promote_types, [p.dtype for p in params])
        device = params[0].device
        norms = [torch.linalg.vector_norm(self._scale(p) * p.grad) for p in params]
        squares = torch.stack([n.to(device=device, dtype=dtype) for n in norms]).square()
        factor = self.rho / (squares.sum().sqrt() + self.perturb_eps)
        moved = []
        for p in params:
            scale = self._scale(p)
            moved.append((p, p.detach().clone()))
            p.add_(scale * scale * p.grad * factor.to(device=p.device, dtype=p.dtype))
        return moved
