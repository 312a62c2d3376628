"""Elastic Averaging SGD (EASGD) and its momentum variant EAMSGD.

Paper: Zhang, Choromanska & LeCun 2015, *Deep learning with Elastic Averaging SGD*
(NeurIPS, arXiv:1412.6651): equations (5)-(6) (synchronous), Algorithm 1 (asynchronous
EASGD) and Algorithm 2 (EAMSGD).

Update. ``p`` workers hold their own weights ``x_i``, attached to a center ``c`` by an
elastic force of strength ``rho``; ``alpha = eta * rho`` (``eta`` the run's lr, ``rho``
``easgd_rho``), and the exchange happens every ``tau = easgd_period`` steps. Worker
``i``'s step ``t`` (its gradient ``g = grad f_B(x_i)`` on its batch, taken before the
exchange)::

    if t mod tau == 0:
        d   <- alpha (x_i - c)
        x_i <- x_i - d                     (pulled towards the center)
        c   <- c + d                       (the center pulled towards the worker)
    x_i <- U(x_i, g)                       (the run's optimizer; plain SGD in the paper)

- ``--parallel easgd`` (synchronous): the workers exchange together; ``c <- c + sum_i
  d_i`` is one all-reduce of the differences, and every process keeps the same ``c``
  (``beta = p alpha``, which must not exceed 1). Each worker steps on its share of every
  global batch, as in local SGD.
- ``--parallel easgd_async``: ``c`` lives on server ranks (:mod:`optimlab.parallel.server`,
  sharded with ``servers``); an exchange fetches ``c`` (at version ``b``), computes ``d``
  and pushes it, and the server adds it at its version ``v``, recording the staleness
  ``v - b``. Workers train whole batches of their own and never wait for each other,
  except at epoch ends.

EAMSGD (``easgd_momentum = delta > 0``, with ``--optimizer sgd``): the worker keeps a
velocity ``v_i`` and takes its gradient at the look-ahead point (Algorithm 2)::

    g   = grad f_B(x_i + delta v_i)
    (exchange as above, on x_i)
    v_i <- delta v_i - eta g
    x_i <- x_i + v_i

``rho = 0`` leaves the workers alone: with one worker, EASGD is the run's optimizer.
The model evaluated and checkpointed at epoch ends is the center ``c`` (the paper's
result); the worker's own weights are put back before its next step.

Communication per exchange: synchronous, one all-reduce of ``|x|`` floats every ``tau``
steps; asynchronous, per worker one fetch and one push of ``|x|`` floats every ``tau``
steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from optimlab.parallel.methods import elastic_alpha
from optimlab.parallel.replica import FlatParams, ReplicaOptimizer, ReplicaWiring
from optimlab.parallel.world import Place, ProcessGroupWorld


class SyncCenter:
    """The center of synchronous EASGD, kept by every process: an exchange all-reduces
    the workers' differences."""

    def __init__(self, alpha: float) -> None:
        self.alpha = float(alpha)
        self.c: Tensor | None = None

    def attach(self, flat: FlatParams) -> None:
        self.c = flat.read().clone()  # every worker starts at the center

    def exchange(self, x: Tensor) -> Tensor:
        assert self.c is not None
        d = (x - self.c) * self.alpha
        total = d.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        self.c.add_(total)
        return d

    def current(self, into: Tensor) -> None:
        assert self.c is not None
        into.copy_(self.c)

    def state_dict(self) -> dict[str, Any]:
        return {"center": self.c}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.c is not None
        self.c.copy_(state["center"])


class LinkCenter:
    """The center of asynchronous EASGD, on a server (or a simulated one) reached
    through ``link``: an exchange fetches it and pushes the difference."""

    def __init__(self, link: Any, alpha: float) -> None:
        self.link = link
        self.alpha = float(alpha)

    def exchange(self, x: Tensor) -> Tensor:
        c = torch.empty_like(x)
        versions = self.link.fetch(c)
        d = (x - c).mul_(self.alpha)
        self.link.push(d, versions)
        return d

    def current(self, into: Tensor) -> None:
        self.link.peek(into)


