"""``optimlab bench accuracy``: seconds until the test accuracy first reaches a target.

Contenders train the same problem with the same rule, seed, initial weights (checked)
and data order, one whole run after another (not interleaved). Each is a
:class:`optimlab.run.RunConfig` built by :func:`optimlab.run.build_run`, and differs
from the others by one run setting:

* ``torch``: ``implementation = "torch"``, torch.optim's class of the rule, its
  default implementation (neither ``foreach`` nor ``fused`` given: the per-tensor loop
  on CPU, foreach on CUDA);
* ``eager``: optimlab's rule run eagerly (not in the default set);
* ``fast``: ``fast = true``, optimlab's rule on its compiled fused step;
* ``fast+compile``: ``fast`` and ``compile = true`` (``torch.compile`` of the model).

The test accuracy is evaluated every ``eval_every`` optimizer steps (default: once per
epoch) with the uncompiled model; evaluation time is part of the wall time, and the
trainer's own per-epoch evaluation is off (``no_eval``). A run stops at the first
evaluation at or above the target, or when the budget (seconds, epochs) ends. Wall time
runs from the start of training, and compilation happens at the first calls, so compile
time is included; it is also reported on its own. Since the runs are sequential, the
load average is recorded before and after each.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from optimlab.errors import OptimlabError, check_range, unknown_name
from optimlab.run import RunConfig, build_run
from optimlab.train.callback import Callback
from optimlab.train.denormals import threads_flushing
from optimlab.train.evaluate import evaluate

# problem -> (optimizer, target test accuracy): the problem's DeepOBS default optimizer
# and a target it reaches; digits_mlp is a small problem for a quick look.
PRESETS: dict[str, tuple[str, float]] = {
    "fmnist_mlp": ("adam", 0.88),
    "fmnist_2c2d": ("momentum", 0.91),
    "digits_mlp": ("adam", 0.95),
}
# contender -> its RunConfig settings: each is one option of the run builder
CONTENDERS: dict[str, dict[str, Any]] = {
    "torch": {"implementation": "torch"},
    "eager": {},
    "fast": {"fast": True},
    "fast+compile": {"fast": True, "compile": True},
}
DEFAULT_CONTENDERS = ("torch", "fast", "fast+compile")


@dataclass
class RunRecord:
    """One contender's run. ``seconds``/``steps`` are None when the target was not reached."""

    contender: str
    seed: int
    status: str  # "reached", "time budget", "epoch budget" or "diverged"
    seconds: float | None
    steps: int | None
    epochs: float | None
    accuracy: float  # at the last evaluation
    best_accuracy: float
    total_seconds: float
    epochs_run: float  # epochs trained in the whole run (to the target or the budget)
    compile_seconds: float | None  # all torch.compile work during the run
    optimizer_compile_seconds: float | None  # the fast step's first compiled call
    eval_seconds: float
    evals: int
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    checksum: float = field(repr=False, default=0.0)

    @property
    def reached(self) -> bool:
        return self.status == "reached"


class _TargetWatch(Callback):
    """Evaluates the test accuracy every ``every`` steps; stops at the target or deadline.

    The clock starts when training does (``on_train_begin``): the optimizer's and the
    model's compilation happen at their first calls, inside it."""

    def __init__(self, target: float, every: int, budget: float | None) -> None:
        super().__init__()
        self.target, self.every, self.budget = target, every, budget
        self.problem: Any = None  # the run's problem, for its model and test split
        self.t0, self.deadline = math.nan, math.inf
        self.hit: tuple[float, int] | None = None  # (seconds, steps) at the target
        self.accuracy, self.best, self.last_step = math.nan, -math.inf, 0
        self.eval_seconds, self.evals, self.out_of_time = 0.0, 0, False

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + (self.budget or math.inf)

    def evaluate(self, step: int) -> float:
        t = time.perf_counter()
        p = self.problem
        test = p.splits.test
        # the uncompiled model: the compiled one shares its parameters
        acc = evaluate(p.model, p.loss_fn, p.metrics, test.x, test.y, 1024)["accuracy"]
        self.eval_seconds += time.perf_counter() - t
        self.evals += 1
        self.accuracy, self.best, self.last_step = acc, max(self.best, acc), step
        return acc

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        if step % self.every == 0 and self.evaluate(step) >= self.target:
            self.hit = (time.perf_counter() - self.t0, step)
            self.trainer.stop_training = True
        elif time.perf_counter() >= self.deadline:
            self.out_of_time = True
            self.trainer.stop_training = True


