"""The training engine: epochs of mini-batch steps, evaluation, callbacks, checkpoints.

The hot loop is the plain one (forward, loss, backward, step) plus two in-place adds
that keep the epoch's running loss and metrics as device tensors; the loss is read
back to Python (a device sync) only every ``log_every`` steps and at epoch ends.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from optimlab.errors import OptimlabError, check_range
from optimlab.io import atomic_torch_save, atomic_write_text
from optimlab.optim.closure import attach_objective
from optimlab.train.batching import ORDERS, NoData, make_loader
from optimlab.train.callback import Callback, CallbackList
from optimlab.train.checkpoint import (
    ModelCheckpoint,
    load_checkpoint,
    load_optimizer_state,
    optimizer_state,
)
from optimlab.train.distributed import to_cpu
from optimlab.train.evaluate import evaluate
from optimlab.train.loggers import CSVLogger, JSONLLogger, TensorBoardLogger, tensorboard_available
from optimlab.train.progress import ProgressBar
from optimlab.train.rng import get_rng_state, seed_everything, set_rng_state
from optimlab.train.setup import TrainingSetup, as_setup
from optimlab.train.summary import build_summary, summary_json

STATUSES = ("completed", "early_stopped", "diverged", "time_budget")
CHECKPOINT_FORMAT = 2  # 2: evaluation and example counts


@dataclass
class RunResult:
    """What a run returns: its status, per-epoch history, sampled step log and summary."""

    status: str
    history: list[dict[str, Any]]
    step_log: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}


# Train metrics are computed on chunks of this many batches (and at most this many
# buffered output elements) rather than batch by batch: one metric call per chunk
# instead of one per step. Chunk ends depend only on the batch index in the epoch and
# the buffered sizes, never on when a checkpoint is written, so resumed runs sum in the
# same order and stay bit-identical.
CHUNK_BATCHES = 32
CHUNK_ELEMENTS = 1 << 22


class _EpochTotals:
    """The epoch's running loss and metric sums (weighted by samples) as device tensors,
    plus the batches not yet folded in."""

    def __init__(self, metrics: dict[str, Callable[..., Any]], device: torch.device) -> None:
        self.fns = list(metrics.values())
        self.names = list(metrics)
        self.device = device
        self.loss = torch.zeros((), dtype=torch.float64, device=device)
        self.metrics = [torch.zeros((), dtype=torch.float64, device=device) for _ in metrics]
        self.count = 0
        self.losses: list[Tensor] = []
        self.sizes: list[int] = []
        self.outputs: list[Tensor] = []
        self.targets: list[Tensor] = []
        self.elements = 0

    def add(self, loss: Tensor, output: Tensor, target: Tensor, n: int) -> None:
        """Buffer one batch (cheap: no kernel launches); fold when a chunk is full."""
        self.losses.append(loss.detach())
        self.sizes.append(n)
        self.count += n
        if self.fns:
            out = output.detach()
            self.outputs.append(out)
            self.targets.append(target)
            self.elements += out.numel()
        if len(self.losses) >= CHUNK_BATCHES or self.elements >= CHUNK_ELEMENTS:
            self.fold()

    def fold(self) -> None:
        """Add the buffered batches to the sums."""
        if not self.losses:
            return
        with torch.no_grad():
            sizes = torch.tensor(self.sizes, dtype=torch.float64, device=self.device)
            self.loss += torch.stack(self.losses).to(torch.float64) @ sizes
            out = torch.cat(self.outputs) if self.fns else None
            # n = 0: only empty shares of a parallel run's batches, whose metrics are NaN
            if out is not None and out.shape[0]:
                target = torch.cat(self.targets)
                n = out.shape[0]
                for i, fn in enumerate(self.fns):
                    self.metrics[i] += fn(out, target) * n
        self.losses, self.sizes, self.outputs, self.targets = [], [], [], []
        self.elements = 0

    def finite(self) -> bool:
        """Whether the loss so far is finite (one sync)."""
        total = self.loss + (torch.stack(self.losses).sum() if self.losses else 0.0)
        return bool(torch.isfinite(total))

    def state_dict(self) -> dict[str, Any]:
        return {
            "loss": self.loss,
            "metrics": self.metrics,
            "count": self.count,
            "pending": {
                "losses": self.losses,
                "sizes": self.sizes,
                "outputs": self.outputs,
                "targets": self.targets,
            },
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.loss = state["loss"].to(device)
        self.metrics = [m.to(device) for m in state["metrics"]]
        self.count = state["count"]
        pending = state["pending"]
        self.losses = [t.to(device) for t in pending["losses"]]
        self.sizes = list(pending["sizes"])
        self.outputs = [t.to(device) for t in pending["outputs"]]
        self.targets = [t.to(device) for t in pending["targets"]]
        self.elements = sum(t.numel() for t in self.outputs)

    def means(self, reduce: Callable[[Tensor], Tensor] | None = None) -> dict[str, float]:
        """Epoch means (one sync); an epoch with no samples gives NaN. ``reduce`` sums
        the sums and counts of several processes (in place)."""
        self.fold()
        if reduce is None:
            values = torch.stack([self.loss, *self.metrics]).tolist()
            n = self.count
        else:
            count = torch.tensor(float(self.count), dtype=torch.float64, device=self.device)
            *values, n = reduce(torch.stack([self.loss, *self.metrics, count])).tolist()
        out = {"loss": values[0] / n if n else math.nan}
        for name, v in zip(self.names, values[1:], strict=True):
            out[name] = v / n if n else math.nan
        return out


def current_lr(optimizer: torch.optim.Optimizer, step: int) -> float:
    """The first param group's LR for the next update. optimlab's optimizers also accept a
    schedule ``schedule(step) -> lr`` as ``lr``; it is read at ``step`` (updates so far),
    which is what torch's schedulers hold in ``lr`` after ``step`` calls."""
    lr = optimizer.param_groups[0]["lr"]
    if callable(lr) and not isinstance(lr, Tensor):
        return float(lr(step))
    return float(lr)


