"""Batch norm at small batch sizes: the train/test mismatch and the lecture's two fixes.

In training a batch norm normalizes with the statistics of the current mini-batch; in
evaluation with running averages. With a batch of m examples the batch mean is off by
about ``sigma / sqrt(m)`` and the (biased) batch variance is ``(m - 1) / m`` of the
population's on average, so at m = 2 to 4 the network a test sees is not the one that
was trained (lecture 001, "Batch normalization layer": "for small batches, this is a big
test <-> train mismatch"). The slide's two solutions, both here:

- **Keep training time behavior**: :func:`keep_batch_statistics` makes every batch norm
  use the statistics of the batch it is given in evaluation too (running averages are
  left untouched), so test batches should have the training batch size.
- **Switch to test behavior and fine-tune**: :func:`freeze_batch_statistics` makes every
  batch norm use its running statistics in training too; training on from there
  fine-tunes the network to the fixed normalization it will be tested with.
  :func:`population_statistics` first replaces the running averages by the exact
  statistics of the training set (layer by layer, each layer's inputs computed with the
  already fixed statistics of the layers before it), so the switch starts from the
  statistics of the whole data set, not from an exponential average of noisy batches.

:func:`statistics_gap` and :func:`mode_gap` measure the mismatch: the batch statistics
against the running ones, and the loss and accuracy of the same network in training
mode (batch statistics, batches of m) and in evaluation mode. Batch renormalization
(:class:`optimlab.nn.norm.BatchRenorm`, the slide's next one) is the third way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from optimlab.errors import OptimlabError, check_range
from optimlab.nn.norm import BatchRenorm

_BN = (nn.modules.batchnorm._BatchNorm, BatchRenorm)


def batch_norms(model: nn.Module) -> list[nn.Module]:
    """The batch norms of ``model`` (torch's with running statistics, and BatchRenorm),
    in module order."""
    return [
        m
        for m in model.modules()
        if isinstance(m, BatchRenorm)
        or (isinstance(m, _BN) and getattr(m, "running_mean", None) is not None)
    ]


def _require(model: nn.Module) -> list[nn.Module]:
    norms = batch_norms(model)
    if not norms:
        raise OptimlabError("the model has no batch norm with running statistics")
    return norms


def _buffers(norm: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in norm.named_buffers(recurse=False)}


def _restore(norm: nn.Module, saved: dict[str, Tensor]) -> None:
    with torch.no_grad():
        for k, v in norm.named_buffers(recurse=False):
            v.copy_(saved[k])


def _set_running(norm: nn.Module, mean: Tensor, var: Tensor) -> None:
    with torch.no_grad():
        norm.running_mean.copy_(mean.to(norm.running_mean.dtype))
        if isinstance(norm, BatchRenorm):
            norm.running_std.copy_(torch.sqrt(var + norm.eps).to(norm.running_std.dtype))
        else:
            norm.running_var.copy_(var.to(norm.running_var.dtype))


def running_statistics(norm: nn.Module) -> tuple[Tensor, Tensor]:
    """(mean, variance) a batch norm uses in evaluation (BatchRenorm: std^2 - eps)."""
    if isinstance(norm, BatchRenorm):
        return norm.running_mean, norm.running_std**2 - norm.eps
    return norm.running_mean, norm.running_var


@torch.no_grad()
def population_statistics(
    model: nn.Module, x: Tensor, batch_size: int = 512, unbiased: bool = False
) -> list[tuple[Tensor, Tensor]]:
    """Set every batch norm's running statistics to the exact mean and variance of its
    inputs over all of ``x``, in float64; returns the (mean, var) pairs in module order.

    The layers are done in order, one pass over ``x`` each, every pass in evaluation
    mode: layer k's inputs are computed with the final statistics of layers 1..k-1, as
    evaluation will see them. With ``unbiased=False`` (the default) the variance is the
    data set's own (divided by N), so that evaluation on ``x`` then gives exactly what
    training mode gives with ``x`` as one batch. The model's mode is restored.
    """
    check_range("batch_size", batch_size, 1)
    norms = _require(model)
    if x.shape[0] < 2:
        raise OptimlabError(f"population statistics need at least 2 examples, got {x.shape[0]}")
    was = model.training
    model.eval()
    out = []
    try:
        for norm in norms:
            sums: list[Tensor] = []

            def collect(module: nn.Module, args: tuple, sums: list[Tensor] = sums) -> None:
                z = args[0].detach().to(torch.float64)
                dims = [0, *range(2, z.dim())]
                count = z.numel() // z.shape[1]
                sums.append(torch.stack([z.sum(dims), (z * z).sum(dims), z.new_full(
                    (z.shape[1],), float(count))]))  # fmt: skip

            handle = norm.register_forward_pre_hook(collect)
            try:
                for i in range(0, x.shape[0], batch_size):
                    model(x[i : i + batch_size])
            finally:
                handle.remove()
            total = torch.stack(sums).sum(0)
            n = total[2]
            mean = total[0] / n
            # Two-pass accuracy is not needed here: float64 sums of float32 activations.
            var = (total[1] / n - mean * mean).clamp(min=0.0)
            if unbiased:
                var = var * n / (n - 1)
            _set_running(norm, mean, var)
            out.append((mean, var))
    finally:
        model.train(was)
    return out


class BatchNormHooks:
    """Removable forward hooks installed by the functions below."""

    def __init__(self, handles: list) -> None:
        self.handles = handles

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []

    def __enter__(self) -> BatchNormHooks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _single_value(x: Tensor) -> bool:
    """True when each channel of ``x`` (N, C, ...) has one value: no batch statistics."""
    return x.numel() == x.shape[1]


def _mode_hooks(
    model: nn.Module, when: Callable[[nn.Module, Tensor], bool], training: bool
) -> BatchNormHooks:
    """Run each batch norm's forward with ``training`` set whenever ``when(norm)``; the
    running buffers are restored afterwards so the forward leaves them as they were."""
    handles = []
    for norm in _require(model):

        def before(module: nn.Module, args: tuple) -> None:
            if when(module, args[0]):
                # Only a training-mode forward changes the buffers; save them for it.
                buffers = _buffers(module) if training else None
                module._bn_saved = (module.training, buffers)
                module.training = training

        def after(module: nn.Module, args: tuple, output: Tensor) -> None:
            saved = module.__dict__.pop("_bn_saved", None)
            if saved is not None:
                module.training = saved[0]
                if saved[1] is not None:
                    _restore(module, saved[1])

        handles += [norm.register_forward_pre_hook(before), norm.register_forward_hook(after)]
    return BatchNormHooks(handles)


def keep_batch_statistics(model: nn.Module) -> BatchNormHooks:
    """Fix 1, "keep training time behavior": from now on every batch norm of ``model``
    normalizes with the statistics of the batch it is given even in evaluation mode; the
    running statistics are neither used nor changed there. A batch with one value per
    channel (a last batch of one example) has no statistics and is normalized with the
    running ones. Returns a handle whose ``remove()`` undoes it (it is also a context
    manager)."""
    return _mode_hooks(model, lambda m, x: not m.training and not _single_value(x), True)


def freeze_batch_statistics(model: nn.Module) -> BatchNormHooks:
    """Fix 2, "switch to test behavior and fine-tune": from now on every batch norm of
    ``model`` normalizes with its running statistics in training mode too, and leaves
    them unchanged; gradients flow through the fixed affine map. Returns a handle whose
    ``remove()`` undoes it (it is also a context manager)."""
    return _mode_hooks(model, lambda m, x: m.training, training=False)


@contextlib.contextmanager
def _train_mode_forward(model: nn.Module) -> Iterator[None]:
    """The model in training mode with every batch norm's buffers restored afterwards."""
    norms = _require(model)
    saved = [_buffers(n) for n in norms]
    was = model.training
    model.train()
    try:
        yield
    finally:
        model.train(was)
        for norm, s in zip(norms, saved, strict=True):
            _restore(norm, s)


@dataclass(frozen=True)
class StatisticsGap:
    """How far one batch norm's batch statistics fall from its running ones, averaged
    over mini-batches of ``batch_size`` and channels: ``mean_gap`` = mean abs(mu_B - mu) /
    sigma, ``var_ratio`` = mean sigma_B^2 / sigma^2 (biased batch variance)."""

    layer: int
    batch_size: int
    mean_gap: float
    var_ratio: float


@torch.no_grad()
def statistics_gap(
    model: nn.Module, x: Tensor, batch_size: int, seed: int = 0
) -> list[StatisticsGap]:
    """The batch statistics of each batch norm over ``x`` cut into random mini-batches of
    ``batch_size`` (the remainder dropped), in training mode as training sees them,
    against the running statistics. Running statistics are left unchanged."""
    check_range("batch_size", batch_size, 2)
    norms = _require(model)
    running = [tuple(t.detach().clone().double() for t in running_statistics(n)) for n in norms]
    gaps: list[list[Tensor]] = [[] for _ in norms]
    ratios: list[list[Tensor]] = [[] for _ in norms]
    handles = []
    for k, norm in enumerate(norms):

        def collect(module: nn.Module, args: tuple, k: int = k) -> None:
            z = args[0].detach().double()
            dims = [0, *range(2, z.dim())]
            mu, var = running[k]
            sigma = var.clamp(min=0.0).sqrt().clamp(min=1e-12)
            gaps[k].append(((z.mean(dims) - mu).abs() / sigma).mean())
            ratios[k].append((z.var(dims, unbiased=False) / sigma**2).mean())

        handles.append(norm.register_forward_pre_hook(collect))
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    try:
        with _train_mode_forward(model):
            for i in range(0, x.shape[0] - batch_size + 1, batch_size):
                model(x[order[i : i + batch_size].to(x.device)])
    finally:
        for h in handles:
            h.remove()
    if not gaps[0]:
        raise OptimlabError(f"batch_size {batch_size} exceeds the {x.shape[0]} examples given")
    return [
        StatisticsGap(k, batch_size, float(torch.stack(g).mean()), float(torch.stack(r).mean()))
        for k, (g, r) in enumerate(zip(gaps, ratios, strict=True))
    ]


@dataclass(frozen=True)
class ModeGap:
    """Loss and accuracy of one network with batch statistics (training mode, batches of
    ``batch_size``) and with running statistics (evaluation mode)."""

    batch_size: int
    train_mode_loss: float
    eval_mode_loss: float
    train_mode_accuracy: float
    eval_mode_accuracy: float


@torch.no_grad()
def mode_gap(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    batch_size: int,
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    seed: int = 0,
) -> ModeGap:
    """Mean loss (cross-entropy by default) and accuracy over ``x`` in random batches of
    ``batch_size`` (the remainder dropped), once in training mode and once in evaluation
    mode, on the same batches. Dropout layers, if any, are active in training mode too;
    running statistics are left unchanged."""
    check_range("batch_size", batch_size, 1)
    if batch_size > x.shape[0]:
        raise OptimlabError(f"batch_size {batch_size} exceeds the {x.shape[0]} examples given")
    loss_fn = loss_fn or nn.functional.cross_entropy
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    stop = x.shape[0] - x.shape[0] % batch_size
    batches = [order[i : i + batch_size].to(x.device) for i in range(0, stop, batch_size)]

    def measure() -> tuple[float, float]:
        loss, correct = 0.0, 0
        for idx in batches:
            out = model(x[idx])
            loss += float(loss_fn(out, y[idx])) * len(idx)
            correct += int((out.argmax(1) == y[idx]).sum())
        return loss / stop, correct / stop

    with _train_mode_forward(model):
        train_loss, train_acc = measure()
    was = model.training
    model.eval()
    try:
        eval_loss, eval_acc = measure()
    finally:
        model.train(was)
    return ModeGap(batch_size, train_loss, eval_loss, train_acc, eval_acc)
