"""Downpour SGD: asynchronous model replicas and a sharded parameter server.

Paper: Dean, Corrado, Monga, Chen, Devin, Le, Mao, Ranzato, Senior, Tucker, Yang & Ng
2012, *Large Scale Distributed Deep Networks* (NeurIPS), section 4.1 and the client's
algorithm in its appendix.

Processes. Of ``N`` processes the last ``S = servers`` hold the parameter vector ``w`` in
``S`` contiguous shards (:mod:`optimlab.parallel.server`); the first ``R = N - S`` train
model replicas, replica ``r`` on whole batches ``r, r + R, r + 2R, ...`` of every epoch.
Rank 0, a replica, writes the run's files.

Update. Each server shard applies the run's optimizer ``U`` (AdaGrad in the paper:
``--optimizer adagrad``) to every update pushed to it, in the order they arrive, and
counts them (its *version* ``v``). Replica ``r`` repeats, for its steps ``t = 0, 1, ...``
(Dean et al.'s client with ``alpha = replica_lr``)::

    if t mod n_fetch == 0:  w_r <- fetch()        (every shard; b <- their versions)
    g   <- grad f_B(w_r)                          (its next batch B)
    acc <- acc + g                                (acc = 0 after each push)
    w_r <- w_r - alpha g                          (alpha = 0: no local step, the default)
    if (t + 1) mod n_push == 0:  push(acc, b)     (then acc <- 0)

and on each shard, for a push computed on version ``b`` arriving at version ``v``::

    w <- U(w, acc)        staleness = v - b        v <- v + 1

``n_fetch = n_push = 1`` with one replica is the server's rule run serially: the replica
fetches exactly the weights its previous push produced. A replica also pushes what it
holds at the end of each epoch. The staleness of every applied update is recorded
(``staleness_mean``/``staleness_max`` in the epoch records, every value in
``staleness.json``). ``--parallel delay_tolerant`` replaces ``U`` by AdaRevision
(:mod:`optimlab.parallel.delay_tolerant`), which also uses ``b``.

Communication: point-to-point messages of the process group (gloo ``send``/``recv``;
a server receives from any replica). A fetch is a request per shard and its reply
(the shard and its version); the replica waits for it. A push is the summed gradient,
shard by shard, sent without waiting (``isend``); a replica's fetch waits until its
earlier pushes were received, so that it reads its own updates. Per replica and step:
``|w| / n_fetch`` in and ``|w| / n_push`` out. Buffers (batch-norm statistics) are not
served: each replica keeps its own, and rank 0's are evaluated.

Why point-to-point and not torch's RPC: measured on the shared 2-core development
machine over loopback (``optimlab bench transport``, two sessions; the
tables are in docs/parallel.md), the median round trip of a fetch of 650 or 100,000
floats (this lab's problem sizes) took 0.29 and 0.39 ms with gloo's send/recv against
0.56 and 0.57 ms with RPC (TensorPipe) in one session, but 16 and 4.8 ms against 0.55
ms in the other, when the other jobs' load kept the processes waiting for the cores;
for 1.3M floats RPC was 5 to 7 times faster in both. Latency alone does not decide it
here. Point-to-point was chosen for what it makes of the server: it runs in the process
group the launcher already starts (no second rendezvous, no RPC thread pool competing
for the cores), and a server that handles one message at a time applies the updates in
arrival order without locks, which is what makes one replica exactly serial (tested bit
for bit). For large models on machines with cores to spare, RPC's lower cost per byte
would make it the better transport.

Budgets are each replica's (as Hogwild!'s): ``epochs`` are epochs of the whole data,
``steps`` and ``seconds`` each replica's. A run resumes from the checkpoint of its last
epoch end: the servers' state and every replica's as they were there
(:mod:`optimlab.parallel.server`). ``simulate_delay`` runs the same replica and server
code in one process with a seeded staleness (:mod:`optimlab.parallel.simulate`).
"""

from __future__ import annotations

from typing import Any

import torch

from optimlab.parallel.replica import FlatParams, ReplicaOptimizer


class DownpourOptimizer(ReplicaOptimizer):
    """A Downpour replica: fetch every ``n_fetch`` steps, push the summed gradients
    every ``n_push`` steps, and step by ``-replica_lr * g`` locally in between."""

    def __init__(
        self, inner: torch.optim.Optimizer, flat: FlatParams, link: Any, n_fetch: int = 1,
        n_push: int = 1, replica_lr: float = 0.0,
    ) -> None:  # fmt: skip
        super().__init__(inner, flat, link)
        self.n_fetch, self.n_push, self.replica_lr = int(n_fetch), int(n_push), float(replica_lr)
        self.t = 0
        self.started = False
        self.versions: list[int] = []
        self.accrued: torch.Tensor | None = None
        self.bases: list[int] = []
        # Vectors reused from step to step instead of allocated (5 MB each on fmnist_mlp):
        # the fetch's buffer, and the pushed gradient's where the link has applied a push
        # when it returns (the simulated server); a real push is still in flight then.
        self._fetched: torch.Tensor | None = None
        self._sum: torch.Tensor | None = None
        self._reuse_sum = bool(getattr(link, "applies_at_once", False))

    def start(self) -> None:
        if not self.started:  # a resumed replica holds its fetched weights already
            self._fetch()
            self.started = True

    def _fetch(self) -> None:
        source = getattr(self.link, "fetch_source", None)
        if source is not None:  # the simulated server: its vector, copied once, below
            weights, self.versions = source()
        else:
            if self._fetched is None:
                self._fetched = self.flat.empty()
            weights = self._fetched
            self.versions = self.link.fetch(weights)
        self.view = None  # the fetched weights replace the replica's
        self.flat.write(weights)

    def _push(self) -> None:
        assert self.accrued is not None
        self.link.push(self.accrued, self.bases)
        self.accrued, self.bases = None, []

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        if self.accrued is None:
            if self._reuse_sum and self._sum is None:
                self._sum = self.flat.empty()
            g = self.flat.grad(out=self._sum if self._reuse_sum else None)
            self.accrued, self.bases = g, list(self.versions)
        else:
            g = self.flat.grad()
            self.accrued.add_(g)
        if self.replica_lr:
            self.flat.add(g, alpha=-self.replica_lr)
        self.t += 1
        if self.t % self.n_push == 0:
            self._push()
        if self.t % self.n_fetch == 0:
            self._fetch()

    def flush(self) -> None:
        if self.accrued is not None:
            self._push()

    def own_state(self) -> dict[str, Any]:
        accrued = self.accrued
        if accrued is not None and accrued is self._sum:  # the buffer is refilled later
            accrued = accrued.clone()
        return {"t": self.t, "started": self.started, "versions": self.versions,
                "accrued": accrued, "bases": self.bases}  # fmt: skip

    def load_own_state(self, state: dict[str, Any]) -> None:
        self.t, self.started = int(state["t"]), bool(state["started"])
        self.versions, self.bases = list(state["versions"]), list(state["bases"])
        accrued = state["accrued"]
        self.accrued = None if accrued is None else accrued.to(self.flat.device).clone()


def replica_optimizer(config: Any) -> Any:
    """``make(inner, flat, link)``: the Downpour replica of ``config``."""

    def make(inner: torch.optim.Optimizer, flat: FlatParams, link: Any) -> DownpourOptimizer:
        return DownpourOptimizer(inner, flat, link, n_fetch=config.n_fetch or 1,
                                 n_push=config.n_push or 1,
                                 replica_lr=config.replica_lr or 0.0)  # fmt: skip

    return make
