"""Hogwild!: processes of one machine updating one model in shared memory, no locks.

Paper: Niu, Recht, Ré & Wright 2011, *HOGWILD!: A Lock-Free Approach to Parallelizing
Stochastic Gradient Descent* (NeurIPS, arXiv:1106.5730).

Update. The weights ``w`` live in shared memory (``model.share_memory()``). Each of
``P`` processes repeats, with no lock and no waiting for the others::

    read w                        (whatever values the others have written so far)
    g_p = grad f_B(w)             (its own batch B: batches p, p + P, p + 2P, ... of
                                   each epoch's order, so each epoch covers the data once)
    w  <- w - lr * g_p            (in place, into the shared tensors)

The paper's argument: when each example touches few coordinates (sparse problems),
two processes rarely write the same coordinate at once, and the overwritten updates
cost little, so the speed-up is near linear. Each process keeps its own optimizer state
(momentum and the like) and its own gradient. The processes wait for each other only at
epoch ends (as the paper's runs, which changed the step size between epochs), so that
process 0 evaluates and checkpoints the model after every process's share of the epoch.

Communication: none; the processes share the weights' memory pages. Each update writes
the whole weight tensor: optimlab's update rules take dense gradients, so on a sparse
problem the gradient is zero, not absent, outside the batch's features.

Budgets: ``epochs`` are epochs of the whole data (each process runs them over its
share); ``steps`` and ``seconds`` are each process's. Process 0 writes the files (its
own metrics, the shared model). A run of one process is the serial run, bit for bit;
a run of several cannot resume (their positions are not recorded) and starts over.
"""

from __future__ import annotations

import contextlib
import queue as queue_module
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from optimlab.errors import OptimlabError
from optimlab.parallel.methods import check_resumable
from optimlab.parallel.sharding import InterleavedLoader
from optimlab.train.distributed import World

# A worker's entry in the epoch table once it has finished: it never holds others up.
_DONE = 2**62


class HogwildWorld(World):
    """Process ``rank`` of ``size`` sharing the model's tensors ``shared`` (its
    ``state_dict`` values in order, in shared memory) and the epoch table ``epochs``
    (a shared array of the epochs each process has finished)."""

    reduces = False

    def __init__(self, rank: int, size: int, shared: list[Tensor], epochs: Any = None) -> None:
        self.rank, self.size = int(rank), int(size)
        self.is_writer = self.evaluates = self.rank == 0
        self.shared = shared
        self.epochs = epochs
        self._finished = 0

    def shard(self, loader: Any) -> InterleavedLoader:
        return InterleavedLoader(loader, self.rank, self.size)

    def own_batches(self, n: int) -> int:
        return len(range(self.rank, n, self.size))

    def wrap_model(self, model: nn.Module) -> nn.Module:
        """Point the model's parameters and buffers at the shared tensors: the
        optimizer's in-place updates then write shared memory."""
        own = list(model.state_dict(keep_vars=True).values())
        if len(own) != len(self.shared):
            raise OptimlabError("the shared model does not match this process's model")
        for mine, theirs in zip(own, self.shared, strict=True):
            if mine.shape != theirs.shape or mine.dtype != theirs.dtype:
                raise OptimlabError("the shared model does not match this process's model")
            mine.data = theirs
        return model

    def epoch_end(self, model: nn.Module) -> None:
        """Wait until every process has finished this epoch (or its run)."""
        self._finished += 1
        if self.epochs is None:
            return
        self.epochs[self.rank] = self._finished
        while any(self.epochs[p] < self._finished for p in range(self.size)):
            time.sleep(0.0005)

    def leave(self) -> None:
        """Mark this process as finished, so that no one waits for it any more."""
        if self.epochs is not None:
            self.epochs[self.rank] = _DONE


@dataclass
class HogwildResult:
    """Process 0's run summary and the shared model after every process finished."""

    summary: dict[str, Any]
    model: nn.Module


