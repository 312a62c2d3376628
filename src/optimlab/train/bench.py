"""``optimlab bench engine``: the trainer's epoch time against two plain loops.

Three contenders train the same model (same initial weights), optimizer and tensors
for one epoch at a time, interleaved (the order rotates every repetition) so that
machine load hits them alike; the medians are compared:

* a minimal hand-written loop: a permutation, index the batch, forward, backward, step;
* the trainer (running loss and accuracy kept as tensors, callbacks, loader, budget);
* a ``torch.utils.data.DataLoader`` over a ``TensorDataset`` (per-example indexing and
  collation, the way most tutorials feed in-memory data).

Goals: trainer / hand loop <= 1.05, DataLoader loop / trainer >= 1.5.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from optimlab.errors import OptimlabError

# Hidden widths: "large" is DeepOBS' fmnist_mlp (compute-bound: any loop is within a few
# percent), "small" and "linear" (logistic regression) are where the loop's own overhead
# and the data feeding show.
MODELS: dict[str, tuple[int, ...]] = {"large": (1000, 500, 100), "small": (64,), "linear": ()}
IN_FEATURES, CLASSES = 784, 10


def _mlp(hidden: tuple[int, ...], seed: int) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    width = IN_FEATURES
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, CLASSES))
    return nn.Sequential(*layers)


def _accuracy(output: Tensor, target: Tensor) -> Tensor:
    return (output.argmax(dim=1) == target).float().mean()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _hand_epoch(model, opt, x, y, batch_size, epoch, seed) -> None:
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(len(x), generator=gen).to(x.device)
    loss_fn = nn.functional.cross_entropy
    for i in range(0, len(x), batch_size):
        idx = perm[i : i + batch_size]
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x[idx]), y[idx]).backward()
        opt.step()


def _dataloader_epoch(model, opt, loader, device) -> None:
    loss_fn = nn.functional.cross_entropy
    for xb, yb in loader:
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        loss_fn(model(xb), yb).backward()
        opt.step()


def _trainer_epoch(model, opt, x, y, batch_size, epoch, seed) -> None:
    from optimlab.train.trainer import fit

    splits = {"train": (x, y)}
    fit(
        (model, nn.functional.cross_entropy, {"accuracy": _accuracy}, splits),
        opt,
        epochs=1,
        batch_size=batch_size,
        seed=seed + epoch,
    )


def bench_engine(
    model: str = "large",
    *,
    samples: int = 4096,
    batch_size: int = 128,
    repeats: int = 7,
    device: str = "cpu",
    seed: int = 0,
) -> dict[str, Any]:
    """Median seconds per epoch of each contender, and the two ratios."""
    if model not in MODELS:
        raise OptimlabError(f"unknown model {model!r}; valid models: {', '.join(MODELS)}")
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, IN_FEATURES, generator=gen).to(dev)
    y = torch.randint(0, CLASSES, (samples,), generator=gen).to(dev)
    base = _mlp(MODELS[model], seed).to(dev)

    def contender(run: Callable[..., None]) -> dict[str, Any]:
        m = copy.deepcopy(base)
        return {"model": m, "opt": torch.optim.Adam(m.parameters(), lr=1e-3), "run": run}

    dl_gen = torch.Generator().manual_seed(seed)
    dataset = torch.utils.data.TensorDataset(x.cpu(), y.cpu())
    dl = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, generator=dl_gen, pin_memory=False
    )
    runs = {
        "hand": contender(lambda m, o, e: _hand_epoch(m, o, x, y, batch_size, e, seed)),
        "trainer": contender(lambda m, o, e: _trainer_epoch(m, o, x, y, batch_size, e, seed)),
        "dataloader": contender(lambda m, o, e: _dataloader_epoch(m, o, dl, dev)),
    }
    # Wall time is what a user waits for; CPU time of this process is also kept because
    # on a shared machine it is far less disturbed by other processes (with one thread
    # it is the work done; with several it also counts threads spinning while waiting).
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for rep in range(repeats + 1):  # repetition 0 warms up and is not counted
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            c = runs[name]
            _sync(dev)
            t0, c0 = time.perf_counter(), time.process_time()
            c["run"](c["model"], c["opt"], rep)
            _sync(dev)
            if rep:
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    med = {name: statistics.median(ts) for name, ts in wall.items()}
    med_cpu = {name: statistics.median(ts) for name, ts in cpu.items()}
    return {
        "model": model,
        "layers": "-".join(map(str, (IN_FEATURES, *MODELS[model], CLASSES))),
        "samples": samples,
        "batch_size": batch_size,
        "repeats": repeats,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "seconds_per_epoch": med,
        "cpu_seconds_per_epoch": med_cpu,
        "trainer_over_hand": med["trainer"] / med["hand"],
        "dataloader_over_trainer": med["dataloader"] / med["trainer"],
        "cpu_trainer_over_hand": med_cpu["trainer"] / med_cpu["hand"],
        "cpu_dataloader_over_trainer": med_cpu["dataloader"] / med_cpu["trainer"],
    }


def format_result(r: dict[str, Any]) -> str:
    s, c = r["seconds_per_epoch"], r["cpu_seconds_per_epoch"]
    lines = [
        f"engine: MLP {r['layers']} ({r['model']}), {r['samples']} samples, batch "
        f"{r['batch_size']}, Adam, {r['device']}, {r['threads']} threads; median of "
        f"{r['repeats']} interleaved epochs (wall / process CPU time)",
        f"  hand-written loop  {s['hand'] * 1e3:8.1f} / {c['hand'] * 1e3:8.1f} ms per epoch",
        f"  trainer            {s['trainer'] * 1e3:8.1f} / {c['trainer'] * 1e3:8.1f} ms per epoch"
        f"   {r['trainer_over_hand']:.3f}x / {r['cpu_trainer_over_hand']:.3f}x the hand loop"
        " (goal <= 1.05x)",
        f"  DataLoader loop    {s['dataloader'] * 1e3:8.1f} / {c['dataloader'] * 1e3:8.1f} ms "
        f"per epoch   trainer {r['dataloader_over_trainer']:.2f}x / "
        f"{r['cpu_dataloader_over_trainer']:.2f}x faster (goal >= 1.5x)",
    ]
    return "\n".join(lines)


def run_engine_bench(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Entry point of ``optimlab bench engine``; prints one block per model size.

    Reads ``model`` (large, small, linear, or both/all), ``repeats``, and where present ``samples``,
    ``batch_size`` and ``device`` from ``args``.
    """
    which = getattr(args, "model", "both") or "both"
    models = list(MODELS) if which in ("both", "all") else [which]
    for m in models:
        if m not in MODELS:
            raise OptimlabError(f"unknown model {m!r}; valid models: {', '.join(MODELS)}, all")
    repeats = int(getattr(args, "repeats", 7) or 7)
    if repeats < 1:
        raise OptimlabError(f"invalid repeats: {repeats}; valid range is [1, inf]")
    device = getattr(args, "device", None) or ("cuda" if torch.cuda.is_available() else "cpu")
    results = []
    for m in models:
        r = bench_engine(
            m,
            samples=int(getattr(args, "samples", None) or 4096),
            batch_size=int(getattr(args, "batch_size", None) or 128),
            repeats=repeats,
            device=device,
        )
        print(format_result(r), flush=True)
        results.append(r)
    return results
