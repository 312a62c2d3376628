"""Batch norm at small batch sizes: the train/test mismatch and its fixes, on digits.

One MLP with batch norm after each hidden layer (64-64-64-10) trains with SGD and
momentum on scikit-learn's digits at each batch size, for the same number of epochs.
Then, on the test set (:mod:`optimlab.nn.bn_stats`):

- ``stat_gap``: mean abs(mu_B - mu) / sigma of the first batch norm's batch statistics over
  test batches of the training batch size, against its running statistics;
- ``train_mode`` / ``running``: the loss and accuracy with batch statistics (test
  batches of the training size; the lecture's fix "keep training time behavior") and
  with the running averages training left (plain evaluation);
- ``population``: evaluation after the running averages are replaced by the exact
  statistics of the training set;
- ``finetune``: the lecture's fix "switch to test behavior and fine-tune": population
  statistics, frozen, then ``finetune_epochs`` more epochs at a tenth of the learning rate;
- ``renorm``: the same training with :class:`optimlab.nn.norm.BatchRenorm` in place of
  batch norm (rmax 3, dmax 5, relaxed over the first epoch), evaluated plainly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from optimlab.nn import bn_stats
from optimlab.nn.norm import BatchRenorm, Relax


def model(norm: str, seed: int, steps_per_epoch: int) -> nn.Sequential:
    """The 64-64-64-10 MLP with a batch norm (``"batch"``) or batch renorm after each
    hidden Linear, float64."""
    torch.manual_seed(seed)

    def norm_layer(c: int) -> nn.Module:
        if norm == "batch":
            return nn.BatchNorm1d(c)
        # Ioffe 2017 relaxes over thousands of steps; here over the first epoch.
        return BatchRenorm(
            c, rmax=Relax(1.0, 3.0, 0, steps_per_epoch), dmax=Relax(0.0, 5.0, 0, steps_per_epoch)
        )

    return nn.Sequential(
        nn.Linear(64, 64), norm_layer(64), nn.ReLU(), nn.Linear(64, 64), norm_layer(64),
        nn.ReLU(), nn.Linear(64, 10),
    ).double()  # fmt: skip


def _train(net: nn.Module, x: Tensor, y: Tensor, batch: int, epochs: int, lr: float,
           seed: int) -> None:  # fmt: skip
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    stop = x.shape[0] - x.shape[0] % batch  # full batches only (batch norm needs >= 2)
    for _ in range(epochs):
        order = torch.randperm(x.shape[0], generator=gen)[:stop]
        for idx in order.split(batch):
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()


@torch.no_grad()
def _evaluate(net: nn.Module, x: Tensor, y: Tensor) -> dict[str, float]:
    net.eval()
    out = net(x)
    loss = float(nn.functional.cross_entropy(out, y))
    return {"loss": loss, "accuracy": float((out.argmax(1) == y).double().mean())}


@dataclass(frozen=True)
class Row:
    """The numbers of one batch size (see the module docstring)."""

    batch_size: int
    stat_gap: float
    var_ratio: float
    train_mode: dict[str, float]
    running: dict[str, float]
    population: dict[str, float]
    finetune: dict[str, float]
    renorm: dict[str, float]


def run_batch(splits: Any, batch: int, epochs: int, lr: float, finetune_epochs: int,
              seed: int) -> Row:  # fmt: skip
    """Train and measure at one batch size."""
    x, y = splits.train.x.double().flatten(1), splits.train.y
    xt, yt = splits.test.x.double().flatten(1), splits.test.y
    steps = x.shape[0] // batch
    net = model("batch", seed, steps)
    _train(net, x, y, batch, epochs, lr, seed)
    gap = bn_stats.statistics_gap(net, xt, batch, seed=seed)[0]
    modes = bn_stats.mode_gap(net, xt, yt, batch, seed=seed)
    running = _evaluate(net, xt, yt)
    bn_stats.population_statistics(net, x)
    population = _evaluate(net, xt, yt)
    with bn_stats.freeze_batch_statistics(net):
        _train(net, x, y, batch, finetune_epochs, lr / 10, seed + 1)
    finetune = _evaluate(net, xt, yt)
    renorm_net = model("renorm", seed, steps)
    _train(renorm_net, x, y, batch, epochs, lr, seed)
    return Row(
        batch_size=batch, stat_gap=gap.mean_gap, var_ratio=gap.var_ratio,
        train_mode={"loss": modes.train_mode_loss, "accuracy": modes.train_mode_accuracy},
        running=running, population=population, finetune=finetune,
        renorm=_evaluate(renorm_net, xt, yt),
    )  # fmt: skip


def run(batch_sizes: tuple[int, ...] = (2, 4, 64), epochs: int = 3, lr: float = 0.01,
        finetune_epochs: int = 1, seed: int = 0) -> list[dict[str, Any]]:  # fmt: skip
    """Every batch size's :class:`Row`, as plain dicts."""
    from optimlab.data import load

    splits = load("digits", seed=seed, dtype=torch.float64)
    return [asdict(run_batch(splits, b, epochs, lr, finetune_epochs, seed)) for b in batch_sizes]