def _compile_wall() -> float | None:
    """Seconds this process has spent in torch.compile so far (None if torch hides it)."""
    try:
        from torch._dynamo.utils import calculate_time_spent

        return float(calculate_time_spent().get("total_wall_time", 0.0))
    except Exception:  # a private API: its absence must not break the benchmark
        return None


def _checksum(model: nn.Module) -> float:
    return float(sum(p.detach().double().sum() * (i + 1) for i, p in enumerate(model.parameters())))


def contender_config(
    contender: str,
    problem: str,
    rule: str,
    *,
    seed: int = 0,
    budget: float | None = None,
    max_epochs: int | None = None,
    device: str = "cpu",
) -> RunConfig:
    """The run of one contender: the rule's registry defaults, the problem's batch size
    and epochs (or ``max_epochs``), the contender's settings (``CONTENDERS``); no
    evaluation by the trainer, since the target watch evaluates the test set itself."""
    from optimlab.problems import PROBLEMS

    return RunConfig(
        problem=problem,
        optimizer=rule,
        seed=seed,
        epochs=max_epochs or PROBLEMS.get(problem).epochs,
        seconds=budget,
        device=device,
        log_every=10**9,
        no_eval=True,
        **CONTENDERS[contender],
    )


def run_contender(
    contender: str,
    problem_name: str,
    rule: str,
    target: float,
    *,
    seed: int = 0,
    budget: float | None = None,
    max_epochs: int | None = None,
    eval_every: int | None = None,
    device: str = "cpu",
) -> RunRecord:
    """Train one contender from a freshly built problem until ``target`` or the budget."""
    config = contender_config(
        contender, problem_name, rule, seed=seed, budget=budget, max_epochs=max_epochs,
        device=device,
    )  # fmt: skip
    watch = _TargetWatch(target, eval_every or 1, budget)
    compile_before = _compile_wall()
    run = build_run(config, callbacks=[watch])
    problem = watch.problem = run.problem
    checksum = _checksum(problem.model)
    steps_per_epoch = math.ceil(len(problem.splits.train.x) / problem.batch_size)
    watch.every = eval_every or steps_per_epoch
    load_before = os.getloadavg()
    result = run.fit()
    trainer = run.trainer
    total = time.perf_counter() - watch.t0
    compile_after = _compile_wall()
    if watch.last_step != trainer.step or watch.evals == 0:
        watch.evaluate(trainer.step)  # the final accuracy, after the clock stopped
    if watch.hit is not None:
        status = "reached"
    elif result.status == "diverged":
        status = "diverged"
    elif watch.out_of_time or result.status == "time_budget":
        status = "time budget"
    else:
        status = "epoch budget"
    seconds, steps = watch.hit if watch.hit is not None else (None, None)
    fast = getattr(run.optimizer, "fast", None)
    return RunRecord(
        contender=contender,
        seed=seed,
        status=status,
        seconds=seconds,
        steps=steps,
        epochs=steps / steps_per_epoch if steps is not None else None,
        accuracy=watch.accuracy,
        best_accuracy=watch.best,
        total_seconds=total,
        epochs_run=trainer.step / steps_per_epoch,
        compile_seconds=(
            compile_after - compile_before
            if compile_before is not None and compile_after is not None
            else None
        ),
        optimizer_compile_seconds=getattr(fast, "compile_seconds", None),
        eval_seconds=watch.eval_seconds,
        evals=watch.evals,
        load_before=load_before,
        load_after=os.getloadavg(),
        checksum=checksum,
    )


def check_choice(problem: str, contenders: Sequence[str], optimizer: str | None) -> str:
    """Validate the problem and contender names; return the optimizer rule to use."""
    if problem not in PRESETS:
        raise unknown_name("problem", problem, PRESETS)
    for c in contenders:
        if c not in CONTENDERS:
            raise unknown_name("contender", c, CONTENDERS)
    if not contenders:
        raise OptimlabError(f"no contenders; valid contenders: {', '.join(CONTENDERS)}")
    from optimlab.optim.registry import OPTIMIZERS

    def comparable(r: Any) -> bool:
        # elementwise: torch's class of a matrix rule may refuse the model's other
        # parameters (torch.optim.Muon takes 2-D ones only)
        return r.torch_class is not None and not r.needs_closure and r.elementwise

    record = OPTIMIZERS.get(optimizer or PRESETS[problem][0])
    if not comparable(record):
        valid = [r.name for r in OPTIMIZERS if comparable(r)]
        raise OptimlabError(
            f"optimizer {record.name!r} has no torch.optim class to compare with in a "
            f"training loop fed one gradient per step (or its rule is not elementwise); "
            f"valid optimizers: {', '.join(valid)}"
        )
    return record.name


