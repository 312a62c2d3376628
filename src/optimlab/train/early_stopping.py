"""Early stopping with Keras' semantics."""

from __future__ import annotations

from typing import Any

from optimlab.errors import check_range
from optimlab.train.callback import Callback
from optimlab.train.monitor import Improvement, MonitorReader, resolve_mode


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs.

    Follows Keras' ``EarlyStopping``:

    * an epoch improves when ``current < best - min_delta`` (mode "min"; absolute
      ``min_delta``), or ``current > best + min_delta`` (mode "max"); mode "auto" reads
      the direction from the name (losses and errors down, accuracies up).
      ``threshold_mode="rel"`` uses torch's relative form ``best * (1 -/+ min_delta)``;
    * every monitored epoch adds one to a wait counter; an improvement resets it to 0,
      but only if the value also beats ``baseline`` (when one is given); training stops
      once the counter reaches ``patience`` (never after epoch 0);
    * epochs before ``start_from_epoch`` are ignored;
    * with ``restore_best_weights`` the weights of the best epoch are loaded at the end of
      training, also when the run ended without an early stop (Keras 3 behaviour).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
        *,
        threshold_mode: str = "abs",
        verbose: bool = False,
    ) -> None:
        super().__init__()
        check_range("patience", patience, 0)
        check_range("start_from_epoch", start_from_epoch, 0)
        self.monitor = monitor
        self.mode = resolve_mode(monitor, mode)
        self.improved = Improvement(self.mode, abs(min_delta), threshold_mode)
        self.patience = int(patience)
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = int(start_from_epoch)
        self.verbose = verbose
        self._read = MonitorReader("EarlyStopping", monitor)
        self._reset()

    def _reset(self) -> None:
        self.wait = 0
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.best_weights: dict[str, Any] | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._reset()

    def _snapshot(self) -> dict[str, Any]:
        return {k: v.detach().clone() for k, v in self.trainer.model.state_dict().items()}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        current = self._read(logs)
        if current is None:
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # Until something improves, the first monitored weights are the best known.
            self.best_weights, self.best_epoch = self._snapshot(), epoch
        self.wait += 1
        if self.improved(current, self.best):
            self.best, self.best_epoch = float(current), epoch
            if self.restore_best_weights:
                self.best_weights = self._snapshot()
            if self.baseline is None or self.improved(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.trainer.stop_training = True
            if self.verbose:
                print(f"early stopping at epoch {epoch + 1}: {self.monitor} did not improve")

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            self.trainer.model.load_state_dict(self.best_weights)
            self.trainer.restored_epoch = self.best_epoch + 1  # counted from 1, as records
            if self.verbose:
                print(f"restored the weights of epoch {self.best_epoch + 1}")

    def state_dict(self) -> dict[str, Any]:
        return {
            "wait": self.wait,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.wait = state["wait"]
        self.best = state["best"]
        self.best_epoch = state["best_epoch"]
        self.stopped_epoch = state["stopped_epoch"]
        self.best_weights = state["best_weights"]
