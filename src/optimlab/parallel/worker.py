"""What each process of a launched run (``sync``, ``local_sgd``, ``easgd``, and the
methods with parameter servers) does: take its place from the launcher's environment,
join the process group, build the run, train (or serve the parameters), leave.

Started by :func:`optimlab.parallel.launch.launch` (``optimlab train --nproc N``) or by
``torchrun ... -m optimlab.cli train ...``, which reaches :func:`run_worker` through the
command line.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from optimlab.errors import OptimlabError


def resolve(config: Any, place: Any) -> Any:
    """``config`` with the process counts the launcher gives (a count given on the
    command line must agree) and, when not given, the CPU threads split between the
    machine's processes."""
    changes: dict[str, Any] = {}
    for name, actual, source in (
        ("nproc", place.local_size, "processes on this machine"),
        ("nnodes", place.nnodes, "machines"),
    ):
        given = getattr(config, name)
        if given is not None and given != actual:
            raise OptimlabError(
                f"invalid {name}: {given}; the launcher started {actual} {source}, "
                f"give {actual} or leave {name} out"
            )
        changes[name] = actual
    if config.threads is None:
        # torch's default is one thread per core; processes sharing the cores split them
        changes["threads"] = max(1, torch.get_num_threads() // place.local_size)
    return config.replace(**changes)


def run_worker(settings: dict[str, Any], resume: bool | str, progress: bool) -> Any:
    """Train the run ``settings`` (``RunConfig.to_json()``) as this process's share;
    returns the run's summary on rank 0 and None elsewhere."""
    from optimlab.parallel.methods import method
    from optimlab.parallel.world import device_for, join, place_from_environment
    from optimlab.run import RunConfig

    place = place_from_environment()
    config = resolve(RunConfig.from_json(settings), place)
    use_threads(config.threads)
    if resume is False and int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0:
        resume = "auto"  # restarted after a failure: continue, do not start over again
    served = method(config.parallel).servers
    device = server_device(config.device) if served else device_for(config.device, place)
    world = join(config, place, device)
    config = config.replace(device=str(device))
    try:
        if getattr(world, "serves", False):
            world.serve(config)
            return None
        try:
            summary = _train(config, world, resume, progress and world.is_writer)
        finally:
            if served:
                world.leave()  # the servers stop once every replica has left
    finally:
        world.close()  # the run is out of scope: leaving frees the process group
    return summary if world.is_writer else None


def _train(config: Any, world: Any, resume: bool | str, progress: bool) -> Any:
    """Build and fit this process's run; only its summary outlives the call."""
    from optimlab.run import build_run

    return build_run(config, world=world, resume=resume, progress=progress).fit().summary


def use_threads(threads: int) -> None:
    """Give this process ``threads`` intra-op threads and as many inter-op threads.

    Called first, before any tensor work: torch's thread pools start at the first
    parallel operation and keep their size after, and the inter-op pool can be sized
    only before it starts (a process of one thread then really runs one)."""
    torch.set_num_threads(threads)
    if torch.get_num_interop_threads() != threads:
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:  # the pool has started: it keeps its size
            pass


def server_device(name: str) -> torch.device:
    """The device of a run with parameter servers: the CPU, whose tensors gloo's
    point-to-point messages carry."""
    if name not in ("auto", "cpu"):
        raise OptimlabError(
            f"invalid device {name!r} for a run with parameter servers; valid: cpu (the "
            "servers talk through gloo's point-to-point messages, on CPU tensors)"
        )
    return torch.device("cpu")
