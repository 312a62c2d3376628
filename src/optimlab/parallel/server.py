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

===========  =====================  ==========================================
kind         follows                the server
===========  =====================  ==========================================
``FETCH``    nothing                replies ``[version]`` and its shard; records
                                    the fetch (delay-tolerant AdaGrad needs it)
``PEEK``     nothing                replies the same without recording a fetch
``PUSH``     the update (``DATA``)  applies it with base version ``a``, records
                                    the staleness ``version - a``, counts it
``EPOCH``    nothing                replies once every replica has finished
                                    epoch ``a`` or its run (a barrier); keeps a
                                    snapshot of its state as it is there
``REPORT``   nothing                replies the staleness values recorded up to
                                    the last barrier, not yet reported
``DONE``     nothing                counts the replica out; the server stops
                                    once every replica is out
``START``    nothing                replies once every replica has sent its
                                    ``START`` (epoch ``a``) or is out: the
                                    writer's epoch (-1: it returned a finished
                                    run) and the first replica that disagrees
                                    with it (-1: none) with its epoch (-1: out)
``SAVE``     nothing                replies the snapshot of the last barrier
``RESTORE``  a snapshot (``DATA``)  takes it as its state
``STATE``    a replica's state      (server 0) keeps it as the replica's state
             (``DATA``)             at epoch end ``a``
``GATHER``   nothing                (server 0) replies every other replica's
                                    state of epoch end ``a``, once each of them
                                    sent it or is out
===========  =====================  ==========================================

Checkpoints. Replicas step without waiting for each other, so the only points where
the servers' state and every replica's belong together are the epoch ends, where
every replica waits for every server. There each server keeps a snapshot of its
shard, version, rule state and the versions still in use; the writer saves these
snapshots (``SAVE``) and every replica's own state, which the other replicas leave
with server 0 (``STATE``, ``GATHER``), in its checkpoint, and gives the snapshots back
to a restarted group's servers (``RESTORE``) before any replica starts (``START``).
Checkpoints are written at epoch ends only (``checkpoint_every`` is refused).
"""

from __future__ import annotations

import copy
import io
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from optimlab.errors import OptimlabError
from optimlab.parallel.replica import FlatParams
from optimlab.parallel.world import leave_process_group
from optimlab.train.distributed import share_bounds

FETCH, PEEK, PUSH, EPOCH, REPORT, DONE, START, SAVE, RESTORE, STATE, GATHER = range(11)
HEADER, DATA, REPLY, REPLY_DATA = 11, 12, 13, 14  # message tags


def _header(kind: int, a: int = 0, b: int = 0) -> Tensor:
    return torch.tensor([kind, a, b], dtype=torch.int64)


def pack(obj: Any) -> Tensor:
    """``obj`` (tensors and plain values) as bytes in a uint8 tensor, to send."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)


def unpack(data: Tensor) -> Any:
    """What :func:`pack` packed."""
    return torch.load(io.BytesIO(data.numpy().tobytes()), weights_only=True)


def send_blob(data: Tensor, dst: int, tags: tuple[int, int]) -> None:
    """Send ``data`` (uint8) as its length, then itself."""
    dist.send(_header(len(data)), dst=dst, tag=tags[0])
    if len(data):
        dist.send(data, dst=dst, tag=tags[1])


def recv_blob(src: int, tags: tuple[int, int]) -> Tensor:
    """Receive what :func:`send_blob` sent."""
    header = torch.zeros(3, dtype=torch.int64)
    dist.recv(header, src=src, tag=tags[0])
    data = torch.zeros(int(header[0]), dtype=torch.uint8)
    if len(data):
        dist.recv(data, src=src, tag=tags[1])
    return data


def split(size: int, servers: int) -> tuple[list[int], list[int]]:
    """(replica ranks, server ranks) of a world of ``size`` with ``servers`` servers."""
    return list(range(size - servers)), list(range(size - servers, size))


