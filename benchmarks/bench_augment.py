"""Batched augmentation: optimlab.data.augment (plain torch) against kornia, side by side.

The pipeline is a Fashion-MNIST-sized batch (N x 1 x 28 x 28) through a horizontal flip,
a pad-4 random crop and one affine warp (rotation 15 degrees, shift 0.1, shear 10
degrees, zoom 0.9-1.1), bilinear, on the CPU with one thread (or on CUDA when present:
--device cuda). Both sides are timed in alternation, repeats interleaved, and the median
per-batch times and their ratio are printed. kornia is optional: without it only the
optimlab timings are printed.

Usage: python benchmarks/bench_augment.py [--batch 128 1024] [--repeats 30] [--device cpu]
"""

from __future__ import annotations

import argparse
import functools
import platform
import statistics
import time

import torch

from optimlab.data.augment import Augment, RandomAffine, RandomCrop, RandomFlip


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, nargs="+", default=[128, 1024])
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    ours = optimlab_pipeline()
    try:
        theirs = kornia_pipeline().to(device)
        import kornia

        kornia_version = kornia.__version__
    except ImportError:
        theirs, kornia_version = None, None
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor()
    print(f"device {device} ({name or platform.machine()}), torch {torch.__version__}, "
          f"threads {args.threads}, kornia {kornia_version}")  # fmt: skip
    print(f"{'batch':>6} {'optimlab ms':>12} {'kornia ms':>10} {'kornia/optimlab':>16}")
    for n in args.batch:
        x = torch.rand(n, 1, 28, 28, device=device)
        y = torch.zeros(n, dtype=torch.long, device=device)
        step = iter(range(10**9))
        run_ours = functools.partial(_call_ours, ours, x, y, step)
        run_theirs = functools.partial(theirs, x) if theirs is not None else None
        for _ in range(3):  # warm-up
            run_ours()
            if run_theirs:
                run_theirs()
        t_ours, t_theirs = [], []
        for _ in range(args.repeats):
            t_ours.append(_time(run_ours, sync))
            if run_theirs:
                t_theirs.append(_time(run_theirs, sync))
        a = statistics.median(t_ours) * 1e3
        if run_theirs:
            b = statistics.median(t_theirs) * 1e3
            print(f"{n:>6} {a:>12.2f} {b:>10.2f} {b / a:>16.2f}")
        else:
            print(f"{n:>6} {a:>12.2f} {'-':>10} {'-':>16}")


if __name__ == "__main__":
    main()
