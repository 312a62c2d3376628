"""``optimlab bench engine``: the trainer's epoch time against two plain loops.

Three contenders train the same model (same initial weights), optimizer and tensors,
epoch by epoch, interleaved (the order of the two plain loops rotates) so that machine
load hits them alike; the medians are compared:

* a minimal hand-written loop: a permutation, index the batch, forward, backward, step;
* the trainer, in one run (its running loss and train accuracy, loader, callbacks);
* a ``torch.utils.data.DataLoader`` over a ``TensorDataset`` (per-example indexing and
  collation, the way most tutorials feed in-memory data).

Goals: trainer / hand loop <= 1.05, DataLoader loop / trainer >= 1.5.
"""

from __future__ import annotations

import copy
import ctypes
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from optimlab.errors import OptimlabError
from optimlab.train.callback import Callback

# Hidden widths: "large" is DeepOBS' fmnist_mlp (compute-bound: any loop is within a few
# percent), "small" and "linear" (logistic regression) are where the loop's own overhead
# and the data feeding show.
MODELS: dict[str, tuple[int, ...]] = {"large": (1000, 500, 100), "small": (64,), "linear": ()}
IN_FEATURES, CLASSES = 784, 10


def steady_allocator() -> bool:
    """Keep freed memory in the process (glibc only); return whether it was applied.

    glibc returns large freed blocks to the system and maps fresh, zeroed pages for the
    next ones, so each loop's time would depend on how the others left the heap (page
    faults differing by 50x between runs of the same loop). Raising the mmap and trim
    thresholds removes that noise, for all contenders alike.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(
            libc.mallopt(m_trim_threshold, 1 << 30)
        )
    except (OSError, AttributeError):
        return False


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


class _Interleave(Callback):
    """Times the trainer's epochs (from ``on_epoch_begin`` to ``on_epoch_end``) and, after
    each, runs one epoch of every other contender, in an order that rotates."""

    def __init__(self, others: dict[str, Callable[[int], None]], device: torch.device) -> None:
        super().__init__()
        self.others, self.device = others, device
        self.wall: dict[str, list[float]] = {name: [] for name in ("trainer", *others)}
        self.cpu: dict[str, list[float]] = {name: [] for name in ("trainer", *others)}
        self._t0 = self._c0 = 0.0

    def _record(self, name: str, t0: float, c0: float, epoch: int) -> None:
        _sync(self.device)
        if epoch:  # epoch 0 warms up and is not counted
            self.wall[name].append(time.perf_counter() - t0)
            self.cpu[name].append(time.process_time() - c0)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        _sync(self.device)
        self._t0, self._c0 = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self._record("trainer", self._t0, self._c0, epoch)
        names = list(self.others)
        for name in names[epoch % len(names) :] + names[: epoch % len(names)]:
            _sync(self.device)
            t0, c0 = time.perf_counter(), time.process_time()
            self.others[name](epoch)
            self._record(name, t0, c0, epoch)


def bench_engine(
    model: str = "large",
    *,
    samples: int = 4096,
    batch_size: int = 128,
    repeats: int = 7,
    device: str = "cpu",
    seed: int = 0,
) -> dict[str, Any]:
    """Median seconds per epoch of each contender, and the two ratios.

    The trainer runs as one run of ``repeats + 1`` epochs (as it is used), the two loops
    one epoch at a time in between its epochs; the first epoch of each is not counted.
    """
    if model not in MODELS:
        raise OptimlabError(f"unknown model {model!r}; valid models: {', '.join(MODELS)}")
    from optimlab.train.trainer import fit

    steady = steady_allocator()
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, IN_FEATURES, generator=gen).to(dev)
    y = torch.randint(0, CLASSES, (samples,), generator=gen).to(dev)
    base = _mlp(MODELS[model], seed).to(dev)

    def fresh() -> tuple[nn.Module, torch.optim.Optimizer]:
        m = copy.deepcopy(base)
        return m, torch.optim.Adam(m.parameters(), lr=1e-3)

    dl_gen = torch.Generator().manual_seed(seed)
    dataset = torch.utils.data.TensorDataset(x.cpu(), y.cpu())
    dl = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=dl_gen)
    hand_m, hand_o = fresh()
    dl_m, dl_o = fresh()
    interleave = _Interleave(
        {
            "hand": lambda e: _hand_epoch(hand_m, hand_o, x, y, batch_size, e, seed),
            "dataloader": lambda e: _dataloader_epoch(dl_m, dl_o, dl, dev),
        },
        dev,
    )
    model_t, opt_t = fresh()
    fit(
        (model_t, nn.functional.cross_entropy, {"accuracy": _accuracy}, {"train": (x, y)}),
        opt_t,
        epochs=repeats + 1,
        batch_size=batch_size,
        seed=seed,
        callbacks=[interleave],
    )
    # Wall time is what a user waits for; CPU time of this process is also kept because
    # on a shared machine it is far less disturbed by other processes (with one thread
    # it is the work done; with several it also counts threads spinning while waiting).
    wall, cpu = interleave.wall, interleave.cpu
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
        "steady_allocator": steady,
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
        f"{r['repeats']} interleaved epochs (wall / process CPU time)"
        + ("; glibc malloc thresholds raised" if r["steady_allocator"] else ""),
        f"  hand-written loop  {s['hand'] * 1e3:8.1f} / {c['hand'] * 1e3:8.1f} ms per epoch",
        f"  trainer            {s['trainer'] * 1e3:8.1f} / {c['trainer'] * 1e3:8.1f} ms per epoch"
        f"   {r['trainer_over_hand']:.3f}x / {r['cpu_trainer_over_hand']:.3f}x the hand loop"
        " (goal <= 1.05x)",
        f"  DataLoader loop    {s['dataloader'] * 1e3:8.1f} / {c['dataloader'] * 1e3:8.1f} ms "
        f"per epoch   trainer {r['dataloader_over_trainer']:.2f}x / "
        f"{r['cpu_dataloader_over_trainer']:.2f}x faster (goal >= 1.5x)",
    ]
    return "\n".join(lines)


def run_engine_bench(
    model: str = "both",
    *,
    repeats: int = 7,
    samples: int = 4096,
    batch_size: int = 128,
    device: str | None = None,
) -> list[dict[str, Any]]:
    """Entry point of ``optimlab bench engine``; prints one block per model size.

    ``model`` is large, small, linear, or both/all; ``device`` defaults to CUDA where
    present, else the CPU.
    """
    models = list(MODELS) if model in ("both", "all") else [model]
    for m in models:
        if m not in MODELS:
            raise OptimlabError(f"unknown model {m!r}; valid models: {', '.join(MODELS)}, all")
    if repeats < 1:
        raise OptimlabError(f"invalid repeats: {repeats}; valid range is [1, inf]")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    results = []
    for m in models:
        r = bench_engine(m, samples=samples, batch_size=batch_size, repeats=repeats, device=device)
        print(format_result(r), flush=True)
        results.append(r)
    return results
