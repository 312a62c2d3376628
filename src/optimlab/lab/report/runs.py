"""The report's input: run records and the study, checked and read into small typed views.

Everything downstream works on ``Run`` objects, so the checks (and the error messages
naming the bad record and key) live in one place.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from optimlab.errors import OptimlabError
from optimlab.schedules import record as schedule_record

PHASES = ("tune", "final")
STATUSES = ("completed", "early_stopped", "time_budget", "diverged", "failed", "pruned")
# A run ended by its own budget or by early stopping holds a usable result.
FINISHED = frozenset({"completed", "early_stopped", "time_budget"})
MODES = ("max", "min")


def finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite real number, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Run:
    """One training run as the report reads it."""

    index: int
    problem: str
    label: str  # the contender's label, as in the study file and the record
    phase: str
    status: str
    params: dict[str, Any]
    seed: int | None
    history: list[dict[str, Any]]
    final: dict[str, Any]
    error: str
    wall_time: float | None

    def value(self, key: str) -> float | None:
        """The run's final finite ``key``: from ``final``, else the history's last finite one."""
        got = finite(self.final.get(key))
        if got is not None:
            return got
        for row in reversed(self.history):
            got = finite(row.get(key))
            if got is not None:
                return got
        return None

    @property
    def lr(self) -> float | None:
        """The run's (initial) learning rate from its hyperparameters, when positive."""
        lr = finite(self.params.get("lr"))
        return lr if lr is not None and lr > 0 else None

    def has(self, key: str) -> bool:
        """Whether any history row or the final row holds a finite ``key``."""
        return self.value(key) is not None


def is_diverged(run: Run, key: str) -> bool:
    """Diverged: so marked, or finished without a finite ``key`` (a NaN that slipped through)."""
    return run.status == "diverged" or (run.status in FINISHED and run.value(key) is None)


@dataclass(frozen=True)
class Metric:
    """The selection metric of one problem and whether larger is better."""

    key: str
    mode: str

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return a > b if self.mode == "max" else a < b

    def best(self, values: Iterable[float]) -> float:
        values = list(values)
        return max(values) if self.mode == "max" else min(values)

    def reaches(self, value: float, target: float) -> bool:
        """Whether ``value`` is at least as good as ``target``."""
        return value >= target if self.mode == "max" else value <= target


@dataclass(frozen=True)
class Study:
    """The study facts the report uses."""

    name: str
    metric: str
    mode: str
    protocol: str
    seeds: int | None
    epochs: int | None
    created: str
    targets: dict[str, float]
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)


