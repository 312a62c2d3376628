"""Synchronous data parallel SGD on DistributedDataParallel.

Papers: Chen, Pan, Monga, Bengio & Jozefowicz 2016, *Revisiting Distributed Synchronous
SGD* (arXiv:1604.00981); Goyal et al. 2017, *Accurate, Large Minibatch SGD: Training
ImageNet in 1 Hour* (arXiv:1706.02677); the engine: Li et al. 2020, *PyTorch
Distributed: Experiences on Accelerating Data Parallel Training* (VLDB 13(12)).

Update. ``N`` processes hold the same weights ``w``. Global batch ``B`` of ``b``
examples is cut into disjoint shares ``B_r`` of ``n_r`` examples (``sum_r n_r = b``;
equal when ``N`` divides ``b``, which the run requires, except for an epoch's last,
partial batch). Process ``r`` computes the mean gradient of its share and weighs it::

    g_r = (1 / n_r) sum_{i in B_r} grad l_i(w)          (local backward)
    h_r = (N n_r / b) g_r                                (loss weight, see loss_weights)
    g   = (1 / N) sum_r h_r = (1 / b) sum_{i in B} grad l_i(w)    (all-reduce, mean)
    w  <- U(w, g)                                        (the optimizer, on every process)

so every process takes the step one process would take on the whole batch, and the
weights stay equal. The batch size and the learning rate mean the same at any ``N``.

Communication per step: one all-reduce of all gradients, in buckets that overlap the
backward pass (a ring all-reduce sends about ``2 (N - 1) / N`` times the gradient's size
per process); DDP also broadcasts buffers (batch-norm statistics) from rank 0 before each
forward. At construction DDP broadcasts rank 0's weights. Per epoch the trainer
all-reduces a few sums (loss, metrics, evaluation) and gathers the processes' random
generator states into rank 0's checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn
from torch.nn.parallel import DistributedDataParallel

from optimlab.parallel.world import ProcessGroupWorld


def global_batch_weights(size: int, local: Sequence[int], global_: Sequence[int]) -> list[float]:
    """Loss weights ``size * n_r / b`` for micro-batches with ``local`` examples here out
    of ``global_`` over all processes (``b`` summed over the step's micro-batches)."""
    total = sum(global_)
    return [size * n / total for n in local]


class SyncWorld(ProcessGroupWorld):
    """Synchronous data parallel: the model wrapped in DistributedDataParallel."""

    def wrap_model(self, model: nn.Module) -> nn.Module:
        ids = [self.device.index] if self.device.type == "cuda" else None
        # Gradients as views of DDP's buckets: the all-reduce works on them in place,
        # without a copy into the buckets and back each step. (DDP broadcasts buffers
        # before a forward only where the model has some, so that needs no option.)
        return DistributedDataParallel(model, device_ids=ids, gradient_as_bucket_view=True)

    def loss_weights(
        self, step: int, local_sizes: Sequence[int], global_sizes: Sequence[int]
    ) -> list[float]:
        return global_batch_weights(self.size, local_sizes, global_sizes)
