"""Batched augmentation: optimlab.data.augment (plain torch) against kornia, side by side.

Usage: python benchmarks/bench_augment.py [--batch 128 1024] [--repeats 30] [--device cpu]
(the benchmark is ``optimlab.bench.augment.run_augment_bench``).
"""

import argparse

from optimlab.bench.augment import run_augment_bench
from optimlab.errors import OptimlabError


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, nargs="+", default=[128, 1024])
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    try:
        run_augment_bench(
            args.batch, repeats=args.repeats, device=args.device, threads=args.threads
        )
    except OptimlabError as err:
        p.error(str(err))


if __name__ == "__main__":
    main()
