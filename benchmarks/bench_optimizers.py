"""Optimizer step time, optimlab against torch.optim, side by side in one run.

Usage: python benchmarks/bench_optimizers.py [--model large|small|both] [--repeats N]
(the same as ``optimlab bench optimizers``).
"""

import sys

from optimlab.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "optimizers", *sys.argv[1:]]))
