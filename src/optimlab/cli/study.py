"""``optimlab study run STUDY.toml`` and ``optimlab study status DIR``.

Exit status of ``study run`` (and ``compare``): 0 when the study ran to the end;
1 when it ended but a worker process died abnormally or every run failed (the message
says which, and rerunning resumes); 2 for a user mistake; 128 + the signal's number
(130 for SIGINT, 143 for SIGTERM) when a signal stopped it, after its workers were
stopped and the report of the finished runs written.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from optimlab.io import check_output_dir
    from optimlab.lab import load_study

    if args.out is not None:
        check_output_dir(args.out)
    spec = load_study(args.study)
    out = Path(args.out) if args.out else check_output_dir(Path("runs") / spec.name)
    resume = f"optimlab study run {args.study} --out {out}"
    if args.workers != 1:
        resume += f" --workers {args.workers}"
    if args.storage:
        from optimlab.lab.database import shown

        resume += f" --storage {shown(args.storage)}"
    for option in ("heartbeat", "grace_period"):
        if getattr(args, option) is not None:
            resume += f" --{option.replace('_', '-')} {getattr(args, option)}"
    beats = {"heartbeat": args.heartbeat, "grace_period": args.grace_period}
    return run_and_report(spec, out, args.workers, args.storage, resume, **beats)


def run_and_report(
    spec,
    out: Path,
    workers: int,
    storage: str | None,
    resume: str,
    heartbeat: int | None = None,
    grace_period: int | None = None,
) -> int:
    """Run ``spec``, print what happened, and return the command's exit status."""
    from optimlab.lab.runner import run_study
    from optimlab.lab.supervise import StudyInterrupted

    try:
        result = run_study(
            spec,
            out,
            workers=workers,
            storage=storage,
            heartbeat=heartbeat,
            grace_period=grace_period,
        )
    except StudyInterrupted as stopped:
        name = signal.Signals(stopped.signum).name
        print(f"interrupted by {name}; finished so far: {_summary(stopped.result)}")
        if stopped.result.get("requeued"):
            print(f"{stopped.result['requeued']} run(s) in progress will resume from checkpoints")
        _print_report(stopped.result)
        print(f"to resume: {resume}")
        return 128 + stopped.signum
    print(f"done: {_summary(result)}")
    _print_report(result)
    problems = list(result["errors"])
    counts = result["counts"]
    if counts["failed"] and not counts["done"] and not counts["pruned"]:
        problems.append(
            f"every run of the study failed ({counts['failed']}); "
            f"'optimlab study status {out}' lists their errors"
        )
    elif result["errors"]:
        left = counts["waiting"] + counts["running"]
        problems.append(f"{left} run(s) were left waiting; rerunning finishes the study: {resume}")
    for line in problems:
        print(f"optimlab: error: {line}", file=sys.stderr)
    return 1 if problems else 0


def _summary(result: dict) -> str:
    """Runs by outcome, then by phase, and the bookkeeping trials: numbers that add up."""
    from optimlab.lab.runner import finished

    c = result["counts"]
    phases = result["phases"]
    text = (
        f"{c['done']} runs, {c['failed']} failed, {c['pruned']} pruned "
        f"(tuning {finished(phases['tune'])}, final {finished(phases['final'])})"
    )
    bookkeeping = c["interrupted"] + c["duplicate"] + c["unrecorded"]
    if bookkeeping:
        text += (
            f"; {bookkeeping} more trial(s) in storage are bookkeeping "
            "(interrupted and retried, or duplicate)"
        )
    return text


def _print_report(result: dict) -> None:
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
        help="SQLAlchemy URL shared by workers on several machines, e.g. "
        "postgresql+psycopg://USER@HOST:5432/DATABASE (default: SQLite file in the "
        "output directory)",
    )
    r.add_argument(
        "--heartbeat",
        type=int,
        metavar="SECONDS",
        help="seconds between the heartbeats that tell other workers, on any machine, "
        "that this one is alive; 0: none (default: 10)",
    )
    r.add_argument(
        "--grace-period",
        type=int,
        metavar="SECONDS",
        help="seconds without a heartbeat after which a run's worker is taken for dead "
        "and the run goes back in the queue (default: six heartbeats)",
    )
    r.set_defaults(func=run)
    s = study_sub.add_parser("status", help="progress of a study")
    s.add_argument("dir", help="the study's output directory")
    s.add_argument("--storage", help="the study's storage URL, if not the default")
    s.set_defaults(func=status)
