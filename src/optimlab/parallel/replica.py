"""The replica's side of the asynchronous methods (Downpour, delay-tolerant AdaGrad,
asynchronous EASGD), with a real server or a simulated one.

A replica trains with the ordinary trainer; its :class:`AsyncWorld` hands the trainer
a module and an optimizer that talk to the server through a *link*:
:class:`optimlab.parallel.server.ServerLink` (server ranks of the process group) or
:class:`optimlab.parallel.simulate.SimulatedServer` (one process, seeded staleness).
A link offers:

- ``fetch(into) -> versions``: the server's parameters (each shard's version);
- ``push(update, bases)``: an update computed on the parameters of versions ``bases``;
- ``peek(into)``: the server's parameters now, for evaluation (not a fetch);
- ``wait_epoch(k)``: return once every replica has finished epoch ``k`` (or its run);
- ``report() -> [[staleness, ...] per shard]``: the staleness of the updates applied
  up to the last ``wait_epoch``, not yet reported (server version at apply minus the
  version fetched);
- ``begin(epoch)``: wait until every replica has started, and raise
  :class:`~optimlab.errors.OptimlabError` when one starts at another epoch than the
  writer (rank 0): all of them, not only the odd one, must stop;
- ``close()``: this replica is done;
- with more than one replica, ``leave_state(epoch, state)`` (a replica other than
  rank 0) and ``gather_states(epoch, n) -> [state, ...]`` (rank 0) carry the replicas'
  own states into rank 0's checkpoint at epoch ends.

The model the trainer evaluates and checkpoints at epoch ends is the server's (the
result of these methods); the replica's own weights are put back before its next
training step.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from optimlab.parallel.sharding import InterleavedLoader
from optimlab.train.callback import Callback
from optimlab.train.distributed import World


class FlatParams:
    """A model's parameters seen as one flat vector (copied in and out)."""

    def __init__(self, params: list[Tensor]) -> None:
        self.params = params
        self.sizes = [p.numel() for p in params]
        self.numel = sum(self.sizes)
        first = params[0]
        self.dtype, self.device = first.dtype, first.device

    def empty(self) -> Tensor:
        return torch.empty(self.numel, dtype=self.dtype, device=self.device)

    @torch.no_grad()
    def read(self) -> Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.params])

    @torch.no_grad()
    def write(self, flat: Tensor) -> None:
        for p, chunk in zip(self.params, flat.split(self.sizes), strict=True):
            p.copy_(chunk.view_as(p))

    @torch.no_grad()
    def add(self, flat: Tensor, alpha: float = 1.0) -> None:
        for p, chunk in zip(self.params, flat.split(self.sizes), strict=True):
            p.add_(chunk.view_as(p), alpha=alpha)

    @torch.no_grad()
    def grad(self, out: Tensor | None = None) -> Tensor:
        """The gradients as one vector (zeros where a parameter has none), written into
        ``out`` when given (a vector of ``numel`` elements, reused between steps)."""
        parts = [
            p.grad.reshape(-1) if p.grad is not None else torch.zeros_like(p).reshape(-1)
            for p in self.params
        ]
        return torch.cat(parts) if out is None else torch.cat(parts, out=out)


class _Forward(nn.Module):
    """The module a replica trains through: puts the replica's weights back (after an
    evaluation of the server's) before each training forward."""

    def __init__(self, model: nn.Module, before: Any) -> None:
        super().__init__()
        self.module = model
        self._before = before

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        self._before()
        return self.module(*args, **kwargs)


