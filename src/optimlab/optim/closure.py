"""What every closure-driven optimizer shares (second-order and quasi-Newton methods).

These optimizers evaluate the loss several times per step (a line search, a Hessian),
so ``step(closure)`` needs a closure, as ``torch.optim.LBFGS``'s does: it zeroes the
gradients, evaluates the loss, calls ``loss.backward()`` and returns the loss. With
one closure per step they are full-batch methods: a closure that draws a new batch
on every call gives a loss and gradient that disagree from one evaluation to the
next, which line searches and curvature pairs cannot survive (lecture 001: "the same
batch should be used over several iterations").

They work on all parameters as one flat vector, so they take one parameter group,
whose tensors share a dtype and a device. Gradients that are None count as zero.

Counts, in ``optimizer.state["counts"]`` (and ``optimizer.counts``), for a trainer to
report: ``function`` (closure calls: each evaluates the loss) and ``gradient`` (the
same calls: each runs backward), and ``hvp`` (Hessian-vector products).

A closure may also say what it evaluates: ``attach_objective(closure, model, loss_fn,
x, y)`` marks it as computing ``loss_fn(model(x), y)``, which Gauss-Newton products need
(they work through the model's outputs, which a plain closure hides). Optimizers read
it with ``objective_of(closure)``; the trainer's closures carry it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from optimlab.errors import OptimlabError

Closure = Callable[[], Any]
#: the attribute ``attach_objective`` sets on a closure
OBJECTIVE = "objective"
COUNTS = "counts"
#: the registered optimizers to suggest for a model above an optimizer's size limit
LARGE_MODEL_ALTERNATIVES = ("lbfgs", "hessian_free", "cg")


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise OptimlabError(f"invalid {name}: {value!r}; valid: True or False")


def check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    """Raise unless ``value`` is an int (not a bool) in ``[low, high]``."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        top = "inf" if high is None else str(high)
        raise OptimlabError(f"invalid {name}: {value!r}; valid: an integer in [{low}, {top}]")


