"""The building block of every optimizer: a gradient transformation.

A transform turns the incoming updates of one parameter group into outgoing
updates, reading its hyperparameters from the group (so that per-group values and
torch's LR schedulers work) and keeping its buffers in the optimizer's
per-parameter state. The optimizer then applies ``w <- w + u``: the sign and the
learning rate are themselves a transform (``ScaleByLearningRate``), which is what
lets the lectures' velocity-form momentum (``v <- mu*v - lr*g``) and torch's form
(``b <- mu*b + g``, then ``-lr*b``) be two orderings of the same two transforms.

Contract, kept by every transform here:

* ``update`` never modifies its input tensors in place (the first input is
  ``p.grad`` itself); it may modify its own state buffers.
* Hyperparameters are read from the group mapping with ``hp[key]``; a value that
  changes during training (lr, step count) may be a Python number or a 0-d tensor.
* State keys follow torch.optim's names (``exp_avg``, ``momentum_buffer``, ...)
  so states can be compared with, and loaded from, torch's optimizers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

Hyper = Mapping[str, Any]


class Transform:
    """Base class: override ``update_one`` (per tensor) or ``update`` (whole group).

    A subclass's docstring gives its equation in the incoming update ``u`` (the
    gradient, for the first transform of a chain), then two sections: the
    hyperparameters it reads, each with the symbol it stands for, and the state
    it keeps, each key with its symbol. ``t`` is the parameter's update count,
    from 1.

    Within one chain a hyperparameter is declared by one transform only, except
    ``lr`` and ``maximize``, which mean the same to every transform that reads
    them (see ``optimlab.optim.base``).
    """

    #: hyperparameters this transform reads, with their defaults
    defaults: ClassVar[dict[str, Any]] = {}
    #: per-parameter state keys this transform owns (checked for clashes in a chain)
    state_keys: ClassVar[tuple[str, ...]] = ()

    def validate(self, hp: Hyper) -> None:
        """Check the hyperparameters this transform reads.

        Args:
            hp: a param group, the optimizer's defaults filled in.

        Raises:
            OptimlabError: naming the hyperparameter and its valid values.
        """

    def update(
        self, updates: list[Tensor], params: list[Tensor], states: list[dict], hp: Hyper
    ) -> list[Tensor]:
        """Transform the updates of one param group (by default, ``update_one`` on each).

        Args:
            updates: the incoming updates, one per parameter; not modified.
            params: the parameters, as they are before this step.
            states: each parameter's optimizer state, where this transform keeps its
                buffers (``step`` already counts this update).
            hp: the group's hyperparameters.

        Returns:
            The outgoing updates, one per parameter.
        """
        return [self.update_one(u, p, s, hp) for u, p, s in zip(updates, params, states)]

    def update_one(self, u: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        """Transform the update of one parameter.

        Args:
            u: the incoming update; not modified.
            p: the parameter, as it is before this step.
            state: its optimizer state (``step`` already counts this update).
            hp: the group's hyperparameters.

        Returns:
            The outgoing update.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def scalar_dtype() -> torch.dtype:
    """The dtype torch.optim uses for scalar state (step, mu_product).

    Mirrored so that states match torch's bit for bit, including float32 rounding
    of NAdam's running momentum product under the default dtype.
    """
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def step_of(state: dict) -> float | Tensor:
    """The step number t of this parameter, counted from 1 at the first update.

    Eagerly a Python float (as torch.optim reads it, so results match bit for bit);
    inside a compiled step a 0-d tensor, so the graph holds no constant that changes
    every step and nothing recompiles. It is float64 there, like the Python float,
    so that powers such as ``beta ** t`` round as they do eagerly.
    """
    step = state["step"]
    if not isinstance(step, Tensor):
        return float(step)
    return step.double() if torch.compiler.is_compiling() else step.item()


# How many copies of a per-step scalar ``per_step`` reduces over: more than inductor's
# ``unroll_reductions_threshold`` (8), below which it turns a reduction back into an
# expression it can inline (tests check the threshold).
SCALAR_SPAN = 9


