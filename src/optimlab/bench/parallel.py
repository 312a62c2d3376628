"""``optimlab bench parallel``: synchronous data parallel SGD in 2 processes of 1 thread
each, against 1 process with 2 threads, time per epoch, side by side.

Both contenders train the same run (problem, optimizer, learning rate, global batch,
seed), which takes the same steps either way (``optimlab.parallel.sync``), so only the
way the cores are used differs: two processes that each compute half of every batch
and all-reduce gradients (gloo over loopback), or one process whose matrix products
use two threads. Each round runs both contenders once, the order alternating between
rounds so that drift in the machine's load hits them alike; each run trains
``epochs`` epochs, and its first epoch is left out (warm-up). An epoch's time is the
trainer's own record: its training steps and the evaluation of the validation and test
sets. Process start-up and data loading are not timed.

Reported: the median and the fastest seconds per epoch of each contender and their
ratios (sync / threads: below 1, the two processes are faster), and the machine's load
average before and after. On a machine that others use, the two measures disagree: a
thread that waits for a busy core holds up its whole process, so the threads lose more
to other load than the processes do, and the fastest epochs are the ones least
disturbed.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from optimlab.errors import OptimlabError, check_range

THREADS, SYNC = "1 process, 2 threads", "sync, 2 processes x 1 thread"


def default_problem() -> str:
    """fmnist_mlp where Fashion-MNIST's files are found, else digits_mlp (embedded)."""
    from optimlab.data import sources

    return "fmnist_mlp" if sources.find("fashion_mnist") else "digits_mlp"


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


def run_parallel_bench(
    problem: str | None = None,
    *,
    optimizer: str = "momentum",
    lr: float = 0.05,
    epochs: int = 2,
    rounds: int = 3,
    batch_size: int | None = None,
    print_fn: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Time both contenders; print and return the medians and the ratio."""
    from optimlab.run import RunConfig

    check_range("epochs", epochs, 2)  # the first epoch of every run is warm-up
    check_range("rounds", rounds, 1)
    problem = problem or default_problem()
    config = RunConfig(problem=problem, optimizer=optimizer, lr=lr, epochs=epochs,
                       batch_size=batch_size, seed=0)  # fmt: skip
    if config.world_size != 1:
        raise OptimlabError("the benchmark sets the processes itself")
    contenders = _contenders(config)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    load = [_load()]
    print_fn(f"parallel: {problem}, {optimizer} lr {lr:g}, {epochs} epochs per run, "
             f"{rounds} rounds; machine: {machine()}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="optimlab-bench-") as tmp:
        for r in range(rounds):
            order = list(contenders) if r % 2 == 0 else list(reversed(contenders))
            for name in order:
                out = Path(tmp) / f"{r}-{len(times[name])}-{name[:4]}"
                contenders[name](out)
                epoch_times = _epoch_times(out)[1:]
                times[name].extend(epoch_times)
                shown = ", ".join(f"{t:.2f}" for t in epoch_times)
                print_fn(f"  round {r + 1}  {name:<30} s/epoch {shown}")
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    fastest = {name: min(ts) for name, ts in times.items()}
    print_fn(f"{'contender':<32}{'median s/epoch':>16}{'ratio':>8}{'fastest':>10}{'ratio':>8}")
    for name in contenders:
        print_fn(
            f"{name:<32}{medians[name]:>16.2f}{medians[name] / medians[THREADS]:>8.2f}"
            f"{fastest[name]:>10.2f}{fastest[name] / fastest[THREADS]:>8.2f}"
        )
    print_fn(f"load average (1 min) before {load[0]:.2f}, after {_load():.2f}")
    return {
        "problem": problem,
        "medians": medians,
        "fastest": fastest,
        "ratio": medians[SYNC] / medians[THREADS],
        "fastest_ratio": fastest[SYNC] / fastest[THREADS],
        "times": times,
    }


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
