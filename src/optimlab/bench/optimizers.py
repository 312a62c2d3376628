"""``optimlab bench optimizers``: the reference benchmark of optimizer steps.

For every elementwise registry optimizer fed one gradient per step (``benched``), the
same rule on the same parameters and gradients is stepped by

* ``eager``: optimlab's chain, eagerly (the readable reference);
* ``fast``: optimlab's ``fast=True`` (the same chain compiled on flat buffers), with
  fresh gradient tensors each step, as after ``zero_grad()`` and ``backward()``, so
  the copy into the flat gradient buffer is counted;
* ``fast*``: the same with the gradients already in the flat buffer (a loop with
  ``zero_grad(set_to_none=False)``, where backward accumulates into it instead);
* torch.optim's ``loop`` (``foreach=False``), ``foreach`` and ``fused`` (where torch
  has this rule, and the fused kernel for this device);

interleaved in one run with an in-place probe ``a.add_(b)`` on a large tensor. The
probe's bandwidth sets the floor: the time to move the bytes the step must move
(parameters read and written, gradient read, each state slot read and written).
Printed: median step times, the fast path's ratio to the floor, to torch's fastest
and to torch's default, achieved GB/s, state bytes per parameter, peak extra memory
(CUDA allocator counters, or torch's profiler on CPU) and the fast path's compile
time, which is kept out of the medians.
"""

from __future__ import annotations

import platform
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import torch

from optimlab.bench.memory import inplace_probe, peak_extra_bytes, state_bytes, step_bytes
from optimlab.bench.timing import interleaved_times, paired_ratio
from optimlab.errors import OptimlabError
from optimlab.optim.registry import OPTIMIZERS, OptimizerRecord

MODELS: dict[str, list[tuple[int, ...]]] = {
    # ~14.7M parameters in a few large tensors: bandwidth-bound
    "large": [(2048, 2048)] * 3 + [(1024, 2048)] + [(2048,)] * 4,
    # 200 small tensors (0.42M parameters): launch and Python overhead dominate
    "small": [(64, 64), (64,)] * 100,
    # 14 tensors of 1024x1024 and 14 of 1024 (14.7M parameters): more large tensors than
    # one compiled call takes (``MAX_BUNDLE``), beside a flat group of small ones
    "mixed": [(1024, 1024)] * 14 + [(1024,)] * 14,
}

# elements of the bandwidth probe (3 x 4 B each per call, 192 MB)
PROBE_NUMEL = 16 * 2**20


@dataclass
class Contender:
    """A stepping function and the optimizer behind it."""

    step: Callable[[], None]
    opt: torch.optim.Optimizer


