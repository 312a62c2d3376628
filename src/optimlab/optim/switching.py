"""Adam, then SGD: lecture 003's "Adam+SGD may achieve fast speed and better accuracy".

``SWATS`` switches by Keskar & Socher's criterion (2017, "Improving Generalization
Performance by Switching from Adam to SGD", arXiv:1712.07628, Algorithm 1), with the
SGD learning rate estimated from the Adam steps; ``AdamThenSGD`` switches at a given
step to SGD with a given learning rate and momentum.

Both run Adam exactly as ``optimlab.optim.Adam`` does (torch's form: ``eps`` outside the
root of the bias-corrected second moment; the paper's "epsilon hat" form is the same
with ``eps_hat = eps * sqrt(1 - b2^k)``) and SGD exactly as torch-form ``SGD`` with
momentum, its buffer started afresh at the switch. The SGD phase keeps its momentum in
``exp_avg``, Adam's first-moment buffer, which Algorithm 1 zeroes at the switch: two
parameter-sized buffers in all, before and after.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from numbers import Integral
from typing import Any

import torch
from torch import Tensor

from optimlab.errors import OptimlabError, check_range
from optimlab.optim.adam import ScaleByAdam
from optimlab.optim.adaptive import check_betas
from optimlab.optim.base import ChainOptimizer
from optimlab.optim.decay import AddWeightDecay
from optimlab.optim.scale import check_lr
from optimlab.optim.transform import (
    Hyper,
    Transform,
    buffer,
    learning_rate,
    per_step,
    step_of,
)

_ADAM = ScaleByAdam()


def _adam_move(g: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
    """``-lr_t`` times Adam's direction, computed as ``Adam``'s chain computes it."""
    adam_hp = {
        "betas": hp["betas"],
        "eps": hp["eps"],
        "eps_root": 0.0,
        "amsgrad": False,
        "bias_correction": True,
    }
    d = _ADAM.update_one(g, p, state, adam_hp)
    return d * per_step(-learning_rate(hp, state), d)


def _sgd_move(g: Tensor, state: dict, lr: float, momentum: float, first: bool) -> Tensor:
    """torch-form SGD with momentum, its buffer ``b`` kept in ``exp_avg``:
    ``b <- momentum b + g`` (``b <- g`` at the first SGD step), ``u = -lr b``; the same
    operations as ``Trace`` and ``ScaleByLearningRate``, so the same rounding."""
    if momentum == 0:
        return g * -lr
    buf = state["exp_avg"]
    if first:
        buf.copy_(g)
    else:
        buf.mul_(momentum).add_(g)
    return buf * -lr


class ScaleBySwats(Transform):
    """SWATS: Adam until the SGD learning rate its steps imply has settled, then SGD
    with momentum ``b1`` at that rate, as the move (``lr`` is applied here).

    .. code-block:: text

        Adam phase (group-wide inner products over the group's parameters):
            p <- -lr_t * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)   (Adam's step)
            if p.u != 0:
                gamma <- (p.p) / (-p.u)
                lam <- b2 * lam + (1 - b2) * gamma
                if t > 1 and |lam / (1 - b2^t) - gamma| < switch_eps
                        and lam / (1 - b2^t) > 0:
                    switched <- 1;  Lambda <- lam / (1 - b2^t);  m <- 0
            u <- p
        SGD phase:
            m <- b1 * m + u;  u <- -(1 - b1) * Lambda * m

    Hyperparameters:
        lr: ``lr_t``, Adam's learning rate: a number >= 0, a 0-d tensor or a
            schedule (the SGD phase uses ``Lambda``).
        betas: ``(b1, b2)``, each in [0, 1): Adam's, the SGD momentum (``b1``) and the
            decay of the estimate's average (``b2``) (default (0.9, 0.999)).
        eps: ``eps`` >= 0, Adam's, outside the root (default 1e-9, the paper's).
        switch_eps: the criterion's tolerance, >= 0 (default 1e-9, the paper's; 0 never
            switches).

    State:
        exp_avg: ``m``; after the switch the SGD momentum buffer.
        exp_avg_sq: ``v``.
        lambda_avg: ``lam``, the running average of ``gamma`` (0-d, the same in every
            parameter of the group).
        sgd_lr: ``Lambda``, the SGD learning-rate estimate, set at the switch (0-d).
        switched: 1 once the group has switched to SGD, else 0 (0-d).

    The paper's vector is all the model's parameters: here a param group is one
    vector, so one group switches as the paper does, and a group per layer switches
    layer by layer. Algorithm 1 does not guard the sign of ``Lambda``; a non-positive
    estimate would make SGD climb, so it never triggers the switch here.

    References:
        Keskar & Socher 2017, Algorithm 1.
    """

    defaults = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-9, "switch_eps": 1e-9}
    state_keys = ("exp_avg", "exp_avg_sq", "lambda_avg", "sgd_lr", "switched")
    # the inner products span the group: never stepped as concatenations or in parts
    elementwise = False

    def validate(self, hp: Hyper) -> None:
        check_lr(hp)
        check_betas(hp)
        check_range("eps", float(hp["eps"]), 0.0)
        check_range("switch_eps", float(hp["switch_eps"]), 0.0)

    def update(
        self, updates: list[Tensor], params: list[Tensor], states: list[dict], hp: Hyper
    ) -> list[Tensor]:
        b1, b2 = hp["betas"]
        for p, state in zip(params, states):
            for key in ("lambda_avg", "sgd_lr", "switched"):
                if key not in state:
                    state[key] = torch.zeros((), dtype=p.dtype, device=p.device)
        lead = states[0]
        if bool(lead["switched"]):
            # exp_avg was zeroed at the switch, so the first SGD step sets it to u exactly
            rate = (1 - b1) * float(lead["sgd_lr"])
            return [_sgd_move(g, s, rate, b1, False) for g, s in zip(updates, states)]
        moves = [_adam_move(g, p, s, hp) for g, p, s in zip(updates, params, states)]
        # p.u and p.p over the whole group, in float64 on the host: one sync per step
        pu = sum(float((m * g).sum(dtype=torch.float64)) for m, g in zip(moves, updates))
        if pu != 0:
            pp = sum(float((m * m).sum(dtype=torch.float64)) for m in moves)
            gamma = pp / -pu
            lam = b2 * float(lead["lambda_avg"]) + (1 - b2) * gamma
            t = step_of(lead)
            estimate = lam / (1 - b2**t)
            switch = t > 1 and abs(estimate - gamma) < hp["switch_eps"] and estimate > 0
            for state in states:
                state["lambda_avg"].fill_(lam)
                if switch:
                    state["switched"].fill_(1.0)
                    state["sgd_lr"].fill_(estimate)
                    state["exp_avg"].zero_()  # Algorithm 1: v_k = 0
        return moves


class ScaleByAdamThenSGD(Transform):
    """Adam for ``switch_step`` updates, then torch-form SGD with momentum, as the move
    (the learning rates are applied here).

    .. code-block:: text

        t <= switch_step:  u <- -lr_t * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
        t > switch_step:   m <- sgd_momentum * m + u   (m <- u at t = switch_step + 1)
                           u <- -sgd_lr * m             (u <- -sgd_lr * u without momentum)

    Hyperparameters:
        lr: ``lr_t``, Adam's learning rate: a number >= 0, a 0-d tensor or a schedule.
        betas: ``(b1, b2)``, Adam's, each in [0, 1) (default (0.9, 0.999)).
        eps: ``eps`` >= 0, Adam's, outside the root (default 1e-8).
        switch_step: the number of Adam updates, an integer >= 0 (default 1000).
        switch_epoch: ``None``, or the number of epochs of Adam (an integer >= 0), which
            a run turns into ``switch_step`` (``AdamThenSGD.resolve_epochs``); a group
            whose epoch is not resolved refuses to step.
        sgd_lr: ``sgd_lr`` >= 0, SGD's learning rate (default 0.01).
        sgd_momentum: ``sgd_momentum`` in [0, 1), SGD's (default 0.9).

    State:
        exp_avg: ``m``; from the switch on the SGD momentum buffer.
        exp_avg_sq: ``v``.

    References:
        Keskar & Socher 2017 (a switch at a fixed point is their baseline); lecture 003.
    """

    defaults = {
        "lr": 1e-3,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "switch_step": 1000,
        "switch_epoch": None,
        "sgd_lr": 0.01,
        "sgd_momentum": 0.9,
    }
    state_keys = ("exp_avg", "exp_avg_sq")

    def validate(self, hp: Hyper) -> None:
        check_lr(hp)
        check_betas(hp)
        check_range("eps", float(hp["eps"]), 0.0)
        for key in ("switch_step", "switch_epoch"):
            value = hp[key]
            if value is None and key == "switch_epoch":
                continue
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
                raise OptimlabError(f"invalid {key}: {value!r}; expected an integer >= 0")
        check_range("sgd_lr", float(hp["sgd_lr"]), 0.0)
        check_range("sgd_momentum", float(hp["sgd_momentum"]), 0.0, 1.0, high_open=True)

    def update_one(self, u: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        t = int(step_of(state))  # a host sync when compiled: the phase is a branch
        switch = hp["switch_step"]
        if t <= switch:
            return _adam_move(u, p, state, hp)
        buffer(state, "exp_avg", p)  # both exist even with switch_step = 0
        buffer(state, "exp_avg_sq", p)
        return _sgd_move(u, state, hp["sgd_lr"], hp["sgd_momentum"], t == switch + 1)


class SWATS(ChainOptimizer):
    """SWATS: Adam, switching to SGD with momentum when the SGD learning rate that Adam's
    steps imply has settled (Keskar & Socher 2017, Algorithm 1).

    .. code-block:: text

        input: lr (Adam's), betas = (b1, b2), eps, switch_eps, weight_decay (coupled L2)
        per param group (one vector, as the paper's x), for k = 1, 2, ...:
            g_k <- grad + weight_decay * w
            if switched:                                   (SGD phase)
                v_k = b1 v_{k-1} + g_k;  w <- w - (1 - b1) Lambda v_k
                continue
            m_k = b1 m + (1 - b1) g_k;   a_k = b2 a + (1 - b2) g_k^2
            p_k = -lr (m_k / (1 - b1^k)) / (sqrt(a_k / (1 - b2^k)) + eps);  w <- w + p_k
            if p_k . g_k != 0:
                gamma_k = (p_k . p_k) / (-p_k . g_k)
                lambda_k = b2 lambda_{k-1} + (1 - b2) gamma_k
                if k > 1 and |lambda_k / (1 - b2^k) - gamma_k| < switch_eps
                        (and lambda_k / (1 - b2^k) > 0):
                    switched;  v_k = 0;  Lambda = lambda_k / (1 - b2^k)

    Until the switch the iterates are ``Adam(lr, betas, eps, weight_decay)``'s; after
    it, ``SGD(lr=(1 - b1) Lambda, momentum=b1)``'s with a fresh buffer. The phase and
    the estimate live in the state (``switched``, ``sgd_lr``, ``lambda_avg``), so they
    survive ``state_dict``; ``phase(group)`` reads them.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-9,
        weight_decay: float = 0.0,
        *,
        switch_eps: float = 1e-9,
        **options: Any,
    ) -> None:
        hp = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, switch_eps=switch_eps)
        super().__init__(params, [AddWeightDecay(), ScaleBySwats()], hp, **options)

    def phase(self, group: int = 0) -> tuple[str, float | None]:
        """``("adam", None)``, or ``("sgd", Lambda)`` once the group has switched."""
        for p in self.param_groups[group]["params"]:
            state = self.state.get(p)
            if state and "switched" in state:
                if bool(state["switched"]):
                    return "sgd", float(state["sgd_lr"])
                break
        return "adam", None


