"""Penalties added to the training loss: L1, L2, elastic net, and activity penalties.

Conventions (Keras'): ``L2(l)`` adds ``l * sum(w**2)`` with no 1/2, so its gradient is
``2 l w``: the same step as an optimizer's coupled ``weight_decay = 2 l`` (torch's SGD
adds ``weight_decay * w`` to the gradient). ``L1(l)`` adds ``l * sum(|w|)`` and
elastic net adds both (Zou & Hastie 2005). By default only weights are penalized:
parameters named ``*.bias`` and all parameters of normalization layers are left out
(the lectures' and Keras' practice: penalizing them buys nothing and can hurt).

Activity penalties (Keras' ``activity_regularizer``) penalize a layer's output instead:
``l1 * sum(|a|) + l2 * sum(a**2)`` over the batch, divided by the batch size (as Keras
does), recorded by a forward hook while the model trains.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from optimlab.errors import OptimlabError, check_range

Penalty = Callable[[], Tensor]

_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


def penalized_parameters(model: nn.Module, *, include_biases: bool = False) -> list[Tensor]:
    """The parameters a penalty applies to: weights only, unless ``include_biases``
    (normalization layers' parameters are excluded either way)."""
    norm_params = {
        id(p) for m in model.modules() if isinstance(m, _NORM_TYPES) for p in m.parameters()
    }
    out = []
    for name, p in model.named_parameters():
        if id(p) in norm_params:
            continue
        if not include_biases and name.rsplit(".", 1)[-1] == "bias":
            continue
        out.append(p)
    return out


def _sum(values: Iterable[Tensor], like: Tensor | None) -> Tensor:
    values = list(values)
    if not values:
        return torch.zeros((), device=like.device if like is not None else None)
    return torch.stack(values).sum()


class WeightPenalty:
    """``l1 * sum(|w|) + l2 * sum(w**2)`` over ``params``; call it to get the value.

    Parameters are looked up once; moving the model in place (``.to``) keeps them.
    """

    def __init__(self, params: Iterable[Tensor], *, l1: float = 0.0, l2: float = 0.0) -> None:
        check_range("l1", l1, 0.0)
        check_range("l2", l2, 0.0)
        self.params = list(params)
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self) -> Tensor:
        first = self.params[0] if self.params else None
        total = _sum([], first)
        if self.l1:
            total = total + self.l1 * _sum((p.abs().sum() for p in self.params), first)
        if self.l2:
            total = total + self.l2 * _sum((p.pow(2).sum() for p in self.params), first)
        return total

    def __repr__(self) -> str:
        return f"WeightPenalty(l1={self.l1:g}, l2={self.l2:g}, tensors={len(self.params)})"


def l1(model: nn.Module, factor: float, *, include_biases: bool = False) -> WeightPenalty:
    """L1 (lasso) penalty ``factor * sum(|w|)`` on the model's weights."""
    check_range("l1", factor, 0.0)
    return WeightPenalty(penalized_parameters(model, include_biases=include_biases), l1=factor)


def l2(model: nn.Module, factor: float, *, include_biases: bool = False) -> WeightPenalty:
    """L2 penalty ``factor * sum(w**2)`` (Keras: no 1/2; equals weight_decay = 2*factor)."""
    check_range("l2", factor, 0.0)
    return WeightPenalty(penalized_parameters(model, include_biases=include_biases), l2=factor)


def elastic_net(
    model: nn.Module, l1_factor: float, l2_factor: float, *, include_biases: bool = False
) -> WeightPenalty:
    """Elastic net ``l1 * sum(|w|) + l2 * sum(w**2)`` (Zou & Hastie 2005)."""
    params = penalized_parameters(model, include_biases=include_biases)
    return WeightPenalty(params, l1=l1_factor, l2=l2_factor)


class OutputPenalty:
    """A penalty on the outputs of ``modules``, recorded by forward hooks.

    The hooks store ``value(output)`` of each output while its module is in training
    mode; calling the object returns their sum and clears them, so it must be called once
    per forward pass (``with_penalty`` does). ``remove()`` detaches the hooks. Subclasses
    define :meth:`value`.
    """

    def __init__(self, modules: Iterable[nn.Module]) -> None:
        self.modules = list(modules)
        if not self.modules:
            raise OptimlabError(f"{type(self).__name__} needs at least one module to watch")
        self._pending: list[Tensor] = []
        self._handles = [m.register_forward_hook(self._hook) for m in self.modules]

    def value(self, output: Tensor) -> Tensor:
        """The penalty of one module output (a 0-d tensor)."""
        raise NotImplementedError

    def _hook(self, module: nn.Module, inputs: Any, output: Tensor) -> None:
        if module.training:
            self._pending.append(self.value(output))

    def __call__(self) -> Tensor:
        pending, self._pending = self._pending, []
        if not pending:
            return torch.zeros(())
        return torch.stack(pending).sum()

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


class ActivityPenalty(OutputPenalty):
    """Penalizes the outputs of ``modules``: per module, ``(l1*sum|a| + l2*sum a**2) / N``."""

    def __init__(self, modules: Iterable[nn.Module], *, l1: float = 0.0, l2: float = 0.0) -> None:
        check_range("l1", l1, 0.0)
        check_range("l2", l2, 0.0)
        self.l1, self.l2 = float(l1), float(l2)
        super().__init__(modules)

    def value(self, output: Tensor) -> Tensor:
        n = output.shape[0] if output.ndim else 1
        value = output.new_zeros(())
        if self.l1:
            value = value + self.l1 * output.abs().sum()
        if self.l2:
            value = value + self.l2 * output.pow(2).sum()
        return value / n


class Sum:
    """The sum of several penalties."""

    def __init__(self, *penalties: Penalty) -> None:
        self.penalties = list(penalties)

    def __call__(self) -> Tensor:
        values = [p() for p in self.penalties]
        total = values[0]
        for v in values[1:]:
            total = total + v.to(total.device)
        return total


def penalized_loss(
    model: nn.Module, loss: Callable[[Tensor, Tensor], Tensor], penalty: Penalty
) -> Callable[[Tensor, Tensor], Tensor]:
    """``loss(output, target) + penalty()`` while ``model`` trains; ``loss`` alone in eval
    mode, so validation and test numbers are the data loss."""

    def regularized(output: Tensor, target: Tensor) -> Tensor:
        value = loss(output, target)
        if not model.training:
            return value
        return value + penalty().to(value.device)

    regularized.base_loss = loss  # type: ignore[attr-defined]
    return regularized


def with_penalty(problem: Any, penalty: Penalty) -> Any:
    """A copy of ``problem`` whose loss adds ``penalty()`` in training mode only.

    The model and data are shared with ``problem``; an existing penalty is kept and the
    new one is added to it.
    """
    combined = Sum(problem.penalty, penalty) if problem.penalty is not None else penalty
    return dataclasses.replace(
        problem, loss_fn=penalized_loss(problem.model, problem.loss_fn, penalty), penalty=combined
    )
