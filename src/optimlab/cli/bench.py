"""``optimlab bench [optimizers|engine]``: benchmarks printed as side-by-side ratios."""

from __future__ import annotations

import argparse
import importlib

from optimlab.errors import unknown_name

# name -> "module:function" taking the parsed args
BENCHES = {
    "optimizers": "optimlab.bench.optimizers:run_cli",
    "engine": "optimlab.train.bench:run_engine_bench",
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
        "--no-fast",
        dest="fast",
        action="store_false",
        help="optimizers: leave out the compiled fast path (no compile time)",
    )
    p.set_defaults(func=run)
