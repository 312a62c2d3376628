"""The optimizer that runs a chain of transforms: ``ChainOptimizer`` and ``Chain``.

Everything that is the same for every rule lives here, once: the step counter,
maximize, skipping non-finite steps, gradient clipping (by value, per-tensor norm,
global norm) and annealed gradient noise. These are options of every optimlab
optimizer, off by default:

=====================  ==============================================================
``maximize``           ascend instead of descend (``g <- -g``), as in torch.optim
``clip_value``         clamp each gradient entry to ``[-c, c]`` (Keras ``clipvalue``)
``clip_norm``          rescale each gradient tensor to norm <= c (Keras ``clipnorm``)
``clip_global_norm``   rescale the group's gradients to joint norm <= c
                       (Keras ``global_clipnorm``)
``grad_noise``         eta of Neelakantan et al.'s annealed noise (0 = off)
``grad_noise_decay``   its gamma (0.55)
``skip_nonfinite``     skip the group's step when a gradient has inf/NaN; the count
                       is kept in ``optimizer.state["skipped_steps"]``
=====================  ==============================================================

``fast=True`` (an argument of the optimizer, not of a group) runs the same chain
compiled into fused kernels; see ``optimlab.optim.fast``.

The chain is applied per param group, as ``clip -> noise -> rule``, and the result
``u`` is added to the parameters: ``w <- w + u``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

from optimlab.errors import OptimlabError
from optimlab.optim.clipping import ClipByGlobalNorm, ClipByNorm, ClipByValue
from optimlab.optim.fast import FastPath
from optimlab.optim.noise import AddGradientNoise
from optimlab.optim.transform import Transform, apply_chain, init_steps

COMMON_DEFAULTS: dict[str, Any] = {
    "maximize": False,
    "clip_value": None,
    "clip_norm": None,
    "clip_global_norm": None,
    "grad_noise": 0.0,
    "grad_noise_decay": 0.55,
    "skip_nonfinite": False,
}

SKIPPED = "skipped_steps"


def _common_transforms() -> list[Transform]:
    return [ClipByValue(), ClipByNorm(), ClipByGlobalNorm(), AddGradientNoise()]


class ChainOptimizer(torch.optim.Optimizer):
    """A ``torch.optim.Optimizer`` whose update is a chain of ``Transform`` objects.

    Args:
        params: parameters or param groups, as for any torch optimizer.
        transforms: the rule, applied in order after the common transforms.
        defaults: the rule's hyperparameters (each group may override them).
        **options: the common options in the table above.
        fast: run the chain compiled into fused kernels (``optimlab.optim.fast``); the
            eager path, the default, is the readable reference.
    """

    def __init__(
        self,
        params: Iterable[Any],
        transforms: Sequence[Transform],
        defaults: dict[str, Any],
        *,
        fast: bool = False,
        **options: Any,
    ) -> None:
        unknown = set(options) - set(COMMON_DEFAULTS)
        if unknown:
            valid = sorted(set(defaults) | set(COMMON_DEFAULTS))
            raise TypeError(
                f"{type(self).__name__} got unexpected argument(s) {sorted(unknown)}; "
                f"valid: {valid}"
            )
        self.transforms: list[Transform] = _common_transforms() + list(transforms)
        _check_state_keys(self.transforms)
        self.fast: FastPath | None = FastPath() if fast else None
        super().__init__(params, {**COMMON_DEFAULTS, **defaults, **options})

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for transform in self.transforms:
            transform.validate(group)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        # A state dict saved by another version or by torch.optim's own class of the
        # same rule may lack some of our hyperparameters: take them from our defaults.
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one update; ``closure`` re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for index, group in enumerate(self.param_groups):
            self._step_group(group, index)
        return loss

    def _step_group(self, group: dict[str, Any], index: int) -> None:
        # one pass: with hundreds of small tensors the Python per tensor is what costs
        params: list[Tensor] = []
        grads: list[Tensor] = []
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            if g.is_sparse:
                raise OptimlabError(f"{type(self).__name__} does not support sparse gradients")
            params.append(p)
            grads.append(g)
        if not params:
            return
        if group["skip_nonfinite"] and not all(bool(torch.isfinite(g).all()) for g in grads):
            self.state[SKIPPED] = self.state.get(SKIPPED, 0) + 1
            return
        states = [self.state[p] for p in params]
        if self.fast is not None:
            # every step of the group, also one it takes eagerly, so that it can tell
            self.fast(self.transforms, params, grads, states, group, index)
            return
        init_steps(params, states)
        apply_chain(self.transforms, params, grads, states, group)

    @property
    def skipped_steps(self) -> int:
        """How many group steps ``skip_nonfinite`` has skipped."""
        return int(self.state.get(SKIPPED, 0))


class Chain(ChainOptimizer):
    """A custom optimizer from transforms: ``Chain(params, Trace(), ScaleByLearningRate(),
    lr=0.1, momentum=0.9)``. Hyperparameters default to the transforms' own defaults.
    """

    def __init__(self, params: Iterable[Any], *transforms: Transform, **hparams: Any) -> None:
        if not transforms:
            raise OptimlabError("Chain needs at least one transform")
        defaults: dict[str, Any] = {}
        for transform in transforms:
            defaults.update(transform.defaults)
        options = {k: hparams.pop(k) for k in list(hparams) if k in COMMON_DEFAULTS}
        unknown = set(hparams) - set(defaults)
        if unknown:
            raise TypeError(
                f"Chain got hyperparameter(s) {sorted(unknown)} that no transform reads; "
                f"valid: {sorted(set(defaults) | set(COMMON_DEFAULTS))}"
            )
        super().__init__(params, transforms, {**defaults, **hparams}, **options)


def _check_state_keys(transforms: Sequence[Transform]) -> None:
    seen: dict[str, str] = {}
    for transform in transforms:
        for key in transform.state_keys:
            if key in seen:
                raise OptimlabError(
                    f"transforms {seen[key]} and {type(transform).__name__} "
                    f"both keep state {key!r}; a chain can hold only one of them"
                )
            seen[key] = type(transform).__name__
