"""The parameter server of the asynchronous methods, on point-to-point messages of the
process group (gloo ``send``/``recv``).

Of ``N`` ranks the last ``S`` are servers; server ``s`` holds shard ``s`` of the flat
parameter vector (:func:`optimlab.train.distributed.share_bounds`), its version (the
updates it applied) and its rule (:mod:`optimlab.parallel.rules`). The first ``R = N -
S`` ranks are replicas (:mod:`optimlab.parallel.replica`), which reach the servers
through a :class:`ServerLink`.

Messages. A request is a header of three int64 ``[kind, a, b]`` sent with tag
``HEADER``; a server receives headers from any rank, one at a time, and answers in the
order they come, so the updates of one replica are applied in the order it sent them:

==========  =====================  ==========================================
kind        follows                the server
==========  =====================  ==========================================
``FETCH``   nothing                replies ``[version]`` and its shard; records
                                   the fetch (delay-tolerant AdaGrad needs it)
``PEEK``    nothing                replies the same without recording a fetch
``PUSH``    the update (``DATA``)  applies it with base version ``a``, records
                                   the staleness ``version - a``, counts it
``EPOCH``   nothing                (server 0) replies once every replica has
                                   finished epoch ``a`` or its run
``REPORT``  nothing                replies the staleness values recorded since
                                   the last report
``DONE``    nothing                counts the replica out; the server stops
                                   once every replica is out
==========  =====================  ==========================================
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from optimlab.parallel.replica import FlatParams
from optimlab.train.distributed import share_bounds

FETCH, PEEK, PUSH, EPOCH, REPORT, DONE = range(6)
HEADER, DATA, REPLY, REPLY_DATA = 11, 12, 13, 14  # message tags


def _header(kind: int, a: int = 0, b: int = 0) -> Tensor:
    return torch.tensor([kind, a, b], dtype=torch.int64)


def split(size: int, servers: int) -> tuple[list[int], list[int]]:
    """(replica ranks, server ranks) of a world of ``size`` with ``servers`` servers."""
    return list(range(size - servers)), list(range(size - servers, size))


class ParameterServer:
    """Shard ``w`` with ``rule``, serving ``replicas``; server 0 (``coordinator``) also
    holds the replicas at epoch ends until all of them got there."""

    def __init__(self, w: Tensor, rule: Any, replicas: list[int], coordinator: bool) -> None:
        self.w = w
        self.rule = rule
        self.replicas = replicas
        self.coordinator = coordinator
        self.version = 0
        self.pending: list[int] = []  # staleness since the last report
        self.fetched: dict[int, list[int]] = {r: [] for r in replicas}  # versions in use
        self.reached = dict.fromkeys(replicas, 0)  # epochs each replica finished
        self.waiting: set[int] = set()
        self.done: set[int] = set()

    def serve(self) -> None:
        """Answer requests until every replica is done."""
        header = torch.zeros(3, dtype=torch.int64)
        update = torch.empty_like(self.w)
        while len(self.done) < len(self.replicas):
            src = dist.recv(header, src=None, tag=HEADER)
            kind, a, _ = (int(v) for v in header.tolist())
            if kind in (FETCH, PEEK):
                if kind == FETCH:
                    self.rule.snapshot(self.version)
                    self.fetched[src].append(self.version)
                dist.send(_header(self.version), dst=src, tag=REPLY)
                dist.send(self.w, dst=src, tag=REPLY_DATA)
            elif kind == PUSH:
                dist.recv(update, src=src, tag=DATA)
                self.rule.apply(self.w, update, a, self.version)
                self.pending.append(self.version - a)
                self.version += 1
                self._forget(src)
            elif kind == EPOCH:
                self.reached[src] = a
                self.waiting.add(src)
                self._release()
            elif kind == REPORT:
                values = torch.tensor(self.pending, dtype=torch.int64)
                self.pending = []
                dist.send(_header(len(values)), dst=src, tag=REPLY)
                if len(values):
                    dist.send(values, dst=src, tag=REPLY_DATA)
            elif kind == DONE:
                self.done.add(src)
                self.fetched[src] = []
                self._release()

    def _forget(self, replica: int) -> None:
        """After a push, a replica's next update is computed on its latest fetch or a
        later one: the snapshots of older versions are no longer needed by it."""
        if not self.rule.needs_snapshots:
            return
        self.fetched[replica] = self.fetched[replica][-1:]
        self.rule.release({v for versions in self.fetched.values() for v in versions})

    def _release(self) -> None:
        if not self.coordinator:
            return
        active = [self.reached[r] for r in self.replicas if r not in self.done]
        floor = min(active) if active else None
        for r in sorted(self.waiting):
            if floor is None or self.reached[r] <= floor:
                self.waiting.discard(r)
                dist.send(_header(self.reached[r]), dst=r, tag=REPLY)


class ServerLink:
    """A replica's link to the server ranks ``servers`` (see
    :mod:`optimlab.parallel.replica` for what a link does)."""

    def __init__(self, servers: list[int]) -> None:
        self.servers = servers
        self.bounds: list[tuple[int, int]] = []
        self._sending: list[tuple[Any, Tensor]] = []  # pushes in flight, with their buffers

    def attach(self, flat: FlatParams) -> None:
        self.bounds = [share_bounds(flat.numel, s, len(self.servers))
                       for s in range(len(self.servers))]  # fmt: skip

    def _wait_sent(self) -> None:
        for work, _ in self._sending:
            work.wait()
        self._sending = []

    def _request(self, kind: int, into: Tensor) -> list[int]:
        self._wait_sent()  # a replica reads its own updates
        for server in self.servers:
            dist.send(_header(kind), dst=server, tag=HEADER)
        versions = []
        reply = torch.zeros(3, dtype=torch.int64)
        for server, (lo, hi) in zip(self.servers, self.bounds, strict=True):
            dist.recv(reply, src=server, tag=REPLY)
            versions.append(int(reply[0]))
            dist.recv(into[lo:hi], src=server, tag=REPLY_DATA)
        return versions

    def fetch(self, into: Tensor) -> list[int]:
        return self._request(FETCH, into)

    def peek(self, into: Tensor) -> None:
        self._request(PEEK, into)

    def push(self, update: Tensor, bases: list[int]) -> None:
        self._wait_sent()
        for server, (lo, hi), base in zip(self.servers, self.bounds, bases, strict=True):
            header, part = _header(PUSH, base), update[lo:hi].contiguous()
            self._sending.append((dist.isend(header, dst=server, tag=HEADER), header))
            self._sending.append((dist.isend(part, dst=server, tag=DATA), part))

    def wait_epoch(self, k: int) -> None:
        self._wait_sent()
        dist.send(_header(EPOCH, k), dst=self.servers[0], tag=HEADER)
        dist.recv(torch.zeros(3, dtype=torch.int64), src=self.servers[0], tag=REPLY)

    def report(self) -> list[list[int]]:
        self._wait_sent()
        out = []
        reply = torch.zeros(3, dtype=torch.int64)
        for server in self.servers:
            dist.send(_header(REPORT), dst=server, tag=HEADER)
            dist.recv(reply, src=server, tag=REPLY)
            n = int(reply[0])
            values = torch.zeros(n, dtype=torch.int64)
            if n:
                dist.recv(values, src=server, tag=REPLY_DATA)
            out.append(values.tolist())
        return out

    def close(self) -> None:
        self._wait_sent()
        for server in self.servers:
            dist.send(_header(DONE), dst=server, tag=HEADER)


def alone(config: Any) -> Any:
    """``config`` as one process without files: what every rank builds its initial
    model from (the same seed gives every rank the same weights)."""
    from optimlab.parallel.methods import REGISTRY

    methods = {name: None for m in REGISTRY for name in m.options}
    return config.replace(parallel="none", nproc=None, nnodes=None, out=None,
                          checkpoint_every=None, keep_epochs=False, early_stopping=None,
                          **methods)  # fmt: skip


class ServerWorld:
    """Server ``index`` of ``servers`` (ranks ``ranks``) serving ``replicas``."""

    serves = True
    is_writer = False

    def __init__(self, index: int, ranks: list[int], replicas: list[int]) -> None:
        self.index, self.ranks, self.replicas = index, ranks, replicas

    def serve(self, config: Any) -> None:
        """Build the initial model as the replicas do, take this shard, serve it."""
        from optimlab.parallel.rules import make_rule
        from optimlab.run import build_run

        model = build_run(alone(config)).problem.model
        flat = FlatParams(list(model.parameters())).read()
        lo, hi = share_bounds(flat.numel(), self.index, len(self.ranks))
        w = flat[lo:hi].clone()
        rule = make_rule(config, w)
        ParameterServer(w, rule, self.replicas, coordinator=self.index == 0).serve()

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


def join_async(config: Any, rank: int, size: int) -> Any:
    """The world of ``rank`` in a run of an asynchronous method: a server or a replica."""
    from optimlab.parallel.replica import AsyncWorld
    from optimlab.parallel.simulate import replica_factory

    replicas, servers = split(size, config.servers or 1)
    if rank in servers:
        return ServerWorld(servers.index(rank), servers, replicas)
    return AsyncWorld(rank, len(replicas), ServerLink(servers), replica_factory(config))
