"""Reduce the learning rate when a metric stops improving, with Keras' semantics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optimlab.errors import OptimlabError, check_range
from optimlab.train.callback import Callback
from optimlab.train.monitor import Improvement, MonitorReader, resolve_mode


class ReduceLROnPlateau(Callback):
    """Multiply every param group's ``lr`` by ``factor`` after ``patience`` epochs
    without improvement of ``monitor``.

    Follows Keras' ``ReduceLROnPlateau``: improvement is ``current < best - min_delta``
    (absolute ``min_delta``; ``threshold_mode="rel"`` gives torch's
    ``best * (1 - min_delta)``). Each epoch: while cooling down the counter of epochs
    without improvement stays at 0 and the cooldown shrinks by one; an improvement resets
    the counter; otherwise, outside cooldown, the counter grows and on reaching
    ``patience`` the LR becomes ``max(lr * factor, min_lr)`` (groups already at
    ``min_lr`` are left alone), after which ``cooldown`` epochs pass before counting again.

    Note Keras' ``patience`` is torch's plus one: Keras reduces on the ``patience``-th bad
    epoch, torch's scheduler on the one after. A per-step LR schedule writing ``lr``
    every step overrides what this callback sets.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float | Sequence[float] = 0.0,
        *,
        threshold_mode: str = "abs",
        verbose: bool = False,
    ) -> None:
        super().__init__()
        check_range("factor", factor, 0.0, 1.0, low_open=True, high_open=True)
        check_range("patience", patience, 0)
        check_range("cooldown", cooldown, 0)
        for v in min_lr if isinstance(min_lr, Sequence) else [min_lr]:
            check_range("min_lr", v, 0.0)
        self.monitor = monitor
        self.mode = resolve_mode(monitor, mode)
        self.improved = Improvement(self.mode, min_delta, threshold_mode)
        self.factor, self.patience, self.cooldown = float(factor), int(patience), int(cooldown)
        self.min_lr = min_lr
        self.verbose = verbose
        self._read = MonitorReader("ReduceLROnPlateau", monitor)
        self._reset()

    def _reset(self) -> None:
        self.wait = 0
        self.cooldown_counter = 0
        self.best: float | None = None
        self.reductions: list[int] = []

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._reset()

    def _min_lrs(self, groups: list[dict[str, Any]]) -> list[float]:
        if isinstance(self.min_lr, Sequence):
            if len(self.min_lr) != len(groups):
                raise OptimlabError(
                    f"min_lr has {len(self.min_lr)} values but the optimizer has "
                    f"{len(groups)} param groups"
                )
            return [float(v) for v in self.min_lr]
        return [float(self.min_lr)] * len(groups)

    def _reduce(self) -> bool:
        groups = self.trainer.optimizer.param_groups
        changed = False
        for group, floor in zip(groups, self._min_lrs(groups), strict=True):
            if callable(group["lr"]) and not hasattr(group["lr"], "fill_"):
                raise OptimlabError(
                    "ReduceLROnPlateau needs a numeric lr, but this optimizer's lr is a "
                    "schedule; use one or the other"
                )
            old = float(group["lr"])
            if old > floor:
                new = max(old * self.factor, floor)
                if hasattr(group["lr"], "fill_"):  # an LR held as a 0-d tensor
                    group["lr"].fill_(new)
                else:
                    group["lr"] = new
                changed = True
        return changed

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        current = self._read(logs)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.improved(current, self.best):
            self.best = float(current)
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience and self._reduce():
                self.cooldown_counter = self.cooldown
                self.wait = 0
                self.reductions.append(epoch)
                if self.verbose:
                    lrs = [float(g["lr"]) for g in self.trainer.optimizer.param_groups]
                    print(f"epoch {epoch}: reducing lr to {', '.join(f'{v:.3g}' for v in lrs)}")

    def state_dict(self) -> dict[str, Any]:
        return {
            "wait": self.wait,
            "cooldown_counter": self.cooldown_counter,
            "best": self.best,
            "reductions": list(self.reductions),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.wait = state["wait"]
        self.cooldown_counter = state["cooldown_counter"]
        self.best = state["best"]
        self.reductions = list(state["reductions"])
