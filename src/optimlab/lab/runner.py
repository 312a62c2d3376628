"""Running a study: plan the trials, let workers claim them, resume after a crash.

Phase "tune" runs every setting the protocol asks for (seed 0); once all tuning
runs of a (problem, optimizer) have finished, the best setting by the final value of
the selection metric goes to phase "final" and runs with seeds 0..K-1 (seed 0 is the
tuning run itself: same configuration, same run directory, nothing recomputed).
Protocol "fixed" has no tuning phase.

Workers are processes (``workers > 1``) or this process. Every run uses the study's
``threads`` torch threads (default 1), whatever the number of workers, so that a
study's results do not depend on ``--workers``; give ``workers * threads`` at most the
machine's cores. Worker processes die with the runner, a worker that dies abnormally
is reported (its trial goes back in the queue for the others, and the run ends with an
error), and SIGTERM or SIGINT stops the workers, writes the report of what finished and
raises ``StudyInterrupted`` (see ``optimlab.lab.supervise``).

Workers on several machines share a study through a server database (``--storage``).
A trial whose worker died is found by its pid on the same host, or by its stopped
heartbeat (``optimlab.lab.heartbeat``), and goes back in the queue: when a runner starts,
when one of its worker processes dies, and while the other workers wait for their last
runs.

Planning happens once per storage, under the storage's planning lock
(``optimlab.lab.lock``), and is idempotent: it enqueues only the run keys a study does
not hold yet, so a runner killed while planning, or two started together, plan each
run once. The final phase of a (problem, optimizer) is decided the same way, by
whichever worker first sees its tuning finished; a meta attribute ``decided:...``
records the decision so that later workers skip it.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from optimlab.errors import OptimlabError
from optimlab.lab.database import shown
from optimlab.lab.heartbeat import OFF, Heartbeat, beating, heartbeat_settings
from optimlab.lab.lock import planning_lock
from optimlab.lab.space import coarse_to_fine, sample_configs
from optimlab.lab.spec import OptimizerSpec, StudySpec
from optimlab.lab.store import Store, default_storage, study_name, trial_config
from optimlab.lab.supervise import StudyInterrupted, signals_interrupt, stop, watch, worker_main
from optimlab.lab.trial import run_key, run_trial, selection_metric
from optimlab.train.denormals import flush_denormals, flushing_here

Printer = Callable[[str], None]
FAILED = ("diverged", "failed")


def metric_for(spec: StudySpec, problem: str) -> tuple[str, str]:
    from optimlab.problems import PROBLEMS

    return selection_metric(PROBLEMS.get(problem).task, spec.metric, spec.mode)


def _direction(mode: str) -> str:
    return "maximize" if mode == "max" else "minimize"


def base_config(
    spec: StudySpec, problem: str, opt: OptimizerSpec, params: dict[str, Any], seed: int
) -> dict[str, Any]:
    """One trial's configuration: the contender as its ``[[optimizers]]`` entry names it
    (``label``, ``name``), the settings to run (``params``, ``schedule``, ``regularize``)
    and the study's budget, batch size, threads and the seed."""
    config = {
        "problem": problem,
        "label": opt.label,
        "name": opt.name,
        "params": params,
        "schedule": opt.schedule,
        "seed": seed,
        "budget": spec.budget,
        "batch_size": spec.batch_size,
        "threads": spec.threads,
    }
    if opt.regularize:  # only when used, so that plain runs keep their identity
        config["regularize"] = opt.regularize
    if spec.run_settings(opt):
        config["run"] = spec.run_settings(opt)
    return config


def tune_settings(spec: StudySpec, index: int, opt: OptimizerSpec) -> list[dict[str, Any]]:
    """The hyperparameter settings the protocol tries for one optimizer."""
    if spec.protocol == "fixed":
        return []
    if spec.protocol == "deepobs" or (spec.protocol == "kfold" and not opt.search):
        grid = spec.lr_values()
        return [{**opt.params, "lr": grid[i]} for i in coarse_to_fine(len(grid))]
    sampled = sample_configs(
        opt.search,
        spec.trials,
        seed=spec.sampler_seed + index,
        quasi=spec.protocol == "quasi_random",
    )
    return [{**opt.params, **s} for s in sampled]