class ReplicaOptimizer(torch.optim.Optimizer):
    """The optimizer the trainer steps on a replica: wraps the run's optimizer
    ``inner`` (its param groups, so that the logged lr is the run's) and keeps what
    the model must hold at the next training forward when an evaluation has put other
    weights there. Subclasses implement ``step``."""

    def __init__(self, inner: torch.optim.Optimizer, flat: FlatParams, link: Any) -> None:
        self.inner = inner
        self.param_groups = inner.param_groups
        self.flat = flat
        self.link = link
        self.view: Tensor | None = None  # the replica's weights while others are shown

    @property
    def state(self) -> Any:  # type: ignore[override]
        return self.inner.state

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.inner.zero_grad(set_to_none=set_to_none)

    def before_forward(self) -> None:
        if self.view is not None:
            self.flat.write(self.view)
            self.view = None

    def show(self, weights: Tensor) -> None:
        """Put ``weights`` into the model until the next training forward."""
        if self.view is None:
            self.view = self.flat.read()
        self.flat.write(weights)

    def start(self) -> None:
        """Called once the run's state is fresh or loaded, before the first step."""

    def flush(self) -> None:
        """Push what is still held back (at epoch ends)."""

    def own_state(self) -> dict[str, Any]:
        return {}

    def load_own_state(self, state: dict[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        state = self.inner.state_dict()
        weights = self.flat.read() if self.view is None else self.view
        link = self.link.state_dict() if hasattr(self.link, "state_dict") else {}
        state["replica"] = {"weights": weights, "own": self.own_state(), "link": link}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:  # type: ignore[override]
        state = dict(state)
        replica = state.pop("replica")
        self.inner.load_state_dict(state)
        self.load_own_state(replica["own"])
        if hasattr(self.link, "load_state_dict"):
            self.link.load_state_dict(replica["link"])
        self.view = replica["weights"].to(self.flat.device).clone()


class ReplicaWiring:
    """What a world whose processes train through a :class:`ReplicaOptimizer` does at
    set-up: the model seen as a flat vector (handed to ``_attach``), trained through a
    module that restores the replica's weights before each forward, and the optimizer
    wrapped by ``_replica_optimizer``."""

    flat: FlatParams | None = None
    optimizer: ReplicaOptimizer | None = None

    def _attach(self, flat: FlatParams) -> None:
        raise NotImplementedError

    def _replica_optimizer(self, optimizer: torch.optim.Optimizer) -> ReplicaOptimizer:
        raise NotImplementedError

    def wrap_model(self, model: nn.Module) -> nn.Module:
        self.flat = FlatParams(list(model.parameters()))
        self._attach(self.flat)
        return _Forward(model, self._before_forward)

    def wrap_optimizer(self, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
        self.optimizer = self._replica_optimizer(optimizer)
        return self.optimizer

    def _before_forward(self) -> None:
        assert self.optimizer is not None
        self.optimizer.before_forward()


class AsyncWorld(ReplicaWiring, World):
    """Replica ``rank`` of ``size`` talking to its server through ``link``; rank 0
    writes and evaluates. ``make_optimizer(inner, flat, link)`` builds the method's
    :class:`ReplicaOptimizer`.

    Each replica trains whole batches ``rank, rank + size, ...`` of every epoch (as
    Hogwild!'s processes do), so that together they visit the data once per epoch.
    Replicas wait for each other only at epoch ends (``link.wait_epoch``), so that the
    server's model evaluated there holds every replica's share of the epoch.
    """

    reduces = False

    def __init__(self, rank: int, size: int, link: Any, make_optimizer: Any) -> None:
        self.rank, self.size = int(rank), int(size)
        self.is_writer = self.evaluates = self.rank == 0
        self.link = link
        self.make_optimizer = make_optimizer
        self.staleness: list[list[int]] = []  # per shard, the whole run
        self.epoch_staleness: list[int] = []
        self._epochs = 0
        # each replica's own weights, optimizer state, step count and random streams go
        # into rank 0's checkpoint (gathered through server 0 at epoch ends)
        self.rank_state = ("model", "optimizer", "counters") if self.size > 1 else ()

    def shard(self, loader: Any) -> Any:
        return InterleavedLoader(loader, self.rank, self.size) if self.size > 1 else loader

    def own_batches(self, n: int) -> int:
        return len(range(self.rank, n, self.size))

    def _attach(self, flat: FlatParams) -> None:
        self.link.attach(flat)

    def _replica_optimizer(self, optimizer: torch.optim.Optimizer) -> ReplicaOptimizer:
        assert self.flat is not None
        return self.make_optimizer(optimizer, self.flat, self.link)

    def start(self, trainer: Any) -> None:
        assert self.optimizer is not None
        self._epochs = trainer.epoch
        self.link.begin(trainer.epoch)
        self.optimizer.start()

    def gather(self, obj: Any) -> list[Any] | None:
        """Every replica's ``obj`` at this epoch end, on rank 0 (the others leave theirs
        with the server and get None)."""
        if self.size == 1:
            return [obj]
        if not self.is_writer:
            self.link.leave_state(self._epochs, obj)
            return None
        return [obj, *self.link.gather_states(self._epochs, self.size - 1)]

    def epoch_end(self, model: nn.Module) -> None:
        assert self.optimizer is not None and self.flat is not None
        self.optimizer.flush()
        self._epochs += 1
        self.link.wait_epoch(self._epochs)
        if not self.is_writer:
            return
        shards = self.link.report()
        if len(self.staleness) < len(shards):
            self.staleness += [[] for _ in range(len(shards) - len(self.staleness))]
        for mine, new in zip(self.staleness, shards, strict=False):
            mine.extend(new)
        self.epoch_staleness = [v for shard in shards for v in shard]
        server = self.flat.empty()
        self.link.peek(server)
        self.optimizer.show(server)

    def callbacks(self) -> list[Callback]:
        """What the run records beside its metrics: the staleness of the updates."""
        # on every replica, so that each matches the callbacks of rank 0's checkpoint
        return [StalenessLog(self)]

    def close(self) -> None:
        """Leave the process group, if this replica is part of one."""
        import torch.distributed as dist

        if dist.is_available():
            from optimlab.parallel.world import leave_process_group

            leave_process_group()

    def leave(self) -> None:
        """This replica is done: the servers stop once every replica is."""
        if self.optimizer is not None:
            self.optimizer.flush()
        self.link.close()


class StalenessLog(Callback):
    """Adds each epoch's staleness (of the updates the server applied during the
    epoch) to the epoch's record, and keeps every value in ``OUT/staleness.json``
    (``{"shards": [[...], ...]}``, in the order each shard applied them)."""

    order = -10  # before the loggers, which write the record

    def __init__(self, world: AsyncWorld) -> None:
        super().__init__()
        self.world = world

    def state_dict(self) -> dict[str, Any]:
        return {"staleness": self.world.staleness}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.world.staleness = [list(shard) for shard in state["staleness"]]

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        values = self.world.epoch_staleness
        logs["updates"] = len(self.world.staleness[0]) if self.world.staleness else 0
        logs["staleness_mean"] = sum(values) / len(values) if values else math.nan
        logs["staleness_max"] = max(values) if values else 0
        out = getattr(self.trainer, "out_dir", None)
        if out is not None and self.world.is_writer:
            import json

            from optimlab.io import atomic_write_text
            from optimlab.parallel.delay import STALENESS_FILE

            text = json.dumps({"shards": self.world.staleness}, separators=(",", ":"))
            atomic_write_text(out / STALENESS_FILE, text + "\n")
