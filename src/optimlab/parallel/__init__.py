"""Parallel and distributed SGD on ``torch.distributed`` and ``torch.multiprocessing``.

The methods, chosen with ``RunConfig.parallel`` (``optimlab train --parallel``; one
record each in :mod:`optimlab.parallel.methods`):

- ``sync`` (:mod:`optimlab.parallel.sync`): synchronous data parallel SGD. Every
  process takes a disjoint share of every global batch; DistributedDataParallel
  all-reduces the gradients, so each step is the step of one process on the whole batch.
- ``local_sgd`` (:mod:`optimlab.parallel.local_sgd`): (post-)local SGD. Processes step
  on their own shares and average their models every ``local_sgd_period`` steps, after
  ``local_sgd_warmup`` synchronous steps.
- ``hogwild`` (:mod:`optimlab.parallel.hogwild`): Hogwild!. Processes on one machine
  update one model in shared memory without locks.
- ``downpour`` (:mod:`optimlab.parallel.downpour`): Downpour SGD. Asynchronous replicas
  fetch the parameters from sharded parameter servers (:mod:`optimlab.parallel.server`)
  every ``n_fetch`` steps and push their summed gradients every ``n_push`` steps; the
  servers apply the run's optimizer (AdaGrad in the paper).
- ``delay_tolerant`` (:mod:`optimlab.parallel.delay_tolerant`): Downpour with
  delay-tolerant AdaGrad (AdaRevision) on the servers.
- ``easgd`` and ``easgd_async`` (:mod:`optimlab.parallel.easgd`): elastic averaging SGD,
  the center moved by an all-reduce or held on server ranks; EAMSGD with momentum.
- ``pipeline`` (:mod:`optimlab.parallel.pipeline`): pipeline model parallelism. The
  model is split into stages, one process each; GPipe's micro-batches flow through them
  (``torch.distributed.pipelining``).

The asynchronous methods (``downpour``, ``delay_tolerant``, ``easgd_async``) also run in
one process with a seeded staleness (``simulate_delay``; :mod:`optimlab.parallel.delay`,
:mod:`optimlab.parallel.simulate`), which makes accuracy against staleness deterministic.

The launched methods run in a process group started by torch's elastic launcher
(:mod:`optimlab.parallel.launch`, the engine behind ``torchrun``) or by ``torchrun``
itself; :mod:`optimlab.parallel.worker` is what each process runs. The trainer sees a
parallel run through a small interface (:class:`optimlab.train.distributed.World`);
:mod:`optimlab.parallel.world`, :mod:`optimlab.parallel.replica` and the methods'
modules implement it.

Importing this package imports nothing from ``torch.distributed``; the modules do.
"""

from optimlab.parallel.methods import DISTRIBUTED, METHODS

__all__ = ["DISTRIBUTED", "METHODS"]