def _text(record: Mapping[str, Any], key: str, where: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value:
        raise OptimlabError(f"{where}: {key!r} must be a non-empty string, got {value!r}")
    return value


def _mapping(record: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = record.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise OptimlabError(f"{where}: {key!r} must be a dict, got {type(value).__name__}")
    return dict(value)


def read_run(record: Any, index: int) -> Run:
    """Check one record and return its ``Run``; a bad field raises naming it."""
    where = f"records[{index}]"
    if not isinstance(record, Mapping):
        raise OptimlabError(f"{where} must be a dict, got {type(record).__name__}")
    phase = record.get("phase")
    if phase not in PHASES:
        raise OptimlabError(f"{where}: 'phase' must be one of {', '.join(PHASES)}; got {phase!r}")
    status = record.get("status")
    if status not in STATUSES:
        raise OptimlabError(
            f"{where}: 'status' must be one of {', '.join(STATUSES)}; got {status!r}"
        )
    history = record.get("history") or []
    if not isinstance(history, Sequence) or isinstance(history, str | bytes):
        raise OptimlabError(f"{where}: 'history' must be a list of dicts")
    for i, row in enumerate(history):
        if not isinstance(row, Mapping):
            raise OptimlabError(f"{where}: 'history'[{i}] must be a dict, got {row!r}")
    seed = record.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise OptimlabError(f"{where}: 'seed' must be an integer, got {seed!r}")
    error = record.get("error") or ""
    return Run(
        index=index,
        problem=_text(record, "problem", where),
        label=_text(record, "label", where),
        phase=phase,
        status=status,
        params=_mapping(record, "params", where),
        seed=seed,
        history=[dict(row) for row in history],
        final=_mapping(record, "final", where),
        error=str(error),
        wall_time=finite(record.get("wall_time")),
    )


def read_runs(records: Any) -> list[Run]:
    """Check every record; an empty or non-list input raises."""
    if not isinstance(records, Sequence) or isinstance(records, str | bytes):
        raise OptimlabError(f"records must be a list of dicts, got {type(records).__name__}")
    if not records:
        raise OptimlabError("records is empty: there are no runs to report")
    return [read_run(record, i) for i, record in enumerate(records)]


def _positive_int(study: Mapping[str, Any], key: str) -> int | None:
    value = study.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptimlabError(f"study: {key!r} must be a positive integer, got {value!r}")
    return value


def _schedules(study: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    raw = _mapping(study, "schedules", "study")
    out: dict[str, dict[str, Any]] = {}
    for optimizer, spec in raw.items():
        if spec is None:
            continue
        where = f"study['schedules'][{optimizer!r}]"
        if not isinstance(spec, Mapping):
            raise OptimlabError(f"{where} must be a dict with 'name' and 'params'")
        name, params = _text(spec, "name", where), _mapping(spec, "params", where)
        # Check names now rather than after minutes of drawing the other figures.
        try:
            defaults = schedule_record(name).defaults
        except OptimlabError as err:
            raise OptimlabError(f"{where}: {err}") from None
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise OptimlabError(
                f"{where}: schedule {name!r} has no parameter {unknown[0]!r}; "
                f"valid parameters: {', '.join(defaults)}"
            )
        out[str(optimizer)] = {"name": name, "params": params}
    return out


def read_study(study: Any) -> Study:
    """Check the study dict; ``metric`` and ``mode`` are required, the rest optional."""
    if not isinstance(study, Mapping):
        raise OptimlabError(f"study must be a dict, got {type(study).__name__}")
    mode = study.get("mode")
    if mode not in MODES:
        raise OptimlabError(f"study: 'mode' must be 'max' or 'min', got {mode!r}")
    targets: dict[str, float] = {}
    for problem, target in _mapping(study, "targets", "study").items():
        value = finite(target)
        if value is None:
            raise OptimlabError(
                f"study['targets'][{problem!r}] must be a finite number, got {target!r}"
            )
        targets[str(problem)] = value
    return Study(
        name=str(study.get("name") or "study"),
        metric=_text(study, "metric", "study"),
        mode=mode,
        protocol=str(study.get("protocol") or "unspecified"),
        seeds=_positive_int(study, "seeds"),
        epochs=_positive_int(study, "epochs"),
        created=str(study.get("created") or ""),
        targets=targets,
        schedules=_schedules(study),
    )


def problem_metric(runs: Iterable[Run], study: Study) -> Metric:
    """The selection metric for one problem's runs.

    The study's metric when any run reports it; otherwise (a regression problem has no
    accuracy) the first loss present among validation, test and training loss, minimised.
    """
    runs = list(runs)
    if any(run.has(study.metric) for run in runs):
        return Metric(study.metric, study.mode)
    for key in ("val_loss", "test_loss", "loss"):
        if any(run.has(key) for run in runs):
            return Metric(key, "min")
    return Metric(study.metric, study.mode)


def sorted_names(runs: Iterable[Run], attribute: str) -> list[str]:
    """The distinct values of ``problem`` or ``label`` (the contenders), sorted."""
    return sorted({getattr(run, attribute) for run in runs})


def select(runs: Iterable[Run], **match: str) -> list[Run]:
    """The runs whose attributes equal every keyword given, in input order."""
    return [run for run in runs if all(getattr(run, k) == v for k, v in match.items())]