def _worker(
    rank: int, settings: dict[str, Any], shared: list[Tensor], epochs: Any,
    resume: bool | str, progress: bool, results: Any,
) -> None:  # fmt: skip
    """One process: build the run around the shared model and train its share."""
    from optimlab.run import RunConfig, build_run

    world = None
    try:
        config = RunConfig.from_json(settings)
        world = HogwildWorld(rank, config.nproc or 1, shared, epochs)
        if rank != 0:  # process 0 writes; the others keep no files
            config = config.replace(out=None, checkpoint_every=None, keep_epochs=False)
            resume = False
        run = build_run(config, world=world, resume=resume, progress=progress and rank == 0)
        result = run.fit()
        results.put((rank, "ok", result.summary if rank == 0 else None))
    except OptimlabError as err:
        results.put((rank, "error", str(err)))
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C reaches every process; the parent reports it
        sys.exit(130)
    finally:
        if world is not None:
            world.leave()


def run_hogwild(
    config: Any, *, resume: bool | str = "auto", progress: bool = False,
    timeout: float | None = None,
) -> HogwildResult:  # fmt: skip
    """Train ``config`` (``parallel="hogwild"``) in ``config.nproc`` processes sharing
    one model; ``timeout`` (seconds) ends them all and fails when they run longer."""
    from optimlab.run import build_run

    if config.parallel != "hogwild":
        raise OptimlabError(f"invalid parallel {config.parallel!r} here; valid: hogwild")
    size = config.nproc or 1
    check_resumable(config, resume)
    if config.device == "auto":  # the processes share CPU memory
        config = config.replace(device="cpu")
    if config.threads is None:  # the cores are split between the processes
        config = config.replace(threads=max(1, torch.get_num_threads() // size))
    config = config.replace(nproc=size)
    # The shared model: built once here exactly as each process builds its own, then
    # moved to shared memory; each process points its model's tensors at these.
    model = build_run(config.replace(out=None, checkpoint_every=None, keep_epochs=False,
                                     parallel="none", nproc=None)).problem.model  # fmt: skip
    if next(model.parameters()).device.type != "cpu":
        raise OptimlabError("hogwild shares CPU memory; valid device: cpu")
    model.share_memory()
    shared = list(model.state_dict(keep_vars=True).values())
    ctx = torch.multiprocessing.get_context("spawn")
    epochs = ctx.Array("q", size, lock=False)  # read and written without locks, too
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=_worker,
            args=(r, config.to_json(), shared, epochs, resume, progress, results),
            daemon=True,
        )  # fmt: skip
        for r in range(size)
    ]
    for p in procs:
        p.start()
    try:
        outcome = _collect(procs, results, timeout)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()
    errors = [msg for status, msg in outcome.values() if status == "error"]
    if errors:
        raise OptimlabError(errors[0])
    summary = outcome.get(0, ("ok", None))[1]
    return HogwildResult(summary=summary or {}, model=model)


def _collect(procs: list[Any], results: Any, timeout: float | None) -> dict[int, tuple[str, Any]]:
    """Each process's ``(status, value)`` once all have ended; a process that dies
    without reporting ends the others."""
    deadline = None if timeout is None else time.monotonic() + timeout
    outcome: dict[int, tuple[str, Any]] = {}
    while len(outcome) < len(procs):
        with contextlib.suppress(queue_module.Empty):
            rank, status, value = results.get(timeout=0.1)
            outcome[rank] = (status, value)
            if status == "error":
                return outcome
            continue
        for rank, p in enumerate(procs):
            if rank not in outcome and not p.is_alive() and p.exitcode != 0:
                # its report may still be in the pipe: give it a moment
                with contextlib.suppress(queue_module.Empty):
                    r, status, value = results.get(timeout=1.0)
                    outcome[r] = (status, value)
                    if status == "error":
                        return outcome
                if rank not in outcome:
                    raise OptimlabError(
                        f"hogwild process {rank} ended with exit code {p.exitcode} "
                        "without finishing; see its output above"
                    )
        if deadline is not None and time.monotonic() > deadline:
            raise OptimlabError(f"the hogwild run took longer than {timeout:g} s")
    for p in procs:
        p.join()
    return outcome
