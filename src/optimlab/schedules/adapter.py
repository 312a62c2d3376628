"""``ScheduleAdapter``: drive any torch optimizer's hyperparameter from a schedule.

It speaks torch's LR-scheduler protocol (``step()``, ``get_last_lr()``, ``last_epoch``,
``state_dict()``/``load_state_dict()``) and is an instance of
``torch.optim.lr_scheduler.LRScheduler``, so trainers use it as they would a torch
scheduler. Because schedules are closed forms, its whole state is the step count: after
``load_state_dict`` the groups are rewritten from the schedule at that step, whatever
order the optimizer's and the scheduler's states are loaded in (torch's recursive
schedulers depend on that order: pytorch issues 20086 and 162591).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.optim.lr_scheduler import LRScheduler

from optimlab.errors import OptimlabError
from optimlab.schedules import _checks
from optimlab.schedules.compose import StepFn, _callables

BETA_KEYS = ("betas", "beta1")


class ScheduleAdapter(LRScheduler):
    """Write ``group[key] = schedule(last_epoch)`` into every param group.

    ``schedule`` is one schedule for all groups or a list with one per group (any
    callable ``step -> value``, step from 0). ``key`` is the group entry to drive:
    ``"lr"`` (default), ``"momentum"`` (falls back to ``betas[0]`` for Adam-style groups,
    as torch's ``cycle_momentum`` does), ``"betas"``/``"beta1"`` (``betas[0]``) or any
    other numeric entry such as ``"weight_decay"``. A tensor entry is filled in place.

    As with torch, constructing the adapter writes the step-0 value (``last_epoch = 0``);
    call ``step()`` after each ``optimizer.step()``.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        schedule: StepFn | Sequence[StepFn],
        key: str = "lr",
        last_epoch: int = -1,
    ) -> None:
        groups = getattr(optimizer, "param_groups", None)
        if not isinstance(groups, list) or not groups:
            raise OptimlabError(
                f"invalid optimizer: {type(optimizer).__name__} has no param_groups"
            )
        self.optimizer = optimizer
        schedules = _callables("schedule", schedule)
        if len(schedules) == 1:
            schedules = schedules * len(groups)
        if len(schedules) != len(groups):
            raise OptimlabError(
                f"invalid schedule: {len(schedules)} schedules for {len(groups)} param groups; "
                "give one, or one per group"
            )
        self.schedules: tuple[StepFn, ...] = schedules
        if not isinstance(key, str):
            raise OptimlabError(f"invalid key: {key!r}; expected a param-group entry name")
        self.key = key
        for i, group in enumerate(groups):
            self._slot(group, i)  # fail now, not at the first step
        self.last_epoch = _checks.integer("last_epoch", last_epoch, -1)
        self._step_count = 0
        self.base_lrs = [s(0) for s in self.schedules]
        self.step()

    # ---- where the value goes ----
    def _slot(self, group: dict, index: int) -> str:
        """``"betas"`` when the value goes to ``betas[0]``, else the entry's own name."""
        if self.key in BETA_KEYS or (self.key == "momentum" and "momentum" not in group):
            if "betas" in group:
                return "betas"
        elif self.key in group:
            return self.key
        raise OptimlabError(
            f"invalid key: {self.key!r}; param group {index} has entries {sorted(group)}"
        )

    def _write(self, group: dict, index: int, value: Any) -> None:
        slot = self._slot(group, index)
        if slot == "betas":
            betas = group["betas"]
            if isinstance(betas[0], Tensor):
                betas[0].fill_(value)
            else:
                group["betas"] = (value, *betas[1:])
        elif isinstance(group[slot], Tensor):
            group[slot].fill_(value)
        else:
            group[slot] = value

    # ---- torch's protocol ----
    def get_lr(self) -> list[float]:
        """The values at ``last_epoch`` (closed form; the name is torch's)."""
        return [float(s(self.last_epoch)) for s in self.schedules]

    def get_last_lr(self) -> list[float]:
        """The values written by the latest ``step()`` (for any ``key``, despite the name)."""
        return list(self._last_values)

    def step(self, epoch: int | None = None) -> None:
        """Advance one step (or jump to step ``epoch``) and write the values."""
        self._step_count += 1
        self.last_epoch = (
            self.last_epoch + 1 if epoch is None else _checks.integer("epoch", epoch, 0)
        )
        self._apply()

    def _apply(self) -> None:
        values = self.get_lr()
        for i, (group, value) in enumerate(zip(self.optimizer.param_groups, values, strict=True)):
            self._write(group, i, value)
        self._last_values = values

    def state_dict(self) -> dict[str, Any]:
        """The step count (all a closed-form schedule needs) and the key it drives."""
        return {"last_epoch": self.last_epoch, "key": self.key, "_step_count": self._step_count}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the step count and rewrite the groups' values at that step."""
        if "last_epoch" not in state_dict:
            raise OptimlabError("invalid state_dict: it has no 'last_epoch'")
        key = state_dict.get("key", self.key)
        if key != self.key:
            raise OptimlabError(
                f"invalid state_dict: saved for key {key!r}, this adapter drives {self.key!r}"
            )
        self.last_epoch = _checks.integer("last_epoch", state_dict["last_epoch"], 0)
        self._step_count = int(state_dict.get("_step_count", self.last_epoch + 1))
        self._apply()

    def __repr__(self) -> str:
        return (
            f"ScheduleAdapter(key={self.key!r}, last_epoch={self.last_epoch}, "
            f"schedules={list(self.schedules)!r})"
        )
