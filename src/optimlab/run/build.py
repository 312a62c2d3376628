"""``build_run``: the one way a :class:`RunConfig` becomes a problem, an optimizer, a
schedule, callbacks and a trainer. ``optimlab train`` and the lab's trials go through it;
the speedrun, which times its own loop, takes its optimizer and schedule from
:func:`make_optimizer`.

The rules, each written once:

- **Defaults**: the optimizer's registry record supplies every hyperparameter not given,
  its learning rate included; the problem supplies the batch size and, when no budget is
  given, the epochs.
- **Length**: :func:`total_steps` is the run's number of optimizer steps (``None`` when
  only a time budget bounds it); a schedule's horizon (``T_max``, ``total_steps``) is
  that number unless the schedule's arguments give one.
- **Epochs in an optimizer's settings** (``adam_then_sgd``'s ``switch_epoch``) become
  steps here, epoch by epoch as the trainer takes them, since only the run knows an
  epoch's length.
- **Schedules** drive the optimizer through :class:`optimlab.schedules.ScheduleAdapter`,
  which writes ``group["lr"]`` before every step (step 0 first, as torch's schedulers
  do), so torch's own optimizers follow a schedule exactly as ours do.
- **Precision**: ``dtype`` converts the model and the floating-point data (inputs,
  regression targets) once, after the problem is built and before anything is fitted.
- **Parallel runs** (``parallel`` sync, local_sgd, ...) are built in each process with
  the process's ``world`` (:mod:`optimlab.parallel`); the batch size is the global one,
  which the world size of a lockstep method must divide (except for full-batch steps).
  An asynchronous method with ``simulate_delay`` builds its one-process world here.
- **Implementation**: ``implementation = "torch"`` builds torch.optim's class of the
  rule instead of optimlab's, with the hyperparameters the registry name sets and those
  given (torch's own defaults for the rest): a reference to compare against.
- **Compilation**: ``compile`` trains through ``torch.compile`` of the model; evaluation,
  checkpoints and callbacks see the uncompiled module, which shares its parameters.
- **Problem options**: ``problem_args`` go to the problem's builder (checked against
  its keyword arguments), e.g. ``activation="sigmoid"`` for digits_mlp.
- **A registered model**: ``model`` (with ``model_args``) trains
  ``optimlab.nn.models.build_model(model, **model_args)``, drawn from the run's seed, on
  the problem's data, loss and metrics; it is checked on two examples first.
- **A model of one's own**: ``build_run(config, model=...)`` trains the caller's module on
  the problem's data, loss and metrics; its architecture joins the identity stored in
  the run's checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from optimlab.errors import OptimlabError
from optimlab.run.config import RunConfig

DIAGNOSE_EVERY = 50


@dataclass
class Run:
    """A built run: its configuration (threads and device resolved), the problem as
    trained (regularization applied), the optimizer and the trainer."""

    config: RunConfig
    problem: Any
    optimizer: torch.optim.Optimizer
    trainer: Any

    def fit(self) -> Any:
        """Train (resuming from the run directory's checkpoint when there is one)."""
        return self.trainer.run()


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; an unavailable device fails."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise OptimlabError(f"invalid device {name!r}: CUDA is not available here; use cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise OptimlabError("invalid device 'mps': MPS is not available here; use cpu")
    return name


def steps_per_epoch(config: RunConfig, problem: Any, batch_size: int, world: Any = None) -> int:
    """Optimizer steps in an epoch over the whole training set at ``batch_size``: batches
    (the last one partial) times ``batch_repeats``, over accumulation; in a ``world``,
    this process's (all of them, or its own under Hogwild!)."""
    from optimlab.run.batching import pass_steps

    full = problem.splits is None or config.order == "full"
    return pass_steps(config, None if full else len(problem.splits.train.x), batch_size, world)


def total_steps(config: RunConfig, problem: Any, batch_size: int, world: Any = None) -> int | None:
    """The run's length in optimizer steps (this process's, in a ``world``): the smaller
    of ``steps`` and the steps of its ``epochs`` (the problem's epochs when no budget is
    given), summed epoch by epoch as the trainer takes them (a curriculum's pool, a
    growing batch: :mod:`optimlab.run.batching`); ``None`` under a time budget alone."""
    from optimlab.run.batching import epoch_lengths, increase_batch

    epochs = config.epochs
    if epochs is None and config.steps is None and config.seconds is None:
        epochs = problem.epochs
    by_epochs = None
    if epochs:
        batches = None
        if config.batch_schedule is not None:
            _, batches = increase_batch(config, problem, batch_size, _initial_lr(config), world)
        length = epoch_lengths(config, problem, batch_size, world, batches)
        by_epochs = sum(length(e) for e in range(epochs))
    candidates = [n for n in (config.steps, by_epochs) if n]
    return min(candidates) if candidates else None


def _initial_lr(config: RunConfig) -> float | None:
    """The optimizer's initial learning rate: the given one, else its registry default."""
    from optimlab import optim

    if config.lr is not None:
        return config.lr
    return optim.get(config.optimizer).hyperparameters().get("lr")


def build_optimizer(
    config: RunConfig, parameters: Iterable[Any], total: int | None, model: Any = None
) -> tuple[torch.optim.Optimizer, Any]:
    """The run's optimizer and, when it has a schedule, the scheduler (see
    :func:`make_optimizer`)."""
    return make_optimizer(
        config.optimizer, parameters, lr=config.lr, hp=config.hp, fast=config.fast,
        implementation=config.implementation, schedule=config.schedule,
        schedule_args=config.schedule_args, total=total, model=model,
    )  # fmt: skip


def make_optimizer(
    name: str,
    parameters: Iterable[Any],
    *,
    lr: float | None = None,
    hp: dict[str, Any] | None = None,
    fast: bool = False,
    implementation: str = "optimlab",
    schedule: str | None = None,
    schedule_args: dict[str, Any] | None = None,
    total: int | None = None,
    model: Any = None,
) -> tuple[torch.optim.Optimizer, Any]:
    """Optimizer ``name`` (registry defaults for what is not given, lr included) and,
    with a ``schedule``, the :class:`~optimlab.schedules.ScheduleAdapter` that drives its
    learning rate from step 0 over ``total`` steps; call its ``step()`` after every
    optimizer step. An optimizer that reads the network's structure (``needs_model``,
    such as ``path_sgd``) is given ``model``. ``implementation="torch"``: torch.optim's
    class of the rule."""
    from optimlab import optim

    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in (hp or {}).items()}
    if lr is not None:
        kwargs["lr"] = lr
    if fast:
        kwargs["fast"] = True  # the compiled fast path of optimlab.optim.fast
    if implementation == "torch":
        rule = optim.get(name)
        cls = getattr(torch.optim, rule.torch_class)
        optimizer = cls(parameters, **{**rule.defaults, **kwargs})
    else:
        optimizer = optim.create(name, parameters, **kwargs)
    if getattr(optimizer, "needs_model", False):
        if model is None:
            raise OptimlabError(
                f"optimizer {name!r} reads the model's layers and none was given; valid here: "
                "an optimizer built from the parameters alone"
            )
        optimizer.attach_model(model)
    if schedule is None:
        return optimizer, None
    from optimlab.schedules import ScheduleAdapter

    base_lr = float(optimizer.param_groups[0]["lr"])  # the given lr, else the registry's
    lrs = make_schedule(schedule, schedule_args, lr=base_lr, total=total)
    return optimizer, ScheduleAdapter(optimizer, lrs)


