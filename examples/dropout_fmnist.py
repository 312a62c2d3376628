"""Dropout against overfitting on a reduced Fashion-MNIST (the recipe of
examples/dropout_fmnist.toml, run as a script until study files carry a
``regularize = {...}`` table).

An over-parameterized MLP 784-1024-1024-10 (ReLU) trains on 10,000 training images
(validation: 5,000 others; test: the official 10,000) with SGD + momentum, under each
setting below and several seeds. The settings use the keys of
``optimlab.regularize.options`` (the same as the ``optimlab train`` flags).

Usage: python examples/dropout_fmnist.py [--epochs 15] [--seeds 0 1] [--out runs/dropout]
Prints a Markdown table: final train and test accuracy, the train-test gap, per setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path

import torch

from optimlab.data import load
from optimlab.data.splits import Split
from optimlab.nn import models
from optimlab.problems import Problem
from optimlab.problems.losses import cross_entropy
from optimlab.problems.metrics import CLASSIFICATION
from optimlab.regularize import options as reg
from optimlab.train import fit

SETTINGS: dict[str, dict] = {
    "none": {},
    "L2 1e-4": {"l2": 1e-4},
    "dropout 0.5": {"dropout": 0.5},
    "dropout 0.5 + max-norm 3": {"dropout": 0.5, "max_norm": 3.0},
    "augment flip,crop:2": {"augment": "flip,crop:2"},
}


def build(seed: int, n_train: int = 10_000, n_val: int = 5_000) -> Problem:
    splits = load("fashion_mnist", val_size=0, seed=0)
    g = torch.Generator().manual_seed(1234)  # the same reduced set for every seed
    idx = torch.randperm(len(splits.train.x), generator=g)
    tr, va = idx[:n_train], idx[n_train : n_train + n_val]
    x, y = splits.train.x, splits.train.y
    splits = dataclasses.replace(splits, train=Split(x[tr], y[tr]), val=Split(x[va], y[va]))
    torch.manual_seed(seed)
    model = models.mlp(784, [1024, 1024], 10)
    return Problem(
        name="fmnist_10k_mlp", model=model, loss_fn=cross_entropy, metrics=dict(CLASSIFICATION),
        splits=splits, batch_size=128, epochs=15, task="classification", seed=seed,
    )  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--settings", nargs="+", default=list(SETTINGS))
    p.add_argument("--out", default="runs/dropout_fmnist")
    args = p.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.settings:
        for seed in args.seeds:
            problem = build(seed)
            opt = torch.optim.SGD(problem.model.parameters(), lr=args.lr, momentum=0.9)
            problem, kw = reg.apply(SETTINGS[name], problem, {"seed": seed})
            result = fit(problem, opt, epochs=args.epochs, **kw)
            last = result.final
            # Train accuracy without dropout/augmentation: evaluate in eval mode.
            from optimlab.train.evaluate import evaluate

            tr = problem.splits.train
            train = evaluate(problem.model, cross_entropy, problem.metrics, tr.x, tr.y, 2048)
            row = {
                "setting": name, "seed": seed, "train_acc": train["accuracy"],
                "test_acc": last["test_accuracy"], "val_acc": last["val_accuracy"],
                "seconds": sum(h["time"] for h in result.history),
            }  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
            (out / "results.json").write_text(json.dumps(rows, indent=1))
    print("\n| setting | seeds | train acc | test acc | train-test gap |")
    print("|---|---|---|---|---|")
    for name in args.settings:
        rs = [r for r in rows if r["setting"] == name]
        tr = [r["train_acc"] for r in rs]
        te = [r["test_acc"] for r in rs]
        gap = [a - b for a, b in zip(tr, te, strict=True)]

        def fmt(v):
            sd = f" ± {statistics.stdev(v):.4f}" if len(v) > 1 else ""
            return f"{statistics.mean(v):.4f}{sd}"

        print(f"| {name} | {len(rs)} | {fmt(tr)} | {fmt(te)} | {fmt(gap)} |")


if __name__ == "__main__":
    main()
