"""The callback protocol and the list that dispatches to callbacks.

A callback sees the run through ``self.trainer`` (set before ``on_train_begin``): its
``model``, ``optimizer``, ``scheduler``, ``history``, ``epoch``, ``step`` and the
``stop_training`` flag, which a callback sets to end the run after the current epoch
(or after the current step, when set in ``on_batch_end``).

Epochs are numbered from 0, as in Keras. Callbacks that keep state across epochs
implement ``state_dict``/``load_state_dict`` so that it goes into checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from optimlab.errors import OptimlabError


class Callback:
    """Base class; every hook does nothing."""

    #: callbacks run in increasing ``order``; checkpointing runs last so that the
    #: state it saves includes what the other callbacks decided this epoch
    order: int = 0

    def __init__(self) -> None:
        self.trainer: Any = None

    def set_trainer(self, trainer: Any) -> None:
        self.trainer = trainer

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Called once before training (also when resuming, before the state is loaded)."""

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Called once after training, whatever the outcome (``trainer.status``)."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Called before each epoch's first batch."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        """Called with the epoch's train/val/test metrics (``loss``, ``val_loss``, ...)."""

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        """Called after each optimizer step; ``logs["loss"]`` is present on sampled steps only
        (reading the loss every step would force a device sync)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def _overrides(cb: Callback, hook: str) -> bool:
    return getattr(type(cb), hook) is not getattr(Callback, hook)


class CallbackList:
    """Runs hooks on callbacks in ``order``; the per-batch hook only on those that define it."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks = sorted(callbacks, key=lambda c: c.order)  # stable for equal order
        self._batch = [c for c in self.callbacks if _overrides(c, "on_batch_end")]

    def __iter__(self) -> Iterator[Callback]:
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    @property
    def wants_batches(self) -> bool:
        return bool(self._batch)

    def set_trainer(self, trainer: Any) -> None:
        for c in self.callbacks:
            c.set_trainer(trainer)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        for c in self.callbacks:
            c.on_train_begin(logs)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        for c in self.callbacks:
            c.on_train_end(logs)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for c in self.callbacks:
            c.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        for c in self.callbacks:
            c.on_epoch_end(epoch, logs)

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        for c in self._batch:
            c.on_batch_end(step, logs)

    def state_dicts(self) -> list[dict[str, Any]]:
        return [{"type": type(c).__name__, "state": c.state_dict()} for c in self.callbacks]

    def load_state_dicts(self, states: list[dict[str, Any]]) -> None:
        """Give each callback its saved state, matched by position and class name."""
        names = [type(c).__name__ for c in self.callbacks]
        saved = [s["type"] for s in states]
        if names != saved:
            raise OptimlabError(
                f"the checkpoint was written with callbacks {saved}, but this run has {names}; "
                "resume with the same callbacks or start in a new output directory"
            )
        for c, s in zip(self.callbacks, states, strict=True):
            c.load_state_dict(s["state"])
