"""Dropout against overfitting on a reduced Fashion-MNIST: the five settings of
examples/dropout_fmnist.toml as a script that also measures train accuracy in eval mode.

Each run is the registered problem ``fmnist_overfit`` (an over-parameterized MLP
784-1024-1024-10, ReLU, on 10,000 training images drawn by the seed; validation: 5,000
others; test: the official 10,000) trained with SGD + momentum under one setting and one
seed, built by ``optimlab.run.build_run`` as ``optimlab train`` and the study build theirs.
The settings use the keys of ``optimlab.regularize.options`` (the ``optimlab train`` flags).

Usage: python examples/dropout_fmnist.py [--epochs 15] [--seeds 0 1] [--out runs/dropout]
Prints a Markdown table: final train and test accuracy, the train-test gap, per setting.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from optimlab.io import atomic_write_text
from optimlab.problems.losses import cross_entropy
from optimlab.run import RunConfig, build_run
from optimlab.train.evaluate import evaluate

SETTINGS: dict[str, dict] = {
    "none": {},
    "L2 1e-4": {"l2": 1e-4},
    "dropout 0.5": {"dropout": 0.5},
    "dropout 0.5 + max-norm 3": {"dropout": 0.5, "max_norm": 3.0},
    "augment flip,crop:2": {"augment": "flip,crop:2"},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--settings", nargs="+", default=list(SETTINGS))
    p.add_argument("--out", default="runs/dropout_fmnist")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.settings:
        for seed in args.seeds:
            config = RunConfig(
                problem="fmnist_overfit", optimizer="momentum", lr=args.lr,
                hp={"momentum": 0.9}, regularize=SETTINGS[name], epochs=args.epochs,
                seed=seed, threads=1,
            )  # fmt: skip
            run = build_run(config)
            result = run.fit()
            last = result.final
            # Train accuracy without dropout/augmentation: evaluate in eval mode.
            problem = run.problem
            tr = problem.splits.train
            train = evaluate(problem.model, cross_entropy, problem.metrics, tr.x, tr.y, 2048)
            row = {
                "setting": name, "seed": seed, "train_acc": train["accuracy"],
                "test_acc": last["test_accuracy"], "val_acc": last["val_accuracy"],
                "seconds": sum(h["time"] for h in result.history),
            }  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
            atomic_write_text(out / "results.json", json.dumps(rows, indent=1))
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