def plan(store: Store, spec: StudySpec) -> dict[str, int]:
    """Enqueue the first phase's trials (once per storage); returns how many per phase.

    Call it under ``planning_lock``. Run keys a study holds already are skipped, so a
    planning cut short by a crash completes on the next start without doubles."""
    count = {"tune": 0, "final": 0}
    if store.meta("planned"):
        return count
    for problem in spec.problems:
        _, mode = metric_for(spec, problem)
        for index, opt in enumerate(spec.optimizers):
            if spec.protocol == "fixed":
                count["final"] += _enqueue_finals(store, spec, problem, opt, dict(opt.params))
                continue
            name = study_name("tune", problem, opt.label)
            held, planned = _held_keys(store, name), set()
            for params in tune_settings(spec, index, opt):
                for fold in _folds(spec):
                    config = base_config(spec, problem, opt, params, seed=0)
                    if fold is not None:
                        config["fold"] = fold
                    key = run_key(config)  # equal settings are one run
                    if key not in held:
                        store.enqueue(name, config, key, _direction(mode))
                        held.add(key)
                    planned.add(key)
            count["tune"] += len(planned)
    store.set_meta("planned", True)
    return count


def _held_keys(store: Store, name: str) -> set[str]:
    return {t.user_attrs.get("run_key") for t in store.trials(name)}


def final_runs(spec: StudySpec) -> int:
    """How many final runs the study has once every (problem, optimizer) is selected."""
    return len(spec.problems) * len(spec.optimizers) * spec.seeds


def _folds(spec: StudySpec) -> list[dict[str, int] | None]:
    """The folds each tuning setting runs on: all k under "kfold", else just the split."""
    if spec.protocol != "kfold":
        return [None]
    return [{"k": spec.folds, "index": i, "seed": spec.sampler_seed} for i in range(spec.folds)]


def _enqueue_finals(store, spec, problem, opt, params) -> int:
    _, mode = metric_for(spec, problem)
    name = study_name("final", problem, opt.label)
    held = _held_keys(store, name)
    for seed in range(spec.seeds):
        config = base_config(spec, problem, opt, params, seed)
        key = run_key(config)
        if key not in held:
            store.enqueue(name, config, key, _direction(mode))
    return spec.seeds


def select_best(records: list[dict[str, Any]], metric: str, mode: str) -> dict | None:
    """The tuning run with the best final metric; diverged and failed runs never win."""
    sign = 1.0 if mode == "max" else -1.0
    best, best_value = None, -math.inf
    for r in records:
        value = r["final"].get(metric)
        if r["status"] in FAILED or value is None or not math.isfinite(value):
            continue
        if sign * value > best_value:
            best, best_value = r, sign * value
    return best


def select_best_mean(records: list[dict[str, Any]], metric: str, mode: str) -> dict | None:
    """k-fold selection: the setting with the best mean final metric over its folds.

    A setting counts only when every fold finished with a finite value. Returns one of
    its records (for its params)."""
    by_setting: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_setting.setdefault(json.dumps(r["params"], sort_keys=True), []).append(r)
    sign = 1.0 if mode == "max" else -1.0
    best, best_value = None, -math.inf
    for runs in by_setting.values():
        values = [r["final"].get(metric) for r in runs if r["status"] not in FAILED]
        k = runs[0].get("fold", {}).get("k", len(runs))
        if len(values) < k or any(v is None or not math.isfinite(v) for v in values):
            continue
        mean = sum(values) / len(values)
        if sign * mean > best_value:
            best, best_value = {**runs[0], "mean": mean}, sign * mean
    return best


