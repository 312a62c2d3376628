"""Trainer epoch time against a hand-written loop and a DataLoader loop, side by side.

Usage: python benchmarks/bench_engine.py [--model large|small|both] [--repeats N]
(the same as ``optimlab bench engine``).
"""

import sys

from optimlab.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "engine", *sys.argv[1:]]))