class AdamThenSGD(ChainOptimizer):
    """Adam for a fixed number of updates, then SGD with momentum (lecture 003's
    "Adam+SGD").

    .. code-block:: text

        input: lr, betas = (b1, b2), eps (Adam's), switch_step, sgd_lr, sgd_momentum,
               weight_decay (coupled L2, both phases)
        for t = 1, 2, ...:
            g <- grad + weight_decay * w
            if t <= switch_step:  Adam:  w <- w - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
            else:                 SGD:   b <- sgd_momentum b + g  (b <- g at t = switch_step + 1)
                                         w <- w - sgd_lr b

    The iterates are ``Adam``'s up to ``switch_step`` and then those of
    ``SGD(lr=sgd_lr, momentum=sgd_momentum)`` started there with a fresh buffer. Each
    param group may switch at its own step; ``SWATS`` chooses the step and the SGD
    learning rate itself.

    The switch is given in updates (``switch_step``, 1000 when neither is given) or in
    epochs (``switch_epoch``), not both. An epoch's length is known only to the run
    that feeds the data, so ``optimlab train`` and a study call :meth:`resolve_epochs`
    with the run's steps per epoch; until then a group with ``switch_epoch`` refuses to
    step rather than guess.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        switch_step: int | None = None,
        switch_epoch: int | None = None,
        sgd_lr: float = 0.01,
        sgd_momentum: float = 0.9,
        **options: Any,
    ) -> None:
        if switch_step is not None and switch_epoch is not None:
            raise OptimlabError(
                f"give one of switch_step ({switch_step!r}) and switch_epoch "
                f"({switch_epoch!r}), not both"
            )
        if switch_step is None:  # replaced by resolve_epochs where switch_epoch is given
            switch_step = 1000
        hp = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            switch_step=switch_step,
            switch_epoch=switch_epoch,
            sgd_lr=sgd_lr,
            sgd_momentum=sgd_momentum,
        )
        super().__init__(params, [AddWeightDecay(), ScaleByAdamThenSGD()], hp, **options)

    def resolve_epochs(self, steps_of_epoch: Callable[[int], int]) -> None:
        """Turn each group's ``switch_epoch`` ``E`` into ``switch_step``, the updates of
        epochs ``0 .. E-1`` (``steps_of_epoch(e)`` each), and clear it. Groups without
        one, and those already resolved, keep their ``switch_step``."""
        for group in self.param_groups:
            epochs = group.get("switch_epoch")
            if epochs is None:
                continue
            group["switch_step"] = sum(int(steps_of_epoch(e)) for e in range(epochs))
            group["switch_epoch"] = None

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update; refused, before anything changes, while a group's
        ``switch_epoch`` is not resolved."""
        for group in self.param_groups:
            if group.get("switch_epoch") is not None:
                raise OptimlabError(
                    f"switch_epoch={group['switch_epoch']} is not resolved: an epoch has a "
                    "length only in a run (optimlab train, a study); outside one call "
                    "resolve_epochs(steps_of_epoch) first, or give switch_step"
                )
        return super().step(closure)