class ParameterServer:
    """Shard ``w`` with ``rule``, serving ``replicas`` (the first one, rank 0, writes
    the run's checkpoints); ``coordinator`` (server 0) also keeps the other replicas'
    states for the writer's checkpoints."""

    def __init__(self, w: Tensor, rule: Any, replicas: list[int], coordinator: bool) -> None:
        self.w = w
        self.rule = rule
        self.replicas = replicas
        self.writer = replicas[0]
        self.coordinator = coordinator
        self.version = 0
        self.pending: list[int] = []  # staleness since the last barrier
        self.closed: list[int] = []  # staleness up to the last barrier, not yet reported
        self.fetched: dict[int, list[int]] = {r: [] for r in replicas}  # versions in use
        self.waiting: set[int] = set()  # at the epoch barrier
        self.done: set[int] = set()
        self.starting: dict[int, int] | None = {}  # replica -> its epoch; None: answered
        self.states: dict[int, tuple[int, Tensor]] = {}  # replica -> (epoch, its state)
        self.gathering: int | None = None  # the epoch the writer gathers, while it waits
        self.saved = self._snapshot()

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
                self.waiting.add(src)
                self._release()
            elif kind == REPORT:
                values = torch.tensor(self.closed, dtype=torch.int64)
                self.closed = []
                dist.send(_header(len(values)), dst=src, tag=REPLY)
                if len(values):
                    dist.send(values, dst=src, tag=REPLY_DATA)
            elif kind == DONE:
                self.done.add(src)
                self.fetched[src] = []
                self._answer_start()
                self._release()
                self._answer_gather()
            else:
                self._checkpointing(kind, a, src)

    def _checkpointing(self, kind: int, a: int, src: int) -> None:
        if kind == START:
            assert self.starting is not None, "START after the start"
            self.starting[src] = a
            self._answer_start()
        elif kind == SAVE:
            send_blob(self.saved, src, (REPLY, REPLY_DATA))
        elif kind == RESTORE:
            self._restore(recv_blob(src, (HEADER, DATA)))
        elif kind == STATE:
            self.states[src] = (a, recv_blob(src, (HEADER, DATA)))
            self._answer_gather()
        elif kind == GATHER:
            self.gathering = a
            self._answer_gather()

    def _answer_start(self) -> None:
        """Once every replica has started (or is out before it started), tell those
        that started the writer's epoch and the first replica that disagrees with it:
        a replica that read another checkpoint than the writer (or none) would
        otherwise train beside it, or leave its share of the data untrained."""
        starting = self.starting
        if starting is None or any(r not in starting and r not in self.done
                                   for r in self.replicas):  # fmt: skip
            return
        self.starting = None
        epochs = {r: starting.get(r, -1) for r in self.replicas}  # -1: out before starting
        writer = epochs[self.writer]
        odd = next((r for r in self.replicas if epochs[r] != writer), -1)
        reply = _header(writer, odd, epochs[odd] if odd >= 0 else -1)
        for r in sorted(starting):
            dist.send(reply, dst=r, tag=REPLY)

    def _answer_gather(self) -> None:
        """Send the writer the other replicas' states of epoch end ``gathering`` once
        each of them sent it (or is out, with the last one it sent)."""
        if self.gathering is None:
            return
        others = self.replicas[1:]
        if any(r not in self.done and self.states.get(r, (-1,))[0] < self.gathering
               for r in others):  # fmt: skip
            return
        self.gathering = None
        empty = torch.zeros(0, dtype=torch.uint8)
        for r in others:
            send_blob(self.states[r][1] if r in self.states else empty, self.writer,
                      (REPLY, REPLY_DATA))  # fmt: skip

    def _snapshot(self) -> Tensor:
        """This server's state, packed: what a checkpoint saves of it."""
        return pack({"version": self.version, "w": self.w.clone(),
                     "rule": copy.deepcopy(self.rule.state_dict()),
                     "fetched": {int(r): list(v) for r, v in self.fetched.items()}})  # fmt: skip

    def _restore(self, data: Tensor) -> None:
        state = unpack(data)
        self.version = int(state["version"])
        self.w.copy_(state["w"])
        self.rule.load_state_dict(state["rule"])
        self.fetched = {r: list(state["fetched"].get(r, [])) for r in self.replicas}
        self.pending, self.closed = [], []
        self.saved = data

    def _forget(self, replica: int) -> None:
        """After a push, a replica's next update is computed on its latest fetch or a
        later one: the snapshots of older versions are no longer needed by it."""
        if not self.rule.needs_snapshots:
            return
        self.fetched[replica] = self.fetched[replica][-1:]
        self.rule.release({v for versions in self.fetched.values() for v in versions})

    def _release(self) -> None:
        """Once every replica still running waits at the barrier, nothing changes the
        state until they go on: record it there, and let them go."""
        active = {r for r in self.replicas if r not in self.done}
        if not self.waiting or not active <= self.waiting:
            return
        self.closed += self.pending
        self.pending = []
        self.saved = self._snapshot()
        for r in sorted(self.waiting):
            dist.send(_header(0), dst=r, tag=REPLY)
        self.waiting = set()


