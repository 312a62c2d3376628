"""What a parameter server does with a pushed update: the server rules.

A server (:mod:`optimlab.parallel.server`, or the simulated one of
:mod:`optimlab.parallel.simulate`) holds a shard ``w`` of the flat parameter vector at a
version ``v`` (the updates applied so far). A replica fetches ``w`` at version ``b`` and
later pushes an update computed there; the rule applies it at version ``v >= b``:

- :class:`OptimizerRule` (Downpour): the run's optimizer takes one step with the pushed
  gradient sum as the gradient of ``w``; AdaGrad in Dean et al. 2012;
- :class:`CenterRule` (asynchronous EASGD): the pushed elastic difference is added to
  the center, ``w <- w + d``;
- :class:`optimlab.parallel.delay_tolerant.AdaRevision` (delay-tolerant AdaGrad), which
  also reads the gradient sum at version ``b``: the server keeps a snapshot of it for
  every version a replica fetched and may still push against (``snapshot``/``release``).

The shards cut the parameter vector anywhere, so a server rule must act coordinate by
coordinate (:data:`SERVER_OPTIMIZERS`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from optimlab.errors import OptimlabError

SERVER_OPTIMIZERS = ("adagrad", "sgd", "momentum", "nesterov", "rmsprop", "adadelta", "adam",
                     "amsgrad", "adamax", "nadam")  # fmt: skip
"""Optimizers whose step acts coordinate by coordinate, and so is the same on a shard of
the parameters as on whole tensors."""

# Options that read whole tensors, which the shards cut.
_WHOLE_TENSOR_OPTIONS = ("clip_norm", "clip_global_norm")


def check_server_optimizer(hp: dict[str, Any]) -> None:
    """Refuse the optimizer options that read whole tensors."""
    for key in _WHOLE_TENSOR_OPTIONS:
        if hp.get(key) is not None:
            raise OptimlabError(
                f"{key} is not available on a parameter server: it reads whole tensors, "
                "which the server's shards cut; valid: clip_value"
            )


class OptimizerRule:
    """The run's optimizer (``optimizer``, ``lr``, ``hp``) on a shard ``w``: a push
    ``g`` is one step with gradient ``g``."""

    needs_snapshots = False

    def __init__(self, w: Tensor, optimizer: str, lr: float | None, hp: dict[str, Any],
                 fast: bool = False) -> None:  # fmt: skip
        from optimlab.run.build import make_optimizer

        self.param = torch.nn.Parameter(w, requires_grad=False)  # shares w's memory
        self.optimizer, _ = make_optimizer(optimizer, [self.param], lr=lr, hp=hp, fast=fast)

    def apply(self, w: Tensor, update: Tensor, base: int, version: int) -> None:
        self.param.grad = update
        self.optimizer.step()
        self.param.grad = None

    def snapshot(self, version: int) -> None:
        pass

    def release(self, keep: Iterable[int]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)


class CenterRule:
    """Asynchronous EASGD's center: ``w <- w + d`` for a pushed elastic difference
    ``d = alpha (x_i - w_b)``."""

    needs_snapshots = False

    def apply(self, w: Tensor, update: Tensor, base: int, version: int) -> None:
        w.add_(update)

    def snapshot(self, version: int) -> None:
        pass

    def release(self, keep: Iterable[int]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def make_rule(config: Any, w: Tensor) -> Any:
    """The server rule of ``config.parallel`` on shard ``w``."""
    if config.parallel == "easgd_async":
        return CenterRule()
    if config.parallel == "delay_tolerant":
        from optimlab.parallel.delay_tolerant import AdaRevision

        return AdaRevision.from_settings(w, config.lr, config.hp)
    return OptimizerRule(w, config.optimizer, config.lr, config.hp, fast=config.fast)
