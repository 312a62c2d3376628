"""The ``Schedule`` base class: a pure, closed-form map from step to value.

A schedule is called as ``schedule(t)`` with ``t`` the step, counted from 0 for the
first update (torch's convention: the first update uses the initial value). The value
depends on ``t`` alone, never on the call history, so a resumed run needs only the
step count and any step can be evaluated in any order.

Each subclass writes its formula once, in ``_value(t, ops)``, with ``ops`` supplying
``cos``, ``floor``, ``minimum``, ``maximum`` and ``where``. For a Python number ``ops``
is plain ``math``; schedules whose formula needs nothing else also accept a 0-d tensor
step (``tensor_ok``), evaluated with torch ops on the tensor's device without a host
sync (useful under ``torch.compile``). Other schedules take a tensor step through
``.item()``: correct, but one synchronisation.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor

from optimlab.errors import OptimlabError
from optimlab.schedules import _checks


class ScalarOps:
    """The operations a formula needs, on Python numbers."""

    cos = staticmethod(math.cos)
    floor = staticmethod(math.floor)

    @staticmethod
    def minimum(x: Any, c: Any) -> Any:
        return min(x, c)

    @staticmethod
    def maximum(x: Any, c: Any) -> Any:
        return max(x, c)

    @staticmethod
    def where(cond: Any, a: Any, b: Any) -> Any:
        return a if cond else b


class TensorOps:
    """The same operations on 0-d tensors (no ``.item()``, so no host sync)."""

    cos = staticmethod(torch.cos)
    floor = staticmethod(torch.floor)

    @staticmethod
    def minimum(x: Tensor, c: Any) -> Tensor:
        return torch.clamp(x, max=c)

    @staticmethod
    def maximum(x: Tensor, c: Any) -> Tensor:
        return torch.clamp(x, min=c)

    @staticmethod
    def where(cond: Tensor, a: Any, b: Any) -> Tensor:
        return torch.where(cond, a, b)


class Parametrized:
    """``__repr__``, equality and ``params()`` read from the constructor's signature.

    Subclasses store each constructor argument under its own name (after validation).
    """

    @classmethod
    def param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def params(self) -> dict[str, Any]:
        """The constructor arguments, as stored (after validation)."""
        return {name: getattr(self, name) for name in self.param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.params() == other.params()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(repr(self))


class Schedule(Parametrized):
    """Base class: ``schedule(step) -> float`` (or a 0-d tensor for a tensor step).

    Subclasses store each constructor argument under its own name (``__repr__``,
    equality and the registry's defaults read them from the signature, see
    ``Parametrized``) and implement ``_value``. Schedules are immutable and picklable.
    """

    #: whether ``_value`` works with ``TensorOps`` on a 0-d tensor step
    tensor_ok: ClassVar[bool] = False

    def _value(self, t: Any, ops: type) -> Any:
        raise NotImplementedError

    def __call__(self, step: Any) -> Any:
        if isinstance(step, Tensor):
            return self._tensor_call(step)
        return float(self._value(_checks.step_value(step), ScalarOps))

    def _tensor_call(self, step: Tensor) -> Tensor:
        if step.ndim != 0:
            shape = tuple(step.shape)
            raise OptimlabError(f"invalid step: a tensor of shape {shape}; expected 0-d")
        t = step if step.is_floating_point() else step.to(torch.get_default_dtype())
        if self.tensor_ok:
            out = self._value(t, TensorOps)
        else:
            out = self._value(_checks.step_value(step.item()), ScalarOps)
        if not isinstance(out, Tensor):  # e.g. a constant: broadcast to the step's dtype/device
            out = torch.full_like(t, float(out))
        return out

    def values(self, n: int, start: int = 0) -> list[float]:
        """The values at steps ``start, ..., start + n - 1`` (for plots and tables)."""
        return [self(t) for t in range(start, start + n)]

    # ---- cheap composition: schedule * number, schedule * schedule ----
    def __mul__(self, other: Any) -> Schedule:
        from optimlab.schedules.compose import Product, Scaled

        if isinstance(other, Schedule):
            return Product([self, other])
        if callable(other):
            return NotImplemented
        return Scaled(self, other)

    __rmul__ = __mul__


class Constant(Schedule):
    """``value(t) = lr`` for every step."""

    tensor_ok = True

    def __init__(self, *, lr: float = 0.1) -> None:
        self.lr = _checks.real("lr", lr, 0)

    def _value(self, t: Any, ops: type) -> Any:
        return self.lr


ScheduleLike = Schedule | Callable[[int], float]
