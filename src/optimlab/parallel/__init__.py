"""Parallel and distributed SGD on ``torch.distributed`` and ``torch.multiprocessing``.

Three methods, chosen with ``RunConfig.parallel`` (``optimlab train --parallel``):

- ``sync`` (:mod:`optimlab.parallel.sync`): synchronous data parallel SGD. Every
  process takes a disjoint share of every global batch; DistributedDataParallel
  all-reduces the gradients, so each step is the step of one process on the whole batch.
- ``local_sgd`` (:mod:`optimlab.parallel.local_sgd`): (post-)local SGD. Processes step
  on their own shares and average their models every ``local_sgd_period`` steps, after
  ``local_sgd_warmup`` synchronous steps.
- ``hogwild`` (:mod:`optimlab.parallel.hogwild`): Hogwild!. Processes on one machine
  update one model in shared memory without locks.

``sync`` and ``local_sgd`` run in a process group started by torch's elastic launcher
(:mod:`optimlab.parallel.launch`, the engine behind ``torchrun``) or by ``torchrun``
itself; :mod:`optimlab.parallel.worker` is what each process runs. The trainer sees a
parallel run through a small interface (:class:`optimlab.train.distributed.World`);
:mod:`optimlab.parallel.world` implements it on a process group.

Importing this package imports nothing from ``torch.distributed``; the modules do.
"""

from optimlab.parallel.methods import DISTRIBUTED, METHODS

__all__ = ["DISTRIBUTED", "METHODS"]
