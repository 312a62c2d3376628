"""The fast path: the same transform chain, compiled into fused kernels.

An optimizer step is elementwise and memory-bound; run eagerly, each line of a
rule is its own pass over memory. ``torch.compile`` fuses the whole chain (every
transform of a param group, and the final ``w <- w + u``) into a few loops that read
each tensor once, with no second copy of the math: it traces ``apply_chain``, the
very function the eager path runs.

What keeps it from recompiling: the values that change during training are
tensors in the graph, not constants. The step count already is one (per-parameter
state, and ``step_of`` hands the tensor to a traced rule); the learning rate, or
the value of a learning-rate schedule at this step, is written into a 0-d tensor
per param group before each call. Other hyperparameters are constants of the
graph: changing one (say, momentum) compiles a new graph, once.

The first step of every parameter runs eagerly so that state buffers are created
outside the compiled graph. Inductor caches compiled kernels on disk (its FX graph
cache, on by default), so later processes start faster; ``compile_seconds`` records
the time the first compiled call took in this process.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from optimlab.optim.transform import Transform, step_of


def apply_chain(
    transforms: Sequence[Transform],
    params: list[Tensor],
    grads: list[Tensor],
    states: list[dict],
    hp: dict[str, Any],
) -> None:
    """One step of a param group: ``t <- t + 1``, ``u = chain(g)``, ``w <- w + u``."""
    if hp["maximize"]:
        grads = [-g for g in grads]
    for state in states:
        state["step"] += 1
    updates = grads
    for transform in transforms:
        updates = transform.update(updates, params, states, hp)
    for p, u in zip(params, updates):
        p.add_(u)


class FastPath:
    """Runs ``apply_chain`` compiled, with the learning rate held in 0-d tensors."""

    def __init__(self) -> None:
        self._compiled = torch.compile(apply_chain, dynamic=False)
        self._lr: dict[int, Tensor] = {}
        self.compile_seconds: float | None = None

    def ready(self, states: list[dict]) -> bool:
        """Compiled steps need every parameter's state to exist already."""
        return all("step" in s for s in states)

    def __call__(
        self,
        transforms: Sequence[Transform],
        params: list[Tensor],
        grads: list[Tensor],
        states: list[dict],
        group: dict[str, Any],
        index: int,
    ) -> None:
        lr = group["lr"]
        if callable(lr) and not isinstance(lr, Tensor):
            lr = lr(int(step_of(states[0])))  # the schedule at this update, counted from 0
        slot = self._lr.get(index)
        if slot is None or slot.device != params[0].device:
            slot = self._lr[index] = torch.zeros((), dtype=params[0].dtype, device=params[0].device)
        slot.fill_(lr)
        hp = {k: v for k, v in group.items() if k != "params"}
        hp["lr"] = slot
        start = time.perf_counter() if self.compile_seconds is None else None
        self._compiled(transforms, params, grads, states, hp)
        if start is not None:
            self.compile_seconds = time.perf_counter() - start