class ElasticOptimizer(ReplicaOptimizer):
    """An EASGD worker: the run's optimizer ``inner`` after an exchange with
    ``center`` every ``period`` steps; with ``momentum`` (delta) > 0, EAMSGD's own
    momentum steps with ``inner``'s lr instead of ``inner``."""

    def __init__(
        self, inner: torch.optim.Optimizer, flat: FlatParams, link: Any, center: Any,
        period: int = 1, momentum: float = 0.0,
    ) -> None:  # fmt: skip
        super().__init__(inner, flat, link)
        self.center = center
        self.period, self.momentum = int(period), float(momentum)
        self.t = 0
        self.x: Tensor | None = None  # EAMSGD: the worker's x_i (the model holds the look-ahead)
        self.v: Tensor | None = None

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        exchange = self.t % self.period == 0
        if self.momentum == 0:
            if exchange:
                self.flat.add(self.center.exchange(self.flat.read()), alpha=-1.0)
            self.inner.step()
        else:
            g = self.flat.grad()
            if self.x is None:  # v = 0: the model holds x_i itself
                self.x, self.v = self.flat.read(), torch.zeros(self.flat.numel,
                                                               dtype=self.flat.dtype,
                                                               device=self.flat.device)  # fmt: skip
            assert self.v is not None
            if exchange:
                self.x.sub_(self.center.exchange(self.x))
            lr = float(self.param_groups[0]["lr"])
            self.v.mul_(self.momentum).add_(g, alpha=-lr)
            self.x.add_(self.v)
            self.flat.write(self.x + self.momentum * self.v)
        self.t += 1

    def own_state(self) -> dict[str, Any]:
        center = self.center.state_dict() if hasattr(self.center, "state_dict") else {}
        return {"t": self.t, "x": self.x, "v": self.v, "center": center}

    def load_own_state(self, state: dict[str, Any]) -> None:
        self.t = int(state["t"])
        device = self.flat.device
        self.x = None if state["x"] is None else state["x"].to(device).clone()
        self.v = None if state["v"] is None else state["v"].to(device).clone()
        if hasattr(self.center, "load_state_dict"):
            self.center.load_state_dict(state["center"])


def elastic_optimizer(config: Any) -> Any:
    """``make(inner, flat, link)``: the asynchronous EASGD worker of ``config``."""

    def make(inner: torch.optim.Optimizer, flat: FlatParams, link: Any) -> ElasticOptimizer:
        return ElasticOptimizer(inner, flat, link, LinkCenter(link, elastic_alpha(config)),
                                period=config.easgd_period or 1,
                                momentum=config.easgd_momentum or 0.0)  # fmt: skip

    return make


class EasgdWorld(ReplicaWiring, ProcessGroupWorld):
    """Synchronous EASGD: every process a worker on its share of each global batch,
    the center all-reduced every ``easgd_period`` steps and kept by every process."""

    rank_state = ("optimizer",)  # each worker's weights, velocity and the center

    def __init__(self, place: Place, device: torch.device, config: Any) -> None:
        super().__init__(place, device)
        self.alpha = elastic_alpha(config)
        self.period = config.easgd_period or 1
        self.momentum = config.easgd_momentum or 0.0
        self.center = SyncCenter(self.alpha)

    def _attach(self, flat: FlatParams) -> None:
        self.center.attach(flat)

    def _replica_optimizer(self, optimizer: torch.optim.Optimizer) -> ElasticOptimizer:
        assert self.flat is not None
        return ElasticOptimizer(optimizer, self.flat, None, self.center, period=self.period,
                                momentum=self.momentum)  # fmt: skip

    def loss_weights(
        self, step: int, local_sizes: Sequence[int], global_sizes: Sequence[int]
    ) -> list[float]:
        return [1.0 for _ in local_sizes]  # each worker's own mean gradient

    def epoch_end(self, model: nn.Module) -> None:
        # every process evaluates its share of the splits: all of them show the center
        assert self.optimizer is not None and self.flat is not None
        center = self.flat.empty()
        self.center.current(center)
        self.optimizer.show(center)
