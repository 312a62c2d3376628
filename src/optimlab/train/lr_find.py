"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural
Networks", WACV, section 3.3).

Train for a short while with a learning rate that grows every step from ``min_lr`` to
``max_lr`` and watch the loss: it stays flat while the LR is too small, falls once the LR is
large enough to make progress, bottoms out, then turns up and explodes. The curve tells where
a constant LR should sit (the steepest descent) and which interval a cyclical schedule
should sweep (``base_lr`` to ``max_lr``).

The LR at step ``i`` of ``n`` (``i = 0 .. n-1``) is

    exp:     lr_i = min_lr * (max_lr / min_lr) ** (i / (n - 1))
    linear:  lr_i = min_lr + (max_lr - min_lr) * i / (n - 1)

and the noisy mini-batch losses ``l_1, l_2, ...`` are smoothed by an exponential moving
average with bias correction (as Adam corrects its moments, Kingma & Ba 2015):

    a_t = beta * a_{t-1} + (1 - beta) * l_t,   a_0 = 0,   s_t = a_t / (1 - beta**t).

The average spans roughly the last ``1 / (1 - beta)`` steps (50 at the default 0.98). With
the default 100 steps over eight decades that is several decades of LR, so the smoothed
curve, and every reading taken from it, lags towards larger LRs: on digits_mlp, 300 steps put
the suggestion next to the best LR of a 5-epoch grid search, 100 steps about 5x above it
(Adam). Use more steps or a smaller ``smoothing`` where a batch is cheap.

The run stops early once ``s_t`` is not finite or exceeds ``diverge_factor`` times its best
value so far. The model's parameters and buffers, their gradients, the optimizer's state and
param groups, the model's train/eval mode and the global torch RNG are restored afterwards:
the test leaves nothing trained.

:class:`LRFindLog` keeps the measured points in a JSON file as the test goes (rewritten
atomically every few points, finished with the suggestion), so that a test stopped by a
kill leaves every point up to its last write.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from optimlab.errors import OptimlabError
from optimlab.schedules import _checks

MODES = ("exp", "linear")

# Fractions of the smoothed loss's total drop that mark the bounds (see ``suggest``).
BASE_DROP = 0.1
MAX_DROP = 0.9
# Smith's rule of thumb (section 3.3): base_lr = max_lr / 3 or / 4.
BASE_DIVISOR = 4.0
# A fall of less than this fraction of the starting loss counts as no fall at all.
MIN_RELATIVE_DROP = 0.01

__all__ = [
    "MODES",
    "LRFindLog",
    "LRFindResult",
    "check_args",
    "lr_find",
    "lr_sequence",
    "smooth",
    "suggest",
]


