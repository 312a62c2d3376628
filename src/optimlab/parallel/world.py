"""A world of processes in a torch.distributed process group.

:func:`join` reads the process's place from the environment that torch's elastic
launcher (and ``torchrun``) sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT`` or the launcher's store), starts the
default process group (gloo on the CPU, NCCL on CUDA) and returns the world of the
run's method. All communication is torch.distributed's: ``all_reduce`` for sums,
``gather_object`` for checkpoints, ``barrier``.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

# torch._dynamo, imported after a process group starts (DDP's constructor and torch's
# pipelining import it), keeps that group alive past destroy_process_group (torch 2.13):
# its gloo threads then outlive Python's shutdown, and one that frees a collective's
# tensors as the interpreter finalizes aborts the process ("terminate called without an
# active exception"). Imported before any group starts, the group is freed and its
# threads joined when the run leaves it. (Building any run imports it anyway.)
import torch._dynamo  # noqa: F401
import torch.distributed as dist
from torch import Tensor

from optimlab.errors import OptimlabError
from optimlab.parallel.sharding import ShardedLoader
from optimlab.train.distributed import World

# What torchrun and the elastic launcher set for every worker.
ENVIRONMENT = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


@dataclass(frozen=True)
class Place:
    """Where a process stands: global rank and size, and on its machine."""

    rank: int
    size: int
    local_rank: int
    local_size: int

    @property
    def nnodes(self) -> int:
        return self.size // self.local_size


def in_launched_worker() -> bool:
    """Whether this process was started by torchrun or torch's elastic launcher."""
    return all(name in os.environ for name in ENVIRONMENT)


def place_from_environment() -> Place:
    """This process's :class:`Place`, read from the launcher's environment."""
    missing = [name for name in ENVIRONMENT if name not in os.environ]
    if missing:
        raise OptimlabError(
            f"not started by a launcher: {', '.join(missing)} not set; start parallel runs "
            "with optimlab train --nproc N, or with torchrun"
        )
    values = {name: os.environ[name] for name in ENVIRONMENT}
    try:
        rank, size, local_rank, local_size = (int(values[n]) for n in ENVIRONMENT)
    except ValueError:
        raise OptimlabError(f"invalid launcher environment {values}; expected integers") from None
    if not (0 <= rank < size and 0 <= local_rank < local_size and size % local_size == 0):
        raise OptimlabError(f"invalid launcher environment {values}")
    return Place(rank, size, local_rank, local_size)


class ProcessGroupWorld(World):
    """One process of the default process group: sums with ``all_reduce``, checkpoints
    gathered to rank 0 (the writer), batches shared by :class:`ShardedLoader`."""

    reduces = True

    def __init__(self, place: Place, device: torch.device) -> None:
        self.place = place
        self.rank, self.size = place.rank, place.size
        self.is_writer = place.rank == 0
        self.device = device

    def shard(self, loader: Any) -> ShardedLoader:
        return ShardedLoader(loader, self.rank, self.size)

    def all_sum(self, tensor: Tensor) -> Tensor:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def gather(self, obj: Any) -> list[Any] | None:
        out: list[Any] | None = [None] * self.size if self.is_writer else None
        dist.gather_object(obj, out, dst=0)
        return out

    def barrier(self) -> None:
        if self.device.type == "cuda":
            dist.barrier(device_ids=[self.device.index])
        else:
            dist.barrier()

    def close(self) -> None:
        """Leave the process group (every process, at the end of the run)."""
        leave_process_group()


def leave_process_group() -> None:
    """Leave the default process group, freeing it while Python runs.

    The run's objects that hold the group (DDP's reducer and its last work) sit in
    reference cycles; collected first, the group is freed by ``destroy_process_group``
    and its gloo threads are joined here. Left to interpreter exit, a gloo thread that
    frees a collective's tensors while Python shuts down aborts the process."""
    gc.collect()
    if dist.is_initialized():
        dist.destroy_process_group()


def device_for(name: str, place: Place) -> torch.device:
    """The device of a process: on CUDA the GPU of its local rank."""
    if name in ("auto", "cuda"):
        if torch.cuda.is_available():
            return torch.device("cuda", place.local_rank)
        if name == "cuda":
            raise OptimlabError("invalid device 'cuda': CUDA is not available here; use cpu")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and place.local_size > 1:
        raise OptimlabError(
            f"invalid device {name!r} for {place.local_size} processes per machine; valid: "
            "cuda (each process takes the GPU of its local rank) or cpu"
        )
    if device.type not in ("cpu", "cuda"):
        raise OptimlabError(f"invalid device {name!r} for a parallel run; valid: cpu, cuda")
    return device


def _attempt_store(timeout: timedelta) -> dist.Store | None:
    """The launcher's store under a prefix of this attempt, for a restarted group.

    torch's elastic agent shares one TCP store with its workers across restarts, and
    the default (``env://``) set-up reads it without a prefix, so a restarted group
    would find the previous attempt's addresses and connect to processes that are
    gone. Keys under ``optimlab/attempt_K`` keep the attempts apart."""
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT")
    if attempt is None or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
        timeout=timeout,
    )  # fmt: skip
    return dist.PrefixStore(f"optimlab/attempt_{attempt}", store)


def init_process_group(place: Place, device: torch.device, timeout_s: float = 1800) -> None:
    """Start the default process group from the launcher's environment: NCCL for CUDA
    devices, gloo otherwise. ``timeout_s`` bounds each collective's wait."""
    backend = "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl":
        if not dist.is_nccl_available():
            raise OptimlabError("invalid device: NCCL is not available in this torch build; "
                                "use --device cpu")  # fmt: skip
        torch.cuda.set_device(device)
    timeout = timedelta(seconds=timeout_s)
    kwargs: dict[str, Any] = {"backend": backend, "rank": place.rank, "world_size": place.size,
                              "timeout": timeout}  # fmt: skip
    store = _attempt_store(timeout)
    if store is not None:
        kwargs["store"] = store
    if backend == "nccl":
        kwargs["device_id"] = device
    dist.init_process_group(**kwargs)


def join(config: Any, place: Place, device: torch.device) -> Any:
    """Start the process group and return the world of ``config.parallel`` (for a
    method with servers, a server's or a replica's)."""
    init_process_group(place, device)
    if config.parallel == "sync":
        from optimlab.parallel.sync import SyncWorld

        return SyncWorld(place, device)
    if config.parallel == "local_sgd":
        from optimlab.parallel.local_sgd import LocalSGDWorld

        return LocalSGDWorld(place, device, period=config.local_sgd_period,
                             warmup=config.local_sgd_warmup)  # fmt: skip
    if config.parallel == "easgd":
        from optimlab.parallel.easgd import EasgdWorld

        return EasgdWorld(place, device, config)
    if config.parallel == "pipeline":
        from optimlab.parallel.pipeline import PipelineWorld

        return PipelineWorld(place, device, config.micro_batches)
    from optimlab.parallel.methods import DISTRIBUTED, method

    if method(config.parallel).servers:
        from optimlab.parallel.server import join_async

        return join_async(config, place.rank, place.size)
    raise OptimlabError(f"invalid parallel {config.parallel!r} for a process group; "
                        f"valid: {', '.join(DISTRIBUTED)}")  # fmt: skip
