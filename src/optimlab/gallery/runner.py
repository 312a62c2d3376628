"""Running the gallery: each selected entry into ``DIR/<name>/``, then the pages.

An entry whose stored result is current (see :mod:`optimlab.gallery.store`) is not run
again, so a killed run, rerun, continues where it stopped. An entry that raises is
recorded as failed, with its error, and the others go on; one whose dataset is missing is
recorded as skipped, with the reason and the command that fetches the data. With
``workers > 1`` entries run in that many spawned processes, each with its share of the
machine's cores as torch threads.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing
import shlex
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from optimlab.gallery import figures, machine, store
from optimlab.gallery.entry import Context, Entry, check_tier
from optimlab.gallery.registry import entries as registered
from optimlab.gallery.registry import select
from optimlab.io import check_output_dir

Report = Callable[[str], None]
#: the folder under an entry's output where it may keep resumable work (a lab study)
WORK = "work"


def command(name: str, tier: str, out: str, context: Context, *, download: bool = False) -> str:
    """The one command that regenerates entry ``name`` alone (and, with ``download``,
    fetches its data first)."""
    parts = ["optimlab", "gallery", "--only", name, "--tier", tier, "--out", out]
    if context.data_dir:
        parts += ["--data-dir", context.data_dir]
    if download:
        parts.append("--download")
    return shlex.join(parts)


def missing_data(entry: Entry, budget: dict[str, Any], context: Context) -> list[str]:
    """Datasets the run needs that are neither on disk nor to be downloaded."""
    if context.download:
        return []
    from optimlab.data import datasets, sources

    missing = []
    for name in entry.requires(budget):
        record = datasets.DATASETS.get(name)
        if record.kind == "file" and sources.find(record.name, context.data_dir) is None:
            missing.append(record.name)
    return missing


def _error_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def _record(entry: Entry, tier: str, out_label: str, context: Context) -> dict[str, Any]:
    """The part of an entry's record known before it runs."""
    budget = entry.budget(tier)
    return {
        "format": store.FORMAT,
        "name": entry.name,
        "title": entry.title,
        "deck": entry.deck,
        "slide": entry.slide,
        "claim": entry.claim,
        "reference": entry.reference,
        "version": entry.version,
        "tier": tier,
        "budget": store.to_json_value(budget, "budget"),
        "machine": machine.describe(),
        "command": command(entry.name, tier, out_label, context),
        "figures": [],
    }


def _failed(record: dict[str, Any], err: BaseException, seconds: float) -> dict[str, Any]:
    record.update(status=store.FAILED, error=_error_line(err), traceback=traceback.format_exc())
    record["seconds"] = round(seconds, 3)
    return record