class ServerLink:
    """A replica's link to the server ranks ``servers`` (see
    :mod:`optimlab.parallel.replica` for what a link does); the writer's link (rank 0)
    also saves and restores the servers' state."""

    def __init__(self, servers: list[int], writer: bool = False) -> None:
        self.servers = servers
        self.writer = writer
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

    def _all(self, kind: int, a: int = 0) -> list[list[int]]:
        """Send ``kind`` to every server; their replies (three values each)."""
        self._wait_sent()
        for server in self.servers:
            dist.send(_header(kind, a), dst=server, tag=HEADER)
        reply = torch.zeros(3, dtype=torch.int64)
        values = []
        for server in self.servers:
            dist.recv(reply, src=server, tag=REPLY)
            values.append(reply.tolist())
        return values

    def wait_epoch(self, k: int) -> None:
        self._all(EPOCH, k)

    def begin(self, epoch: int) -> None:
        """Wait until every replica has started (the writer has restored the servers
        when it resumed); refuse to go on when one starts at another epoch than the
        writer (every replica gets the same error)."""
        writer, odd, odd_epoch = self._all(START, epoch)[0]  # every server saw the same
        if odd >= 0:
            raise OptimlabError(start_mismatch(writer, odd, odd_epoch))

    def state_dict(self) -> dict[str, Any]:
        """The writer's: each server's state at the last epoch end."""
        if not self.writer:
            return {}
        self._wait_sent()
        saved = []
        for server in self.servers:
            dist.send(_header(SAVE), dst=server, tag=HEADER)
            saved.append(unpack(recv_blob(server, (REPLY, REPLY_DATA))))
        return {"servers": saved}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """The writer's: give each server its state back (other replicas ignore it)."""
        if not self.writer or "servers" not in state:
            return
        if len(state["servers"]) != len(self.servers):
            raise OptimlabError(
                f"the checkpoint holds {len(state['servers'])} server shards and this run "
                f"has {len(self.servers)} servers; resume with the same servers"
            )
        for server, shard in zip(self.servers, state["servers"], strict=True):
            dist.send(_header(RESTORE), dst=server, tag=HEADER)
            send_blob(pack(shard), server, (HEADER, DATA))

    def leave_state(self, epoch: int, state: Any) -> None:
        """A replica other than the writer: leave its state at epoch end ``epoch`` with
        server 0, for the writer's checkpoint."""
        self._wait_sent()
        dist.send(_header(STATE, epoch), dst=self.servers[0], tag=HEADER)
        send_blob(pack(state), self.servers[0], (HEADER, DATA))

    def gather_states(self, epoch: int, others: int) -> list[Any]:
        """The writer: the ``others`` other replicas' states of epoch end ``epoch``
        (None for a replica that left none)."""
        self._wait_sent()
        dist.send(_header(GATHER, epoch), dst=self.servers[0], tag=HEADER)
        blobs = [recv_blob(self.servers[0], (REPLY, REPLY_DATA)) for _ in range(others)]
        return [unpack(b) if len(b) else None for b in blobs]

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


def start_mismatch(writer: int, replica: int, epoch: int) -> str:
    """The error of a run whose replica ``replica`` starts at ``epoch`` (-1: it ended
    before starting) and whose writer at ``writer`` (-1: it returned a finished run)."""
    if epoch >= 0:
        what = f"replica {replica} starts at epoch {epoch}"
    else:
        what = (
            f"replica {replica} ended before starting (a finished run in its --out, or a failure)"
        )
    where = "returned a finished run" if writer < 0 else f"starts at epoch {writer}"
    return (
        f"{what} and rank 0 {where}; valid: a checkpoint every process reads (the same "
        "--out, on a directory every machine shares), or --restart on every machine"
    )


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
        leave_process_group()


def join_async(config: Any, rank: int, size: int) -> Any:
    """The world of ``rank`` in a run of an asynchronous method: a server or a replica."""
    from optimlab.parallel.replica import AsyncWorld
    from optimlab.parallel.simulate import replica_factory

    replicas, servers = split(size, config.servers or 1)
    if rank in servers:
        return ServerWorld(servers.index(rank), servers, replicas)
    link = ServerLink(servers, writer=rank == 0)
    return AsyncWorld(rank, len(replicas), link, replica_factory(config))
