"""Study files: what to compare, how to tune it, and on what budget.

A study is a TOML file::

    name = "lectures-on-digits"
    problems = ["digits_mlp"]
    optimizers = ["sgd", "momentum", "adam"]       # or [[optimizers]] tables, below
    seeds = 3                                      # reruns of the selected setting
    threads = 1                                    # torch threads per run (default 1)
    metric = "val_accuracy"                        # selection metric (default by task)
    full_batch = false                             # true: run.order = "full" (one step
                                                   # per epoch on the whole training set)

    [budget]
    epochs = 10                                    # or steps = ..., seconds = ...

    [protocol]
    kind = "deepobs"                               # deepobs | random | quasi_random | fixed
    lr_grid = [1e-5, 1e2, 36]                      # deepobs: low, high, number (log-spaced)
    trials = 20                                    # random / quasi_random
    pruning = false                                # stop hopeless trials (median rule)

    [[optimizers]]
    name = "momentum"
    label = "momentum-0.99"                        # optional, must be unique
    params = { momentum = 0.99 }                   # fixed hyperparameters
    search = { lr = { log_uniform = [1e-4, 1.0] } }
    schedule = { name = "cosine" }                 # lr follows this shape from the tuned lr
    regularize = { dropout = 0.5, max_norm = 3.0 } # optimlab.regularize.options keys
    run = { order = "shuffle_once" }               # run settings for this contender only

    [run]                                          # run settings for every trial
    dtype = "float64"                              # any key of optimlab train's TOML file

Protocols: **deepobs** tunes the learning rate alone on a log grid (DeepOBS: 36 values
in [1e-5, 1e2]), picks the best by the final value of the selection metric and reruns
it with ``seeds`` seeds; **random** / **quasi_random** draw ``trials`` settings from
each optimizer's ``search`` space (Crowded Valley, AlgoPerf); **fixed** runs the given
settings with ``seeds`` seeds, no tuning; **kfold** scores each setting (the LR grid,
or ``trials`` draws from ``search`` where an optimizer has one) by its mean final
metric over ``folds`` folds of the training data (train and validation pooled, folds
fixed by ``sampler_seed``, stratified for classification), then retrains the best on
the problem's own split with ``seeds`` seeds and reports validation and test.

The ``run`` tables take the settings of a run file (``optimlab train --config``), with
the same names: the study's own ``[run]`` table applies to every trial, a contender's
``run`` table overrides it for that contender. Settings that the study decides itself
(the problem, optimizer, learning rate and its search, schedule, regularization, budget,
batch size, seed, threads, folds and where a run writes) are given by the study's own
keys instead.

Validation happens when the file is read, so that a mistake costs no run: each
optimizer is built once, on a dummy parameter, with its fixed ``params`` (a value out
of range is reported as the optimizer reports it); the study's ``name`` names its
output directory, so it may hold only letters, digits, ``.``, ``_`` and ``-`` and may
not start with a dot. Errors name the file, the line and the key; the line of a key
inside the i-th optimizer entry is searched within that entry (the i-th
``[[optimizers]]`` table, or the i-th item of ``optimizers = [...]``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimlab.errors import OptimlabError
from optimlab.lab.space import log_grid, parse_dimension

PROTOCOLS = ("deepobs", "random", "quasi_random", "fixed", "kfold")
TOP_KEYS = {
    "name",
    "problems",
    "optimizers",
    "seeds",
    "metric",
    "mode",
    "budget",
    "protocol",
    "targets",
    "batch_size",
    "sampler_seed",
    "threads",
    "run",
    "full_batch",
}
# Run settings a study sets through its own keys, never through a ``run`` table.
STUDY_OWNED = (
    "problem", "optimizer", "lr", "hp", "schedule", "schedule_args", "regularize", "epochs",
    "steps", "seconds", "batch_size", "seed", "threads", "fold", "out",
)  # fmt: skip
DEEPOBS_GRID = (1e-5, 1e2, 36)
# a study's name is a directory name: no separators, no "..", no hidden directory
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class OptimizerSpec:
    """One contender: a registry optimizer with fixed params, a search space, a schedule."""

    name: str
    label: str
    params: dict[str, Any] = field(default_factory=dict)
    search: dict[str, tuple[str, Any]] = field(default_factory=dict)
    schedule: dict[str, Any] | None = None
    regularize: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StudySpec:
    name: str
    problems: list[str]
    optimizers: list[OptimizerSpec]
    protocol: str = "deepobs"
    seeds: int = 3
    metric: str | None = None  # None: val_accuracy for classification, else val_loss
    mode: str | None = None  # None: from the metric (accuracy: max, loss: min)
    budget: dict[str, float] = field(default_factory=lambda: {"epochs": 10})
    batch_size: int | None = None
    trials: int = 20
    folds: int = 5
    lr_grid: tuple[float, float, int] = DEEPOBS_GRID
    pruning: bool = False
    sampler_seed: int = 0
    targets: dict[str, float] = field(default_factory=dict)
    threads: int = 1  # torch threads per run, whatever the number of workers
    run: dict[str, Any] = field(default_factory=dict)  # run settings of every trial

    def run_settings(self, opt: OptimizerSpec) -> dict[str, Any]:
        """The run settings of ``opt``'s trials: the study's, overridden by the contender's."""
        return {**self.run, **opt.run}

    def to_dict(self) -> dict[str, Any]:
        """The study as its file says it, with every default filled in: the same keys and
        tables (``[protocol]``, ``[[optimizers]]``), so :meth:`from_dict` reads it back
        with the file's own checks. Stored with the study; TOML has no null, so unset
        optional keys are left out."""
        optional = {"metric": self.metric, "mode": self.mode, "batch_size": self.batch_size}
        return {
            "name": self.name,
            "problems": list(self.problems),
            "optimizers": [_entry(o) for o in self.optimizers],
            "seeds": self.seeds,
            **{k: v for k, v in optional.items() if v is not None},
            "budget": dict(self.budget),
            "sampler_seed": self.sampler_seed,
            "threads": self.threads,
            "run": dict(self.run),
            "targets": dict(self.targets),
            "protocol": {
                "kind": self.protocol,
                "lr_grid": list(self.lr_grid),
                "trials": self.trials,
                "pruning": self.pruning,
                "folds": self.folds,
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "study") -> StudySpec:
        """A study from its table (a parsed file, :meth:`to_dict`, or one built by a
        command such as ``optimlab compare``), checked as a file is; errors name
        ``source``."""
        return _validate(dict(data), _Where("", source), str(data.get("name", "study")))

    def lr_values(self) -> list[float]:
        return log_grid(*self.lr_grid)


def _entry(o: OptimizerSpec) -> dict[str, Any]:
    """One ``[[optimizers]]`` table."""
    entry: dict[str, Any] = {"name": o.name, "label": o.label, "params": dict(o.params)}
    entry["search"] = {k: {kind: arg} for k, (kind, arg) in o.search.items()}
    if o.schedule is not None:
        entry["schedule"] = o.schedule
    entry["regularize"] = dict(o.regularize)
    entry["run"] = dict(o.run)
    return entry


class _Where:
    """Finds the line of a key in the study text, for error messages.

    A key is a path such as ``protocol.kind`` or ``optimizers[1].name``. Each part is
    looked for inside the span of the one before it (a table's section, an inline
    table, an array item), so a key found is the one the message is about; when a part
    is not written out (a default, or an entry given by name alone), the line of the
    innermost part found is given.
    """

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source

    def error(self, key: str, message: str) -> OptimlabError:
        line = self.line(key)
        where = f"{self.source}, line {line}" if line else self.source
        return OptimlabError(f"{where}: {key}: {message}")

    def line(self, key: str) -> int | None:
        text = self.text
        parts: list[int | str] = [
            int(index) if index else name
            for index, name in re.findall(r"\[(\d+)\]|([^.\[\]]+)", key)
        ]
        span = (0, _first_header(text))  # the root table: up to the first [header]
        found: int | None = None
        sections = _sections(text).get(parts[0]) if parts else None
        if sections:  # [name] or [[name]]: the n-th section when an index follows
            indexed = len(parts) > 1 and isinstance(parts[1], int)
            n = parts[1] if indexed else 0
            if n >= len(sections):
                return None
            span = sections[n]
            found, parts = span[0], parts[2 if indexed else 1 :]
        for part in parts:
            at = _array_item(text, span, part) if isinstance(part, int) else None
            if isinstance(part, str):
                at = _assignment(text, span, part)
            if at is None:
                break
            found, span = at[0], at[1]
        return None if found is None else text.count("\n", 0, found) + 1


# --------------------------------------------------------- finding keys in TOML text
_HEADER = re.compile(r"^[ \t]*(\[\[?)[ \t]*([A-Za-z0-9_.-]+)[ \t]*\]", re.MULTILINE)


def _first_header(text: str) -> int:
    match = _HEADER.search(text)
    return match.start() if match else len(text)


def _sections(text: str) -> dict[str, list[tuple[int, int]]]:
    """Each table name's sections ``(start, end)``, in order (several for ``[[name]]``)."""
    headers = list(_HEADER.finditer(text))
    out: dict[str, list[tuple[int, int]]] = {}
    for i, match in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        out.setdefault(match.group(2), []).append((match.start(), end))
    return out


def _assignment(text: str, span: tuple[int, int], name: str):
    """``(position of the key, (start, end) of its value)`` for ``name = ...`` in ``span``.

    A key at the start of a line (the table's own) wins over one inside an inline table."""
    key = rf"(?:{re.escape(name)}|\"{re.escape(name)}\"|'{re.escape(name)}')[ \t]*="
    for pattern in (rf"^[ \t]*({key})", rf"[{{,][ \t]*({key})"):
        match = re.compile(pattern, re.MULTILINE).search(text, span[0], span[1])
        if match:
            return match.start(1), _value_span(text, match.end(1))
    return None


def _value_span(text: str, start: int) -> tuple[int, int]:
    i, n = start, len(text)
    while i < n and text[i] in " \t":
        i += 1
    begin = i
    if i < n and text[i] in "\"'":
        return begin, _skip_string(text, i)
    if i < n and text[i] in "[{":
        depth = 0
        while i < n:
            c = text[i]
            if c in "\"'":
                i = _skip_string(text, i)
                continue
            if c == "#":
                i = _line_end(text, i)
                continue
            depth += c in "[{"
            depth -= c in "]}"
            i += 1
            if depth == 0:
                break
        return begin, i
    match = re.compile(r"[,}\]\n#]").search(text, i)
    return begin, match.start() if match else n


def _array_item(text: str, span: tuple[int, int], index: int):
    """``(start, (start, end))`` of item ``index`` of the array written at ``span``."""
    start, end = span
    if start >= end or text[start] != "[":
        return None
    i, depth, item, item_start = start + 1, 0, 0, None
    while i < end:
        c = text[i]
        if c in "\"'":
            item_start = i if item_start is None else item_start
            i = _skip_string(text, i)
            continue
        if c == "#":
            i = _line_end(text, i)
            continue
        if depth == 0 and c in ",]":
            if item == index and item_start is not None:
                return item_start, (item_start, i)
            if c == "]":
                return None
            item, item_start = item + 1, None
        else:
            if item_start is None and not c.isspace():
                item_start = i
            depth += c in "[{"
            depth -= c in "]}"
        i += 1
    return None


def _skip_string(text: str, i: int) -> int:
    """The index just past the TOML string that starts at ``i``."""
    quote = text[i]
    if text.startswith(quote * 3, i):
        j = text.find(quote * 3, i + 3)
        return len(text) if j < 0 else j + 3
    j = i + 1
    while j < len(text) and text[j] not in (quote, "\n"):
        j += 2 if quote == '"' and text[j] == "\\" else 1
    return j + 1


def _line_end(text: str, i: int) -> int:
    j = text.find("\n", i)
    return len(text) if j < 0 else j


def load_study(path: str | Path) -> StudySpec:
    """Read and validate a study file; errors name the key and its line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OptimlabError(f"study file {str(path)!r} does not exist") from None
    except OSError as err:
        raise OptimlabError(f"cannot read study file {str(path)!r}: {err.strerror}") from None
    return parse_study(text, source=str(path), default_name=path.stem)


def parse_study(text: str, *, source: str = "<study>", default_name: str = "study") -> StudySpec:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise OptimlabError(f"{source}: not valid TOML: {err}") from None
    return _validate(data, _Where(text, source), default_name)


def _validate(data: dict[str, Any], where: _Where, default_name: str) -> StudySpec:
    from optimlab.optim.registry import OPTIMIZERS
    from optimlab.problems import PROBLEMS

    unknown = set(data) - TOP_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise where.error(key, f"unknown key; valid keys: {', '.join(sorted(TOP_KEYS))}")

    problems = _typed(data, "problems", list, where, required=True)
    if not problems:
        raise where.error("problems", "needs at least one problem")
    for p in problems:
        if not isinstance(p, str) or p not in PROBLEMS:
            raise where.error(
                "problems",
                f"unknown problem {p!r}; valid problems: "
                f"{', '.join(PROBLEMS.names(aliases=False))}",
            )

    protocol_table = _typed(data, "protocol", dict, where, default={})
    kind = protocol_table.get("kind", "deepobs")
    if kind not in PROTOCOLS:
        raise where.error(
            "protocol.kind", f"unknown protocol {kind!r}; valid: {', '.join(PROTOCOLS)}"
        )
    extra = set(protocol_table) - {"kind", "lr_grid", "trials", "pruning", "folds"}
    if extra:
        raise where.error(
            f"protocol.{sorted(extra)[0]}",
            "unknown key; valid keys: kind, lr_grid, trials, pruning, folds",
        )
    lr_grid = protocol_table.get("lr_grid", list(DEEPOBS_GRID))
    if not (
        isinstance(lr_grid, list)
        and len(lr_grid) == 3
        and 0 < lr_grid[0] < lr_grid[1]
        and isinstance(lr_grid[2], int)
        and lr_grid[2] >= 1
    ):
        raise where.error(
            "protocol.lr_grid",
            f"needs [low, high, number] with 0 < low < high and number >= 1; got {lr_grid!r}",
        )
    folds = protocol_table.get("folds", 5)
    _check_int(folds, "protocol.folds", 2, where)
    trials = protocol_table.get("trials", 20)
    _check_int(trials, "protocol.trials", 1, where)
    pruning = protocol_table.get("pruning", False)
    if not isinstance(pruning, bool):
        raise where.error("protocol.pruning", f"must be true or false; got {pruning!r}")

    optimizers = _optimizers(data, where, OPTIMIZERS, kind)

    seeds = data.get("seeds", 3)
    _check_int(seeds, "seeds", 1, where)
    budget = _typed(data, "budget", dict, where, default={"epochs": 10})
    if not budget or set(budget) - {"epochs", "steps", "seconds"}:
        raise where.error("budget", "give epochs, steps and/or seconds (each > 0)")
    for key, value in budget.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise where.error(f"budget.{key}", f"must be a number > 0; got {value!r}")
        if key != "seconds":
            _check_int(value, f"budget.{key}", 1, where)
    batch_size = data.get("batch_size")
    if batch_size is not None:
        _check_int(batch_size, "batch_size", 1, where)
    metric = data.get("metric")
    if metric is not None and not isinstance(metric, str):
        raise where.error("metric", f"must be a string such as 'val_accuracy'; got {metric!r}")
    mode = data.get("mode")
    if mode not in (None, "min", "max"):
        raise where.error("mode", f"must be 'min' or 'max'; got {mode!r}")
    targets = _typed(data, "targets", dict, where, default={})
    for p, value in targets.items():
        if p not in problems or not isinstance(value, (int, float)):
            raise where.error(f"targets.{p}", "needs a problem of the study and a number")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        given = "" if "name" in data else " (from the file name; set name = ... in the file)"
        raise where.error(
            "name",
            f"invalid study name {name!r}{given}; it names the output directory: valid are "
            "letters, digits, '.', '_' and '-', not starting with '.'",
        )
    sampler_seed = data.get("sampler_seed", 0)
    _check_int(sampler_seed, "sampler_seed", 0, where)
    threads = data.get("threads", 1)
    _check_int(threads, "threads", 1, where)
    first = optimizers[0]
    run = _run_table(data, "run", where, problems[0], first.name,
                     around=_contender_settings(first.schedule, first.regularize))  # fmt: skip
    if _full_batch(data, where, run, optimizers):
        run = {**run, "order": "full"}
    for i, opt in enumerate(optimizers):
        for problem in problems:  # settings such as problem_args depend on the problem
            _run_table({"run": {**run, **opt.run}}, "run", where, problem, opt.name,
                       key=f"optimizers[{i}].run" if opt.run else "run",
                       around=_contender_settings(opt.schedule, opt.regularize))  # fmt: skip
        if pruning:
            _check_prunable(opt, {**run, **opt.run}, where)
    return StudySpec(
        name=name,
        problems=list(problems),
        optimizers=optimizers,
        protocol=kind,
        seeds=seeds,
        metric=metric,
        mode=mode,
        budget=dict(budget),
        batch_size=batch_size,
        trials=trials,
        folds=folds,
        lr_grid=(float(lr_grid[0]), float(lr_grid[1]), lr_grid[2]),
        pruning=pruning,
        sampler_seed=sampler_seed,
        targets=dict(targets),
        threads=threads,
        run=run,
    )


def _check_prunable(opt: OptimizerSpec, run: dict[str, Any], where: _Where) -> None:
    """Refuse pruning for a contender whose trials run in processes of their own: the
    study sees their epochs only once the run has ended, too late to stop it."""
    from types import SimpleNamespace

    from optimlab.parallel.methods import runs_in_processes

    settings = SimpleNamespace(parallel=run.get("parallel", "none"),
                               simulate_delay=run.get("simulate_delay"))  # fmt: skip
    if runs_in_processes(settings):
        raise where.error(
            "protocol.pruning",
            f"not available with contender {opt.label!r}, whose trials run in processes of "
            f"their own (parallel {settings.parallel}) and report no epoch while they run; "
            "valid: pruning = false, or simulate_delay for an asynchronous method",
        )


def _contender_settings(schedule: dict[str, Any] | None, regularize: dict[str, Any]) -> dict:
    """A contender's schedule and regularization as run settings, which some run settings
    depend on (a growing batch needs a schedule; a plateau rule refuses one)."""
    out: dict[str, Any] = {"regularize": dict(regularize)}
    if schedule is not None:
        out.update(schedule=schedule["name"], schedule_args=dict(schedule.get("params", {})))
    return out


def _full_batch(data: dict[str, Any], where: _Where, run: dict[str, Any], optimizers) -> bool:
    """Whether ``full_batch = true``: the run setting ``order = "full"`` for every trial
    (as ``optimlab train --full-batch``), which no batch size or other order may contradict."""
    full_batch = data.get("full_batch", False)
    if not isinstance(full_batch, bool):
        raise where.error("full_batch", f"must be true or false; got {full_batch!r}")
    if not full_batch:
        return False
    if data.get("batch_size") is not None:
        raise where.error("full_batch", "steps on the whole training set; drop batch_size")
    orders = {run.get("order"), *(o.run.get("order") for o in optimizers)} - {None, "full"}
    if orders:
        raise where.error("full_batch", f"contradicts order {sorted(orders)[0]!r} of a run "
                          "table; give one")  # fmt: skip
    return True


def _run_table(data: dict[str, Any], name: str, where: _Where, problem: str, optimizer: str,
               key: str | None = None,
               around: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """A ``run`` table checked as run settings (on ``problem`` with ``optimizer`` and the
    settings ``around`` it): only keys of a run file that the study does not set itself,
    each valid."""
    from optimlab.run import RunConfig
    from optimlab.run.config import setting_names

    key = key or name
    table = _typed(data, name, dict, where, default={})
    valid = [n for n in setting_names() if n not in STUDY_OWNED]
    for setting in table:
        if setting in STUDY_OWNED:
            raise where.error(f"{key}.{setting}", "set by the study's own keys, not in a run "
                              f"table; valid run keys: {', '.join(valid)}")  # fmt: skip
        if setting not in valid:
            raise where.error(f"{key}.{setting}",
                              f"unknown run setting; valid: {', '.join(valid)}")  # fmt: skip
    try:
        RunConfig(problem=problem, optimizer=optimizer, **(around or {}), **table)
    except OptimlabError as err:
        raise where.error(key, str(err)) from None
    if (table.get("nnodes") or 1) > 1:  # a trial's processes all start on its worker's machine
        raise where.error(f"{key}.nnodes", f"a trial runs on one machine; got {table['nnodes']}; "
                          "valid: 1 (nproc processes here), or optimlab train for several "
                          "machines")  # fmt: skip
    return dict(table)


def _optimizers(data, where, registry, protocol) -> list[OptimizerSpec]:
    from optimlab.schedules import SCHEDULES

    entries = _typed(data, "optimizers", list, where, required=True)
    if not entries:
        raise where.error("optimizers", "needs at least one optimizer")
    specs, labels = [], set()
    for i, entry in enumerate(entries):
        key = f"optimizers[{i}]"
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict) or "name" not in entry:
            raise where.error(key, "must be an optimizer name or a table with a name")
        extra = set(entry) - {"name", "label", "params", "search", "schedule", "regularize", "run"}
        if extra:
            raise where.error(
                f"{key}.{sorted(extra)[0]}",
                "unknown key; valid keys: name, label, params, search, schedule, regularize, run",
            )
        name = entry["name"]
        if name not in registry:
            raise where.error(
                f"{key}.name",
                f"unknown optimizer {name!r}; valid optimizers: "
                f"{', '.join(registry.names(aliases=False))}",
            )
        params = entry.get("params", {})
        search_table = entry.get("search", {})
        if not isinstance(params, dict) or not isinstance(search_table, dict):
            raise where.error(key, "params and search must be tables")
        record = registry.get(name)
        # a wrapper (lookahead, sam) takes its chosen base's arguments, not its default's
        base = params.get("base") if record.wrapper else None
        try:
            valid_hp = record.hyperparameters(base)
        except OptimlabError as err:
            raise where.error(f"{key}.base", str(err)) from None
        over = f" over base {base or valid_hp['base']!r}" if record.wrapper else ""
        for hp in [*params, *search_table]:
            if hp not in valid_hp:
                raise where.error(
                    f"{key}.{hp}",
                    f"unknown hyperparameter of {name!r}{over}; "
                    f"valid: {', '.join(sorted(valid_hp))}",
                )
        try:
            _build_once(name, params, data["problems"][0])
        except (OptimlabError, ValueError, TypeError) as err:
            raise where.error(f"{key}.params", str(err)) from None
        try:
            search = {hp: parse_dimension(hp, s) for hp, s in search_table.items()}
        except OptimlabError as err:
            raise where.error(f"{key}.search", str(err)) from None
        if protocol in ("random", "quasi_random") and not search:
            search = {"lr": ("log_uniform", [1e-5, 1.0])}
        schedule = entry.get("schedule")
        if schedule is not None:
            if not isinstance(schedule, dict) or schedule.get("name") not in SCHEDULES:
                got = schedule.get("name") if isinstance(schedule, dict) else schedule
                raise where.error(
                    f"{key}.schedule",
                    f"unknown schedule {got!r}; valid "
                    f"schedules: {', '.join(SCHEDULES.names(aliases=False))}",
                )
            if not isinstance(schedule.get("params", {}), dict):
                raise where.error(f"{key}.schedule.params", "must be a table")
        regularize = entry.get("regularize", {})
        if not isinstance(regularize, dict):
            raise where.error(f"{key}.regularize", "must be a table such as {dropout = 0.5}")
        try:
            from optimlab.regularize.options import validate as check_regularize

            check_regularize(dict(regularize))
        except OptimlabError as err:
            raise where.error(f"{key}.regularize", str(err)) from None
        if schedule is not None and "snapshots" in regularize:
            raise where.error(f"{key}.regularize", "snapshots sets its own schedule; drop schedule")
        label = entry.get("label", name)
        if label in labels:
            raise where.error(
                f"{key}.label",
                f"label {label!r} is used twice; give each optimizer entry a unique label",
            )
        labels.add(label)
        own_run = _run_table(entry, "run", where, data["problems"][0], name, key=f"{key}.run",
                             around=_contender_settings(schedule, regularize))  # fmt: skip
        specs.append(
            OptimizerSpec(
                name=registry.get(name).name,
                label=label,
                params=params,
                search=search,
                schedule=schedule,
                regularize=dict(regularize),
                run=own_run,
            )
        )
    return specs


def _build_once(name: str, params: dict[str, Any], problem: str) -> None:
    """Check ``params`` as a run's settings (``RunConfig``), then build optimizer
    ``name`` with them on a dummy parameter: its own checks of each value run now, not
    in every run of the study."""
    import torch

    from optimlab.optim import create
    from optimlab.run import RunConfig

    RunConfig.from_study_entry(problem=problem, optimizer=name, params=params)
    create(name, [torch.nn.Parameter(torch.zeros(1))], **params)


def _typed(data, key, kind, where, *, required=False, default=None):
    if key not in data:
        if required:
            raise where.error(key, "is required")
        return default
    value = data[key]
    if not isinstance(value, kind):
        raise where.error(
            key, f"must be a {'list' if kind is list else 'table'}; got {type(value).__name__}"
        )
    return value


def _check_int(value: Any, key: str, low: int, where: _Where) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise where.error(key, f"must be a whole number >= {low}; got {value!r}")
