"""Schedule-free SGD and AdamW (Defazio et al. 2024, "The Road Less Scheduled"), in the
schedulefree package's form: ``ScheduleFree``, ``ScaleByDebiasedRMS``,
``ScheduleFreeSGD``, ``ScheduleFreeAdamW`` and ``update_bn_at_average``.

Three sequences replace a learning-rate schedule: ``z``, plain (or Adam-normalized)
gradient steps; ``x``, a weighted running average of the ``z``; and ``y``, the point
between them where the gradient is taken, ``y = (1 - beta) z + beta x``. The parameters
hold ``y`` while training (``optimizer.train()``) and ``x``, the answer, while evaluating
(``optimizer.eval()``); ``z`` is the state. ``x`` is never stored: it is recovered from
``y`` and ``z``.

The average weights step ``t`` by ``t^r * lr_max^weight_lr_power``, where ``lr_max`` is
the largest (warmed-up) learning rate so far, so that the small steps of a warmup count
little.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from optimlab.errors import OptimlabError, check_range
from optimlab.optim.adaptive import check_betas, debiased
from optimlab.optim.base import ChainOptimizer
from optimlab.optim.decay import AddWeightDecay
from optimlab.optim.scale import ScaleByLearningRate, check_lr
from optimlab.optim.transform import (
    Hyper,
    Transform,
    buffer,
    learning_rate,
    step_of,
)


def _scalar(state: dict, key: str, init: float, like: Tensor) -> Tensor:
    """A 0-d float64 state entry (the reference keeps these as Python floats)."""
    value = state.get(key)
    if value is None:
        value = state[key] = torch.full((), init, dtype=torch.float64, device=like.device)
    return value


class ScheduleFree(Transform):
    """The schedule-free step: a gradient step on ``z``, and the move of ``y`` that keeps
    it between ``z`` and the running average ``x``.

    .. code-block:: text

        k = t - 1
        lr_k = lr_t * min(1, (k + 1) / warmup_steps)
        lr_max <- max(lr_max, lr_k)                      (lr_max starts at -1)
        c_k = (k + 1)^r lr_max^weight_lr_power / sum_{j <= k} (j + 1)^r lr_max_j^weight_lr_power
        u <- c_k (z - y) + lr_k (beta (1 - c_k) - 1) u   (the move of y = w)
        z <- z - lr_k u_in                               (z starts at w)

    which is ``x <- (1 - c_k) x + c_k z`` and ``y = (1 - beta) z + beta x`` written in
    ``y`` and ``z`` alone. ``c_k`` is 0 while the weights sum to 0 (an lr of 0).

    Hyperparameters:
        momentum: ``beta`` in (0, 1), the interpolation between ``z`` and ``x`` (default
            0.9, schedulefree's); ``ScheduleFreeAdamW`` reads ``betas[0]`` instead.
        warmup_steps: linear warmup of the lr over this many steps (default 0).
        r: the polynomial weight's power (default 0).
        weight_lr_power: the power of ``lr_max`` in the weight (default 2).
        lr: ``lr_t``, the group's learning rate or schedule.

    State:
        z: ``z``.
        lr_max: ``lr_max``, a 0-d float64 tensor.
        weight_sum: the sum of the weights so far, a 0-d float64 tensor.

    The count ``k`` is the parameter's own (the reference counts the param group's
    steps; the two agree while every parameter gets a gradient at every step).

    References:
        Defazio et al. 2024, Algorithm 1; schedulefree 1.4.1, ``SGDScheduleFree``.
    """

    defaults = {
        "momentum": 0.9,
        "warmup_steps": 0,
        "r": 0.0,
        "weight_lr_power": 2.0,
        "lr": ScaleByLearningRate.defaults["lr"],
    }
    state_keys = ("z", "lr_max", "weight_sum")

    def beta(self, hp: Hyper) -> float:
        """The interpolation ``beta`` of this chain's groups."""
        return hp["momentum"]

    def validate(self, hp: Hyper) -> None:
        check_range("momentum", float(hp["momentum"]), 0.0, 1.0, low_open=True, high_open=True)
        self._validate_weighting(hp)

    def _validate_weighting(self, hp: Hyper) -> None:
        warmup = hp["warmup_steps"]
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise OptimlabError(f"invalid warmup_steps: {warmup!r}; valid: an integer >= 0")
        check_range("r", float(hp["r"]), 0.0)
        check_range("weight_lr_power", float(hp["weight_lr_power"]), 0.0)
        check_lr(hp)

    def update_one(self, u: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        t = step_of(state)
        warmup, beta = hp["warmup_steps"], self.beta(hp)
        lr = learning_rate(hp, state)
        z = state.get("z")
        if z is None:
            z = state["z"] = p.detach().clone(memory_format=torch.preserve_format)
        lr_max_state = _scalar(state, "lr_max", -1.0, p)
        sum_state = _scalar(state, "weight_sum", 0.0, p)
        if not isinstance(t, Tensor):
            # eagerly in Python floats, as the reference computes them
            lr_k = lr * (t / warmup if t <= warmup else 1.0)
            lr_max = max(float(lr_k), lr_max_state.item())
            weight = t ** hp["r"] * lr_max ** hp["weight_lr_power"]
            weight_sum = sum_state.item() + weight
            c = weight / weight_sum if weight_sum != 0 else 0.0
            lr_max_state.fill_(lr_max)
            sum_state.fill_(weight_sum)
        else:
            # compiled: the step and the lr are tensors, and so is everything here. The
            # 0-d float64 state is updated in place *through the state dict*: torch 2.13's
            # compiled graphs drop an in-place update of such a tensor made through
            # another reference (copy_ or add_ on a local name; measured), though not
            # ``state[key] += x``.
            lr_k = lr * torch.where(t <= warmup, t / max(warmup, 1), 1.0).to(lr.dtype)
            state["lr_max"] = state["lr_max"].clamp_(min=lr_k.double())
            weight = t ** hp["r"] * state["lr_max"] ** hp["weight_lr_power"]
            state["weight_sum"] += weight
            weight_sum = state["weight_sum"]
            c = torch.where(weight_sum != 0, weight / weight_sum, 0.0)
        # computed before z moves: y is pulled towards the old z, as in the reference
        move = (z - p) * c + u * (lr_k * (beta * (1 - c) - 1))
        z.sub_(u * lr_k)
        return move


class ScheduleFromBetas(ScheduleFree):
    """The schedule-free step with ``beta`` read from ``betas[0]`` (AdamW's pair).

    .. code-block:: text

        as ScheduleFree, with beta = betas[0]

    Hyperparameters:
        warmup_steps: linear warmup of the lr over this many steps (default 0).
        r: the polynomial weight's power (default 0).
        weight_lr_power: the power of ``lr_max`` in the weight (default 2).
        lr: ``lr_t``, the group's learning rate or schedule.

    State:
        z: ``z``.
        lr_max: ``lr_max``, a 0-d float64 tensor.
        weight_sum: the sum of the weights so far, a 0-d float64 tensor.

    ``betas`` is declared (and checked) by ``ScaleByDebiasedRMS``, which reads
    ``betas[1]``.

    References:
        Defazio et al. 2024, Algorithm 1; schedulefree 1.4.1, ``AdamWScheduleFree``.
    """

    defaults = {k: v for k, v in ScheduleFree.defaults.items() if k != "momentum"}

    def beta(self, hp: Hyper) -> float:
        return hp["betas"][0]

    def validate(self, hp: Hyper) -> None:
        check_range("betas[0]", float(hp["betas"][0]), 0.0, 1.0, low_open=True, high_open=True)
        self._validate_weighting(hp)


class ScaleByDebiasedRMS(Transform):
    """The update over the root of its bias-corrected running mean square (Adam's
    denominator without Adam's first moment).

    .. code-block:: text

        v <- b2 * v + (1 - b2) * u^2
        u <- u / (sqrt(v / (1 - b2^t)) + eps)

    Hyperparameters:
        betas: ``(b1, b2)``, each in [0, 1) (default (0.9, 0.999)); ``b2`` is read here,
            ``b1`` by the schedule-free step that follows.
        eps: ``eps`` >= 0 (default 1e-8).

    State:
        exp_avg_sq: ``v``.

    References:
        Kingma & Ba 2015; schedulefree 1.4.1, ``AdamWScheduleFree``.
    """

    defaults = {"betas": (0.9, 0.999), "eps": 1e-8}
    state_keys = ("exp_avg_sq",)

    def validate(self, hp: Hyper) -> None:
        check_betas(hp)
        check_range("eps", float(hp["eps"]), 0.0)

    def update_one(self, u: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        b2 = hp["betas"][1]
        v = buffer(state, "exp_avg_sq", p)
        v.mul_(b2).addcmul_(u, u, value=1 - b2)
        return u / (debiased(v, b2, step_of(state)).sqrt() + hp["eps"])


class ScheduleFreeOptimizer(ChainOptimizer):
    """What the schedule-free optimizers share: the ``train()``/``eval()`` switch between
    ``y`` and ``x``, and the guard against stepping or evaluating in the wrong mode."""

    def __init__(
        self, params: Iterable[Any], chain: list[Transform], hp: dict[str, Any], **options: Any
    ) -> None:
        # born training, unlike the reference (which must be switched first): before the
        # first step there is no z, so the switch would move nothing
        super().__init__(params, chain, {**hp, "train_mode": True}, **options)
        self._beta_of = next(t for t in self.transforms if isinstance(t, ScheduleFree)).beta

    @property
    def training(self) -> bool:
        """Whether the parameters hold ``y`` (training) rather than ``x`` (evaluation)."""
        return all(group["train_mode"] for group in self.param_groups)

    @torch.no_grad()
    def _switch(self, train: bool) -> None:
        for group in self.param_groups:
            if group["train_mode"] == train:
                continue
            beta = self._beta_of(group)
            weight = 1 - beta if train else 1 - 1 / beta
            for p in group["params"]:
                z = self.state[p].get("z") if p in self.state else None
                if z is not None:
                    p.lerp_(z.to(p.device), weight)
            group["train_mode"] = train

    def train(self) -> None:
        """Put ``y`` in the parameters, for training steps: ``y = (1 - beta) z + beta x``."""
        self._switch(True)

    def eval(self) -> None:
        """Put the average ``x`` in the parameters, for evaluating and for checkpoints
        meant for use: ``x = (y - (1 - beta) z) / beta``."""
        self._switch(False)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        if not self.training:
            raise OptimlabError(
                f"{type(self).__name__}.step() called in eval mode (the parameters hold the "
                "average x); call optimizer.train() before training steps"
            )
        return super().step(closure)

    def guard(self, model: nn.Module) -> torch.utils.hooks.RemovableHandle:
        """Warn when ``model`` runs in eval mode (``model.eval()``) while this optimizer is
        training: its parameters then hold ``y``, not the answer ``x``.

        Returns:
            The forward pre-hook's handle (``.remove()`` to stop watching).
        """

        def check(module: nn.Module, args: Any) -> None:
            if not module.training and self.training:
                warnings.warn(
                    f"model evaluated while {type(self).__name__} is in train mode: the "
                    "parameters hold y, not the average x; call optimizer.eval() before "
                    "evaluating and optimizer.train() after",
                    stacklevel=2,
                )

        return model.register_forward_pre_hook(check)


class ScheduleFreeSGD(ScheduleFreeOptimizer):
    """Schedule-free SGD: interpolated gradient steps and their running average, with no
    learning-rate schedule.

    .. code-block:: text

        input: lr, momentum (beta), weight_decay (coupled, at y), warmup_steps, r,
               weight_lr_power
        for k = 0, 1, ...:
            g <- grad f(y) + weight_decay * y
            lr_k <- lr * min(1, (k + 1) / warmup_steps);  lr_max <- max(lr_max, lr_k)
            c_k <- (k + 1)^r lr_max^weight_lr_power / (sum of these weights so far)
            y <- (1 - c_k) y + c_k z + lr_k (beta (1 - c_k) - 1) g
            z <- z - lr_k g
        x = (y - (1 - beta) z) / beta        (optimizer.eval() puts x in the parameters)

    Defaults are schedulefree's ``SGDScheduleFree`` (lr 1.0, momentum 0.9, no weight
    decay, no warmup, r 0, weight_lr_power 2); its authors suggest an lr 10-50x a
    classical SGD's. Call ``optimizer.eval()`` before evaluating or saving a model for
    use and ``optimizer.train()`` before training again; a step in eval mode raises,
    and ``guard(model)`` warns when the model is evaluated in train mode. Unlike the
    reference, a new optimizer starts in train mode. Models with BatchNorm need their
    statistics recomputed at ``x``: ``update_bn_at_average``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        **options: Any,
    ) -> None:
        hp = dict(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            warmup_steps=warmup_steps,
            r=r,
            weight_lr_power=weight_lr_power,
        )
        super().__init__(params, [AddWeightDecay(), ScheduleFree()], hp, **options)


class ScheduleFreeAdamW(ScheduleFreeOptimizer):
    """Schedule-free AdamW: the schedule-free step on the Adam-normalized gradient.

    .. code-block:: text

        input: lr, betas = (beta, b2), eps, weight_decay, warmup_steps, r,
               weight_lr_power
        for k = 0, 1, ...:
            v <- b2 v + (1 - b2) g^2
            d <- g / (sqrt(v / (1 - b2^(k+1))) + eps) + weight_decay * y
            (then the schedule-free step of ScheduleFreeSGD, with d for g)

    Defaults are schedulefree's ``AdamWScheduleFree`` (lr 2.5e-3, betas (0.9, 0.999),
    eps 1e-8, no weight decay, no warmup, r 0, weight_lr_power 2). The weight decay is
    added to the normalized gradient at ``y`` (schedulefree 1.3 and later; the paper's
    form decays at ``z``). The train/eval switch works as in ``ScheduleFreeSGD``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2.5e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        **options: Any,
    ) -> None:
        hp = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            warmup_steps=warmup_steps,
            r=r,
            weight_lr_power=weight_lr_power,
        )
        chain = [ScaleByDebiasedRMS(), AddWeightDecay(), ScheduleFromBetas()]
        super().__init__(params, chain, hp, **options)


