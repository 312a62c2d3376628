"""``optimlab bench [optimizers|engine|accuracy|parallel|curvature|transport|kfac]``:
benchmarks printed as side-by-side ratios."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from optimlab.errors import check_range, unknown_name

REPEATS = 20  # timed calls per contender, where a benchmark has no count of its own


def _given(value: int | None, default: int) -> int:
    """An option's value, or ``default`` when it was not given (0 stays 0, to be refused)."""
    return default if value is None else value


def _optimizers(args: argparse.Namespace) -> None:
    from optimlab.bench.optimizers import run_optimizer_bench

    names = [n.strip() for n in (args.optimizers or "").split(",") if n.strip()]
    check_range("builds", args.instances, 1)
    run_optimizer_bench(args.model, repeats=args.repeats or REPEATS, fast=args.fast,
                        instances=args.instances, names=names or None)  # fmt: skip


def _engine(args: argparse.Namespace) -> None:
    from optimlab.bench.engine import run_engine_bench

    run_engine_bench(args.model, repeats=args.repeats or REPEATS)


def _accuracy(args: argparse.Namespace) -> None:
    from optimlab.bench.accuracy import DEFAULT_CONTENDERS, run_accuracy_bench

    contenders = [c.strip() for c in (args.contenders or "").split(",") if c.strip()]
    run_accuracy_bench(
        args.problem or "fmnist_mlp",
        target=args.target,
        optimizer=args.optimizer,
        contenders=contenders or DEFAULT_CONTENDERS,
        budget=args.budget,
        max_epochs=args.max_epochs,
        eval_every=args.eval_every,
        seeds=args.seeds,
        threads=args.threads,
    )


def _parallel(args: argparse.Namespace) -> None:
    from optimlab.bench.parallel import DEFAULT_DELAY, run_parallel_bench

    delay = args.delay or DEFAULT_DELAY
    run_parallel_bench(args.problem, epochs=args.run_epochs, rounds=_given(args.rounds, 3),
                       delay=None if delay == "none" else delay)  # fmt: skip


def _curvature(args: argparse.Namespace) -> None:
    from optimlab.bench.curvature import report

    print(report(args.threads or 1, repeats=args.repeats))


def _transport(args: argparse.Namespace) -> None:
    from optimlab.bench.transport import REPEATS as FETCHES
    from optimlab.bench.transport import ROUNDS, run_transport_bench

    run_transport_bench(_given(args.rounds, ROUNDS), repeats=_given(args.repeats, FETCHES))


def _kfac(args: argparse.Namespace) -> None:
    import torch

    from optimlab.bench.kfac import run_kfac_bench

    if args.threads:
        torch.set_num_threads(args.threads)
    hp = {
        key: value
        for key, value in (
            ("cov_interval", args.cov_interval),
            ("inv_interval", args.inv_interval),
            ("fisher", args.fisher),
        )
        if value is not None
    }
    run_kfac_bench(
        args.problem,
        steps=args.steps,
        rounds=_given(args.rounds, 3),
        batch_size=args.batch_size,
        kfac=hp,
    )


# name -> the function that turns the parsed options into the benchmark's arguments
BENCHES: dict[str, Callable[[argparse.Namespace], None]] = {
    "optimizers": _optimizers,
    "engine": _engine,
    "accuracy": _accuracy,
    "parallel": _parallel,
    "curvature": _curvature,
    "transport": _transport,
    "kfac": _kfac,
}


def run(args: argparse.Namespace) -> int:
    if args.what not in BENCHES:
        raise unknown_name("benchmark", args.what, BENCHES)
    if args.repeats is not None:
        check_range("repeats", args.repeats, 1)
    BENCHES[args.what](args)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks printed as side-by-side ratios")
    p.add_argument("what", nargs="?", default="optimizers", help=", ".join(BENCHES))
    p.add_argument(
        "--model", default="both", help="optimizers: large, small, mixed or both (large, small)"
    )
    p.add_argument("--repeats", type=int,
                   help=f"timed repetitions per contender ({REPEATS}; curvature: each "
                   "benchmark's own, 21 to 100)")  # fmt: skip
    p.add_argument(
        "--builds",
        "--instances",
        dest="instances",
        type=int,
        default=3,
        help="optimizers: build each contender N times on fresh tensors (3); report the "
        "mean and the spread of ratios over pairs of builds",
    )
    p.add_argument(
        "--optimizers", help="optimizers: comma-separated names to time (default: every one)"
    )
    p.add_argument(
        "--no-fast",
        dest="fast",
        action="store_false",
        help="optimizers: leave out the compiled fast path (no compile time)",
    )
    a = p.add_argument_group("accuracy (time to a target test accuracy)")
    a.add_argument(
        "--problem",
        help="fmnist_mlp (default), fmnist_2c2d, digits_mlp or both; "
        "parallel: any problems, comma separated (fmnist_mlp,fmnist_2c2d, or digits_mlp "
        "without Fashion-MNIST)",
    )
    a.add_argument("--target", type=float, help="test accuracy to reach (default: the preset)")
    a.add_argument("--optimizer", help="rule to compare (default: the problem's default)")
    a.add_argument("--contenders", help="comma separated: torch, eager, fast, fast+compile")
    a.add_argument("--budget", type=float, help="seconds per run (default: none)")
    a.add_argument("--max-epochs", type=int, help="epochs per run (default: the problem's)")
    a.add_argument("--eval-every", type=int, help="steps between evaluations (default: epoch)")
    a.add_argument("--seeds", type=int, default=1, help="seeds (mean and spread over them)")
    a.add_argument("--threads", type=int,
                   help="torch threads (default: torch's; curvature: 1)")  # fmt: skip
    g = p.add_argument_group(
        "parallel (2 processes x 1 thread against 1 process x 2 "
        "threads; the delay model against a serial epoch)"
    )
    g.add_argument(
        "--rounds",
        type=int,
        help="runs of each contender (3); transport: rounds of processes (4); kfac: timed "
        "rounds of --steps steps (3)",
    )
    g.add_argument("--run-epochs", type=int, default=2,
                   help="epochs per run, the first left out as warm-up (2)")  # fmt: skip
    g.add_argument("--delay", metavar="SPEC",
                   help="the delay model's staleness against a serial epoch, on the first "
                   "problem (fixed:4); none: leave it out")  # fmt: skip
    k = p.add_argument_group("kfac (K-FAC's epoch time against SGD's, interleaved rounds)")
    k.add_argument("--steps", type=int, default=100, help="optimizer steps per round (100)")
    k.add_argument("--batch-size", type=int, help="batch size (default: the problem's)")
    k.add_argument("--cov-interval", type=int, help="K-FAC's steps between factor updates")
    k.add_argument("--inv-interval", type=int, help="K-FAC's steps between inverse refreshes")
    k.add_argument("--fisher", help="K-FAC's Fisher: true or empirical")
    p.set_defaults(func=run)
