"""What an optimizer step must move and what it keeps: bytes per step, state bytes,
the in-place bandwidth floor, and peak extra memory where the device can tell."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor

# bytes per element of the in-place probe a.add_(b): read a, read b, write a
PROBE_BYTES_PER_ELEMENT = 3


def step_bytes(params: Iterable[Tensor], state_slots: int) -> int:
    """Bytes one step must move at least: parameters read and written, the gradient
    read, and each parameter-sized state slot read and written."""
    return sum(p.numel() * p.element_size() * (3 + 2 * state_slots) for p in params)


def state_bytes(opt: torch.optim.Optimizer) -> int:
    """Bytes of per-parameter tensor state an optimizer holds (scalars included)."""
    total, seen = 0, set()
    for state in opt.state.values():
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
    """Memory allocated during one call beyond what was allocated before it, on CUDA;
    None elsewhere (the CPU allocator keeps no such counter)."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before