@torch.no_grad()
def update_bn_at_average(
    model: nn.Module, batches: Iterable[Any], optimizer: ScheduleFreeOptimizer
) -> None:
    """Recompute the BatchNorm running statistics of ``model`` at the average ``x``.

    The running statistics gathered during training belong to the points ``y`` the
    gradients were taken at; evaluating at ``x`` needs statistics of ``x``. Each
    BatchNorm layer's statistics are reset and re-estimated as the exact (cumulative)
    average over ``batches``, with the model in train mode; the modes of the model and
    of its layers are restored afterwards.

    Args:
        model: the model the optimizer trains.
        batches: inputs (or ``(inputs, ...)`` tuples, whose first entry is used).
        optimizer: a schedule-free optimizer in eval mode.

    Raises:
        OptimlabError: when the optimizer is in train mode (the parameters hold ``y``).
    """
    if optimizer.training:
        raise OptimlabError(
            "update_bn_at_average needs the average x in the parameters; "
            f"call optimizer.eval() first ({type(optimizer).__name__} is in train mode)"
        )
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = {m: m.momentum for m in norms}
    modes = {m: m.training for m in model.modules()}
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
    model.train()
    try:
        for batch in batches:
            model(batch[0] if isinstance(batch, (tuple, list)) else batch)
    finally:
        for m, momentum in saved.items():
            m.momentum = momentum
        for m, mode in modes.items():
            m.training = mode