def time_to_accuracy(
    problem: str = "fmnist_mlp",
    *,
    target: float | None = None,
    optimizer: str | None = None,
    contenders: Sequence[str] = DEFAULT_CONTENDERS,
    budget: float | None = None,
    max_epochs: int | None = None,
    eval_every: int | None = None,
    seeds: int = 1,
    seed: int = 0,
    device: str = "cpu",
    verbose: bool = False,
) -> dict[str, Any]:
    """Run every contender (one after another) for ``seeds`` seeds; return the records.

    ``target`` defaults to the problem's preset (``PRESETS``), ``optimizer`` to its
    default rule. Seed ``k`` rotates the contender order by ``k`` so that no contender
    always runs first.
    """
    rule = check_choice(problem, contenders, optimizer)
    target = PRESETS[problem][1] if target is None else target
    check_range("target", target, 0.0, 1.0, low_open=True)
    check_range("seeds", seeds, 1)
    if budget is not None:
        check_range("budget", budget, 0.0, low_open=True)
    if max_epochs is not None:
        check_range("max_epochs", max_epochs, 1)
    if eval_every is not None:
        check_range("eval_every", eval_every, 1)
    names = list(dict.fromkeys(contenders))
    records: list[RunRecord] = []
    for k in range(seeds):
        order = names[k % len(names) :] + names[: k % len(names)]
        checksums = set()
        for c in order:
            r = run_contender(
                c,
                problem,
                rule,
                target,
                seed=seed + k,
                budget=budget,
                max_epochs=max_epochs,
                eval_every=eval_every,
                device=device,
            )
            checksums.add(r.checksum)
            records.append(r)
            if verbose:
                print("  " + format_record(r), flush=True)
        if len(checksums) != 1:
            raise OptimlabError(f"contenders started from different weights (seed {seed + k})")
    return {
        "problem": problem,
        "optimizer": rule,
        "target": target,
        "budget": budget,
        "eval_every": eval_every,
        "seeds": seeds,
        "device": device,
        "threads": torch.get_num_threads(),
        "flush_denormal": threads_flushing(),
        "contenders": names,
        "records": records,
        "summary": summarize(records, names),
    }


