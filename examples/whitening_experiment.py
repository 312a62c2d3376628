"""Steps of gradient descent and momentum to a target loss on raw, standardized and
whitened inputs (the lectures' regression on features in different units).

    python examples/whitening_experiment.py [--max-steps 20000] [--tol 1e-6] [--n 200]
"""

from __future__ import annotations

import argparse

import torch

from optimlab.lab import whitening


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="training examples (200)")
    parser.add_argument("--tol", type=float, default=1e-6, help="target relative gap (1e-6)")
    parser.add_argument("--max-steps", type=int, default=20000, help="step budget (20000)")
    parser.add_argument("--seed", type=int, default=0, help="data seed (0)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = whitening.run(args.n, tol=args.tol, max_steps=args.max_steps, seed=args.seed)
    print(f"target: (f - f*) <= {args.tol:g} (f(0) - f*); full-batch steps, float64")
    print(whitening.format_table(rows, args.max_steps))


if __name__ == "__main__":
    main()