def enqueue_ready_finals(store: Store, spec: StudySpec, say: Printer) -> bool:
    """Start the final phase of every (problem, optimizer) whose tuning is done."""
    if spec.protocol == "fixed":
        return False
    ready = _ready_for_finals(store, spec)
    if not ready:
        return False
    started = False
    with planning_lock(store.url):
        for problem, opt in _ready_for_finals(store, spec):  # again: another may have decided
            started |= _decide_finals(store, spec, problem, opt, say)
    return started


def _ready_for_finals(store: Store, spec: StudySpec) -> list[tuple[str, OptimizerSpec]]:
    """The (problem, optimizer) pairs whose tuning has finished and whose finals are undecided."""
    from optuna.trial import TrialState

    decided = set(store.meta_attrs())
    out = []
    for problem in spec.problems:
        for opt in spec.optimizers:
            if _decided_key(problem, opt) in decided:
                continue
            tune = study_name("tune", problem, opt.label)
            if not store.trials(tune) or store.trials(
                tune, (TrialState.WAITING, TrialState.RUNNING)
            ):
                continue
            out.append((problem, opt))
    return out


def _decided_key(problem: str, opt: OptimizerSpec) -> str:
    return f"decided:{problem}:{opt.label}"


def _decide_finals(store, spec, problem, opt, say) -> bool:
    """Select the best tuning setting and enqueue its final runs (missing ones only)."""
    metric, mode = metric_for(spec, problem)
    runs = [
        r
        for r in store.records()
        if r["phase"] == "tune" and r["problem"] == problem and r["label"] == opt.label
    ]
    choose = select_best_mean if spec.protocol == "kfold" else select_best
    best = choose(runs, metric, mode)
    if best is None:
        say(f"{problem} / {opt.label}: every tuning run failed or diverged; no final runs")
        store.set_meta(f"no_final:{problem}:{opt.label}", True)
        store.study(study_name("final", problem, opt.label), _direction(mode))  # empty: decided
        store.set_meta(_decided_key(problem, opt), True)
        return False
    value = best.get("mean", best["final"][metric])
    say(
        f"{problem} / {opt.label}: selected {_fmt(best['params'])} "
        f"({metric} {value:.4g}); running {spec.seeds} seeds"
    )
    _enqueue_finals(store, spec, problem, opt, best["params"])
    store.set_meta(_decided_key(problem, opt), True)
    return True


def _fmt(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(params.items())
    )


def _all_names(spec: StudySpec) -> list[str]:
    return [
        study_name(phase, p, o.label)
        for phase in ("tune", "final")
        for p in spec.problems
        for o in spec.optimizers
    ]


def work(
    url: str,
    spec: StudySpec,
    out_dir: Path,
    quiet: bool = False,
    heartbeat: Heartbeat = OFF,
    flush_denormal: bool = False,
) -> None:
    """A worker's loop: claim, train, record; until nothing is left to do.
    ``flush_denormal``: flush subnormal floats first (``optimlab.train.denormals``).
    While others' runs are all that is left, it re-enqueues those whose worker died
    (every heartbeat; not at all without one)."""

    if flush_denormal:
        flush_denormals()
    say: Printer = (lambda _m: None) if quiet else (lambda m: print(m, flush=True))
    store = Store(url, heartbeat)
    names = _all_names(spec)
    next_look = time.monotonic() + heartbeat.interval
    while True:
        claimed = store.claim(names)
        if claimed is not None:
            _run_claimed(store, spec, out_dir, *claimed, say)
            continue
        if enqueue_ready_finals(store, spec, say):
            continue
        counts = store.counts()
        if counts["waiting"] == 0 and counts["running"] == 0:
            return
        if heartbeat.on and time.monotonic() >= next_look:
            next_look = time.monotonic() + heartbeat.interval
            recovered = store.recover_stale(names)
            if recovered:
                say(f"{recovered} run(s) whose worker stopped go back in the queue")
                continue
        time.sleep(0.5)


