"""Ensembles from one training run: snapshot ensembles (Huang et al., ICLR 2017),
stochastic weight averaging (Izmailov et al., UAI 2018) and an exponential moving
average of the weights.

Snapshots average *predictions*: the ensemble's output is ``log(mean_k softmax(f_k(x)))``,
so cross-entropy on it is the NLL of the averaged probabilities and argmax gives the
ensemble's vote. SWA and EMA average *weights* with ``torch.optim.swa_utils.AveragedModel``
(SWA: ``w_avg <- w_avg + (w - w_avg) / (n + 1)``; EMA: ``w_avg <- d * w_avg + (1 - d) * w``);
batch-norm statistics of the averaged weights are recomputed with ``update_bn``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn

from optimlab.errors import OptimlabError, check_range
from optimlab.train.callback import Callback
from optimlab.train.evaluate import evaluate


class SoftmaxEnsemble(nn.Module):
    """Average the softmax outputs of ``models``; ``forward`` returns the log of the mean
    probabilities (log-probabilities, usable wherever logits are)."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        if not models:
            raise OptimlabError("an ensemble needs at least one model")
        self.members = nn.ModuleList(models)

    def predict_proba(self, x: Tensor) -> Tensor:
        return torch.stack([m(x).softmax(dim=-1) for m in self.members]).mean(dim=0)

    def forward(self, x: Tensor) -> Tensor:
        return self.predict_proba(x).clamp_min(torch.finfo(x.dtype).tiny).log()


def _has_bn(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _evaluate_into(trainer: Any, model: nn.Module, prefix: str, logs: dict[str, Any]) -> None:
    was = model.training
    model.eval()
    for xy, split in ((trainer.val_xy, "val_"), (trainer.test_xy, "test_")):
        if xy is not None:
            logs.update(
                evaluate(
                    model, trainer.loss_fn, trainer.metrics, xy[0], xy[1],
                    trainer.eval_batch_size, prefix=prefix + split,
                )
            )  # fmt: skip
    model.train(was)


class SnapshotEnsemble(Callback):
    """Save a copy of the model after each step in ``ends`` (optimizer step counts,
    e.g. ``[e + 1 for e in SnapshotCycles(...).cycle_ends()]``) and, at each epoch end,
    log the ensemble of the last ``m`` snapshots as ``ens_val_*``/``ens_test_*``.

    ``snapshots`` holds the saved state dicts (on the CPU); :meth:`ensemble` builds the
    :class:`SoftmaxEnsemble` of the last ``m``.
    """

    def __init__(self, ends: Iterable[int], m: int | None = None, log: bool = True) -> None:
        super().__init__()
        self.ends = sorted({int(e) for e in ends})
        if not self.ends or self.ends[0] < 1:
            raise OptimlabError(f"invalid snapshot steps {self.ends}; need steps >= 1")
        if m is not None:
            check_range("snapshots m", m, 1)
        self.m, self.log = m, log
        self.snapshots: list[dict[str, Tensor]] = []
        self.steps: list[int] = []

    @classmethod
    def from_schedule(cls, schedule: Any, m: int | None = None) -> SnapshotEnsemble:
        """Snapshots at the cycle ends of a ``SnapshotCycles`` schedule (0-based steps)."""
        return cls([e + 1 for e in schedule.cycle_ends()], m)

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        if step in self.ends and step not in self.steps:
            state = self.trainer.model.state_dict()
            self.snapshots.append({k: v.detach().to("cpu", copy=True) for k, v in state.items()})
            self.steps.append(step)

    def ensemble(self, model: nn.Module | None = None, m: int | None = None) -> SoftmaxEnsemble:
        """The ensemble of the last ``m`` snapshots (all by default) built on copies of
        ``model`` (the trainer's by default)."""
        if not self.snapshots:
            raise OptimlabError("no snapshot has been taken yet")
        template = model if model is not None else self.trainer.model
        m = m or self.m or len(self.snapshots)
        members = []
        for state in self.snapshots[-m:]:
            member = copy.deepcopy(template)
            member.load_state_dict(state)
            members.append(member.eval())
        return SoftmaxEnsemble(members)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self.log and self.snapshots:
            logs["snapshots"] = len(self.snapshots)
            _evaluate_into(self.trainer, self.ensemble(), "ens_", logs)

    def state_dict(self) -> dict[str, Any]:
        return {"snapshots": self.snapshots, "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.snapshots, self.steps = list(state["snapshots"]), list(state["steps"])


class WeightAveraging(Callback):
    """SWA (``decay=None``: the equal-weight mean of the weights seen) or EMA (``decay``
    in (0, 1)) of the model's weights, updated every ``every`` optimizer steps from
    step ``start`` on (SWA typically from 75% of the budget, with a constant or cyclic
    LR). At each epoch end BN statistics are recomputed on the training set and the
    averaged model is logged as ``swa_val_*`` / ``ema_val_*``. ``averaged`` is the
    ``AveragedModel`` (its ``.module`` the averaged network)."""

    def __init__(
        self, decay: float | None = None, start: int = 0, every: int = 1, log: bool = True
    ) -> None:
        super().__init__()
        if decay is not None:
            check_range("ema decay", decay, 0.0, 1.0, low_open=True, high_open=True)
        check_range("averaging start", start, 0)
        check_range("averaging every", every, 1)
        self.decay, self.start, self.every, self.log = decay, int(start), int(every), log
        self.prefix = "swa_" if decay is None else "ema_"
        self.averaged: AveragedModel | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        fn = get_ema_multi_avg_fn(self.decay) if self.decay is not None else None
        # EMA also averages BN buffers (use_buffers) as is usual; SWA recomputes them.
        self.averaged = AveragedModel(
            self.trainer.model, multi_avg_fn=fn, use_buffers=self.decay is not None
        )

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        if step > self.start and (step - self.start) % self.every == 0:
            self.averaged.update_parameters(self.trainer.model)

    def recompute_bn(self) -> None:
        """Recompute BN running statistics of the averaged model on the training set."""
        model = self.averaged.module
        if not _has_bn(model) or self.trainer.train_xy is None:
            return
        x = self.trainer.train_xy[0]
        bs = self.trainer.batch_size
        update_bn([x[i : i + bs] for i in range(0, len(x), bs)], model)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if not self.log or int(self.averaged.n_averaged) == 0:
            return
        if self.decay is None:
            self.recompute_bn()
        _evaluate_into(self.trainer, self.averaged.module, self.prefix, logs)

    def state_dict(self) -> dict[str, Any]:
        return {"averaged": self.averaged.state_dict() if self.averaged is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["averaged"] is not None:
            self.averaged.load_state_dict(state["averaged"])