def make_schedule(
    name: str, args: dict[str, Any] | None, *, lr: float | None, total: int | None
) -> Any:
    """Schedule ``name`` with ``args``, its ``lr`` and required horizon filled from the
    run (starting LR ``lr``, ``total`` steps)."""
    from optimlab.schedules import create, record
    from optimlab.schedules.registry import HORIZON, REQUIRED, run_params

    rec = record(name)
    params = run_params(rec.name, args or {}, lr=lr, total_steps=total)
    for key in HORIZON:
        if rec.defaults.get(key, None) is REQUIRED and key not in params:
            raise OptimlabError(
                f"schedule {rec.name!r} needs {key} (the run has no step count: "
                f"give epochs or steps, or the schedule argument {key}=N)"
            )
    return create(rec.name, **params)


def build_run(
    config: RunConfig,
    *,
    model: torch.nn.Module | None = None,
    callbacks: Iterable[Any] = (),
    resume: bool | str = "auto",
    progress: bool = False,
    world: Any = None,
) -> Run:
    """Build everything ``config`` describes, ready to :meth:`Run.fit`.

    ``callbacks`` are added to the run's own (diagnostics, early stopping,
    regularization). ``model``: a module of the caller's, trained in place of the
    problem's on the problem's data, loss and metrics (``init`` re-initializes it from
    the seed; otherwise it starts from the caller's weights). ``resume``: ``"auto"``
    continues from a checkpoint in
    ``config.out`` when there is one, ``True`` requires one, ``False`` starts over.
    ``world`` (an :class:`optimlab.train.distributed.World`) builds this process's part
    of a parallel run; the launchers of :mod:`optimlab.parallel` pass it.
    """
    from optimlab import problems
    from optimlab.parallel.methods import launched
    from optimlab.regularize.options import apply as apply_regularization
    from optimlab.train import EarlyStopping, Trainer

    if launched(config) and world is None:
        raise OptimlabError(
            f"parallel {config.parallel} runs in a group of processes; start it with "
            "optimlab train --parallel ... --nproc N, or with torchrun"
        )
    if world is None and config.simulate_delay is not None:
        from optimlab.parallel.simulate import simulated_world

        world = simulated_world(config)  # one process, the server simulated
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    # what the numbers depend on, resolved: the recipe's settings, the thread count used
    config = config.with_recipe().replace(threads=torch.get_num_threads())
    device = resolve_device(config.device)
    if config.data_dir is not None and not Path(config.data_dir).is_dir():
        raise OptimlabError(f"invalid data_dir {config.data_dir!r}: no such directory")
    if config.out is not None:
        from optimlab.io import check_output_dir

        check_output_dir(config.out)
    own_model = model  # the caller's module, whose architecture joins the identity
    if config.model is not None:
        if model is not None:
            raise OptimlabError(
                f"two models given: the setting model {config.model!r} and a module; valid: "
                "one of them"
            )
        model = registry_model(config.model, config.model_args, seed=config.seed)
    problem = problems.build(
        config.problem,
        seed=config.seed,
        data_dir=config.data_dir,
        download=config.download,
        device=device,
        **config.problem_args,
    )
    if model is not None:
        import dataclasses

        problem = dataclasses.replace(problem, model=model.to(device))
    if config.dtype != "float32":
        _convert(problem, getattr(torch, config.dtype))
    if config.model is not None:
        _check_fits(config, problem)
    if config.fold:
        problem = _fold(problem, config.fold)
    if config.preprocess and problem.splits is not None:  # fitted on train only
        problem.splits = _preprocess(config, problem.splits, restart=resume is False)
    if config.init:
        _initialize(config, problem)
    batch_size = config.batch_size or problem.batch_size
    shares = world is not None and world.reduces and not getattr(world, "pipelined", False)
    if shares and config.order != "full" and batch_size % world.size:
        raise OptimlabError(
            f"invalid nproc: {world.size} processes do not divide the batch size "
            f"{batch_size}; valid: a world size (nproc x nnodes) that divides it"
        )
    total = total_steps(config, problem, batch_size, world)
    batches = None
    if config.batch_schedule is None:
        optimizer, scheduler = build_optimizer(
            config, problem.model.parameters(), total, model=problem.model
        )
    else:  # the LR schedule becomes growing batches (optimlab.run.batching)
        from optimlab.run.batching import increase_batch
        from optimlab.schedules import ScheduleAdapter

        optimizer, _ = make_optimizer(config.optimizer, problem.model.parameters(),
                                      lr=config.lr, hp=config.hp, fast=config.fast,
                                      implementation=config.implementation,
                                      model=problem.model)  # fmt: skip
        lr = float(optimizer.param_groups[0]["lr"])
        by_step, batches = increase_batch(config, problem, batch_size, lr, world)
        scheduler = ScheduleAdapter(optimizer, by_step)
    if callable(getattr(optimizer, "resolve_epochs", None)):  # adam_then_sgd's switch_epoch
        from optimlab.run.batching import epoch_lengths

        optimizer.resolve_epochs(epoch_lengths(config, problem, batch_size, world, batches))
    order: Any = config.order
    if order == "curriculum":  # scored before regularization changes the problem
        from optimlab.run.curriculum import make_curriculum

        order = make_curriculum(config, problem, batch_size, restart=resume is False)
    evaluates = problem.splits is not None and problem.splits.val and not config.no_eval
    monitor = "val_loss" if evaluates else "loss"
    own: list[Any] = []
    if config.reduce_lr_on_plateau is not None:
        from optimlab.run.plateau import build_plateau

        own.append(build_plateau(config.reduce_lr_on_plateau, monitor, problem))
    if config.diagnose:
        from optimlab.train.diagnostics import GradientFlow

        every = config.diagnose_every or DIAGNOSE_EVERY
        own.append(GradientFlow(every=every, out_dir=Path(config.out) / "diagnostics"))
    if config.early_stopping is not None:
        own.append(EarlyStopping(monitor, patience=config.early_stopping,
                                 restore_best_weights=True))  # fmt: skip
    if world is not None and hasattr(world, "callbacks"):
        own.extend(world.callbacks())  # what a world records per epoch (staleness)
    kwargs: dict[str, Any] = {
        "callbacks": [*own, *callbacks],
        "scheduler": scheduler,
        "seed": config.seed,
    }
    if config.regularize:
        problem, kwargs = apply_regularization(
            config.regularize, problem, kwargs, optimizer=optimizer, total_steps=total
        )
    identity = config.identity()
    if own_model is not None:  # the config names the problem, not this architecture
        identity["model"] = repr(own_model)
    trainer = Trainer(
        _train_only(problem) if config.no_eval else problem,
        optimizer,
        epochs=config.epochs,
        steps=config.steps,
        seconds=config.seconds,
        batch_size=batch_size,
        grad_accumulation=config.grad_accumulation,
        batch_repeats=config.batch_repeats,
        batch_size_schedule=batches,
        order=order,
        out_dir=config.out,
        resume=resume,
        checkpoint_every=config.checkpoint_every,
        keep_epoch_checkpoints=config.keep_epochs,
        log_every=config.log_every,
        monitor=monitor,
        progress=progress,
        config=identity,
        world=world,
        **kwargs,
    )
    if config.compile:
        trainer.train_module = torch.compile(trainer.train_module)
    return Run(config=config, problem=problem, optimizer=optimizer, trainer=trainer)