def _run_claimed(store, spec, out_dir, name, trial, say) -> None:
    phase = name.split(":", 1)[0]
    config, key = trial_config(trial.user_attrs["config"]), trial.user_attrs["run_key"]
    metric, _ = metric_for(spec, config["problem"])

    def on_epoch(epoch: int, logs: dict[str, Any]) -> bool:
        store.heartbeat(trial)
        if phase == "tune" and spec.pruning and logs.get(metric) is not None:
            trial.report(float(logs[metric]), epoch)
            return trial.should_prune()
        return False

    with beating(store.storage, trial._trial_id):  # until the trial is closed
        record = run_trial(config, out_dir / "runs" / key, on_epoch=on_epoch)
        value = record["final"].get(metric)
        closed = store.finish(trial, record, value)
    if not closed:
        say(f"{phase:5s} {config['problem']} {config['label']}: taken over by another runner")
        return
    shown = f"{metric} {value:.4g}" if value is not None else record.get("error") or ""
    say(
        f"{phase:5s} {config['problem']} {config['label']} {_fmt(config['params'])} "
        f"seed={config['seed']}: {record['status']} {shown} ({record['wall_time']:.1f} s)"
    )


def run_study(
    spec: StudySpec,
    out_dir: str | Path,
    *,
    workers: int = 1,
    storage: str | None = None,
    report: bool = True,
    quiet: bool = False,
    heartbeat: int | None = None,
    grace_period: int | None = None,
) -> dict[str, Any]:
    """Run (or resume) ``spec`` in ``out_dir``; returns where the results are.

    ``heartbeat`` and ``grace_period`` (seconds) set how workers tell that another's
    worker died (``optimlab.lab.heartbeat.heartbeat_settings``: by default a heartbeat
    every 10 s and a grace period of 60 s; a heartbeat of 0 turns it off).

    The result holds ``storage``, ``counts`` and ``phases`` (``tally``), ``errors`` (one line
    per worker process that died abnormally; its trial was re-enqueued) and, with
    ``report``, the report's paths. SIGTERM or SIGINT raise ``StudyInterrupted`` after
    the workers are stopped and the report of the finished runs is written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if workers < 1:
        raise OptimlabError(f"invalid workers: {workers}; valid: a whole number >= 1")
    url = storage or default_storage(out_dir)
    beats = heartbeat_settings(heartbeat, grace_period)
    say: Printer = (lambda _m: None) if quiet else (lambda m: print(m, flush=True))
    names = _all_names(spec)
    with planning_lock(url):  # one runner at a time creates the storage and plans
        store = Store(url, beats)
        saved = store.meta("spec")
        if saved is not None and not _same_study(saved, spec):
            raise OptimlabError(
                f"the storage {shown(url)!r} holds a study made from a different study file; "
                "use another --out (or --storage) for a changed study"
            )
        store.set_meta("spec", spec.to_dict())
        store.set_meta("workers", workers)
        recovered = store.recover_stale(names)
        planned = plan(store, spec)
    if recovered:
        say(f"resuming: {recovered} interrupted run(s) continue from their checkpoints")
    say(_plan_message(spec, planned, store, workers, url, beats))
    errors: list[str] = []
    try:
        with signals_interrupt():
            if workers == 1:
                work(url, spec, out_dir, quiet, heartbeat=beats)
            else:
                errors = _run_workers(url, spec, out_dir, quiet, workers, say, beats)
    except StudyInterrupted as stopped:
        stopped.result = _wrap_up(url, spec, out_dir, report, beats)
        raise
    result: dict[str, Any] = {"storage": url, **tally(store), "errors": errors}
    if report and finished(result["counts"]):
        result["report"] = write_study_report(store, spec, out_dir / "report")
    return result


def _run_workers(url, spec, out_dir, quiet, workers, say, beats) -> list[str]:
    """Run ``workers`` worker processes to the end; one line per one that died abnormally."""
    ctx = mp.get_context("spawn")
    flush = flushing_here()  # a spawned process starts without it
    args = (url, spec, out_dir, quiet, beats, flush)
    store = Store(url, beats)

    def on_death(proc) -> None:
        # its trial goes back in the queue, where the other workers find it
        n = store.recover_stale(_all_names(spec))
        say(f"worker process {proc.pid} died; {n} run(s) it held go back in the queue")

    procs: list = []
    try:
        for _ in range(workers):
            procs.append(ctx.Process(target=worker_main, args=(os.getpid(), work, *args)))
            procs[-1].start()
        return watch(procs, on_death)
    finally:
        stop(procs)  # after a signal or an error here: no worker outlives the runner


def _plan_message(
    spec: StudySpec, planned: dict[str, int], store: Store, workers, url, beats
) -> str:
    """What runs now and what follows, so that the final count is no surprise."""
    where = f"{workers} worker(s), storage {shown(url)}"
    if beats.on:
        where += f" (heartbeat every {beats.interval} s, grace period {beats.grace} s)"
    if not any(planned.values()):
        c = store.counts()
        return (
            f"study {spec.name!r} resumed: {finished(c)} runs "
            f"finished, {c['waiting'] + c['running']} to run; {where}"
        )
    pairs = f"{len(spec.problems) * len(spec.optimizers)} problem/optimizer pair(s)"
    if spec.protocol == "fixed":
        return (
            f"study {spec.name!r}: {planned['final']} runs planned ({pairs} x {spec.seeds} "
            f"seed(s), fixed settings, no tuning); {where}"
        )
    return (
        f"study {spec.name!r}: {planned['tune']} tuning runs planned now; "
        f"{final_runs(spec)} final runs follow ({pairs} x {spec.seeds} seed(s)) as tuning "
        f"selects each pair's setting; {where}"
    )


def tally(store: Store) -> dict[str, Any]:
    """``counts`` over all trials and ``phases``: the counts of each phase."""
    return {"counts": store.counts(), "phases": {p: store.counts(p) for p in ("tune", "final")}}


def finished(counts: dict[str, int]) -> int:
    """The runs with a result (done, failed or pruned) among ``Store.counts``."""
    return counts["done"] + counts["failed"] + counts["pruned"]


def _wrap_up(
    url: str, spec: StudySpec, out_dir: Path, report: bool, beats: Heartbeat
) -> dict[str, Any]:
    """After a signal: re-enqueue the stopped runs, report the finished ones."""
    store = Store(url, beats)  # a fresh connection: the old one may have been cut mid-statement
    requeued = store.recover_stale(_all_names(spec))
    result: dict[str, Any] = {"storage": url, "requeued": requeued, **tally(store)}
    if report and finished(result["counts"]):
        result["report"] = write_study_report(store, spec, out_dir / "report")
    return result


def _same_study(saved: dict[str, Any], spec: StudySpec) -> bool:
    """Whether the stored study is ``spec``: both as today's reader fills them in, so
    that a study stored before a key was added (with its default) still matches."""
    try:
        stored = StudySpec.from_dict(saved, "the stored study")
    except OptimlabError:  # not a study today's reader accepts: not this one
        return False
    return _jsonable(stored.to_dict()) == _jsonable(spec.to_dict())


def _jsonable(value: Any) -> Any:
    """As the storage gives it back (tuples become lists)."""
    import json

    return json.loads(json.dumps(value))


def study_facts(spec: StudySpec) -> dict[str, Any]:
    """The study facts the report reads (``optimlab.lab.report``'s ``study``)."""
    from datetime import UTC, datetime

    metric, mode = metric_for(spec, spec.problems[0])
    return {
        "name": spec.name,
        "metric": metric,
        "mode": mode,
        "protocol": spec.protocol,
        "seeds": spec.seeds,
        "epochs": spec.budget.get("epochs"),
        "targets": spec.targets,
        "schedules": {o.label: o.schedule for o in spec.optimizers if o.schedule},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_study_report(store: Store, spec: StudySpec, report_dir: Path) -> dict[str, Path]:
    from optimlab.lab.report import write_report

    return write_report(list(store.records()), study_facts(spec), report_dir)
