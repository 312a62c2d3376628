"""``optimlab bench parallel``: synchronous data parallel SGD in 2 processes of 1 thread
each against 1 process with 2 threads, on each problem given; and the delay model's
cost over a serial epoch. Time per epoch, ratios side by side in one run.

**Processes or threads.** Both contenders train the same run (problem, optimizer,
learning rate, global batch, seed), which takes the same steps either way
(``optimlab.parallel.sync``), so only the way the cores are used differs: two processes
that each compute half of every batch and all-reduce gradients (gloo over loopback), or
one process whose matrix products use two threads. An epoch's time is the trainer's own
record: its training steps and the evaluation of the validation and test sets. Goal:
sync / threads <= 1.15.

**The delay model.** The same serial run (one process, one thread, the server's rule,
``DELAY_OPTIMIZER``, as the optimizer) against Downpour replayed in one process with a
seeded staleness (``simulate_delay``, ``fixed:4`` by default: the simulated server keeps
4 old versions and every fetch copies one). Both without evaluation, so that the epoch
is training steps only and the overhead is not diluted. Goal: delay / serial <= 1.10.

Each round runs every contender of a pair once, the order alternating between rounds
so that drift in the machine's load hits them alike; each run trains ``epochs`` epochs,
and its first epoch is left out (warm-up). Process start-up and data loading are not
timed.

Reported: per pair, the median and the fastest seconds per epoch of each contender and
their ratios, then one summary line per ratio: over all rounds by the median and by the
fastest epoch, the spread (min, median, max) of the rounds' own ratios (each round's
median epochs), and the goal; and the machine's load average before and after. On a
machine that others use, the median and the fastest disagree: a thread that waits for
a busy core holds up its whole process, so the threads lose more to other load than
the processes do, and the fastest epochs are the ones least disturbed.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from optimlab.errors import OptimlabError, check_range

THREADS, SYNC = "1 process, 2 threads", "sync, 2 processes x 1 thread"
SERIAL, DELAYED = "serial, 1 thread", "delay model, 1 thread"
SYNC_GOAL, DELAY_GOAL = 1.15, 1.10
DELAY_OPTIMIZER = "adagrad"  # Downpour's server rule in the paper
DEFAULT_DELAY = "fixed:4"


def default_problems() -> list[str]:
    """fmnist_mlp and fmnist_2c2d where Fashion-MNIST's files are found, else
    digits_mlp (embedded)."""
    from optimlab.data import sources

    return ["fmnist_mlp", "fmnist_2c2d"] if sources.find("fashion_mnist") else ["digits_mlp"]


def default_problem() -> str:
    """The first of :func:`default_problems`."""
    return default_problems()[0]


def machine() -> str:
    """The CPU's model name and the number of cores this process may use."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cores} cores available, torch {torch.__version__}"


def _epoch_times(out: Path) -> list[float]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [float(r["time"]) for r in rows]


def _contenders(config: Any) -> dict[str, Callable[[Path], None]]:
    from optimlab.parallel.launch import LaunchOptions, launch
    from optimlab.run import build_run

    def threads(out: Path) -> None:
        build_run(config.replace(threads=2, out=str(out)), resume=False).fit()

    def sync(out: Path) -> None:
        run = config.replace(threads=1, parallel="sync", nproc=2, out=str(out))
        launch(run, LaunchOptions(), resume=False)

    return {THREADS: threads, SYNC: sync}


def _delay_contenders(config: Any, delay: str) -> dict[str, Callable[[Path], None]]:
    from optimlab.run import build_run

    serial = config.replace(optimizer=DELAY_OPTIMIZER, threads=1, no_eval=True)
    delayed = serial.replace(parallel="downpour", simulate_delay=delay)

    def run(settings: Any) -> Callable[[Path], None]:
        return lambda out: build_run(settings.replace(out=str(out)), resume=False).fit()

    return {SERIAL: run(serial), DELAYED: run(delayed)}


def _time_pair(
    contenders: dict[str, Callable[[Path], None]],
    rounds: int,
    tmp: str,
    print_fn: Callable[[str], Any],
) -> dict[str, list[list[float]]]:
    """Seconds per epoch of each contender in each round, after each run's first epoch,
    in alternating rounds; the table of the pair printed with the first contender as the
    reference."""
    per_round: dict[str, list[list[float]]] = {name: [] for name in contenders}
    for r in range(rounds):
        order = list(contenders) if r % 2 == 0 else list(reversed(contenders))
        for name in order:
            out = Path(tempfile.mkdtemp(prefix=f"{r}-", dir=tmp))
            contenders[name](out)
            epoch_times = _epoch_times(out)[1:]
            per_round[name].append(epoch_times)
            shown = ", ".join(f"{t:.2f}" for t in epoch_times)
            print_fn(f"  round {r + 1}  {name:<30} s/epoch {shown}")
    times = {name: [t for ts in rounds_ for t in ts] for name, rounds_ in per_round.items()}
    first = next(iter(contenders))
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    fastest = {name: min(ts) for name, ts in times.items()}
    print_fn(f"{'contender':<32}{'median s/epoch':>16}{'ratio':>8}{'fastest':>10}{'ratio':>8}")
    for name in contenders:
        print_fn(
            f"{name:<32}{medians[name]:>16.2f}{medians[name] / medians[first]:>8.2f}"
            f"{fastest[name]:>10.2f}{fastest[name] / fastest[first]:>8.2f}"
        )
    return per_round