def registry_model(name: str, args: dict[str, Any], *, seed: int) -> torch.nn.Module:
    """Registered model ``name`` built with ``args``, its weights drawn from ``seed`` (in a
    forked RNG, as a problem's model is)."""
    from optimlab.nn import build_model

    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(name, **kwargs)


def _check_fits(config: RunConfig, problem: Any) -> None:
    """A registered model must take the problem's inputs and give outputs its loss
    takes: checked on two training examples, so a mismatch is one clear error."""
    if problem.splits is None:
        raise OptimlabError(
            f"model needs a problem with data; {problem.name!r} is a pure function; valid: "
            "a problem with a dataset"
        )
    x, y = problem.splits.train.x[:2], problem.splits.train.y[:2]
    model = problem.model
    was_training = model.training
    # training mode too (a head that only trains, batch statistics), its buffers restored
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    try:
        with torch.no_grad():
            for training in (False, True):
                model.train(training)
                problem.loss_fn(model(x), y)
    except (RuntimeError, IndexError, ValueError, TypeError, AttributeError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OptimlabError(
            f"model {config.model!r} does not fit problem {problem.name!r} (inputs of shape "
            f"{tuple(x.shape[1:])}): {reason}; valid: a model and model_args for those inputs "
            "and the problem's outputs (optimlab list models shows each model's input)"
        ) from None
    finally:
        model.train(was_training)
        with torch.no_grad():
            for name, value in model.named_buffers():
                value.copy_(buffers[name])


def _train_only(problem: Any) -> Any:
    """What the trainer gets under ``no_eval``: the problem without its validation and
    test splits, so that no epoch ends with an evaluation."""
    import dataclasses

    from optimlab.train.setup import as_setup

    return dataclasses.replace(as_setup(problem), val=None, test=None)


def _convert(problem: Any, dtype: torch.dtype) -> None:
    """The problem's model and floating-point data in ``dtype``, in place (integer class
    labels and index inputs stay as they are)."""
    from optimlab.data.splits import Split

    def cast(t: Any) -> Any:
        return t.to(dtype) if isinstance(t, torch.Tensor) and t.is_floating_point() else t

    problem.model.to(dtype)
    splits = problem.splits
    if splits is not None:
        import dataclasses

        parts = {
            name: Split(cast(getattr(splits, name).x), cast(getattr(splits, name).y))
            for name in ("train", "val", "test")
        }
        problem.splits = dataclasses.replace(
            splits, **parts, mean=cast(splits.mean), std=cast(splits.std)
        )


def _fold(problem: Any, fold: dict[str, int]) -> Any:
    """The problem with its train/val split replaced by fold ``index`` of ``k``."""
    import dataclasses

    from optimlab.data.folds import kfold_splits

    if problem.splits is None:
        raise OptimlabError(f"problem {problem.name!r} has no data to split into folds")
    folds = kfold_splits(problem.splits, fold["k"], seed=fold["seed"])
    return dataclasses.replace(problem, splits=folds[fold["index"]])


def _preprocess(config: RunConfig, splits: Any, restart: bool) -> Any:
    """Fit the input transform on train and store it with the run (``preprocess.pt``),
    so that a resumed run, or a later evaluation, uses the very transform it trained with."""
    from optimlab.data.preprocess import apply_fitted, apply_to_splits, from_state_dict
    from optimlab.io import atomic_torch_save

    path = Path(config.out) / "preprocess.pt" if config.out else None
    if path is not None and path.exists() and not restart:
        return apply_fitted(splits, from_state_dict(torch.load(path, weights_only=True)))
    splits, transform = apply_to_splits(splits, config.preprocess)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_torch_save(transform.state_dict(), path)
    return splits


def _initialize(config: RunConfig, problem: Any) -> None:
    """Re-initialize the model with ``config.init`` (LSUV reads the first training batch),
    seeded by the run's seed; training reseeds from it afterwards."""
    from optimlab.nn import init

    record = init.INITIALIZERS.get(config.init)
    data = None
    if record.needs_data:
        if problem.splits is None:
            raise OptimlabError(f"init {record.name!r} needs a problem with training data")
        data = problem.splits.train.x[: problem.batch_size]
    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    params = list(problem.model.parameters())
    if params and params[0].device.type != "cpu":
        generator = None
        torch.manual_seed(config.seed)
    with torch.no_grad():
        init.apply(problem.model, record.name, data=data, generator=generator)
