"""Vanishing gradients on digits: a 20-layer MLP under different inits, norms, activations.

Trains ``deep_mlp`` (20 Linear layers, width 64) on scikit-learn's 8x8 digits with SGD +
momentum for a short budget and prints, per configuration, the validation accuracy and
the first-to-last-layer gradient-norm ratio ``||dL/dW_1|| / ||dL/dW_20||`` at the first
step and at the last sampled step (``optimlab.train.diagnostics.GradientFlow``). Each
run's heatmap and histograms go to ``OUT/<config>/``.

    python examples/vanishing_gradients.py [--epochs 5] [--out runs/vanishing_gradients]

The same diagnostics for any registered problem: ``optimlab train --problem digits_mlp
--optimizer sgd --init lsuv --diagnose --out runs/x``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from optimlab.nn.models import deep_mlp
from optimlab.problems import PROBLEMS
from optimlab.run import RunConfig, build_run
from optimlab.train.diagnostics import GradientFlow

# (label, activation, norm, init, residual)
CONFIGS = [
    ("sigmoid N(0,0.01)", "sigmoid", None, "normal_0.01", False),
    ("sigmoid glorot", "sigmoid", None, "glorot_normal", False),
    ("sigmoid he", "sigmoid", None, "he_normal", False),
    ("sigmoid lsuv", "sigmoid", None, "lsuv", False),
    ("sigmoid glorot + BN", "sigmoid", "batch", "glorot_normal", False),
    ("tanh glorot", "tanh", None, "glorot_normal", False),
    ("relu N(0,0.01)", "relu", None, "normal_0.01", False),
    ("relu he", "relu", None, "he_normal", False),
    ("relu lsuv", "relu", None, "lsuv", False),
    ("relu he + BN", "relu", "batch", "he_normal", False),
    ("sigmoid glorot residual", "sigmoid", None, "glorot_normal", True),
    ("relu he + BN residual", "relu", "batch", "he_normal", True),
]


def slug(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label).strip("_")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/vanishing_gradients")
    args = parser.parse_args()
    batch = PROBLEMS.get("digits_mlp").batch_size
    print(
        f"digits, {args.depth}-layer MLP width {args.width}, SGD momentum 0.9 lr {args.lr}, "
        f"{args.epochs} epochs, batch {batch}, seed {args.seed}"
    )
    header = f"{'configuration':26s} {'val acc':>7s} {'ratio@1':>9s} {'ratio@end':>9s} {'s':>5s}"
    print(header)
    for label, act, norm, init, residual in CONFIGS:
        # The run is the registered digits problem with this network in place of its own;
        # the builder re-initializes the network's weights with `init` from the seed.
        config = RunConfig(
            problem="digits_mlp", optimizer="momentum", lr=args.lr, hp={"momentum": 0.9},
            epochs=args.epochs, seed=args.seed, init=init, threads=1,
        )  # fmt: skip
        torch.manual_seed(args.seed)
        model = deep_mlp(64, 10, args.depth, args.width, act, norm, 0.0, None, residual)
        gf = GradientFlow(every=args.every, out_dir=Path(args.out) / slug(label), sample_first=True)
        t0 = time.perf_counter()
        result = build_run(config, model=model, callbacks=[gf]).fit()
        seconds = time.perf_counter() - t0
        acc = result.final.get("val_accuracy", float("nan"))
        r1, r_end = gf.gradient_ratio(0), gf.gradient_ratio(-1)
        print(f"{label:26s} {acc:7.3f} {r1:9.2e} {r_end:9.2e} {seconds:5.1f}  {result.status}")
    print(f"heatmaps: {args.out}/<configuration>/gradient_flow_heatmap.png")


if __name__ == "__main__":
    main()
