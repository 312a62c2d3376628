"""``optimlab study status DIR``: how far a study is, and an estimate of time left."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from optimlab.errors import OptimlabError
from optimlab.lab.runner import default_storage
from optimlab.lab.store import Store


def study_status(out_dir: str | Path, storage: str | None = None) -> dict[str, Any]:
    out_dir = Path(out_dir)
    if storage is None and not (out_dir / "study.db").exists():
        raise OptimlabError(
            f"{str(out_dir)!r} holds no study (no study.db); run "
            "'optimlab study run STUDY.toml --out DIR' first"
        )
    store = Store(storage or default_storage(out_dir))
    spec = store.meta("spec") or {}
    counts = store.counts()
    records = list(store.records())
    times = [r["wall_time"] for r in records if r.get("wall_time")]
    n_opt, n_prob = len(spec.get("optimizers", [])), len(spec.get("problems", []))
    seeds = spec.get("seeds", 1)
    # finals not enqueued yet: K per (problem, optimizer) whose final phase has not started
    started = {(r["problem"], r["optimizer"]) for r in records if r["phase"] == "final"}
    decided = sum(1 for name in store.study_names() if name.startswith("final:"))
    unplanned = max(0, n_opt * n_prob - max(decided, len(started))) * max(0, seeds - 1)
    left = counts["waiting"] + counts["running"] + unplanned
    workers = store.meta("workers", 1) or 1
    eta = statistics.median(times) * left / workers if times and left else 0.0
    return {"name": spec.get("name"), **counts, "not_yet_planned": unplanned, "eta_seconds": eta}


def format_status(status: dict[str, Any]) -> str:
    eta = status["eta_seconds"]
    left = status["waiting"] + status["running"] + status["not_yet_planned"]
    when = f"about {eta / 60:.1f} min left" if left else "finished"
    return (
        f"study {status['name']!r}: {status['done']} done, {status['running']} running, "
        f"{status['waiting']} waiting, {status['not_yet_planned']} final runs to plan, "
        f"{status['failed']} failed, {status['pruned']} pruned; {when}"
    )
