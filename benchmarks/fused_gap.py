"""Where ``fast=True`` loses to torch's fused kernels: variants timed side by side.

The model is the one a new user measured: 14 tensors of 1024x1024 and 14 of 1024
(14.7M parameters). Every contender is built ``--builds`` times on fresh tensors and
all are timed in one rotation (a fresh random order each round). For each pair of a
fast variant's build and a fused build, the ratio of their times is taken round by
round (the two calls run within milliseconds of each other, so a load burst from
other jobs hits both) and its median kept; printed are the min / median / max of
those ratios over the pairs, for wall time and for process CPU time.

Variants of the fast path (all the same compiled chain):

* ``fast``: as shipped (large tensors at most ``MAX_BUNDLE`` per compiled call);
* ``fast-b<N>``: at most N large tensors per call (``FastPath.max_bundle``).

Also printed: compiled calls per step (``Torch-Compiled Region`` events of torch's
profiler) and peak extra memory per step.

    python benchmarks/fused_gap.py --rule adam --threads 2 --builds 3 --rounds 30
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import time

import torch

from optimlab.bench.memory import peak_extra_bytes
from optimlab.bench.optimizers import make_params
from optimlab.optim.registry import get

SIZES = [(1024, 1024)] * 14 + [(1024,)] * 14


def build(rule: str, variant: str, seed: int):
    record = get(rule)
    params, grads = make_params(SIZES, torch.device("cpu"), seed)
    if variant == "fused":
        cls = getattr(torch.optim, record.torch_class)
        opt = cls(params, **record.defaults, fused=True)
    else:
        opt = record.builder(params, **record.defaults, fast=True)
        for part in variant.split("-")[1:]:
            if part.startswith("b"):
                opt.fast.max_bundle = int(part[1:])

    def step() -> None:
        for p, g in zip(params, grads):
            p.grad = g  # standalone gradients, as backward hands them over
        opt.step()

    return step


def compiled_calls(step) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    return sum(1 for e in prof.events() if e.name.startswith("Torch-Compiled Region"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rule", default="adam")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--builds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--variants", default="fast,fast-b8")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    variants = ["fused", *args.variants.split(",")]
    steps = {(v, b): build(args.rule, v, seed=b) for v in variants for b in range(args.builds)}
    t0 = time.perf_counter()
    for s in steps.values():  # state, compiling, and a few warm steps
        for _ in range(4):
            s()
    print(f"warm-up (compiling included) {time.perf_counter() - t0:.1f} s")
    for v in variants:
        s = steps[(v, 0)]
        peak = peak_extra_bytes(s, torch.device("cpu"))
        print(f"{v:10s} compiled calls/step {compiled_calls(s)}  peak extra MB {peak / 2**20:.1f}")
    wall = {k: [] for k in steps}
    cpu = {k: [] for k in steps}
    rng = random.Random(0)
    keys = list(steps)
    for _ in range(args.rounds):
        rng.shuffle(keys)
        for k in keys:
            c0, w0 = time.process_time(), time.perf_counter()
            steps[k]()
            wall[k].append(time.perf_counter() - w0)
            cpu[k].append(time.process_time() - c0)
    print(
        f"rule {args.rule}, {args.threads} threads, {args.builds} builds, {args.rounds} rounds;"
        " ratio to fused per build pair: min / median / max of per-round ratio medians"
    )
    for v in variants[1:]:
        for name, t in (("wall", wall), ("cpu", cpu)):
            pairs = [
                statistics.median(a / b for a, b in zip(t[(v, i)], t[("fused", j)]))
                for i, j in itertools.product(range(args.builds), repeat=2)
            ]
            ms = [statistics.median(t[(v, i)]) * 1e3 for i in range(args.builds)]
            fm = [statistics.median(t[("fused", j)]) * 1e3 for j in range(args.builds)]
            print(
                f"{v:10s} {name}: x{min(pairs):.3f} / x{statistics.median(pairs):.3f} / "
                f"x{max(pairs):.3f}   ms per build {' '.join(f'{m:.1f}' for m in ms)}"
                f"  fused {' '.join(f'{m:.1f}' for m in fm)}"
            )


if __name__ == "__main__":
    main()