def _mean_spread(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(records: Sequence[RunRecord], contenders: Sequence[str]) -> dict[str, Any]:
    """Per contender: runs reaching the target, mean ± spread of seconds and steps, and
    the time ratio to torch's over the seeds where both reached it."""
    base = {r.seed: r for r in records if r.contender == "torch"}
    out: dict[str, Any] = {}
    for c in contenders:
        rs = [r for r in records if r.contender == c]
        hit = [r for r in rs if r.reached]
        ratios = [
            r.seconds / base[r.seed].seconds
            for r in hit
            if r.seed in base and base[r.seed].reached and base[r.seed].seconds
        ]
        comp = [r.compile_seconds for r in rs if r.compile_seconds is not None]
        out[c] = {
            "runs": len(rs),
            "reached": len(hit),
            "seconds": _mean_spread([r.seconds for r in hit]) if hit else None,
            "steps": _mean_spread([float(r.steps) for r in hit]) if hit else None,
            "epochs": _mean_spread([r.epochs for r in hit]) if hit else None,
            "accuracy": _mean_spread([r.accuracy for r in rs]),
            "compile_seconds": _mean_spread(comp) if comp else None,
            "eval_seconds": _mean_spread([r.eval_seconds for r in rs]),
            "seconds_per_epoch": _mean_spread([r.total_seconds / r.epochs_run for r in rs]),
            "ratio_to_torch": _mean_spread(ratios) if ratios else None,
        }
    return out


def _load(t: tuple[float, float, float]) -> str:
    return "/".join(f"{v:.2f}" for v in t)


def format_record(r: RunRecord) -> str:
    """One line per run: what it reached, when, and the load average around it."""
    when = (
        f"{r.seconds:.2f} s, {r.steps} steps ({r.epochs:.2f} epochs)"
        if r.reached
        else f"not reached in {r.total_seconds:.1f} s"
    )
    comp = "-" if r.compile_seconds is None else f"{r.compile_seconds:.1f} s"
    return (
        f"seed {r.seed} {r.contender:<12} {r.status:<12} {when}; accuracy {r.accuracy:.4f}; "
        f"compile {comp}; eval {r.eval_seconds:.1f} s in {r.evals}; "
        f"load avg {_load(r.load_before)} -> {_load(r.load_after)}"
    )


def _pm(ms: tuple[float, float] | None, fmt: str, seeds: int) -> str:
    if ms is None:
        return "-"
    return format(ms[0], fmt) + (f" ± {format(ms[1], fmt)}" if seeds > 1 else "")


def format_result(res: dict[str, Any]) -> str:
    """The table: a header, a row per contender, and the load average of every run."""
    n = res["seeds"]
    every = f"every {res['eval_every']} steps" if res["eval_every"] else "every epoch"
    budget = f"{res['budget']:g} s" if res["budget"] else "none (epoch cap only)"
    lines = [
        f"time to accuracy: {res['problem']}, {res['optimizer']} (its defaults), test "
        f"accuracy >= {res['target']:.3f}, {res['device']}, {res['threads']} threads, "
        f"{n} seed(s), budget {budget}"
        + (", subnormals flushed" if res.get("flush_denormal") else ""),
        f"  contenders ran one after another (not interleaved); test accuracy evaluated "
        f"{every}, evaluation time included in the wall time; wall time includes compile time",
        f"  {'contender':<13} {'reached':>7} {'seconds':>15} {'steps':>15} {'epochs':>13} "
        f"{'s/epoch':>9} {'compile s':>11} {'eval s':>8} {'final acc':>10} {'time/torch':>13}",
    ]
    pm = "mean ± sd" if n > 1 else ""
    for c, s in res["summary"].items():
        ratio = s["ratio_to_torch"]
        lines.append(
            f"  {c:<13} {s['reached']:>3}/{s['runs']:<3} {_pm(s['seconds'], '.2f', n):>15} "
            f"{_pm(s['steps'], '.0f', n):>15} {_pm(s['epochs'], '.2f', n):>13} "
            f"{_pm(s['seconds_per_epoch'], '.1f', n):>9} "
            f"{_pm(s['compile_seconds'], '.1f', n):>11} {_pm(s['eval_seconds'], '.1f', n):>8} "
            f"{_pm(s['accuracy'], '.4f', n):>10} {_pm(ratio, '.3f', n):>13}"
        )
    lines.append(
        "  (s/epoch: wall time of the whole run over the epochs it trained, a speed that"
        " does not depend on where the accuracy crossed the target)"
    )
    if pm:
        lines.append(f"  ({pm} over seeds; time/torch over the seeds where both reached it)")
    lines.append("  runs in order (load average 1/5/15 min before -> after):")
    lines += ["    " + format_record(r) for r in res["records"]]
    return "\n".join(lines)


def run_accuracy_bench(
    problem: str = "fmnist_mlp",
    *,
    target: float | None = None,
    optimizer: str | None = None,
    contenders: Sequence[str] = DEFAULT_CONTENDERS,
    budget: float | None = None,
    max_epochs: int | None = None,
    eval_every: int | None = None,
    seeds: int = 1,
    threads: int | None = None,
    device: str | None = None,
) -> list[dict[str, Any]]:
    """Entry point of ``optimlab bench accuracy``: prints one table per problem.

    ``problem`` is a preset name or ``both`` (fmnist_mlp and fmnist_2c2d); ``threads``
    sets torch's thread count; ``device`` defaults to CUDA where present, else the CPU.
    The other arguments are those of ``time_to_accuracy``.
    """
    names = ["fmnist_mlp", "fmnist_2c2d"] if problem == "both" else [problem]
    contenders = list(contenders)
    for name in names:  # all checks before the first (long) run
        if name not in PRESETS:
            raise unknown_name("problem", name, [*PRESETS, "both"])
        check_choice(name, contenders, optimizer)
    if threads is not None:
        check_range("threads", threads, 1)
        torch.set_num_threads(threads)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    results = []
    for name in names:
        res = time_to_accuracy(
            name,
            target=target,
            optimizer=optimizer,
            contenders=contenders,
            budget=budget,
            max_epochs=max_epochs,
            eval_every=eval_every,
            seeds=seeds,
            device=device,
            verbose=True,
        )
        print(format_result(res), flush=True)
        results.append(res)
    return results