def check_float(
    name: str, value: Any, low: float, high: float | None = None, *, open_low: bool = False,
    open_high: bool = False,
) -> None:  # fmt: skip
    """Raise unless ``value`` is a finite real number in the interval."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value)
    ok = ok and (value > low if open_low else value >= low)
    if high is not None:
        ok = ok and (value < high if open_high else value <= high)
    if not ok:
        lo = "(" if open_low else "["
        hi = ")" if open_high or high is None else "]"
        top = "inf" if high is None else f"{high:g}"
        raise OptimlabError(f"invalid {name}: {value!r}; valid range is {lo}{low:g}, {top}{hi}")


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    if value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise OptimlabError(f"invalid {name}: {value!r}; valid: {valid}")


def attach_objective(closure: Closure, model: torch.nn.Module, loss_fn: Any, x: Tensor,
                     y: Tensor) -> Closure:  # fmt: skip
    """Mark ``closure`` as evaluating ``loss_fn(model(x), y)`` (a mean over the batch) and
    return it: sets its ``objective``, an ``optimlab.curvature.ModelObjective``."""
    from optimlab.curvature import ModelObjective

    objective = ModelObjective(model, loss_fn, x, y)
    try:
        setattr(closure, OBJECTIVE, objective)
    except AttributeError:  # a bound method or a builtin takes no attributes: wrap it
        inner = closure

        def marked() -> Any:
            return inner()

        setattr(marked, OBJECTIVE, objective)
        return marked
    return closure


def objective_of(closure: Closure | None) -> Any:
    """The ``ModelObjective`` attached to ``closure``, or None."""
    return getattr(closure, OBJECTIVE, None)


def _alternatives(name: str) -> str:
    """The registered optimizers that suit large models, for the size-limit message."""
    from optimlab.optim.registry import OPTIMIZERS  # the registry imports this module

    names = [n for n in LARGE_MODEL_ALTERNATIVES if n in OPTIMIZERS and n != name]
    return ", ".join(names) or "a first-order optimizer"


class ClosureOptimizer(torch.optim.Optimizer):
    """Base class: one parameter group, viewed as one flat vector, and a closure.

    Args:
        params: the parameters (one group).
        defaults: the group's hyperparameters.
        max_params: refuse more parameters than this (None: no limit); the dense
            methods store or factor an ``n x n`` matrix.
    """

    #: ``step`` must be given a closure (trainers check this, as for torch's LBFGS)
    needs_closure = True
    #: the registry name, for messages
    registry_name = ""
    #: another way out for a model above the size limit, for the message
    large_model_hint = ""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any], max_params: int | None):
        super().__init__(params, defaults)  # add_param_group refuses a second group
        name = type(self).__name__
        self._params: list[Tensor] = self.param_groups[0]["params"]
        if not self._params:
            raise OptimlabError(f"{name} got no parameters")
        first = self._params[0]
        for p in self._params:
            if p.dtype != first.dtype or p.device != first.device:
                raise OptimlabError(
                    f"{name} needs all parameters on one device with one dtype; got "
                    f"{first.dtype} on {first.device} and {p.dtype} on {p.device}"
                )
            if torch.is_complex(p):
                raise OptimlabError(f"{name} supports real parameters only")
        self.numel = sum(p.numel() for p in self._params)
        if max_params is not None and self.numel > max_params:
            raise OptimlabError(
                f"{name} refuses a model of {self.numel} parameters: its limit is "
                f"max_params={max_params} (it works with an n x n matrix); raise the limit"
                f"{self.large_model_hint} or use {_alternatives(self.registry_name)}"
            )

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if self.param_groups:
            raise OptimlabError(
                f"{type(self).__name__} takes one parameter group (it treats all parameters "
                f"as one vector); a second one was given"
            )
        super().add_param_group(param_group)

    # -- the flat view --------------------------------------------------------------

    def _flat_grad(self) -> Tensor:
        return torch.cat(
            [p.new_zeros(p.numel()) if p.grad is None else p.grad.reshape(-1) for p in self._params]
        )

    def _flat_params(self) -> Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self._params])

    def _add(self, scale: float, direction: Tensor) -> None:
        """``w <- w + scale * direction``."""
        offset = 0
        for p in self._params:
            n = p.numel()
            p.add_(direction[offset : offset + n].view_as(p), alpha=scale)
            offset += n

    def _set(self, flat: Tensor) -> None:
        offset = 0
        for p in self._params:
            n = p.numel()
            p.copy_(flat[offset : offset + n].view_as(p))
            offset += n

    # -- evaluations ----------------------------------------------------------------

    @property
    def counts(self) -> dict[str, int]:
        """Closure calls (``function``, ``gradient``) and Hessian-vector products so far."""
        return dict(self._counts())

    def _counts(self) -> dict[str, int]:
        if COUNTS not in self.state:
            self.state[COUNTS] = {"function": 0, "gradient": 0, "hvp": 0}
        return self.state[COUNTS]

    def _count_call(self) -> None:
        counts = self._counts()
        counts["function"] += 1
        counts["gradient"] += 1

    def _call(self, closure: Closure | None) -> Any:
        """Run the closure once (with grad enabled), counting it."""
        if closure is None:
            raise OptimlabError(
                f"{type(self).__name__}.step needs a closure that zeroes the gradients, "
                f"evaluates the loss, calls loss.backward() and returns the loss"
            )
        with torch.enable_grad():
            loss = closure()
        self._count_call()
        return loss

    def _start_loss(self, loss: Any) -> float:
        """The loss at the start of a step as a float; refuse a non-finite one."""
        value = _as_float(loss, type(self).__name__)
        if not math.isfinite(value):
            raise OptimlabError(
                f"{type(self).__name__}: the closure returned a non-finite loss ({value}) at "
                f"the current parameters; the run has diverged or the model's output "
                f"overflows (lower lr, or check the inputs)"
            )
        return value

    def _directional(
        self, closure: Closure, x: Tensor, t: float, d: Tensor
    ) -> tuple[float, Tensor]:
        """Loss and flat gradient at ``x + t d``; the parameters are put back to ``x``."""
        self._add(t, d)
        value = _as_float(self._call(closure), type(self).__name__)
        grad = self._flat_grad()
        self._set(x)
        return value, grad


def _as_float(loss: Any, name: str) -> float:
    if isinstance(loss, Tensor):
        if loss.numel() != 1:
            raise OptimlabError(
                f"{name}: the closure must return the loss as a scalar; got shape "
                f"{tuple(loss.shape)}"
            )
        return float(loss.detach())
    if isinstance(loss, (int, float)):
        return float(loss)
    raise OptimlabError(f"{name}: the closure must return the loss; got {type(loss).__name__}")
