"""``optimlab study run STUDY.toml`` and ``optimlab study status DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from optimlab.io import check_output_dir
    from optimlab.lab import load_study
    from optimlab.lab.runner import run_study

    if args.out is not None:
        check_output_dir(args.out)
    spec = load_study(args.study)
    out = Path(args.out) if args.out else check_output_dir(Path("runs") / spec.name)
    result = run_study(spec, out, workers=args.workers, storage=args.storage)
    _print_done(result)
    return 0


def _print_done(result: dict) -> None:
    counts = result["counts"]
    print(f"done: {counts['done']} runs, {counts['failed']} failed, {counts['pruned']} pruned")
    if "report" in result:
        print(f"report: {result['report']['html']}")


def status(args: argparse.Namespace) -> int:
    from optimlab.lab.status import format_status, study_status

    print(format_status(study_status(args.dir, args.storage)))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="run a study file (resumes when rerun) or show its status")
    study_sub = p.add_subparsers(dest="study_command", metavar="ACTION")
    study_sub.required = True
    r = study_sub.add_parser("run", help="run or resume a study")
    r.add_argument("study", help="the study file (TOML); see examples/")
    r.add_argument("--out", help="output directory (default: runs/<study name>)")
    r.add_argument("--workers", type=int, default=1, help="parallel worker processes")
    r.add_argument(
        "--storage",
        help="SQLAlchemy URL shared by workers on several machines "
        "(default: SQLite file in the output directory)",
    )
    r.set_defaults(func=run)
    s = study_sub.add_parser("status", help="progress of a study")
    s.add_argument("dir", help="the study's output directory")
    s.add_argument("--storage", help="the study's storage URL, if not the default")
    s.set_defaults(func=status)
