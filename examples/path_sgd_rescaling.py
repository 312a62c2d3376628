"""Node rescaling on digits: SGD's training depends on it, Path-SGD's does not.

Builds ``digits_mlp`` (64-128-64-10, ReLU), then rescales every hidden unit: its
incoming weights and bias by ``a``, its outgoing weights by ``1/a``, with ``a`` drawn
log-uniformly from ``[1/spread, spread]``. The network computes the same function
(lecture 001's gauge freedom), but SGD's steps change; Path-SGD's (Neyshabur,
Salakhutdinov & Srebro 2015) are the rescaled steps, so it trains the same function.
Prints the final test accuracy (or the status, for a diverged run) per seed.

    python examples/path_sgd_rescaling.py [--epochs 10] [--seeds 3] [--spread 100]
"""

from __future__ import annotations

import argparse
import math

import torch
from torch import nn

from optimlab import optim, problems
from optimlab.train import fit

CONTENDERS = (("sgd", 0.05), ("path_sgd", 0.01))  # the lrs registered for digits_mlp / path_sgd


def rescale_hidden_units(model: nn.Module, spread: float, seed: int) -> None:
    """Scale each hidden unit's incoming weights and bias by a, its outgoing ones by 1/a."""
    gen = torch.Generator().manual_seed(seed)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for layer, after in zip(linears, linears[1:]):
            log_a = torch.empty(layer.out_features).uniform_(
                -math.log(spread), math.log(spread), generator=gen
            )
            a = log_a.exp()
            layer.weight.mul_(a[:, None])
            layer.bias.mul_(a)
            after.weight.div_(a[None, :])


def final_test_accuracy(name: str, lr: float, seed: int, spread: float | None, epochs: int) -> str:
    problem = problems.build("digits_mlp", seed=seed)
    if spread is not None:
        rescale_hidden_units(problem.model, spread, seed=100 + seed)
    opt = optim.create(name, problem.model.parameters(), lr=lr)
    if getattr(opt, "needs_model", False):
        opt.attach_model(problem.model)
    result = fit(problem, opt, epochs=epochs, seed=seed)
    accuracy = result.final.get("test_accuracy")
    return f"{accuracy:.4f}" if result.status == "completed" else result.status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--spread", type=float, default=100.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name, lr in CONTENDERS:
        for spread in (None, args.spread):
            accuracies = [
                final_test_accuracy(name, lr, seed, spread, args.epochs)
                for seed in range(args.seeds)
            ]
            where = "as built" if spread is None else f"rescaled (spread {spread:g})"
            print(f"{name:9s} lr {lr:<5g} {where:22s} test accuracy {' '.join(accuracies)}")


if __name__ == "__main__":
    main()