@dataclass(frozen=True)
class LRFindResult:
    """What a range test measured and what it suggests.

    Attributes:
        lrs: the LR of each recorded step.
        losses: the raw mini-batch loss of each step, computed before that step's update
            (as fastai and pytorch-lr-finder record it), so ``losses[i]`` reflects the
            updates made with ``lrs[:i]``.
        smoothed: the bias-corrected moving average of ``losses``.
        suggested_lr: the LR at the steepest descent of the smoothed loss; NaN when the
            loss never fell (``note`` says why).
        bounds: ``(base_lr, max_lr)`` for a cyclical schedule; NaNs as above.
        stopped_early: True when the loss diverged; the last recorded point is the one
            that triggered the stop (and is left out of the suggestion).
        note: empty, or why no suggestion could be made.
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggested_lr: float
    bounds: tuple[float, float]
    stopped_early: bool
    note: str = ""

    def plot(self, path: Any) -> Any:
        """``optimlab.viz.lr_find.plot_lr_find(self, path)``."""
        from optimlab.viz.lr_find import plot_lr_find  # matplotlib only when drawing

        return plot_lr_find(self, path)


def check_args(
    min_lr: Any,
    max_lr: Any,
    steps: Any,
    mode: Any,
    smoothing: Any = 0.98,
    diverge_factor: Any = 4.0,
    *,
    option_names: bool = False,
) -> tuple[float, float, int, str, float, float]:
    """Validate the test's settings; raise ``OptimlabError`` naming the bad one.

    With ``option_names`` the errors name command-line options (``--min-lr``) instead of
    the Python arguments (``min_lr``).
    """

    def name(arg: str) -> str:
        return "--" + arg.replace("_", "-") if option_names else arg

    lo = _checks.real(name("min_lr"), min_lr, 0, None, low_open=True)
    hi = _checks.real(name("max_lr"), max_lr, lo, None, low_open=True)
    n = _checks.integer(name("steps"), steps, 2)
    m = _checks.choice(name("mode"), mode, MODES)
    beta = _checks.real(name("smoothing"), smoothing, 0, 1, high_open=True)
    factor = _checks.real(name("diverge_factor"), diverge_factor, 1, None, low_open=True)
    return lo, hi, n, m, beta, factor


def lr_sequence(min_lr: float, max_lr: float, steps: int, mode: str = "exp") -> list[float]:
    """The ``steps`` learning rates of the test, from ``min_lr`` to ``max_lr`` inclusive."""
    lo, hi, n, m, _, _ = check_args(min_lr, max_lr, steps, mode)
    if m == "exp":
        return [lo * (hi / lo) ** (i / (n - 1)) for i in range(n)]
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def smooth(losses: Iterable[float], beta: float = 0.98) -> list[float]:
    """The bias-corrected exponential moving average ``s_t = a_t / (1 - beta**t)``."""
    beta = _checks.real("smoothing", beta, 0, 1, high_open=True)
    avg, out = 0.0, []
    for t, loss in enumerate(losses, start=1):
        avg = beta * avg + (1.0 - beta) * float(loss)
        out.append(avg / (1.0 - beta**t))
    return out


def _diverged(value: float, best: float, factor: float) -> bool:
    """``value > factor * best``, written ``best + (factor - 1) * |best|`` so that it also
    means "worse by (factor - 1) times the best's size" for a loss that can be negative."""
    return not math.isfinite(value) or value > best + (factor - 1.0) * abs(best)


def suggest(lrs: list[float], smoothed: list[float]) -> tuple[float, tuple[float, float], str]:
    """``(suggested_lr, (base_lr, max_lr), note)`` read off a smoothed range-test curve.

    Let ``s_min`` be the minimum of the smoothed loss, ``s_top`` its maximum before that
    minimum and ``D = s_top - s_min`` the total drop. Then

    * ``max_lr`` is the first LR after ``s_top`` where the loss has fallen by 90% of ``D``
      (it "bottoms out": larger LRs buy at most the last tenth of the drop while nearing
      divergence). ``base_lr`` is where the loss has fallen by 10% of ``D`` for good (it
      "starts to fall clearly"): the first point of the last run of points below that level
      that reaches ``max_lr``, so that noise on the plateau does not count as the start of
      the fall. When both fall on the same step (an abrupt drop),
      ``base_lr = max(max_lr / 4, lrs[0])``, Smith's rule of thumb. So
      ``lrs[0] <= base_lr < max_lr <= lrs[-1]``.
    * ``suggested_lr`` is the LR of the most negative ``d s / d log(lr)`` (``np.gradient``,
      which handles the uneven spacing of a linear sweep) up to the minimum, leaving out
      the first ``min(10, n // 10)`` and the last ``min(5, n // 20)`` points, where the
      average is still settling or already swamped by the divergence (if that leaves
      fewer than two points, the whole stretch from ``s_top`` to ``s_min`` is searched).

    Without a fall of at least 1% of ``|s_top|`` there is nothing to read: NaNs and a note.
    """
    if len(lrs) != len(smoothed):
        raise OptimlabError(f"lrs has {len(lrs)} values but smoothed has {len(smoothed)}")
    nan = (math.nan, (math.nan, math.nan))
    n = len(smoothed)
    if n < 3:
        return (*nan, f"only {n} usable point(s); use more steps or a lower min_lr")
    s = np.asarray(smoothed, dtype=np.float64)
    lr = np.asarray(lrs, dtype=np.float64)
    if not np.all(np.isfinite(s)):
        return (*nan, "the smoothed loss is not finite")
    i_min = int(np.argmin(s))
    i_top = int(np.argmax(s[: i_min + 1]))
    drop = s[i_top] - s[i_min]
    if drop <= MIN_RELATIVE_DROP * abs(s[i_top]) or drop <= 0:
        return (*nan, "the loss did not fall; lower min_lr or raise max_lr")
    stretch = s[i_top : i_min + 1]
    i_max = i_top + int(np.argmax(stretch <= s[i_top] - MAX_DROP * drop))
    above = np.flatnonzero(s[: i_max + 1] > s[i_top] - BASE_DROP * drop)
    i_base = int(above[-1]) + 1  # the first point of the last run below the 10% level
    max_lr = float(lr[i_max])
    base_lr = float(lr[i_base]) if i_base < i_max else max(max_lr / BASE_DIVISOR, float(lr[0]))

    grad = np.gradient(s, np.log(lr))
    lo, hi = min(10, n // 10), min(i_min, n - 1 - min(5, n // 20))
    if hi - lo < 1:
        lo, hi = i_top, i_min
    best = lo + int(np.argmin(grad[lo : hi + 1]))
    return float(lr[best]), (base_lr, max_lr), ""


def _cycle(batches: Iterable[Any]) -> Iterator[Any]:
    """Endless batches: re-iterate ``batches`` (a new epoch for a loader) when it runs out;
    a one-shot iterator is replayed from the items it gave."""
    first = iter(batches)
    one_shot = first is batches
    seen: list[Any] = []
    for item in first:
        if one_shot:
            seen.append(item)
        yield item
    while True:
        source = iter(seen) if one_shot else iter(batches)
        empty = True
        for item in source:
            empty = False
            yield item
        if empty:
            raise OptimlabError("invalid batches: the iterable gave no (x, y) batch")


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        if isinstance(group["lr"], Tensor):
            group["lr"].fill_(lr)  # keep the tensor (compiled steps may hold it)
        else:
            group["lr"] = lr


def _restore_value(original: Any, saved: Any) -> Any:
    """``saved``, written into ``original`` when both are tensors (so that anything holding
    the original tensor, e.g. a flat buffer it views or a compiled step, sees the value)."""
    if isinstance(original, Tensor) and isinstance(saved, Tensor):
        if original.shape == saved.shape and original.dtype == saved.dtype:
            with torch.no_grad():
                original.copy_(saved)
            return original
    return saved


class _Snapshot:
    """Everything the test changes, taken before it and put back after it.

    The model's parameters and buffers (by name, non-persistent buffers included) and their
    gradients are cloned; the optimizer's per-parameter state and param-group entries are
    deep-copied. On restore, values are written back into the very tensors and dicts the
    model and optimizer held before, so nothing that refers to them goes stale; state the
    test created (a fresh optimizer's moments) is removed.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.model, self.optimizer = model, optimizer
        self.tensors = {
            **{f"p:{k}": v.detach().clone() for k, v in model.named_parameters()},
            **{f"b:{k}": v.detach().clone() for k, v in model.named_buffers()},
        }
        self.grads = {
            k: (None if p.grad is None else p.grad.detach().clone())
            for k, p in model.named_parameters()
        }
        self.training = {k: m.training for k, m in model.named_modules()}
        state = optimizer.state
        self.state_objects = {k: (dict(v) if isinstance(v, dict) else v) for k, v in state.items()}
        self.state_values = {k: copy.deepcopy(v) for k, v in state.items()}
        self.groups = list(optimizer.param_groups)
        self.group_objects = [dict(g) for g in self.groups]
        self.group_values = [
            copy.deepcopy({k: v for k, v in g.items() if k != "params"}) for g in self.groups
        ]

    def restore(self) -> None:
        model, optimizer = self.model, self.optimizer
        current = {
            **{f"p:{k}": v for k, v in model.named_parameters()},
            **{f"b:{k}": v for k, v in model.named_buffers()},
        }
        with torch.no_grad():
            for key, value in self.tensors.items():
                current[key].copy_(value)
        for name, p in model.named_parameters():
            p.grad = self.grads[name]
        for name, m in model.named_modules():
            m.training = self.training[name]

        optimizer.state.clear()
        for key, saved in self.state_values.items():
            original = self.state_objects[key]
            if isinstance(original, dict):
                entries = {k: _restore_value(original.get(k), v) for k, v in saved.items()}
                original.clear()
                original.update(entries)
                saved = original
            optimizer.state[key] = saved
        optimizer.param_groups[:] = self.groups
        for group, objects, values in zip(self.groups, self.group_objects, self.group_values):
            group.clear()
            for key, original in objects.items():  # the original key order
                group[key] = original if key == "params" else _restore_value(original, values[key])


def lr_find(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[Any, Any], Tensor],
    batches: Iterable[tuple[Any, Any]],
    *,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    steps: int = 100,
    mode: str = "exp",
    smoothing: float = 0.98,
    diverge_factor: float = 4.0,
    on_point: Callable[[float, float, float], None] | None = None,
) -> LRFindResult:
    """Run the LR range test and restore everything it changed.

    Args:
        model: the module; ``loss_fn(model(x), y)`` must give a scalar loss.
        optimizer: any torch optimizer over the model's parameters; every param group's
            ``lr`` is overwritten each step.
        batches: an iterable of ``(x, y)``, re-iterated (cycled) if shorter than ``steps``.
        min_lr, max_lr: the first and last LR, ``0 < min_lr < max_lr``.
        steps: number of steps (>= 2) if the loss does not diverge first.
        mode: "exp" (geometric sweep, the usual choice) or "linear" (Smith's form).
        smoothing: ``beta`` of the moving average, in [0, 1) (0: no smoothing).
        diverge_factor: stop once the smoothed loss exceeds this multiple (> 1) of its best.
        on_point: called with ``(lr, loss, smoothed)`` after each recorded point (e.g.
            :meth:`LRFindLog.add`, which saves the points as they come).

    Returns:
        an ``LRFindResult``; ``suggest`` documents how its suggestion and bounds are read.
    """
    lo, hi, n, m, beta, factor = check_args(min_lr, max_lr, steps, mode, smoothing, diverge_factor)
    schedule = lr_sequence(lo, hi, n, m)
    params = list(model.parameters())
    snapshot = _Snapshot(model, optimizer)
    devices = sorted({p.device.index or 0 for p in params if p.device.type == "cuda"})

    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    stopped = False
    try:
        with torch.random.fork_rng(devices=devices):
            model.train()
            avg, best = 0.0, math.inf
            stream = _cycle(batches)
            for t, lr in enumerate(schedule, start=1):
                x, y = next(stream)
                _set_lr(optimizer, lr)
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(x), y)
                value = float(loss.detach())
                avg = beta * avg + (1.0 - beta) * value
                s_t = avg / (1.0 - beta**t)
                lrs.append(lr)
                losses.append(value)
                smoothed.append(s_t)
                if on_point is not None:
                    on_point(lr, value, s_t)
                if _diverged(s_t, best, factor):
                    stopped = True
                    break
                best = min(best, s_t)
                loss.backward()
                optimizer.step()
    finally:
        snapshot.restore()

    used = len(lrs) - 1 if stopped else len(lrs)
    suggested, bounds, note = suggest(lrs[:used], smoothed[:used])
    return LRFindResult(lrs, losses, smoothed, suggested, bounds, stopped, note)


