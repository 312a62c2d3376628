"""The two fixes of batch norm's train/test mismatch at small batch sizes, as callbacks.

- :class:`KeepBatchStatistics` (option ``bn_test_mode = "batch"``): evaluation uses the
  statistics of each evaluated batch, as training does (the trainer's evaluation batch
  size then matters: it is the test-time batch). The running averages are not used.
- :class:`FineTuneFrozen` (option ``bn_finetune = F``): after a fraction F of the step
  budget (0 < F < 1), every batch norm's running statistics are set to the exact
  statistics of the training set and frozen; training goes on with that fixed
  normalization.

Both wrap :mod:`optimlab.nn.bn_stats`. The training set's statistics are those of its
stored inputs (after preprocessing, before augmentation, which draws anew each batch). A
resumed run reinstalls the frozen statistics from the checkpointed model (the buffers are
part of it).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from optimlab.errors import check_range
from optimlab.nn import bn_stats
from optimlab.train.callback import Callback


class KeepBatchStatistics(Callback):
    """Evaluate every batch norm with batch statistics from the start of training on."""

    def __init__(self) -> None:
        super().__init__()
        self.handle: Any = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.handle is None:
            self.handle = bn_stats.keep_batch_statistics(self.trainer.model)


class FineTuneFrozen(Callback):
    """From step ``start`` on: population statistics of ``train_x``, frozen.

    ``start`` counts optimizer steps; the switch happens after that step, so the rest of
    training is fine-tuning with the test-time normalization.
    """

    def __init__(self, start: int, train_x: Tensor, batch_size: int = 512) -> None:
        super().__init__()
        check_range("bn_finetune start step", start, 1)
        self.start, self.train_x, self.batch_size = int(start), train_x, int(batch_size)
        self.frozen = False
        self.handle: Any = None

    def _freeze(self, recompute: bool) -> None:
        model = self.trainer.model
        if recompute:
            bn_stats.population_statistics(model, self.train_x, self.batch_size)
        self.handle = bn_stats.freeze_batch_statistics(model)
        self.frozen = True

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        if not self.frozen and step >= self.start:
            self._freeze(recompute=True)

    def state_dict(self) -> dict[str, Any]:
        return {"frozen": self.frozen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # The checkpointed model already holds the frozen statistics: hook, no recompute.
        if state.get("frozen") and self.handle is None:
            self._freeze(recompute=False)