def run_entry(entry: Entry, tier: str, out: Path, out_label: str, context: Context) -> dict:
    """Run one entry at ``tier`` into ``out/<name>/`` and store its record (also returned)."""
    budget = entry.budget(tier)
    record = _record(entry, tier, out_label, context)
    missing = missing_data(entry, budget, context)
    if missing:
        from optimlab.data import sources

        record.update(
            status=store.SKIPPED,
            skip_reason="; ".join(str(sources.missing_error(n, context.data_dir)) for n in missing),
            get_data=command(entry.name, tier, out_label, context, download=True),
        )
        store.write(out, record)
        return record
    import torch

    threads = torch.get_num_threads()
    start = time.perf_counter()
    try:
        if entry.threads is not None:
            torch.set_num_threads(entry.threads)
        work = str(out / entry.name / WORK)
        measured = entry.compute(budget, dataclasses.replace(context, work=work))
        # The rule reads exactly what the JSON keeps, so the verdict can be checked from it.
        numbers = store.to_json_value(measured.numbers)
        verdict = entry.rule(numbers)
        record["figures"] = figures.write(entry.draw(measured), out / entry.name)
        record.update(status=store.DONE, numbers=numbers, verdict=verdict.to_json())
        record["seconds"] = round(time.perf_counter() - start, 3)
    except Exception as err:  # noqa: BLE001 - one entry's failure must not stop the others
        _failed(record, err, time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    record["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    store.write(out, record)
    return record


def _run_in_worker(name: str, tier: str, out: str, out_label: str, context: Context,
                   threads: int, flush: bool) -> dict:  # fmt: skip
    import torch

    from optimlab.train.denormals import flush_denormals

    if flush:  # before any tensor work of this process (a spawned process starts without it)
        flush_denormals()
    torch.set_num_threads(threads)
    return run_entry(registered().get(name), tier, Path(out), out_label, context)


@dataclass
class Outcome:
    """What a gallery run did: each entry's record, and which ones were computed now."""

    records: dict[str, dict[str, Any]]
    computed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    pages: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        return [n for n, r in self.records.items() if r.get("status") == store.FAILED]


def _line(record: dict[str, Any], cached: bool) -> str:
    name, status = record["name"], record["status"]
    if status == store.DONE:
        tail = " (stored result)" if cached else f" ({record.get('seconds', 0):.1f} s)"
        return f"{name}: {record['verdict']['status']}{tail}"
    if status == store.SKIPPED:
        return f"{name}: skipped, data missing; get it with: {record['get_data']}"
    return f"{name}: FAILED: {record.get('error')}"


def run_gallery(
    out: str | Path,
    *,
    tier: str = "quick",
    only: Iterable[str] | None = None,
    workers: int = 1,
    context: Context | None = None,
    pool: Sequence[Entry] | None = None,
    report: Report = print,
) -> Outcome:
    """Run the selected entries (``only``, or every entry of ``tier``) into ``out`` and write
    ``gallery.html`` and ``gallery.md`` there. ``pool`` replaces the registry (entries not
    in the registry run in this process, whatever ``workers`` says)."""
    from optimlab.errors import check_range
    from optimlab.gallery import pages

    check_tier(tier)
    check_range("--workers", workers, 1)
    out_label = str(out)
    out = check_output_dir(out)
    context = context or Context()
    chosen = select(only, tier, pool)
    records: dict[str, dict[str, Any]] = {}
    outcome = Outcome(records)
    todo = []
    for entry in chosen:
        stored = store.read(out, entry.name)
        if store.is_current(out, stored, entry.version, tier):
            records[entry.name] = stored
            outcome.cached.append(entry.name)
            report(_line(stored, cached=True))
        else:
            todo.append(entry)
    in_registry = pool is None
    if workers == 1 or len(todo) <= 1 or not in_registry:
        for entry in todo:
            records[entry.name] = run_entry(entry, tier, out, out_label, context)
            outcome.computed.append(entry.name)
            report(_line(records[entry.name], cached=False))
    else:
        from optimlab.train.denormals import flushing_here

        threads = max(1, machine.usable_cores() // workers)
        flush = flushing_here()
        spawn = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as executor:
            futures = {
                executor.submit(
                    _run_in_worker, e.name, tier, str(out), out_label, context, threads, flush
                ): e  # fmt: skip
                for e in todo
            }
            try:
                for future in cf.as_completed(futures):
                    try:
                        record = future.result()
                    except cf.process.BrokenProcessPool as err:
                        # The worker died (killed, out of memory): the entry failed, the
                        # gallery still writes its pages.
                        entry = futures[future]
                        record = _failed(_record(entry, tier, out_label, context), err, 0.0)
                        store.write(out, record)
                    records[record["name"]] = record
                    outcome.computed.append(record["name"])
                    report(_line(record, cached=False))
            except BaseException:
                executor.shutdown(wait=False, cancel_futures=True)
                raise
    shown = [e for e in (pool if pool is not None else registered()) if e.runs_in(tier)]
    outcome.pages = pages.write(out, shown, tier, out_label, context)
    return outcome