def per_step(x: float | Tensor, like: Tensor) -> float | Tensor:
    """Mark a scalar that changes once per step (a bias correction such as
    ``1 - beta ** t``) and multiplies ``like``: computed once per step, not once per
    element.

    Eagerly it returns ``x`` unchanged. Inside a compiled step, inductor would inline
    the scalar's expression into the elementwise loop, and because the loop also
    stores to memory that might alias the step count, the C++ compiler cannot hoist
    it: ``pow`` in double precision then runs once per vector of elements (measured:
    a compiled Adam step at 2.8x the bandwidth floor instead of 1.0x on CPU). A
    reduction is never inlined into a loop over other elements, so the value is
    written as one (the maximum of ``SCALAR_SPAN`` copies of itself, which is the
    value exactly): inductor computes it into a buffer before the loop, in the same
    kernel as the loop and every other scalar of the call. It first went through an
    opaque custom op instead, which also kept it out of the loop but cost a call from
    Python per scalar and split the scalars into separate kernels: on the
    14.7M-parameter mixed model (15 tensors per call) 45 op calls and 30 small
    kernels per Adam step, a step up to 13% slower than torch's fused kernel
    (docs/benchmarks.md, "One build against torch's fused kernels").

    The buffer holds the value already rounded to the dtype ``like`` is computed in
    (what an eager ``tensor * float`` does with the float), so the loop loads and
    broadcasts it in one instruction instead of three.
    """
    if isinstance(x, Tensor) and torch.compiler.is_compiling():
        return x.to(compute_dtype(like.dtype)).expand(SCALAR_SPAN).amax()
    return x


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype elementwise math on ``dtype`` runs in: float32 for the half types."""
    return torch.promote_types(dtype, torch.float32)


def buffer(state: dict, key: str, like: Tensor, fill: float = 0.0) -> Tensor:
    """The state buffer ``key``, created lazily as ``full_like(like, fill)``."""
    buf = state.get(key)
    if buf is None:
        buf = torch.full_like(like, fill, memory_format=torch.preserve_format)
        state[key] = buf
    return buf


def lr_at(lr: float | Tensor | Callable[[int], float], t: float | Tensor) -> float | Tensor:
    """The learning rate of update ``t``, where ``lr`` is a number, a 0-d tensor or a
    schedule.

    The one place a schedule is read, for the eager and the compiled path alike. A
    schedule is any callable ``schedule(step) -> lr`` whose ``step`` counts from 0 at
    the first update, the convention of torch's LR schedulers (the first update uses
    the initial value): update ``t`` uses ``schedule(t - 1)``.

    Args:
        lr: the group's ``lr`` entry.
        t: the parameter's update number, counted from 1 (its ``state["step"]`` once
            this update has been counted).

    Returns:
        ``lr`` itself when it is not a schedule, else the schedule's value.
    """
    if callable(lr) and not isinstance(lr, Tensor):
        return lr(int(t) - 1)
    return lr


def learning_rate(hp: Hyper, state: dict) -> float | Tensor:
    """The group's learning rate at this parameter's current update (see ``lr_at``).

    Args:
        hp: the param group's hyperparameters.
        state: the parameter's state, whose ``step`` already counts this update.

    Returns:
        A number or a 0-d tensor.
    """
    return lr_at(hp["lr"], step_of(state))


def init_steps(params: Sequence[Tensor], states: Sequence[dict]) -> None:
    """Give each parameter's state that has none a step count of 0: a 0-d tensor in
    torch.optim's scalar dtype, on the parameter's device."""
    for p, state in zip(params, states):
        if "step" not in state:
            state["step"] = torch.zeros((), dtype=scalar_dtype(), device=p.device)


def apply_chain(
    transforms: Sequence[Transform],
    params: list[Tensor],
    grads: list[Tensor],
    states: list[dict],
    hp: Mapping[str, Any],
) -> None:
    """One step of a param group: ``t <- t + 1``, ``u = chain(g)``, ``w <- w + u``.

    The reference the eager path runs, and the very function the fast path compiles
    (``optimlab.optim.fast``).

    Args:
        transforms: the chain, applied in order.
        params: the parameters that have a gradient.
        grads: their gradients (not modified).
        states: their optimizer states, each holding a ``step`` count already.
        hp: the group's hyperparameters (``maximize`` and whatever the chain reads).
    """
    if hp["maximize"]:
        grads = [-g for g in grads]
    for state in states:
        state["step"] += 1
    updates = grads
    for transform in transforms:
        updates = transform.update(updates, params, states, hp)
    for p, u in zip(params, updates):
        p.add_(u)
