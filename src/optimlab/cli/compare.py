"""``optimlab compare``: the one-line form of a study."""

from __future__ import annotations

import argparse
from pathlib import Path

from optimlab.errors import OptimlabError


def _grid(text: str) -> list:
    try:
        low, high, num = text.split(",")
        return [float(low), float(high), int(num)]
    except ValueError:
        raise OptimlabError(
            f"invalid --lr-grid {text!r}; expected LOW,HIGH,NUMBER such as 1e-4,1,5"
        ) from None


def build_spec(args: argparse.Namespace):
    from optimlab.lab.spec import StudySpec

    if args.tune not in (None, "lr"):
        raise OptimlabError(f"invalid --tune {args.tune!r}; valid: lr (or leave it out)")
    optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    data = {
        "name": args.name or f"compare-{args.problem}",
        "problems": [args.problem],
        "optimizers": [
            {"name": o, "params": {"lr": args.lr}} if args.lr is not None and not args.tune else o
            for o in optimizers
        ],
        "seeds": args.seeds,
        "budget": {"epochs": 10 if args.epochs is None else args.epochs},
        "protocol": {"kind": "deepobs" if args.tune else "fixed", "lr_grid": _grid(args.lr_grid)},
    }
    if args.batch_size is not None:
        data["batch_size"] = args.batch_size
    return StudySpec.from_dict(data, "compare")


def run(args: argparse.Namespace) -> int:
    from optimlab.cli.study import run_and_report
    from optimlab.io import check_output_dir

    if args.out is not None:
        check_output_dir(args.out)
    spec = build_spec(args)
    out = Path(args.out) if args.out else check_output_dir(Path("runs") / spec.name)
    # the compare command's study is stored in the output directory: rerunning resumes
    return run_and_report(spec, out, args.workers, args.storage, "rerun the same command")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare optimizers on a problem (tuned, several seeds)")
    p.add_argument("--problem", required=True, help="a problem name (optimlab list problems)")
    p.add_argument("--optimizers", required=True, help="comma-separated optimizer names")
    p.add_argument("--tune", help="'lr': tune the learning rate on a log grid (else defaults)")
    p.add_argument("--lr-grid", default="1e-4,1,5", help="LOW,HIGH,NUMBER for --tune lr")
    p.add_argument("--lr", type=float, help="a fixed learning rate for all (without --tune)")
    p.add_argument("--seeds", type=int, default=3, help="seeds for the final runs")
    p.add_argument("--epochs", type=int, help="epochs per run (default 10)")
    p.add_argument("--batch-size", type=int, help="batch size (default: the problem's)")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes")
    p.add_argument("--storage", help="SQLAlchemy URL (default: SQLite in the output dir)")
    p.add_argument("--name", help="study name (default compare-<problem>)")
    p.add_argument("--out", help="output directory (default runs/<name>)")
    p.set_defaults(func=run)
