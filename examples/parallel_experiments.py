"""The experiments of docs/parallel.md: accuracy against staleness for Downpour with and
without the delay-tolerant rule (the delay model, one process), and EASGD's rho and tau
(two real worker processes).

Usage: python examples/parallel_experiments.py staleness [--problem sparse_logreg]
       python examples/parallel_experiments.py easgd
"""

from __future__ import annotations

import argparse

from optimlab.parallel.experiments import EXPERIMENTS, STALENESS, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", choices=EXPERIMENTS)
    parser.add_argument("--problem", choices=tuple(STALENESS), default="logreg_digits",
                        help="staleness: the problem (logreg_digits)")  # fmt: skip
    args = parser.parse_args()
    print(report(args.experiment, args.problem))


if __name__ == "__main__":
    main()
