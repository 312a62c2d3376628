"""Prodigy (Mishchenko & Defazio 2024, "Prodigy: An Expeditiously Adaptive
Parameter-Free Learner"), in the prodigyopt package's form: ``Prodigy``.

Adam whose learning rate is multiplied by an estimate ``d`` of the distance from the
initial weights to a solution, grown from a tiny ``d0`` as the gradients reveal it:
``d_hat = sum_k d_k lr_k <g_k, w_0 - w_k> / ||s||_1`` with ``s`` a weighted sum of the
gradients, and ``d`` the largest such estimate so far. ``lr`` stays at 1 (its default), a
multiplier on ``d``.

The estimate spans every parameter of every param group, so one step has two passes:
moments and sums over all groups, then the new ``d``, then every group's move. That is
not a chain of per-group transforms, so ``Prodigy`` runs the common options (maximize,
clipping, gradient noise, skipping non-finite steps) itself and has no ``fast`` path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from optimlab.errors import OptimlabError, check_range
from optimlab.optim.adaptive import check_betas
from optimlab.optim.base import SKIPPED, ChainOptimizer
from optimlab.optim.lamb import check_flag
from optimlab.optim.transform import init_steps

#: the optimizer-level state entry holding the estimate (as Python floats, like the reference)
ESTIMATE = "prodigy_estimate"


class Prodigy(ChainOptimizer):
    """Prodigy: Adam scaled by a running estimate ``d`` of the distance to a solution.

    .. code-block:: text

        input: lr, betas = (b1, b2), beta3 (None: sqrt(b2)), eps, weight_decay, decouple,
               use_bias_correction, safeguard_warmup, d0, d_coef, growth_rate
        d <- d0;  d_max <- d0;  r <- 0;  w_0 <- w;  s <- 0
        for k = 0, 1, ...:
            g <- grad (+ weight_decay * w without decouple)
            dlr <- d * lr * (sqrt(1 - b2^(k+1)) / (1 - b1^(k+1)) if use_bias_correction else 1)
                   (each group with its own lr)
            r <- b3 r + (d / d0) dlr <g, w_0 - w>                  (over every group)
            m <- b1 m + d (1 - b1) g;   v <- b2 v + d^2 (1 - b2) g^2
            s <- b3 s + (d / d0) (d if safeguard_warmup else dlr) g
            d_hat <- d_coef * r / ||s||_1                          (||s||_1 over every group)
            d <- max(d, d_hat) at the first growth;  d_max <- max(d_max, d_hat)
            d <- min(d_max, d * growth_rate)
            w <- w - dlr * weight_decay * w                        (decouple)
            w <- w - dlr * m / (sqrt(v) + d * eps)     (b1 = 0: w <- w - dlr d g / (...))

    Defaults are prodigyopt's (lr 1.0, betas (0.9, 0.999), beta3 sqrt(b2), eps 1e-8, no
    weight decay, decoupled when set, no bias correction, no safeguard, d0 1e-6, d_coef 1,
    unbounded growth). ``d`` is shared by every param group, as in the reference. Each
    group's ``lr`` scales its own step and its terms of the estimate (``dlr`` is the
    group's); the reference refuses groups whose lrs differ (other than 0), and with
    equal lrs the two agree. Each group keeps its ``weight_decay`` and ``eps``;
    ``betas``, ``beta3``, ``d0``, ``d_coef``, ``growth_rate``, ``use_bias_correction``
    and ``safeguard_warmup`` are the first group's, as in the reference. While
    ``||s||_1`` is 0 (every gradient 0 so far) no step is taken, as in the reference. A
    group at lr 0 is left untouched (the reference still applies its decoupled weight
    decay, at the others' step size). Not offered: the reference's ``slice_p``
    (estimating on a strided subset) and FSDP support.

    State: ``exp_avg`` (m, when b1 > 0), ``exp_avg_sq`` (v), ``s`` and ``p0`` (w_0) per
    parameter; ``d``, ``d_max``, the running numerator ``r`` and the count ``k`` in
    ``optimizer.state["prodigy_estimate"]``.
    """

    #: ``fast=True`` is refused (see the class docstring)
    supports_fast = False

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        betas: tuple[float, float] = (0.9, 0.999),
        beta3: float | None = None,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decouple: bool = True,
        use_bias_correction: bool = False,
        safeguard_warmup: bool = False,
        d0: float = 1e-6,
        d_coef: float = 1.0,
        growth_rate: float = float("inf"),
        **options: Any,
    ) -> None:
        if options.get("fast"):
            raise OptimlabError(
                "invalid fast=True for Prodigy: its step estimates d over every param group "
                "between two passes, which the compiled per-group chain cannot run; valid: False"
            )
        options.pop("fast", None)
        hp = dict(
            lr=lr,
            betas=betas,
            beta3=beta3,
            eps=eps,
            weight_decay=weight_decay,
            decouple=decouple,
            use_bias_correction=use_bias_correction,
            safeguard_warmup=safeguard_warmup,
            d0=d0,
            d_coef=d_coef,
            growth_rate=growth_rate,
        )
        # the chain holds the common options only; the rule is this class's two passes
        super().__init__(params, [], hp, **options)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        check_betas(group)
        if group["beta3"] is not None:
            check_range("beta3", float(group["beta3"]), 0.0, 1.0)
        check_range("eps", float(group["eps"]), 0.0, low_open=True)
        check_range("weight_decay", float(group["weight_decay"]), 0.0)
        for key in ("decouple", "use_bias_correction", "safeguard_warmup"):
            check_flag(group, key)
        check_range("d0", float(group["d0"]), 0.0, low_open=True)
        check_range("d_coef", float(group["d_coef"]), 0.0, low_open=True)
        check_range("growth_rate", float(group["growth_rate"]), 1.0)
        lr = group["lr"]
        if callable(lr) and not isinstance(lr, Tensor):
            raise OptimlabError(
                "invalid lr for Prodigy: a schedule; valid: a number >= 0 (Prodigy's lr "
                "multiplies d and is shared by every group, so set it between steps)"
            )
        check_range("lr", float(lr), 0.0)

    def _estimate(self) -> dict[str, float]:
        first = self.param_groups[0]
        estimate = self.state.get(ESTIMATE)
        if estimate is None:
            d0 = float(first["d0"])
            estimate = self.state[ESTIMATE] = {"d": d0, "d_max": d0, "numerator": 0.0, "k": 0}
        return estimate

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One Prodigy step over every param group (two passes)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        lr = max(float(group["lr"]) for group in self.param_groups)
        work = [w for w in map(self._incoming, self.param_groups) if w is not None]
        first = self.param_groups[0]
        estimate = self._estimate()
        b1, b2 = first["betas"]
        b3 = math.sqrt(b2) if first["beta3"] is None else first["beta3"]
        d, d0, k = estimate["d"], float(first["d0"]), estimate["k"]
        estimate_d_before = d  # the step size uses the d the moments were built with
        scale = 1.0
        if first["use_bias_correction"]:
            scale = (1 - b2 ** (k + 1)) ** 0.5 / (1 - b1 ** (k + 1))
        numerator = estimate["numerator"] * b3
        denominator = 0.0
        for group, params, grads, states in work:
            if float(group["lr"]) == 0.0:
                continue
            dlr = d * float(group["lr"]) * scale  # the group's own step size
            for p, g, state in zip(params, grads, states):
                p0 = state.setdefault("p0", p.detach().clone(memory_format=torch.preserve_format))
                numerator += (d / d0) * dlr * torch.dot(g.flatten(), (p0 - p).flatten()).item()
                if b1 > 0:
                    _buffer(state, "exp_avg", p).mul_(b1).add_(g, alpha=d * (1 - b1))
                _buffer(state, "exp_avg_sq", p).mul_(b2).addcmul_(g, g, value=d * d * (1 - b2))
                s = _buffer(state, "s", p)
                s.mul_(b3).add_(g, alpha=(d / d0) * (d if first["safeguard_warmup"] else dlr))
                denominator += s.abs().sum().item()
        if denominator == 0:
            return loss  # no information on d yet: no step, as in the reference
        if lr > 0:
            d_hat = float(first["d_coef"]) * numerator / denominator
            if d == d0:
                d = max(d, d_hat)
            estimate["d_max"] = d_max = max(estimate["d_max"], d_hat)
            d = min(d_max, d * float(first["growth_rate"]))
        estimate.update(d=d, numerator=numerator, k=k + 1)
        for group, params, grads, states in work:
            decay, eps = group["weight_decay"], group["eps"]
            dlr = estimate_d_before * float(group["lr"]) * scale
            for p, g, state in zip(params, grads, states):
                if "exp_avg_sq" not in state:
                    continue  # a frozen group (lr 0): no moments, no move
                denom = state["exp_avg_sq"].sqrt().add_(d * eps)
                if decay != 0 and group["decouple"]:
                    p.add_(p, alpha=-decay * dlr)
                if b1 > 0:
                    p.addcdiv_(state["exp_avg"], denom, value=-dlr)
                else:
                    p.addcdiv_(g, denom, value=-dlr * d)
        return loss

    def _incoming(self, group: dict[str, Any]) -> tuple | None:
        """The group's parameters with a gradient, their gradients after maximize, coupled
        weight decay and the common options, and their states (step counted); None when
        the group has nothing to step (or skips a non-finite step)."""
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            return None
        grads = [p.grad for p in params]
        if any(g.is_sparse for g in grads):
            raise OptimlabError("Prodigy does not support sparse gradients")
        if group["skip_nonfinite"] and not all(bool(torch.isfinite(g).all()) for g in grads):
            self.state[SKIPPED] = self.state.get(SKIPPED, 0) + 1
            return None
        states = [self.state[p] for p in params]
        init_steps(params, states)
        for state in states:
            state["step"] += 1
        if group["maximize"]:
            grads = [-g for g in grads]
        for transform in self.transforms:  # clip -> noise, as in every chain
            grads = transform.update(grads, params, states, group)
        if group["weight_decay"] != 0 and not group["decouple"]:
            grads = [g.add(p, alpha=group["weight_decay"]) for g, p in zip(grads, params)]
        return group, params, grads, states


def _buffer(state: dict, key: str, like: Tensor) -> Tensor:
    value = state.get(key)
    if value is None:
        value = state[key] = torch.zeros_like(like, memory_format=torch.preserve_format)
    return value