def run_parallel_bench(
    problems: str | Sequence[str] | None = None,
    *,
    optimizer: str = "momentum",
    lr: float = 0.05,
    epochs: int = 2,
    rounds: int = 3,
    batch_size: int | None = None,
    delay: str | None = DEFAULT_DELAY,
    print_fn: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Time sync against threads on each of ``problems`` and, unless ``delay`` is None,
    the delay model against a serial run on the first; print the tables and the ratios
    side by side, and return them."""
    from optimlab.parallel.delay import parse_delay
    from optimlab.run import RunConfig

    check_range("epochs", epochs, 2)  # the first epoch of every run is warm-up
    check_range("rounds", rounds, 1)
    if isinstance(problems, str):
        problems = [p.strip() for p in problems.split(",") if p.strip()]
    problems = list(problems or default_problems())
    if delay is not None:
        parse_delay(delay)
    configs = {}
    for problem in problems:
        configs[problem] = RunConfig(problem=problem, optimizer=optimizer, lr=lr,
                                     epochs=epochs, batch_size=batch_size, seed=0)  # fmt: skip
        if configs[problem].world_size != 1:
            raise OptimlabError("the benchmark sets the processes itself")
    load = [_load()]
    print_fn(f"parallel: {', '.join(problems)}; {optimizer} lr {lr:g}, {epochs} epochs per "
             f"run, {rounds} rounds; machine: {machine()}")  # fmt: skip
    results: dict[str, Any] = {"problems": {}, "ratios": {}}
    with tempfile.TemporaryDirectory(prefix="optimlab-bench-") as tmp:
        for problem, config in configs.items():
            print_fn(f"{problem}: {SYNC} against {THREADS}")
            times = _time_pair(_contenders(config), rounds, tmp, print_fn)
            results["problems"][problem] = _summary(times, THREADS, SYNC)
            results["ratios"][f"{problem}: sync 2x1 / threads 1x2"] = (
                results["problems"][problem],
                SYNC_GOAL,
            )
        if delay is not None:
            problem = problems[0]
            print_fn(f"{problem}: the delay model ({delay}, downpour, {DELAY_OPTIMIZER}) "
                     f"against serial {DELAY_OPTIMIZER}, training steps only")  # fmt: skip
            times = _time_pair(_delay_contenders(configs[problem], delay), rounds, tmp,
                               print_fn)  # fmt: skip
            results["delay"] = _summary(times, SERIAL, DELAYED)
            results["ratios"][f"{problem}: delay model {delay} / serial"] = (
                results["delay"],
                DELAY_GOAL,
            )
    print_fn(f"{'ratio':<48}{'median':>8}{'fastest':>9}{'rounds: min':>13}{'median':>8}"
             f"{'max':>7}{'goal':>9}")  # fmt: skip
    for name, (summary, goal) in results["ratios"].items():
        low, mid, high = summary["round_ratios_spread"]
        goal_text = f"<= {goal:.2f}"
        print_fn(f"{name:<48}{summary['ratio']:>8.2f}{summary['fastest_ratio']:>9.2f}"
                 f"{low:>13.2f}{mid:>8.2f}{high:>7.2f}{goal_text:>9}")  # fmt: skip
    print_fn(f"load average (1 min) before {load[0]:.2f}, after {_load():.2f}")
    results["ratios"] = {k: v[0]["ratio"] for k, v in results["ratios"].items()}
    return results


def _summary(per_round: dict[str, list[list[float]]], reference: str, other: str) -> dict[str, Any]:
    """Medians and fastest epochs over all rounds and their ratios; and the ratio of
    each round's medians, whose spread (min, median, max) shows how far one round's
    ratio can be trusted."""
    times = {name: [t for ts in rounds for t in ts] for name, rounds in per_round.items()}
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    fastest = {name: min(ts) for name, ts in times.items()}
    rounds = [
        statistics.median(mine) / statistics.median(ref)
        for mine, ref in zip(per_round[other], per_round[reference], strict=True)
    ]
    return {
        "medians": medians,
        "fastest": fastest,
        "ratio": medians[other] / medians[reference],
        "fastest_ratio": fastest[other] / fastest[reference],
        "round_ratios": rounds,
        "round_ratios_spread": (min(rounds), statistics.median(rounds), max(rounds)),
        "times": times,
    }


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
