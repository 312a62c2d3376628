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
``u`` is added to the parameters: ``w <- w + u``. A rule that holds one of these
transforms itself (say ``Chain(params, Trace(), ClipByGlobalNorm(), ...)``, clipping
the momentum) has it applied there only, once.

Each hyperparameter of a chain is read by one transform, with one meaning and one
default, so that setting it changes one thing: two transforms that declare the same
name (``AddWeightDecay`` and ``DecoupledWeightDecay`` both say ``weight_decay``) cannot
share a chain. The exceptions, ``SHARED``, are the group's values that mean the same
to every reader: ``lr`` (torch's LR schedulers write it; the step and decoupled weight
decay both scale by it) and ``maximize``. Transforms that declare one of them must
give it the same default.
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

#: Hyperparameters that several transforms of a chain may read (see the module docstring).
SHARED = frozenset({"lr", "maximize"})


def _common_transforms(rule: Sequence[Transform]) -> list[Transform]:
    """The common options' transforms, less those whose class ``rule`` already holds:
    the rule's placement wins, and a transform runs once."""
    common = [ClipByValue(), ClipByNorm(), ClipByGlobalNorm(), AddGradientNoise()]
    return [c for c in common if not any(isinstance(t, type(c)) for t in rule)]


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
        self.transforms: list[Transform] = _common_transforms(transforms) + list(transforms)
        _check_state_keys(self.transforms)
        _check_hyperparameters(self.transforms)
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


def _check_hyperparameters(transforms: Sequence[Transform]) -> None:
    """Refuse a hyperparameter declared by two transforms, unless it is ``SHARED``
    and they agree on its default (see the module docstring)."""
    # the common options that no transform declares are the optimizer's own
    by_transforms = {key for t in _common_transforms(()) for key in t.defaults}
    declared: dict[str, tuple[str, Any]] = {
        key: ("ChainOptimizer", value)
        for key, value in COMMON_DEFAULTS.items()
        if key not in by_transforms
    }
    for transform in transforms:
        name = type(transform).__name__
        for key, default in transform.defaults.items():
            if key not in declared:
                declared[key] = (name, default)
                continue
            other, other_default = declared[key]
            if key not in SHARED:
                raise OptimlabError(
                    f"{other} and {name} both read hyperparameter {key!r}, "
                    f"so one value would drive both; a chain can hold only one of them "
                    f"(shared by design: {sorted(SHARED)})"
                )
            if not _same_value(default, other_default):
                raise OptimlabError(
                    f"hyperparameter {key!r} has the default {other_default!r} in {other} "
                    f"and {default!r} in {name}; transforms that share it must agree"
                )


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return a is b
    return type(a) is type(b) and a == b
