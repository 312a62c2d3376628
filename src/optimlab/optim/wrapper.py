"""Optimizers that wrap another one (Lookahead, SAM): ``WrapperOptimizer``.

A wrapper is built either over an optimizer that exists (``Lookahead(torch.optim.SGD(...))``)
or over parameters with the base's name or class and its hyperparameters
(``Lookahead(model.parameters(), base="adam", lr=1e-3)``; how the registry builds one).
It shares the base's param groups and its ``state`` (torch's LR schedulers, which write
``group["lr"]``, drive the base through it). The wrapper's own per-parameter tensors
(Lookahead's slow weights) are kept apart, in ``wrapper_state``: a base from torch.optim
initializes a parameter's state when its dict is empty, so nothing else may go there.
``state_dict`` / ``load_state_dict`` carry both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import torch

from optimlab.errors import OptimlabError

Base = str | Callable[..., torch.optim.Optimizer]


def build_base(
    params: Iterable[Any] | torch.optim.Optimizer, base: Base, hyperparameters: dict[str, Any]
) -> torch.optim.Optimizer:
    """The optimizer a wrapper wraps: ``params`` itself if it is one, else ``base`` (a
    registry name or an optimizer class) built over ``params`` with ``hyperparameters``."""
    if isinstance(params, torch.optim.Optimizer):
        if hyperparameters:
            raise OptimlabError(
                f"hyperparameters {sorted(hyperparameters)} were given with an optimizer "
                "to wrap; valid: set them on that optimizer, or pass parameters and base="
            )
        return params
    if isinstance(params, torch.Tensor):
        params = [params]
    if isinstance(base, str):
        from optimlab.optim.registry import create  # the registry imports the wrappers

        return create(base, params, **hyperparameters)
    if callable(base):
        return base(params, **hyperparameters)
    raise OptimlabError(
        f"invalid base: {base!r}; valid: a registry name (optimlab list optimizers) "
        "or an optimizer class"
    )


class WrapperOptimizer(torch.optim.Optimizer):
    """A ``torch.optim.Optimizer`` over another one, sharing its groups and state.

    Args:
        params: the optimizer to wrap, or parameters / param groups for ``base``.
        base: a registry name or an optimizer class (ignored when ``params`` is an
            optimizer).
        hyperparameters: the base's, when it is built here.
        own: the wrapper's own settings, shown in ``defaults``.
    """

    def __init__(
        self,
        params: Iterable[Any] | torch.optim.Optimizer,
        base: Base,
        hyperparameters: dict[str, Any],
        own: dict[str, Any],
    ) -> None:
        self.base = build_base(params, base, hyperparameters)
        # torch's set-up (hooks, step patching) over the base's group dicts, then the
        # very same list and state, so that nothing is kept twice
        self._adopting = True
        super().__init__(self.base.param_groups, {})
        self._adopting = False
        self.param_groups = self.base.param_groups
        self.state = self.base.state
        self.defaults = {**self.base.defaults, **own}
        #: the wrapper's own tensors per parameter
        self.wrapper_state: defaultdict[torch.Tensor, dict[str, Any]] = defaultdict(dict)

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__.copy()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base!r})"

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if self._adopting:  # torch's __init__ taking the base's groups
            super().add_param_group(param_group)
            return
        self.base.add_param_group(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    def extra_state(self) -> dict[str, Any]:
        """The wrapper's own state that does not live per parameter (saved as ``wrapper``)."""
        return {}

    def load_extra_state(self, extra: dict[str, Any]) -> None:
        """Restore what ``extra_state`` returned."""

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self) -> dict[str, Any]:
        """The base's state dict, with the wrapper's under ``wrapper``: its per-parameter
        tensors by parameter index (torch's numbering) and ``extra_state()``."""
        own = {
            index: dict(self.wrapper_state[p])
            for index, p in enumerate(self._params())
            if self.wrapper_state.get(p)
        }
        return {**self.base.state_dict(), "wrapper": {"state": own, **self.extra_state()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        extra = dict(state_dict.pop("wrapper", {}))
        own = extra.pop("state", {})
        params = self._params()
        if any(not 0 <= int(index) < len(params) for index in own):
            raise OptimlabError(
                f"the state dict's wrapper state names parameters {sorted(own)} of "
                f"{len(params)}; valid: a state dict of a {type(self).__name__} over the "
                "same parameters"
            )
        self.base.load_state_dict(state_dict)
        # the base installed new state dicts: share them again
        self.state = self.base.state
        self.param_groups = self.base.param_groups
        self.wrapper_state = defaultdict(dict)
        for index, entries in own.items():
            p = params[int(index)]
            self.wrapper_state[p] = {
                key: value.to(device=p.device, dtype=p.dtype).clone()
                if isinstance(value, torch.Tensor)
                else value
                for key, value in entries.items()
            }
        self.load_extra_state(extra)
