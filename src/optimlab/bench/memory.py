"""What an optimizer step must move and what it keeps: bytes per step, state bytes,
the in-place bandwidth floor, and peak extra memory where the device can tell."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import Tensor

# bytes per element of the in-place probe a.add_(b): read a, read b, write a
PROBE_BYTES_PER_ELEMENT = 3


def step_bytes(params: Iterable[Tensor], state_slots: int) -> int:
    """Bytes one step must move at least: parameters read and written, the gradient
    read, and each parameter-sized state slot read and written."""
    return sum(p.numel() * p.element_size() * (3 + 2 * state_slots) for p in params)


def state_bytes(opt: torch.optim.Optimizer) -> int:
    """Bytes of per-parameter tensor state an optimizer holds (scalars included), a
    wrapper's own (Lookahead's slow weights) too."""
    total, seen = 0, set()
    wrapped = getattr(opt, "wrapper_state", {})
    for state in [*opt.state.values(), *wrapped.values()]:
        if not isinstance(state, dict):
            continue
        for value in state.values():
            if isinstance(value, Tensor) and id(value) not in seen:
                seen.add(id(value))
                total += value.numel() * value.element_size()
    return total


def inplace_probe(numel: int, device: torch.device | str = "cpu") -> tuple[Callable[[], None], int]:
    """A large ``a.add_(b)`` and the bytes it moves: the bandwidth an in-place
    elementwise step can reach, timed next to the optimizers."""
    a = torch.randn(numel, device=device)
    b = torch.randn(numel, device=device)
    return (lambda: a.add_(b)), PROBE_BYTES_PER_ELEMENT * a.numel() * a.element_size()


def peak_extra_bytes(step: Callable[[], None], device: torch.device) -> int | None:
    """The most memory allocated at once during one call beyond what was allocated
    before it.

    On CUDA from the caching allocator's counters. On CPU from torch's profiler with
    ``profile_memory=True``: it records every allocation and free of torch's CPU
    allocator with its size and time, and the running sum in time order peaks at the
    answer. None where neither is available.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    if device.type != "cpu":
        return None
    from torch.profiler import ProfilerActivity, profile

    with (
        _native_stderr_silenced(),
        profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
    ):
        step()
    try:
        records = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    except AttributeError:  # the profiler's result objects are not a stable API
        return None
    current = peak = 0
    for record in sorted(records, key=lambda e: e.start_ns()):
        current += record.nbytes()
        peak = max(peak, current)
    return peak


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to the null device for the block: the profiler's native
    library logs a few lines per start and stop there, which no setting turns off."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
