"""``optimlab study status DIR``: how far a study is, and an estimate of time left.

The numbers add up: the runs (done, running, waiting, failed, pruned) and the
bookkeeping trials (interrupted and retried, duplicate, closed without a record) are
the trials in storage; the final runs not planned yet are those of the (problem,
optimizer) pairs whose tuning has not selected a setting. Failed runs are listed with
the first line of their error (the traceback is stored with the run's record).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from optimlab.lab.runner import _fmt, finished
from optimlab.lab.store import open_study


def study_status(out_dir: str | Path, storage: str | None = None) -> dict[str, Any]:
    out_dir = Path(out_dir)
    store = open_study(out_dir, storage)
    spec = store.meta("spec") or {}
    counts = store.counts()
    phases = {p: store.counts(p) for p in ("tune", "final")}
    records = list(store.records())
    times = [r["wall_time"] for r in records if r.get("wall_time")]
    n_opt, n_prob = len(spec.get("optimizers", [])), len(spec.get("problems", []))
    seeds = spec.get("seeds", 1)
    # finals not enqueued yet: K per (problem, optimizer) whose final phase has not started
    started = {(r["problem"], r["label"]) for r in records if r["phase"] == "final"}
    decided = sum(1 for name in store.study_names() if name.startswith("final:"))
    undecided = max(0, n_opt * n_prob - max(decided, len(started)))
    left = counts["waiting"] + counts["running"] + undecided * max(0, seeds - 1)  # seed 0 reused
    workers = store.meta("workers", 1) or 1
    eta = statistics.median(times) * left / workers if times and left else 0.0
    failures = [
        {
            "phase": r["phase"],
            "problem": r["problem"],
            "label": r["label"],
            "params": r["params"],
            "seed": r["seed"],
            "error": _first_line(r.get("error")),
        }
        for r in records
        if r["status"] == "failed"
    ]
    return {
        "name": spec.get("name"),
        **counts,
        "phases": phases,
        "not_yet_planned": undecided * seeds,
        "eta_seconds": eta,
        "failures": failures,
    }


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else "no error recorded"


def format_status(status: dict[str, Any]) -> str:
    eta = status["eta_seconds"]
    left = status["waiting"] + status["running"] + status["not_yet_planned"]
    if not left:
        when = "finished"
    elif eta:
        when = f"about {eta / 60:.1f} min left"
    else:
        when = "time left unknown until a run finishes"
    lines = [
        f"study {status['name']!r}: {status['done']} done, {status['running']} running, "
        f"{status['waiting']} waiting, {status['not_yet_planned']} final runs to plan, "
        f"{status['failed']} failed, {status['pruned']} pruned; {when}"
    ]
    tune, final = status["phases"]["tune"], status["phases"]["final"]
    lines.append(
        f"  by phase: tuning {finished(tune)} finished, {tune['waiting'] + tune['running']} to "
        f"go; final {finished(final)} finished, {final['waiting'] + final['running']} to go, "
        f"{status['not_yet_planned']} to plan"
    )
    bookkeeping = status["interrupted"] + status["duplicate"] + status["unrecorded"]
    runs = status["total"] - bookkeeping
    detail = f"{status['interrupted']} interrupted and retried, {status['duplicate']} duplicate"
    if status["unrecorded"]:
        detail += f", {status['unrecorded']} closed without a record"
    lines.append(
        f"  trials in storage: {status['total']} = {runs} runs + {bookkeeping} bookkeeping "
        f"({detail})"
    )
    for f in status["failures"]:
        lines.append(
            f"  failed: {f['phase']} {f['problem']} {f['label']} {_fmt(f['params'])} "
            f"seed={f['seed']}: {f['error']}"
        )
    return "\n".join(lines)
