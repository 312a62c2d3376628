"""Batched augmentation: optimlab.data.augment (plain torch) against kornia, side by side.

The pipeline is a Fashion-MNIST-sized batch (N x 1 x 28 x 28) through a horizontal flip,
a pad-4 random crop and one affine warp (rotation 15 degrees, shift 0.1, shear 10
degrees, zoom 0.9-1.1), bilinear, on the CPU with one thread (or on CUDA when present:
--device cuda). Both sides are timed in alternation, repeats interleaved, and the median
per-batch times and their ratio are printed. kornia is optional: without it only the
optimlab timings are printed. ``python benchmarks/bench_augment.py`` runs it.
"""

from __future__ import annotations

import functools
import platform
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch

from optimlab.data.augment import Augment, RandomAffine, RandomCrop, RandomFlip
from optimlab.errors import check_range


def optimlab_pipeline() -> Augment:
    return Augment(
        [RandomFlip(0.5), RandomCrop(4), RandomAffine(15, 0.1, 0.1, 10, 0.1, "constant")]
    )


def kornia_pipeline():
    import kornia.augmentation as K

    return K.AugmentationSequential(
        K.RandomHorizontalFlip(p=0.5),
        K.RandomCrop((28, 28), padding=4),
        K.RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=10, p=1.0),
    )


def _call_ours(aug: Augment, x: torch.Tensor, y: torch.Tensor, steps) -> None:
    aug(x, y, next(steps))


def _time(fn, sync) -> float:
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def run_augment_bench(
    batches: Sequence[int] = (128, 1024),
    *,
    repeats: int = 30,
    device: str = "cpu",
    threads: int = 1,
) -> list[dict[str, Any]]:
    """Median milliseconds per batch of each pipeline, printed as a table and returned
    (``kornia_ms`` is None without kornia)."""
    for n in batches:
        check_range("batch", n, 1)
    check_range("repeats", repeats, 1)
    check_range("threads", threads, 1)
    torch.set_num_threads(threads)
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    ours = optimlab_pipeline()
    try:
        theirs = kornia_pipeline().to(dev)
        import kornia

        kornia_version = kornia.__version__
    except ImportError:
        theirs, kornia_version = None, None
    name = torch.cuda.get_device_name() if dev.type == "cuda" else platform.processor()
    print(f"device {dev} ({name or platform.machine()}), torch {torch.__version__}, "
          f"threads {threads}, kornia {kornia_version}")  # fmt: skip
    print(f"{'batch':>6} {'optimlab ms':>12} {'kornia ms':>10} {'kornia/optimlab':>16}")
    rows = []
    for n in batches:
        x = torch.rand(n, 1, 28, 28, device=dev)
        y = torch.zeros(n, dtype=torch.long, device=dev)
        step = iter(range(10**9))
        run_ours = functools.partial(_call_ours, ours, x, y, step)
        run_theirs = functools.partial(theirs, x) if theirs is not None else None
        for _ in range(3):  # warm-up
            run_ours()
            if run_theirs:
                run_theirs()
        t_ours, t_theirs = [], []
        for _ in range(repeats):
            t_ours.append(_time(run_ours, sync))
            if run_theirs:
                t_theirs.append(_time(run_theirs, sync))
        a = statistics.median(t_ours) * 1e3
        b = statistics.median(t_theirs) * 1e3 if run_theirs else None
        if b is not None:
            print(f"{n:>6} {a:>12.2f} {b:>10.2f} {b / a:>16.2f}")
        else:
            print(f"{n:>6} {a:>12.2f} {'-':>10} {'-':>16}")
        rows.append({"batch": n, "optimlab_ms": a, "kornia_ms": b})
    return rows
