"""Flushing subnormal floats to zero on the CPU.

A float32 of magnitude below 2**-126 (about 1.2e-38) is subnormal, and x86 cores
compute with one in microcode, far slower than with a normal number (halving 16M
subnormals took 72 ms, 21 ms with them flushed; 2 threads, measured here).
Training can fill tensors with them as it goes on: on fmnist_mlp with Adam (2 threads,
batch 128) every step slowed down after about 650 steps, the fast path's optimizer
step from about 1.2 to 3.7 ms and torch's from 2.7 to 4.8 ms, and neither slowed down with
the values flushed (docs/benchmarks.md, "Subnormal numbers"). Flushing (the FTZ and
DAZ modes that ``torch.set_flush_denormal`` sets) replaces every subnormal input and
result by zero, so it changes results only where values fall below 2**-126; it is off
by default, as in torch.

The mode is a register of each thread: torch sets it on the calling thread, and
torch's intra-op worker threads copy the main thread's when they start, at the first
parallel operation of the process. ``flush_denormals`` must therefore run before
that; ``threads_flushing`` checks every thread, so a late call is detected instead of
flushing on some threads only. The ``optimlab --flush-denormal`` switch and the
speedrun recipe's ``flush_denormal`` key set it before any tensor work; the workers
of ``optimlab study`` (separate processes) take it from the process that starts them.
"""

from __future__ import annotations

import torch

from optimlab.errors import OptimlabError

# The bits of a float32 subnormal (2**-127): made from an integer, so that creating it
# involves no float arithmetic that a flushing thread would already zero.
_SUBNORMAL_BITS = 0x0040_0000

# torch splits an elementwise op among its threads in chunks of at least this many
# elements (at::internal::GRAIN_SIZE); the check gives every thread two chunks.
_GRAIN = 32768


def threads_flushing() -> bool:
    """Whether every intra-op thread of torch flushes subnormals to zero.

    A tensor of subnormals is halved by all threads together: a thread that flushes
    writes exact zeros, one that does not writes 2**-128, so all results are zero
    exactly when every thread flushes.
    """
    return _halved_to_zero(2 * _GRAIN * torch.get_num_threads())


def flushing_here() -> bool:
    """Whether the calling thread flushes subnormals (one element: no worker is used).

    Lets a parent process hand the mode on to workers it starts with ``spawn``, which
    begin with the mode off."""
    return _halved_to_zero(1)


def _halved_to_zero(n: int) -> bool:
    x = torch.full((n,), _SUBNORMAL_BITS, dtype=torch.int32).view(torch.float32)
    return bool(((x * 0.5) == 0).all())


def flush_denormals() -> bool:
    """Flush subnormal floats to zero on the CPU for the rest of the process.

    Returns whether every intra-op thread now flushes: ``False`` when torch's worker
    threads had started before this call (they keep their own mode; call it before
    the process's first parallel tensor operation). Raises ``OptimlabError`` when the
    CPU has no flush-to-zero mode (``torch.set_flush_denormal`` reports it).
    """
    if not torch.set_flush_denormal(True):
        raise OptimlabError(
            "this CPU cannot flush subnormal floats to zero (torch.set_flush_denormal "
            "is supported on x86 CPUs with SSE3); run without flushing"
        )
    return threads_flushing()