def needs_closure(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer.step`` must be given a closure that re-evaluates the loss (line
    searches, second-order methods): torch's LBFGS, or a class that says so with
    ``needs_closure = True``."""
    return isinstance(optimizer, torch.optim.LBFGS) or bool(
        getattr(optimizer, "needs_closure", False)
    )


@contextlib.contextmanager
def at_evaluation_point(optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """Evaluate where the optimizer says its answer is: an optimizer with ``eval()`` and
    ``train()`` methods (the schedule-free ones, whose parameters hold the interpolated
    ``y`` while training and the average ``x`` after ``eval()``) is switched to eval mode
    for the block and back to train mode after it; any other is left alone.

    One already in eval mode (``training`` False) is left as it is, and stays so.
    """
    switch = callable(getattr(optimizer, "eval", None)) and callable(
        getattr(optimizer, "train", None)
    )
    switch = switch and bool(getattr(optimizer, "training", True))
    if switch:
        optimizer.eval()
    try:
        yield
    finally:
        if switch:
            optimizer.train()


def _repeated(batches: Iterator[Any], times: int, first: int) -> Iterator[Any]:
    """Each batch ``times`` times in a row (the first one ``first`` times: the rest of a
    repetition a resumed run is in the middle of)."""
    for batch in batches:
        for _ in range(first):
            yield batch
        first = times


def _grouped(batches: Iterator[Any], size: int) -> Iterator[tuple[Any, ...]]:
    while group := tuple(itertools.islice(batches, size)):
        yield group


class Trainer:
    """Trains ``problem``'s model with ``optimizer``; :meth:`run` returns a :class:`RunResult`.

    ``problem`` is a Problem-like object or ``(model, loss_fn, metrics, splits)``
    (see :mod:`optimlab.train.setup`). The budget is ``epochs``, ``steps`` (optimizer
    steps) and/or ``seconds``, whichever ends first; with none given the problem's own
    ``epochs`` apply. ``scheduler`` is anything with torch's LRScheduler protocol,
    stepped after every optimizer step (``scheduler_interval="epoch"``: after every
    epoch); a plain ``schedule(step) -> lr`` callable is wrapped in
    ``optimlab.schedules.ScheduleAdapter``. ``batch_size_schedule(epoch) -> int``
    overrides ``batch_size`` epoch by epoch. ``grad_accumulation=N`` makes one optimizer
    step from N micro-batches, weighted so that the update equals that of their union.
    ``batch_repeats=K`` feeds every batch for K consecutive steps (an epoch has K times
    as many steps): quasi-Newton methods on mini-batches build curvature from gradient
    differences and search lines, which need one function for several iterations.

    With ``out_dir`` the run writes ``checkpoints/last.pt`` (every epoch; with
    ``checkpoint_every`` also every that many steps) and ``checkpoints/best.pt``,
    ``metrics.jsonl``, ``metrics.csv``, ``steps.jsonl``, TensorBoard scalars when
    tensorboard is installed, and ``summary.json``. ``resume="auto"`` continues from
    ``last.pt`` when it exists (``True``: it must exist; ``False``: start over), ending
    bit-identical to an uninterrupted run. ``config`` (any plain dict) is stored in the
    checkpoint, and resuming with a different one is refused. ``keep_epoch_checkpoints``
    also keeps the weights of every epoch, ``checkpoints/epoch_{k:04d}.pt``.

    ``batch_transform(x, y, step) -> (x, y)`` is applied to every training batch
    (augmentation, mixup); ``step`` is the optimizer steps taken before the batch (the
    micro-batches of one accumulated step share it), so a transform seeded by it
    repeats exactly on resume. Evaluation batches are not transformed.

    A non-finite training loss ends the run with status "diverged"; it is a result,
    not an exception, and ``last.pt`` still holds the last good state.

    Epochs are counted from 1 in everything recorded or shown (history, step log,
    ``metrics.jsonl``/``.csv``, ``summary.json``, the progress display, checkpoints'
    ``epoch``): a record with ``epoch = k`` holds the state after ``k`` epochs. Callbacks
    receive the 0-based index of the epoch, as in Keras.

    ``world`` (an :class:`optimlab.train.distributed.World`) runs the trainer as one of
    several processes: each takes its share of the batches, reductions that decide
    something (losses, metrics, finiteness) are made over all of them so that they stop,
    evaluate and checkpoint together, and only the world's writer writes files; its
    checkpoint holds each process's own state, and every process resumes from it.
    """

    def __init__(
        self,
        problem: Any,
        optimizer: torch.optim.Optimizer,
        *,
        epochs: int | None = None,
        steps: int | None = None,
        seconds: float | None = None,
        batch_size: int | None = None,
        scheduler: Any = None,
        scheduler_interval: str = "step",
        batch_size_schedule: Callable[[int], int] | None = None,
        grad_accumulation: int = 1,
        batch_repeats: int = 1,
        callbacks: Iterable[Callback] = (),
        seed: int = 0,
        out_dir: str | os.PathLike[str] | None = None,
        resume: bool | str = "auto",
        checkpoint_every: int | None = None,
        keep_epoch_checkpoints: bool = False,
        log_every: int = 50,
        device: str | torch.device | None = None,
        order: str | Any = "random",
        drop_last: bool = False,
        train_metrics: bool = True,
        evaluate_test: bool = True,
        eval_batch_size: int | None = None,
        monitor: str | None = None,
        progress: bool = False,
        config: dict[str, Any] | None = None,
        batch_transform: Callable[[Tensor, Tensor, int], tuple[Tensor, Tensor]] | None = None,
        world: Any = None,
    ) -> None:
        setup = as_setup(problem)
        self.setup: TrainingSetup = setup
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise OptimlabError(
                f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        if epochs is None and steps is None and seconds is None:
            epochs = setup.epochs
            if epochs is None:
                raise OptimlabError("no budget: give epochs, steps or seconds")
        for name, value in (("epochs", epochs), ("steps", steps)):
            if value is not None:
                check_range(name, value, 1)
        if seconds is not None:
            check_range("seconds", seconds, 0.0, low_open=True)
        batch_size = batch_size if batch_size is not None else setup.batch_size
        if batch_size is None:
            raise OptimlabError("no batch_size: give one (the problem has no default)")
        check_range("batch_size", batch_size, 1)
        check_range("grad_accumulation", grad_accumulation, 1)
        check_range("batch_repeats", batch_repeats, 1)
        if batch_repeats > 1 and (grad_accumulation > 1 or world is not None):
            raise OptimlabError(
                f"invalid batch_repeats: {batch_repeats}; repeating a batch needs "
                "grad_accumulation 1 and no parallel world (valid: batch_repeats 1)"
            )
        if grad_accumulation > 1 and needs_closure(optimizer):
            raise OptimlabError(
                f"invalid grad_accumulation: {grad_accumulation}; {type(optimizer).__name__} "
                "re-evaluates the loss through a closure, so it takes whole batches (1)"
            )
        check_range("log_every", log_every, 1)
        if scheduler_interval not in ("step", "epoch"):
            raise OptimlabError(
                f"invalid scheduler_interval {scheduler_interval!r}; valid: step, epoch"
            )
        if isinstance(order, str) and order not in ORDERS:
            # an Ordering object (e.g. a curriculum) is checked by the loader itself
            raise OptimlabError(f"invalid order {order!r}; valid orders: {', '.join(ORDERS)}")
        if resume not in (True, False, "auto"):
            raise OptimlabError(f"invalid resume {resume!r}; valid values: True, False, 'auto'")

        self.model = setup.model
        if device is not None:
            self.model.to(device)
            self.device = torch.device(device)
        else:
            first = next(iter(self.model.parameters()), None)
            self.device = first.device if first is not None else torch.device("cpu")
        self.loss_fn = setup.loss_fn
        self.metrics = setup.metrics
        self.train_xy = tuple(t.to(self.device) for t in setup.train) if setup.train else None
        self.val_xy = tuple(t.to(self.device) for t in setup.val) if setup.val else None
        self.test_xy = tuple(t.to(self.device) for t in setup.test) if setup.test else None

        self.optimizer = optimizer
        self.scheduler = self._as_scheduler(scheduler)
        self.scheduler_interval = scheduler_interval
        self.max_epochs, self.max_steps, self.seconds = epochs, steps, seconds
        self.batch_size = int(batch_size)
        self.batch_size_schedule = batch_size_schedule
        self.grad_accumulation = int(grad_accumulation)
        self.batch_repeats = int(batch_repeats)
        self.seed = int(seed)
        self.log_every = int(log_every)
        self.order, self.drop_last = order, drop_last
        self.train_metrics = train_metrics
        self.evaluate_test = evaluate_test
        self.eval_batch_size = int(eval_batch_size or max(1024, self.batch_size))
        self.monitor = monitor or ("val_loss" if self.val_xy is not None else "loss")
        self.config = config
        self.batch_transform = batch_transform
        self.resume = resume
        self.out_dir = Path(out_dir) if out_dir is not None else None
        if self.train_xy is None:
            self.loader: Any = NoData()
            self.train_metrics = False  # metrics need targets
        else:
            self.loader = make_loader(
                *self.train_xy, self.batch_size, order=order, seed=self.seed, drop_last=drop_last
            )
        self.world = world
        self.train_module: Any = self.model  # what the training step calls
        if world is not None:
            self._join(world)
        self.callbacks = CallbackList(
            self._with_default_callbacks(
                list(callbacks), checkpoint_every, progress, keep_epoch_checkpoints
            )
        )
        self._checkpointer = next(
            (c for c in self.callbacks if isinstance(c, ModelCheckpoint) and c.save_last), None
        )

        # Run state: everything below goes into checkpoints.
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer steps taken
        self.evaluations = 0  # forward-backward passes over a batch (closure calls included)
        self.examples = 0  # examples those passes went through
        self.batch_in_epoch = 0  # micro-batches of the current epoch already consumed
        self.history: list[dict[str, Any]] = []
        self.step_log: list[dict[str, Any]] = []
        self.stop_training = False
        self.status: str | None = None
        self.restored_epoch: int | None = None
        self.diverged_at: dict[str, Any] | None = None
        self.time_exceeded = False
        self.resumed_from: dict[str, int] | None = None
        self.last_saved: dict[str, Any] | None = None
        self._elapsed_before = 0.0
        self._t_start = time.perf_counter()
        self._deadline = math.inf
        self._totals = self._new_totals()

    # ----------------------------------------------------------------- set-up helpers

    def _join(self, world: Any) -> None:
        """Take this process's share of the data, model and optimizer from ``world``."""
        if self.train_xy is None:
            raise OptimlabError(
                "a parallel run shares out training data, and this problem has none; "
                "valid: a problem with data (optimlab list problems)"
            )
        if needs_closure(self.optimizer):
            raise OptimlabError(
                f"{type(self.optimizer).__name__} re-evaluates the loss through a closure, "
                "which processes cannot share; valid: an optimizer that steps once per batch"
            )
        self.loader = world.shard(self.loader)
        self.train_module = world.wrap_model(self.model)
        self.optimizer = world.wrap_optimizer(self.optimizer)

    @property
    def is_writer(self) -> bool:
        """Whether this process writes the run's files (always, without a world)."""
        return self.world is None or self.world.is_writer

    @property
    def evaluates(self) -> bool:
        """Whether this process evaluates the validation and test sets (always, without
        a world)."""
        return self.world is None or self.world.evaluates

    def _reduces(self) -> bool:
        return self.world is not None and self.world.reduces

    def _as_scheduler(self, scheduler: Any) -> Any:
        if scheduler is None or hasattr(scheduler, "step"):
            return scheduler
        if callable(scheduler):
            from optimlab.schedules import ScheduleAdapter  # lazy: only when asked for

            return ScheduleAdapter(self.optimizer, scheduler)
        raise OptimlabError(
            "scheduler must have step() (torch's LRScheduler protocol) or be a "
            f"schedule(step) -> lr callable, got {type(scheduler).__name__}"
        )

    def _with_default_callbacks(
        self,
        callbacks: list[Callback],
        checkpoint_every: int | None,
        progress: bool,
        keep_epochs: bool = False,
    ) -> list[Callback]:
        if self.out_dir is not None:
            # Every process of a world keeps a checkpointer: saving gathers each one's
            # state, so all of them take part, and the writer alone writes.
            if not any(isinstance(c, ModelCheckpoint) for c in callbacks):
                callbacks.append(
                    ModelCheckpoint(
                        self.out_dir / "checkpoints",
                        monitor=self.monitor,
                        every_n_steps=checkpoint_every,
                        keep_epochs=keep_epochs,
                    )
                )
        if self.out_dir is not None and self.is_writer:
            callbacks.append(
                JSONLLogger(self.out_dir / "metrics.jsonl", self.out_dir / "steps.jsonl")
            )
            callbacks.append(CSVLogger(self.out_dir / "metrics.csv"))
            if tensorboard_available():
                callbacks.append(TensorBoardLogger(self.out_dir / "tensorboard"))
        if self.out_dir is None and checkpoint_every is not None:
            raise OptimlabError("checkpoint_every needs an out_dir to write checkpoints to")
        if self.out_dir is None and keep_epochs:
            raise OptimlabError("keep_epoch_checkpoints needs an out_dir to write checkpoints to")
        if progress and self.is_writer:
            callbacks.append(ProgressBar())
        return callbacks

    def _new_totals(self) -> _EpochTotals:
        return _EpochTotals(self.metrics if self.train_metrics else {}, self.device)

    def epoch_batch_size(self, epoch: int) -> int:
        """The batch size of ``epoch`` (from ``batch_size_schedule`` when given)."""
        if self.batch_size_schedule is None:
            return self.batch_size
        bs = int(self.batch_size_schedule(epoch))
        check_range(f"batch_size_schedule({epoch})", bs, 1)
        return bs

    def steps_in_epoch(self, epoch: int) -> int:
        """Optimizer steps in a full ``epoch`` (a curriculum's pool may grow by epoch)."""
        batches = self.loader.num_batches(self.epoch_batch_size(epoch), epoch=epoch)
        return -(-batches * self.batch_repeats // self.grad_accumulation)

    @property
    def step_in_epoch(self) -> int:
        return -(-self.batch_in_epoch // self.grad_accumulation)

    @property
    def elapsed(self) -> float:
        """Training wall time so far, summed over resumed sessions."""
        return self._elapsed_before + time.perf_counter() - self._t_start

    # ------------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict[str, Any]:
        """The whole run state; loading it into an identical trainer continues the run."""
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": optimizer_state(self.optimizer),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "callbacks": self._stateful_callback_states(),
            "epoch": self.epoch,
            "step": self.step,
            "evaluations": self.evaluations,
            "examples": self.examples,
            "batch_in_epoch": self.batch_in_epoch,
            "totals": self._totals.state_dict(),
            "rng": get_rng_state(),
            "history": self.history,
            "step_log": self.step_log,
            "stop_training": self.stop_training,
            "status": self.status,
            "restored_epoch": self.restored_epoch,
            "time_exceeded": self.time_exceeded,
            "elapsed": self.elapsed,
            "seed": self.seed,
            "budget": self._budget(),
            "config": self.config,
        }

    def _budget(self) -> dict[str, Any]:
        return {"epochs": self.max_epochs, "steps": self.max_steps, "seconds": self.seconds}

    def _stateful(self) -> list[Callback]:
        # Loggers and progress bars keep no state, and which of them run may differ
        # between sessions (tensorboard installed or not), so they are not matched.
        return [c for c in self.callbacks if type(c).state_dict is not Callback.state_dict]

    def _stateful_callback_states(self) -> list[dict[str, Any]]:
        return CallbackList(self._stateful()).state_dicts()

    def save_checkpoint(self, path: str | os.PathLike[str]) -> bool:
        """Write the run state to ``path`` atomically; refuse (return False) when the
        running loss is not finite, so a diverged state never replaces a good one.

        In a world every process calls this at the same point: each one's own state is
        gathered under ``"ranks"`` and the writer writes the file."""
        if not self._totals_finite():
            return False
        state = self.state_dict()
        if self.world is not None:
            ranks = self.world.gather(to_cpu(self._rank_state()))
            if ranks is not None:
                state["ranks"] = ranks
        if self.is_writer:
            atomic_torch_save(state, path)
        if Path(path) == self._resume_path():
            self.last_saved = {"path": Path(path), "epoch": self.epoch, "step": self.step}
        return True

    def _totals_finite(self) -> bool:
        bad = bool(self._totals.count) and not self._totals.finite()
        if not self._reduces():
            return not bad
        flag = torch.tensor(float(bad), dtype=torch.float64, device=self.device)
        return float(self.world.all_sum(flag)) == 0.0

    def _rank_state(self) -> dict[str, Any]:
        """What differs between the processes of a world and is needed to resume each."""
        state: dict[str, Any] = {"rng": get_rng_state(), "totals": self._totals.state_dict()}
        if "model" in self.world.rank_state:
            state["model"] = self.model.state_dict()
        if "optimizer" in self.world.rank_state:
            state["optimizer"] = optimizer_state(self.optimizer)
        if "counters" in self.world.rank_state:  # processes that step at their own pace
            scheduler = self.scheduler.state_dict() if self.scheduler is not None else None
            state["counters"] = {"step": self.step, "examples": self.examples,
                                 "scheduler": scheduler}  # fmt: skip
        return state

    def _load_rank_state(self, ranks: list[dict[str, Any]]) -> None:
        if len(ranks) != self.world.size:
            raise OptimlabError(
                f"the checkpoint was written by {len(ranks)} processes and this run has "
                f"{self.world.size}; resume with the same number of processes"
            )
        own = ranks[self.world.rank]
        if "model" in own:
            self.model.load_state_dict(own["model"])
        if "optimizer" in own:
            load_optimizer_state(self.optimizer, own["optimizer"])
        if "counters" in own:
            self.step, self.examples = own["counters"]["step"], own["counters"]["examples"]
            if self.scheduler is not None and own["counters"]["scheduler"] is not None:
                self.scheduler.load_state_dict(own["counters"]["scheduler"])
        self._totals.load_state_dict(own["totals"], self.device)
        set_rng_state(own["rng"])

    def check_compatible(self, state: dict[str, Any]) -> None:
        """Refuse a checkpoint of another format or written with another ``config``."""
        if state.get("format") != CHECKPOINT_FORMAT:
            raise OptimlabError(
                f"checkpoint format {state.get('format')!r} is not {CHECKPOINT_FORMAT}"
            )
        saved = state.get("config")
        if self.config is not None and saved is not None and saved != self.config:
            diff = sorted(
                k for k in set(self.config) | set(saved) if self.config.get(k) != saved.get(k)
            )
            raise OptimlabError(
                "the output directory holds a run with different settings "
                f"({', '.join(diff)}); use another output directory, or start over "
                "(resume=False; --restart at the command line)"
            )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the run state saved by :meth:`state_dict` (callbacks and RNG included)."""
        self.check_compatible(state)
        self.model.load_state_dict(state["model"])
        load_optimizer_state(self.optimizer, state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.evaluations, self.examples = state["evaluations"], state["examples"]
        self.batch_in_epoch = state["batch_in_epoch"]
        self._totals.load_state_dict(state["totals"], self.device)
        self.history = list(state["history"])
        self.step_log = list(state["step_log"])
        self.stop_training = state["stop_training"]
        self.status = state["status"]
        self.restored_epoch = state["restored_epoch"]
        self.time_exceeded = state["time_exceeded"]
        self._elapsed_before = state["elapsed"]
        CallbackList(self._stateful()).load_state_dicts(state["callbacks"])
        set_rng_state(state["rng"])
        if self.world is not None and state.get("ranks") is not None:
            self._load_rank_state(state["ranks"])

    def _resume_path(self) -> Path | None:
        return self._checkpointer.last_path if self._checkpointer is not None else None

    # -------------------------------------------------------------------------- run

    def run(self) -> RunResult:
        """Train until the budget is used up, a callback stops the run, or it diverges."""
        self._t_start = time.perf_counter()
        path = self._resume_path()
        state = None
        if self.resume is not False and path is not None and path.exists():
            state = load_checkpoint(path, map_location="cpu")
            self.check_compatible(state)  # before any callback touches the directory
        elif self.resume is True:
            where = path if path is not None else "(no out_dir)"
            raise OptimlabError(f"resume requested but there is no checkpoint at {where}")
        if self.world is not None:
            self.world.barrier()  # every process has read the checkpoint before any writes

        self.callbacks.set_trainer(self)
        if state is None:
            seed_everything(self.seed if self.world is None else self.world.rank_seed(self.seed))
        elif state["status"] is not None:
            # A finished run: return its result without training again.
            self.load_state_dict(state)
            if state.get("budget") != self._budget():
                warnings.warn(
                    f"{path} holds a finished run (budget {state.get('budget')}, status "
                    f"{state['status']}); returning its result instead of training with budget "
                    f"{self._budget()}. Use resume=False or another out_dir to train again.",
                    stacklevel=2,
                )
            return self._finish()
        else:
            # History and counters first, so on_train_begin sees them (loggers rewrite
            # their files from the history); callback state after their reset.
            self._restore_counters(state)
        self.callbacks.on_train_begin({})
        if state is not None:
            self.load_state_dict(state)
            self.resumed_from = {"epoch": self.epoch, "step": self.step}
        if self.world is not None:
            self.world.start(self)
        self._deadline = (
            time.perf_counter() + self.seconds - self._elapsed_before
            if self.seconds is not None
            else math.inf
        )

        while not self._budget_done():
            self._run_epoch(self.epoch)
            if self.status == "diverged":
                break
        if self.status is None:
            if self.time_exceeded:
                self.status = "time_budget"
            elif self.stop_training:
                self.status = "early_stopped"
            else:
                self.status = "completed"
        self.callbacks.on_train_end({"status": self.status})
        return self._finish()

    def _restore_counters(self, state: dict[str, Any]) -> None:
        self.history = list(state["history"])
        self.step_log = list(state["step_log"])
        self.epoch, self.step = state["epoch"], state["step"]

    def _budget_done(self) -> bool:
        if self.stop_training or self.time_exceeded:
            return True
        if self.max_epochs is not None and self.epoch >= self.max_epochs:
            return True
        if self.max_steps is not None and self.step >= self.max_steps:
            return True
        if time.perf_counter() >= self._deadline:
            self.time_exceeded = True
            return True
        return False

    def _run_epoch(self, epoch: int) -> None:
        bs = self.epoch_batch_size(epoch)
        if self.batch_in_epoch == 0:
            self._totals = self._new_totals()
        self.callbacks.on_epoch_begin(epoch, {})
        t0 = time.perf_counter()
        self.model.train()
        # batch_in_epoch counts feeds: a batch repeated K times is K of them
        skip, fed = divmod(self.batch_in_epoch, self.batch_repeats)
        batches = self.loader.epoch(epoch, batch_size=bs, skip=skip)
        if self.batch_transform is not None:
            batches = self._transformed(batches, fed)
        if self.batch_repeats > 1:
            batches = _repeated(batches, self.batch_repeats, self.batch_repeats - fed)
        self._train_batches(batches, epoch)
        if self.status == "diverged":
            return
        logs: dict[str, Any] = {"epoch": epoch + 1}  # records count epochs from 1
        logs.update(self._totals.means(self.world.all_sum if self._reduces() else None))
        if not math.isfinite(logs["loss"]):
            self._diverge(epoch, logs["loss"])
            return
        evaluates = self.evaluates
        if self.world is not None:
            self.world.epoch_end(self.model)
        evaluated = self.val_xy is not None or (self.test_xy is not None and self.evaluate_test)
        # every process switches alike (the switch rounds), whether or not it evaluates
        switch = at_evaluation_point(self.optimizer) if evaluated else contextlib.nullcontext()
        with switch:
            if self.val_xy is not None and evaluates:
                logs.update(self._evaluate(self.val_xy, "val_"))
            if self.test_xy is not None and self.evaluate_test and evaluates:
                logs.update(self._evaluate(self.test_xy, "test_"))
        logs["lr"] = current_lr(self.optimizer, self.step)
        full = self.order == "full" and self.train_xy is not None
        logs["batch_size"] = len(self.train_xy[0]) if full else bs  # the batch as trained
        logs["step"] = self.step
        logs["evaluations"] = self.evaluations
        logs["examples"] = self.examples
        hvps = getattr(self.optimizer, "counts", {}).get("hvp")
        if hvps is not None:  # second-order methods count their curvature products
            logs["hvps"] = hvps
        logs["time"] = time.perf_counter() - t0
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            self.scheduler.step()
        self.epoch = epoch + 1
        self.batch_in_epoch = 0
        self.history.append(logs)
        self.callbacks.on_epoch_end(epoch, logs)

    def _transformed(self, batches: Iterator[Any], fed: int) -> Iterator[Any]:
        """Each batch through ``batch_transform``, lazily, so that it sees the step count
        when it is drawn; a repeated batch is transformed once, at its first step (a run
        resumed ``fed`` feeds into one takes that step from before them)."""
        tf = self.batch_transform
        for xb, yb in batches:
            yield tf(xb, yb, self.step - fed)
            fed = 0

    def _evaluate(self, xy: tuple[Tensor, ...], prefix: str) -> dict[str, float]:
        x, y = xy
        if not self._reduces():
            return evaluate(
                self.model, self.loss_fn, self.metrics, x, y, self.eval_batch_size, prefix=prefix
            )
        # Each process evaluates its share; the sums make the mean over the whole split.
        lo, hi = self.world.share(len(x))
        part = evaluate(self.model, self.loss_fn, self.metrics, x[lo:hi], y[lo:hi],
                        self.eval_batch_size, prefix=prefix)  # fmt: skip
        names = [f"{prefix}{name}" for name in ("loss", *self.metrics)]
        m = hi - lo
        sums = torch.tensor([part.get(k, 0.0) * m for k in names] + [float(m)],
                            dtype=torch.float64, device=self.device)  # fmt: skip
        *totals, n = self.world.all_sum(sums).tolist()
        return {k: v / n for k, v in zip(names, totals, strict=True)} if n else {}

    def _diverge(self, epoch: int, value: float) -> None:
        self.status = "diverged"
        self.diverged_at = {"epoch": epoch + 1, "step": self.step, "loss": value}

    def _train_batches(self, batches: Iterator[tuple[Tensor, Tensor]], epoch: int) -> None:
        # Locals, not attributes, inside the loop: this is the per-step path.
        model, loss_fn, opt = self.train_module, self.loss_fn, self.optimizer
        # A world whose processes share each batch weighs their micro-batches itself.
        shared = self.world if self._reduces() else None
        bs = self.epoch_batch_size(epoch) if shared is not None else None
        sched = self.scheduler if self.scheduler_interval == "step" else None
        add = self._totals.add
        log_every, max_steps, deadline = self.log_every, self.max_steps, self._deadline
        cbs = self.callbacks if self.callbacks.wants_batches else None
        accum = self.grad_accumulation
        groups = _grouped(batches, accum) if accum > 1 else ((b,) for b in batches)
        closure_step = needs_closure(opt)
        pipeline = self.world if getattr(self.world, "pipelined", False) else None
        opt.zero_grad(set_to_none=True)
        for group in groups:
            sampled = (self.step + 1) % log_every == 0
            step_loss: Any = None
            size = len(group)
            if closure_step:
                xb, yb = group[0]
                n = xb.shape[0] if xb is not None else 1
                loss, out = self._closure_step(xb, yb, n)
                add(loss, out, yb, n)
                step_loss = loss
                del group, xb, out
            elif pipeline is not None:  # the stages' processes pass the batch together
                xb, yb = group[0]
                n = xb.shape[0]
                loss, out = pipeline.forward_backward(xb, yb)
                add(loss, out, yb, n)
                step_loss = loss
                self.evaluations += 1
                self.examples += n
                del group, xb, out
            elif size == 1 and shared is None:
                xb, yb = group[0]
                n = xb.shape[0] if xb is not None else 1
                out = model(xb)
                loss = loss_fn(out, yb)
                loss.backward()
                add(loss, out, yb, n)
                step_loss = loss
                self.evaluations += 1
                self.examples += n
                # Drop the batch before the step: the next batch's allocation can then
                # reuse its memory instead of mapping fresh pages (measurably faster for
                # batches of hundreds of kilobytes).
                del group, xb, out
            else:
                local = [xb.shape[0] for xb, _ in group]
                if shared is None:
                    total = sum(local)
                    # Weighting each micro-batch mean by its share of the step's samples
                    # makes the summed gradient the gradient of the mean over all of them.
                    weights = [n / total for n in local]
                    counted = local
                else:
                    first = self.batch_in_epoch
                    counted = [self.loader.global_size(epoch, first + i, bs) for i in range(size)]
                    weights = shared.loss_weights(self.step, local, counted)
                for (xb, yb), n, w, seen in zip(group, local, weights, counted, strict=True):
                    out = model(xb)
                    # An empty share (a last batch smaller than the world) still runs
                    # backward, with a zero loss, so that every process reduces gradients.
                    loss = loss_fn(out, yb) if n else out.sum() * 0.0
                    # equal shares weigh 1: the product would be exact, so skip its op
                    (loss if w == 1.0 else loss * w).backward()
                    add(loss, out, yb, n)
                    self.evaluations += 1
                    self.examples += seen
                    if sampled:
                        part = loss.detach() * w
                        step_loss = part if step_loss is None else step_loss + part
            if not closure_step:
                opt.step()
            opt.zero_grad(set_to_none=True)
            if sched is not None:
                sched.step()
            self.step += 1
            self.batch_in_epoch += size
            logs: dict[str, Any] = {}
            if sampled:
                if shared is not None:
                    # The mean over the processes of their weighted shares: the mean loss
                    # of the global batch (of the local batches, in local SGD's local steps).
                    step_loss = shared.all_mean(step_loss.detach().to(torch.float64))
                value = float(step_loss.detach())
                self.step_log.append(
                    {
                        "step": self.step,
                        "epoch": epoch + 1,
                        "loss": value,
                        "lr": current_lr(opt, self.step),
                    }
                )
                if not math.isfinite(value):
                    self._diverge(epoch, value)
                    return
                logs["loss"] = value
            if cbs is not None:
                cbs.on_batch_end(self.step, logs)
            if self.stop_training or (max_steps is not None and self.step >= max_steps):
                return
            if time.perf_counter() >= deadline:
                self.time_exceeded = True
                return

    def _closure_step(self, xb: Any, yb: Any, n: int) -> tuple[Tensor, Tensor]:
        """One ``optimizer.step(closure)`` on the batch; the closure evaluates loss and
        gradients at the current weights as often as the optimizer asks. Returns the
        first evaluation (the weights before the step), which the epoch's totals count."""
        model, loss_fn, opt = self.model, self.loss_fn, self.optimizer
        first: list[tuple[Tensor, Tensor]] = []

        def closure() -> Tensor:
            opt.zero_grad(set_to_none=True)
            with torch.enable_grad():
                out = model(xb)
                loss = loss_fn(out, yb)
                loss.backward()
            self.evaluations += 1
            self.examples += n
            if not first:
                first.append((loss.detach(), out.detach()))
            return loss

        if xb is not None:  # Gauss-Newton products need the model's outputs
            closure = attach_objective(closure, model, loss_fn, xb, yb)
        opt.step(closure)
        if not first:
            raise OptimlabError(
                f"{type(opt).__name__}.step(closure) never called its closure; "
                "an optimizer that needs a closure must evaluate it"
            )
        return first[0]

    # ------------------------------------------------------------------------ results

    def _finish(self) -> RunResult:
        summary = build_summary(self)
        if self.out_dir is not None and self.is_writer:
            atomic_write_text(self.out_dir / "summary.json", summary_json(summary))
        return RunResult(self.status or "completed", self.history, self.step_log, summary)


def fit(problem: Any, optimizer: torch.optim.Optimizer, **kwargs: Any) -> RunResult:
    """Train and return the result; the arguments are those of :class:`Trainer`."""
    return Trainer(problem, optimizer, **kwargs).run()