def make_params(
    sizes: list[tuple[int, ...]], device: torch.device, seed: int = 0
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Parameters and a fixed set of gradients for them."""
    gen = torch.Generator().manual_seed(seed)
    params, grads = [], []
    for shape in sizes:
        params.append(torch.randn(shape, generator=gen).to(device).requires_grad_())
        grads.append((torch.randn(shape, generator=gen) * 1e-2).to(device))
    return params, grads


def _contender(
    make: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    sizes: list[tuple[int, ...]],
    device: torch.device,
    fresh_grads: bool = True,
) -> Contender:
    params, grads = make_params(sizes, device)
    for p, g in zip(params, grads):
        p.grad = g
    opt = make(params)
    sync = torch.cuda.synchronize if device.type == "cuda" else None

    def step() -> None:
        if fresh_grads:
            # what backward hands over: standalone gradient tensors
            for p, g in zip(params, grads):
                p.grad = g
        opt.step()
        if sync is not None:
            sync(device)

    return Contender(step, opt)


def torch_builders(record: OptimizerRecord, device: torch.device) -> dict[str, Callable]:
    """torch.optim builders for the record's rule: loop, foreach, fused if available
    (none where torch.optim does not have the rule)."""
    if record.torch_class is None:
        return {}
    cls = getattr(torch.optim, record.torch_class)
    hp = dict(record.defaults)
    builders = {
        "loop": lambda ps: cls(ps, **hp, foreach=False),
        "foreach": lambda ps: cls(ps, **hp, foreach=True),
    }
    try:  # torch says at construction or first step whether it has a fused kernel
        probe = torch.zeros(2, device=device, requires_grad=True)
        probe.grad = torch.zeros(2, device=device)
        cls([probe], **hp, fused=True).step()
        builders["fused"] = lambda ps: cls(ps, **hp, fused=True)
    except (RuntimeError, ValueError, TypeError):
        pass
    return builders


def benched(record: OptimizerRecord) -> bool:
    """Whether ``optimlab bench optimizers`` times this optimizer: a chain fed one
    gradient per step whose rule is elementwise (for the others, the bandwidth floor
    does not say what a step must cost)."""
    return record.chain and record.elementwise and not record.needs_closure


def torch_default(device: torch.device) -> str:
    """The implementation torch.optim picks when given neither foreach nor fused."""
    return "foreach" if device.type == "cuda" else "loop"


def bench_optimizer(
    record: OptimizerRecord,
    sizes: list[tuple[int, ...]],
    device: torch.device,
    repeats: int,
    fast: bool = True,
    instances: int = 1,
) -> dict:
    """Median step times of every contender for one registry optimizer, and the floor.

    With ``instances`` > 1 every contender is built that many times (builds), on
    tensors allocated anew, each warmed up, all timed in the same rotation; its time is
    the mean of its builds' medians, and ``ms_builds`` holds the lowest, median and
    highest of them. Where a contender's tensors land in memory moved
    its time by up to 7% between builds in one process (measured, 14.7M parameters on
    CPU), more than the differences this benchmark is meant to show, so the row also
    carries, for ours against every other contender, the min / median / max over every
    pair of builds (one of ours, one of theirs) of the round-by-round ratio
    (``paired_ratio``): what a user who builds one of each may see.
    """
    if instances < 1:
        raise OptimlabError(f"invalid instances: {instances}; expected an integer >= 1")
    builders: dict[str, tuple[Callable, bool]] = {
        "eager": (lambda ps: record.builder(ps, **record.defaults), True)
    }
    if fast:
        for name, fresh in (("fast", True), ("fast*", False)):
            builders[name] = (lambda ps: record.builder(ps, **record.defaults, fast=True), fresh)
    for name, make in torch_builders(record, device).items():
        builders[name] = (make, True)
    every: dict[str, list[Contender]] = {
        name: [_contender(make, sizes, device, fresh) for _ in range(instances)]
        for name, (make, fresh) in builders.items()
    }
    contenders = {name: copies[0] for name, copies in every.items()}
    probe, probe_bytes = inplace_probe(PROBE_NUMEL, device)
    # the first calls build state and, for the fast path, compile: time them apart
    for copies in every.values():
        for c in copies:
            c.step()
            c.step()
    compile_s = contenders["fast"].opt.fast.compile_seconds if fast else None
    fns: dict[str, Callable[[], None]] = {
        f"{name}#{i}": c.step for name, copies in every.items() for i, c in enumerate(copies)
    }
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    fns["probe"] = (lambda: (probe(), sync(device))) if sync else probe
    rounds = interleaved_times(fns, repeats=repeats)
    timed = {name: statistics.median(ts) for name, ts in rounds.items()}
    per_instance = {name: [timed[f"{name}#{i}"] for i in range(instances)] for name in every}
    medians = {name: statistics.fmean(ts) for name, ts in per_instance.items()}
    medians["probe"] = timed["probe"]
    spread = {name: max(ts) / min(ts) - 1 for name, ts in per_instance.items()}
    # what one build of each contender may take: lowest, median and highest build
    build_ms = {
        name: (min(ts) * 1e3, statistics.median(ts) * 1e3, max(ts) * 1e3)
        for name, ts in per_instance.items()
    }

    params = contenders["eager"].opt.param_groups[0]["params"]
    moved = step_bytes(params, record.state_slots)
    bandwidth = probe_bytes / medians.pop("probe")
    numel = sum(p.numel() for p in params)
    best = "fast" if fast else "eager"
    ratio_spread = {}
    for name in every:
        pairs = sorted(
            paired_ratio(rounds[f"{best}#{i}"], rounds[f"{name}#{j}"])
            for i in range(instances)
            for j in range(instances)
        )
        ratio_spread[name] = (pairs[0], statistics.median(pairs), pairs[-1])
    return {
        "optimizer": record.name,
        "ms": {name: t * 1e3 for name, t in medians.items()},
        "floor_ms": moved / bandwidth * 1e3,
        "bandwidth_gbs": bandwidth / 1e9,
        "bytes_per_step": moved,
        "gbs": {name: moved / t / 1e9 for name, t in medians.items()},
        "state_bytes_per_param": state_bytes(contenders["eager"].opt) / numel,
        "compile_s": compile_s,
        "peak_extra_mb": {
            name: (None if b is None else b / 2**20)
            for name, c in contenders.items()
            for b in [peak_extra_bytes(c.step, device)]
        },
        "ours": best,
        "instances": instances,
        "ms_instances": {name: [t * 1e3 for t in ts] for name, ts in per_instance.items()},
        "instance_spread": spread,
        "ms_builds": build_ms,
        "ratio_spread": ratio_spread,
    }


def _spread(row: dict, name: str) -> str:
    """`` builds 0.97-1.02-1.08``: min, median and max over build pairs of the paired
    ratio of ours to ``name`` (nothing with one build of each)."""
    if row["instances"] < 2:
        return ""
    low, mid, high = row["ratio_spread"][name]
    return f", builds {low:.2f}-{mid:.2f}-{high:.2f}"


def _builds(row: dict, name: str) -> str:
    """`` [9.81/9.90/10.42]``: the lowest, median and highest of ``name``'s builds'
    median step times, ms (nothing with one build)."""
    if row["instances"] < 2:
        return ""
    low, mid, high = row["ms_builds"][name]
    return f" [{low:.2f}/{mid:.2f}/{high:.2f}]"


def _fmt_row(row: dict, default: str) -> str:
    ms = row["ms"]
    ours = ms[row["ours"]]
    torch_names = [n for n in ("loop", "foreach", "fused") if n in ms]
    times = "  ".join(f"{n} {ms[n]:7.2f}{_builds(row, n)}" for n in ms)
    versus = "  (torch.optim has no such rule)"
    if torch_names:
        fastest = min(torch_names, key=lambda n: ms[n])
        versus = "".join(
            f"  /torch-{n} (x{ours / ms[n]:.2f}{_spread(row, n)})"
            for n in dict.fromkeys([fastest, default, *(["fused"] if "fused" in ms else [])])
        )
    compile_s = "-" if row["compile_s"] is None else f"{row['compile_s']:.1f}s"
    spread = ""
    if row["instances"] > 1:
        worst = max(row["instance_spread"].values())
        spread = f"  instances {row['instances']} (max spread {worst * 100:.0f}%)"
    return (
        f"{row['optimizer']:9s} {times}  | {row['ours']}/floor (x{ours / row['floor_ms']:.2f})"
        f"{versus}"
        f"  {row['gbs'][row['ours']]:5.1f} GB/s  state {row['state_bytes_per_param']:.0f} B/param"
        f"  compile {compile_s}{spread}"
    )


def run(
    model: str = "large",
    repeats: int = 20,
    fast: bool = True,
    device: str | None = None,
    instances: int = 1,
    names: list[str] | None = None,
) -> list[dict]:
    """Benchmark every elementwise registry optimizer fed one gradient per step (or
    those in ``names``), on one model; print a line per optimizer."""
    sizes = MODELS[model]
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    n = sum(torch.Size(s).numel() for s in sizes)
    where = (
        torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    )
    print(
        f"optimizer step, model {model!r}: {len(sizes)} tensors, {n / 1e6:.2f}M params, "
        f"float32, {where}, median ms of {repeats} interleaved"
        + (
            f", mean over {instances} instances (builds) of each contender "
            f"[min/median/max over builds]; ratios: "
            f"mean, then builds min-median-max of round-by-round ratios over build pairs"
            if instances > 1
            else ""
        )
    )
    default = torch_default(dev)
    rows = []
    for record in OPTIMIZERS:
        if not benched(record) or (names is not None and record.name not in names):
            continue
        row = bench_optimizer(record, sizes, dev, repeats, fast, instances)
        print(_fmt_row(row, default), flush=True)
        rows.append(row)
    if rows:
        r = rows[0]
        print(
            f"floor: bytes to move / in-place bandwidth {r['bandwidth_gbs']:.1f} GB/s "
            f"(a.add_(b), {PROBE_NUMEL / 2**20:.0f}M floats, timed with each optimizer); "
            f"x = time / other time (below 1: ours faster); fast* = gradients already flat"
        )
        peaks = {k: v for k, v in r["peak_extra_mb"].items() if v is not None}
        if peaks:
            for row in rows:
                print(
                    f"{row['optimizer']:9s} peak extra MB: "
                    + "  ".join(f"{k} {v:.1f}" for k, v in row["peak_extra_mb"].items())
                )
        else:
            print("peak extra memory: n/a (this device keeps no allocation record)")
    return rows


def run_optimizer_bench(
    model: str = "both",
    *,
    repeats: int = 20,
    fast: bool = True,
    instances: int = 1,
    device: str | None = None,
    names: list[str] | None = None,
) -> list[dict]:
    """Entry point of ``optimlab bench optimizers``: ``run`` for ``model`` (a name of
    ``MODELS``, or both = large and small), a blank line after each; returns every row."""
    from optimlab.errors import unknown_name

    models = ["large", "small"] if model == "both" else [model]
    for name in models:  # all checks before the first (long) run
        if name not in MODELS:
            raise unknown_name("benchmark model", name, MODELS)
    timed = {r.name: r for r in OPTIMIZERS if benched(r)}
    for name in names or []:
        if name not in timed:
            raise unknown_name("benchmarked optimizer", name, timed)
    rows = []
    for name in models:
        rows += run(name, repeats, fast, device, instances, names)
        print()
    return rows
