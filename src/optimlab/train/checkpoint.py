"""Saving the whole training state: the last one (for resuming) and the best one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from optimlab.errors import OptimlabError, check_range
from optimlab.io import atomic_torch_save
from optimlab.train.callback import Callback
from optimlab.train.monitor import Improvement, MonitorReader, resolve_mode

LAST = "last.pt"
BEST = "best.pt"


def epoch_path(dirpath: str | os.PathLike[str], k: int) -> Path:
    """Where ``ModelCheckpoint(keep_epochs=True)`` writes the weights after ``k`` epochs."""
    return Path(dirpath) / f"epoch_{k:04d}.pt"


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by the trainer (tensors and plain values only)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise OptimlabError(f"checkpoint {os.fspath(path)!r} does not exist") from None
    except Exception as err:  # a truncated or foreign file
        raise OptimlabError(
            f"checkpoint {os.fspath(path)!r} cannot be read ({type(err).__name__}: {err}); "
            "delete it to start the run over"
        ) from None


_CALLABLE = "__callable__"


def _is_function(value: Any) -> bool:
    return callable(value) and not isinstance(value, torch.Tensor)


def optimizer_state(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """``optimizer.state_dict()`` with callable hyperparameters (optimlab's optimizers take
    a schedule as ``lr``) replaced by their repr, so the checkpoint holds only tensors and
    plain values. Schedules are pure functions of the step: the run being resumed
    supplies the same objects again, and :func:`load_optimizer_state` checks that."""
    state = optimizer.state_dict()
    groups = []
    for group in state["param_groups"]:
        groups.append({k: {_CALLABLE: repr(v)} if _is_function(v) else v for k, v in group.items()})
    return {**state, "param_groups": groups}


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load a state saved by :func:`optimizer_state`, keeping this optimizer's callables."""
    live = [{k: v for k, v in g.items() if _is_function(v)} for g in optimizer.param_groups]
    for i, (group, own) in enumerate(zip(state["param_groups"], live, strict=False)):
        for key, value in group.items():
            if isinstance(value, dict) and _CALLABLE in value:
                mine = repr(own[key]) if key in own else repr(optimizer.param_groups[i][key])
                if mine != value[_CALLABLE]:
                    raise OptimlabError(
                        f"the checkpoint's param group {i} has {key}={value[_CALLABLE]}, "
                        f"this run has {mine}; resume with the same settings"
                    )
    optimizer.load_state_dict(state)
    for group, own in zip(optimizer.param_groups, live, strict=True):
        group.update(own)


class ModelCheckpoint(Callback):
    """Write the full training state (model, optimizer, scheduler, callbacks, counters,
    random generators, history) to ``dirpath/last.pt`` after every epoch, and to
    ``dirpath/best.pt`` whenever ``monitor`` improves; writes are atomic.

    ``every_n_steps`` also writes ``last.pt`` every that many optimizer steps inside an
    epoch, so that a killed run loses at most that many steps. A state whose running loss
    is not finite is never written, so ``last.pt`` always holds the last good state.

    ``keep_epochs`` also writes the model's ``state_dict`` alone to
    ``dirpath/epoch_{k:04d}.pt`` (see :func:`epoch_path`): ``k = 0`` holds the weights
    a fresh run starts from, ``k`` the weights after ``k`` epochs (for trajectory plots).
    """

    order = 100  # after every callback that changes state this epoch

    def __init__(
        self,
        dirpath: str | os.PathLike[str],
        *,
        monitor: str = "val_loss",
        mode: str = "auto",
        min_delta: float = 0.0,
        save_last: bool = True,
        save_best: bool = True,
        every_n_steps: int | None = None,
        keep_epochs: bool = False,
    ) -> None:
        super().__init__()
        if every_n_steps is not None:
            check_range("every_n_steps", every_n_steps, 1)
        self.dirpath = Path(dirpath)
        self.monitor = monitor
        self.save_last, self.save_best = save_last, save_best
        self.every_n_steps = every_n_steps
        self.keep_epochs = bool(keep_epochs)
        self.improved = Improvement(resolve_mode(monitor, mode), min_delta) if save_best else None
        self.best: float | None = None
        self.best_epoch: int | None = None
        self._read = MonitorReader("ModelCheckpoint", monitor, "no best checkpoint is written")

    @property
    def last_path(self) -> Path:
        return self.dirpath / LAST

    @property
    def best_path(self) -> Path:
        return self.dirpath / BEST

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.best, self.best_epoch = None, None
        if self.keep_epochs and self.trainer.epoch == 0 and self.trainer.step == 0:
            self._save_epoch(0)

    def _save_epoch(self, k: int) -> None:
        if getattr(self.trainer, "is_writer", True):  # one writer among parallel processes
            atomic_torch_save(self.trainer.model.state_dict(), epoch_path(self.dirpath, k))

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        if self.save_last and self.every_n_steps and step % self.every_n_steps == 0:
            self.trainer.save_checkpoint(self.last_path)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        # A process that does not evaluate (another replica of a parallel run) has no
        # validation metrics to watch: the writer, which evaluates, keeps the best.
        watches = self.monitor in logs or getattr(self.trainer, "evaluates", True)
        if self.save_best and watches:
            current = self._read(logs)
            if current is not None and self.improved(current, self.best):
                self.best, self.best_epoch = float(current), epoch
                self.trainer.save_checkpoint(self.best_path)
        if self.keep_epochs:
            self._save_epoch(epoch + 1)
        if self.save_last:
            self.trainer.save_checkpoint(self.last_path)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        # The final state carries the run's status (and any restored best weights), so
        # rerunning a finished run returns its result instead of training again.
        if self.save_last and self.trainer.status != "diverged":
            self.trainer.save_checkpoint(self.last_path)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