def _number(value: float) -> float | None:
    """JSON has no NaN or infinity: a non-finite value is written as null."""
    return float(value) if math.isfinite(value) else None


class LRFindLog:
    """The points of a range test in a JSON file, saved as they are measured.

    ``add`` (pass it as ``lr_find``'s ``on_point``) records a point and rewrites the file
    every ``every`` points; ``finish`` writes the whole result. Each write replaces the
    file atomically, so it always holds a complete JSON document: ``settings`` (given
    by the caller), ``finished`` (false until ``finish``), the lists ``lr``, ``loss`` and
    ``smoothed`` (non-finite values as null) and, once finished, ``stopped_early``,
    ``suggested_lr``, ``bounds`` and ``note``. A killed test loses at most the points
    since the last write.
    """

    def __init__(self, path: str | os.PathLike[str], settings: dict[str, Any], every: int = 10):
        self.path = Path(path)
        self.settings = dict(settings)
        self.every = _checks.integer("every", every, 1)
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []

    def add(self, lr: float, loss: float, smoothed: float) -> None:
        """Record one point; save every ``every`` points."""
        self.lrs.append(lr)
        self.losses.append(loss)
        self.smoothed.append(smoothed)
        if len(self.lrs) % self.every == 0:
            self._write({"finished": False}, durable=False)

    def finish(self, result: LRFindResult) -> Path:
        """Write the complete result (its points replace those recorded)."""
        self.lrs, self.losses, self.smoothed = result.lrs, result.losses, result.smoothed
        done = {
            "finished": True,
            "stopped_early": result.stopped_early,
            "suggested_lr": _number(result.suggested_lr),
            "bounds": [_number(b) for b in result.bounds],
            "note": result.note,
        }
        return self._write(done, durable=True)

    def _write(self, state: dict[str, Any], durable: bool) -> Path:
        from optimlab.io import atomic_write_text

        data = {
            "settings": self.settings,
            **state,
            "lr": [_number(v) for v in self.lrs],
            "loss": [_number(v) for v in self.losses],
            "smoothed": [_number(v) for v in self.smoothed],
        }
        # the partial writes skip the fsync: a killed process still never leaves a
        # half-written file, and they come every few steps
        return atomic_write_text(self.path, json.dumps(data, indent=1) + "\n", durable=durable)
