"""``optimlab bench [optimizers|engine|accuracy]``: benchmarks printed as side-by-side ratios."""

from __future__ import annotations

import argparse
import importlib

from optimlab.errors import unknown_name

# name -> "module:function" taking the parsed args
BENCHES = {
    "optimizers": "optimlab.bench.optimizers:run_cli",
    "engine": "optimlab.bench.engine:run_engine_bench",
    "accuracy": "optimlab.bench.accuracy:run_accuracy_bench",
}


def run(args: argparse.Namespace) -> int:
    if args.what not in BENCHES:
        raise unknown_name("benchmark", args.what, BENCHES)
    module, func = BENCHES[args.what].split(":")
    getattr(importlib.import_module(module), func)(args)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks printed as side-by-side ratios")
    p.add_argument("what", nargs="?", default="optimizers", help=", ".join(BENCHES))
    p.add_argument("--model", default="both", help="optimizers: large, small or both")
    p.add_argument("--repeats", type=int, default=20, help="timed repetitions per contender")
    p.add_argument(
        "--instances",
        type=int,
        default=1,
        help="optimizers: build each contender N times on fresh tensors, report the mean",
    )
    p.add_argument(
        "--no-fast",
        dest="fast",
        action="store_false",
        help="optimizers: leave out the compiled fast path (no compile time)",
    )
    a = p.add_argument_group("accuracy (time to a target test accuracy)")
    a.add_argument("--problem", help="fmnist_mlp (default), fmnist_2c2d, digits_mlp or both")
    a.add_argument("--target", type=float, help="test accuracy to reach (default: the preset)")
    a.add_argument("--optimizer", help="rule to compare (default: the problem's default)")
    a.add_argument("--contenders", help="comma separated: torch, eager, fast, fast+compile")
    a.add_argument("--budget", type=float, help="seconds per run (default: none)")
    a.add_argument("--max-epochs", type=int, help="epochs per run (default: the problem's)")
    a.add_argument("--eval-every", type=int, help="steps between evaluations (default: epoch)")
    a.add_argument("--seeds", type=int, default=1, help="seeds (mean and spread over them)")
    a.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.set_defaults(func=run)
