"""An asynchronous method in one process, with a simulated server and a seeded
staleness: ``optimlab train --parallel downpour --simulate-delay fixed:4``.

The replica is the real one (:class:`optimlab.parallel.downpour.DownpourOptimizer`,
:class:`optimlab.parallel.easgd.ElasticOptimizer`); only its link to the server is
replaced by :class:`SimulatedServer`, which holds the parameters ``w_v`` and the
server rule (:mod:`optimlab.parallel.rules`) as a real server does, and keeps the last
``K`` versions. A fetch at version ``v`` draws a staleness ``s`` from the delay model
(:mod:`optimlab.parallel.delay`) and returns ``w_{v - min(s, v)}``; the next push is
applied at version ``v`` against that base, so its recorded staleness is ``min(s, v)``.
With ``n_fetch = n_push = 1`` (Downpour) a step is::

    w_{v+1} = U(w_v, grad f_B(w_{v - s_v}))

plain SGD with ``s``-step-old gradients for ``--optimizer sgd``; delay-tolerant AdaGrad
also sees the gradients applied between ``v - s_v`` and ``v``. Staleness 0 is the
serial method. The whole state (versions, rule, generator) is checkpointed, so a
resumed run continues exactly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from optimlab.parallel.delay import DelayModel, parse_delay
from optimlab.parallel.replica import AsyncWorld, FlatParams
from optimlab.parallel.rules import make_rule


class SimulatedServer:
    """A one-shard server for one replica, whose fetches are ``delay``-stale."""

    applies_at_once = True  # a push is applied before it returns; the update is not kept

    def __init__(self, config: Any, delay: DelayModel) -> None:
        self.config = config
        self.delay = delay
        self.keep = delay.spec.max_staleness  # old versions to keep
        self.version = 0
        self.w: Tensor | None = None
        self.rule: Any = None
        self.history: dict[int, Tensor] = {}  # version -> w, for the last `keep` versions
        # the vectors of versions that left the window, refilled by later pushes: copying
        # into one costs no allocation (and none of a fresh tensor's page faults)
        self._spare: list[Tensor] = []
        self.fetched: list[int] = []  # versions the replica may still push against
        self.pending: list[int] = []  # staleness since the last report

    def attach(self, flat: FlatParams) -> None:
        """Start from the replica's initial weights (every replica's, in a real run)."""
        self.w = flat.read().clone()
        self.rule = make_rule(self.config, self.w)
        self.rule.snapshot(0)

    def fetch(self, into: Tensor) -> list[int]:
        weights, versions = self.fetch_source()
        into.copy_(weights)
        return versions

    def fetch_source(self) -> tuple[Tensor, list[int]]:
        """A fetch without its copy: the server's vector of the fetched version itself,
        which the caller reads (copies into the replica) before its next push."""
        assert self.w is not None
        base = self.version - min(self.delay.draw(), self.version)
        self.fetched.append(base)
        return (self.w if base == self.version else self.history[base]), [base]

    def peek(self, into: Tensor) -> None:
        assert self.w is not None
        into.copy_(self.w)

    def push(self, update: Tensor, bases: list[int]) -> None:
        assert self.w is not None
        (base,) = bases
        if self.keep:
            kept = self._spare.pop() if self._spare else torch.empty_like(self.w)
            self.history[self.version] = kept.copy_(self.w)
        self.rule.apply(self.w, update, base, self.version)
        self.pending.append(self.version - base)
        self.version += 1
        oldest = self.version - self.keep
        for old in [v for v in self.history if v < oldest]:
            self._spare.append(self.history.pop(old))
        # as a real server: after a push the replica's next update is computed on its
        # latest fetch or a later one (a base older than the delay's window when
        # n_fetch > 1)
        self.fetched = self.fetched[-1:]
        self.rule.snapshot(self.version)
        self.rule.release({*range(oldest, self.version + 1), *self.fetched})

    def wait_epoch(self, k: int) -> None:
        pass

    def begin(self, epoch: int) -> None:
        pass  # one replica: nothing to agree on

    def report(self) -> list[list[int]]:
        out, self.pending = self.pending, []
        return [out]

    def close(self) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        # copies of the kept versions: their vectors are refilled by later pushes
        history = {v: w.clone() for v, w in self.history.items()}
        return {"version": self.version, "w": self.w, "history": history,
                "rule": self.rule.state_dict(), "delay": self.delay.state_dict(),
                "fetched": list(self.fetched), "pending": list(self.pending)}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.w is not None
        self.version = int(state["version"])
        self.w.copy_(state["w"])
        self.history = {int(v): w.clone() for v, w in state["history"].items()}
        self._spare = []
        self.rule.load_state_dict(state["rule"])
        self.delay.load_state_dict(state["delay"])
        self.fetched = list(state["fetched"])
        self.pending = list(state["pending"])


def simulated_world(config: Any) -> AsyncWorld:
    """The world of ``config`` (an asynchronous method with ``simulate_delay``): one
    replica and its simulated server."""
    delay = DelayModel(parse_delay(config.simulate_delay), config.seed)
    return AsyncWorld(0, 1, SimulatedServer(config, delay), replica_factory(config))


def replica_factory(config: Any) -> Any:
    """``make(inner, flat, link)`` for the replica of ``config.parallel``."""
    if config.parallel == "easgd_async":
        from optimlab.parallel.easgd import elastic_optimizer

        return elastic_optimizer(config)
    from optimlab.parallel.downpour import replica_optimizer

    return replica_optimizer(config)
