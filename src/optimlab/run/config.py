"""``RunConfig``: every setting of one training run, typed and validated in one place.

One record is read from the command line (:meth:`RunConfig.from_cli`), a TOML run file
(:func:`load_toml`), a study's contender (:meth:`RunConfig.from_study_entry`) or JSON
(:meth:`RunConfig.from_json`), and turned into a run by :func:`optimlab.run.build_run`.
Each field carries its help text and whether it changes the run's numbers; the
command line's options and the TOML keys are generated from the fields, so adding a
run option is one field here and one line in the builder.

:meth:`RunConfig.identity` is what a run's numbers depend on, as plain JSON: the
trainer stores it in every checkpoint and refuses to resume under a different one, and
:meth:`RunConfig.key` (its hash) names the run's directory in a study. The thread count
is part of it, because a CPU reduction split over another number of threads rounds
differently. So are the parallel method and the number of processes (``nproc`` per
machine times ``nnodes``); where the processes meet is given at the command line only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from optimlab.errors import OptimlabError, check_range, unknown_name
from optimlab.parallel.methods import (
    DEFAULT_EASGD_RHO,
    DEFAULT_LOCAL_SGD_PERIOD,
    method,
    options_of,
)
from optimlab.parallel.methods import METHODS as PARALLEL

DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
DTYPES = ("float32", "float64")
# Whose code runs the update rule: optimlab's, or torch.optim's class of the same rule
# (a reference run, e.g. in ``optimlab bench accuracy``).
IMPLEMENTATIONS = ("optimlab", "torch")
PLATEAU_KEYS = ("factor", "patience", "min_delta", "cooldown", "min_lr", "monitor", "mode",
                "threshold_mode")  # fmt: skip
CURRICULUM_KEYS = ("start", "epochs", "pacing", "stages", "shuffle", "scoring",
                   "scoring_epochs")  # fmt: skip
BATCH_SCHEDULES = ("increase",)


def _opt(default: Any = None, help: str = "", identity: bool = True, **meta: Any) -> Any:
    """A field with its command-line help and whether it is part of the run's identity."""
    kind = dict if isinstance(default, dict) else None
    metadata = {"help": help, "identity": identity, **meta}
    if kind is dict:
        return field(default_factory=dict, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class RunConfig:
    """One training run: problem, optimizer, schedule, budget, regularization, where.

    ``None`` means "the default": the problem's batch size and epochs, the optimizer's
    registry defaults (its learning rate included), torch's thread count. Epochs are
    counted from 1 wherever they are shown or stored.
    """

    problem: str = _opt(help="problem name (optimlab list problems)", metavar="NAME")
    optimizer: str | None = _opt(help="optimizer name (optimlab list optimizers; with --recipe "
                                 "the recipe's by default)", metavar="NAME")  # fmt: skip
    lr: float | None = _opt(help="learning rate (default: the optimizer's)")
    hp: dict[str, Any] = _opt({}, help="optimizer argument", metavar="KEY=VALUE")
    schedule: str | None = _opt(help="LR schedule name (optimlab list schedules)")
    schedule_args: dict[str, Any] = _opt({}, help="schedule parameter", metavar="KEY=VALUE")
    epochs: int | None = _opt(help="epochs (default: the problem's)")
    steps: int | None = _opt(help="stop after this many optimizer steps")
    seconds: float | None = _opt(help="stop after this much training time")
    batch_size: int | None = _opt(help="batch size (default: the problem's)")
    grad_accumulation: int = _opt(1, help="micro-batches per optimizer step")
    seed: int = _opt(0, help="seed of the model, data split and order")
    threads: int | None = _opt(help="torch CPU threads (default: torch's, recorded)")
    order: str = _opt("random", help="example order: random, shuffle_once, cyclic, full, "
                      "curriculum")  # fmt: skip
    preprocess: str | None = _opt(help="input transform fitted on train: standardize, "
                                  "mean_image, channel_mean, pca_whiten, zca_whiten, "
                                  "none")  # fmt: skip
    init: str | None = _opt(help="re-initialize the model's Linear/Conv weights by name")
    regularize: dict[str, Any] = _opt({}, help="regularization options", cli=False)
    fold: dict[str, int] | None = _opt(help="k-fold split {k, index, seed}", cli=False)
    early_stopping: int | None = _opt(help="stop early after PATIENCE epochs", metavar="PATIENCE")
    fast: bool = _opt(False, help="run the optimizer's compiled fast path (same math)")
    log_every: int = _opt(50, help="sample the loss every N steps")
    diagnose: bool = _opt(False, help="record per-layer gradient flow into OUT/diagnostics")
    diagnose_every: int | None = _opt(help="sample the gradient flow every K steps (50)")
    # Settings added after runs were first recorded: left out of the identity while they
    # hold their defaults, so the keys and checkpoints of earlier runs stay valid.
    dtype: str = _opt("float32", help="floating-point type of the model and inputs: "
                      "float32, float64", later=True)  # fmt: skip
    batch_repeats: int = _opt(1, help="feed each batch for K consecutive steps (quasi-Newton "
                              "methods on mini-batches)", metavar="K", later=True)  # fmt: skip
    # Parallel runs (optimlab.parallel): how many processes and how they combine their
    # work change the numbers; where they meet (--rdzv-endpoint, --node-rank) does not.
    parallel: str = _opt("none", help="parallel method: " + ", ".join(PARALLEL), later=True)
    nproc: int | None = _opt(help="worker processes per machine (1; under torchrun: its own)",
                             later=True)  # fmt: skip
    nnodes: int | None = _opt(help="machines taking part (1; under torchrun: its own)",
                              later=True)  # fmt: skip
    local_sgd_period: int | None = _opt(
        help=f"local_sgd: average the models every N steps ({DEFAULT_LOCAL_SGD_PERIOD})",
        later=True,
    )
    local_sgd_warmup: int | None = _opt(
        help="local_sgd: synchronous steps before local SGD starts (post-local SGD; 0)",
        later=True,
    )
    servers: int | None = _opt(
        help="downpour, delay_tolerant, easgd_async: server ranks holding the parameters "
        "in shards (1)", later=True,
    )  # fmt: skip
    n_fetch: int | None = _opt(help="downpour, delay_tolerant: fetch every N steps (1)",
                               later=True)  # fmt: skip
    n_push: int | None = _opt(help="downpour, delay_tolerant: push every N steps (1)",
                              later=True)  # fmt: skip
    replica_lr: float | None = _opt(
        help="downpour, delay_tolerant: replicas' own SGD step (0: none)", later=True
    )
    easgd_rho: float | None = _opt(
        help=f"easgd, easgd_async: elastic strength, alpha = lr * rho ({DEFAULT_EASGD_RHO:g})",
        later=True,
    )
    easgd_period: int | None = _opt(help="easgd, easgd_async: exchange every N steps, tau (1)",
                                    later=True)  # fmt: skip
    easgd_momentum: float | None = _opt(
        help="easgd, easgd_async: EAMSGD's momentum delta (0: EASGD)", later=True
    )
    micro_batches: int | None = _opt(
        help="pipeline: micro-batches per batch, GPipe's M; it divides the batch size (4)",
        later=True,
    )
    simulate_delay: str | None = _opt(
        help="asynchronous methods in one process with a seeded staleness: fixed:K, "
        "uniform:K or trace:PATH", metavar="SPEC", later=True,
    )  # fmt: skip
    # The same math run by other code (other rounding), and a history without evaluation.
    implementation: str = _opt(
        "optimlab",
        help="whose code runs the update rule: optimlab, or torch (torch.optim's class)",
        later=True,
    )
    compile: bool = _opt(
        False, help="torch.compile the model for training (evaluation runs it uncompiled)",
        later=True,
    )  # fmt: skip
    no_eval: bool = _opt(
        False, help="skip the validation and test evaluation after each epoch (timing runs)",
        later=True,
    )  # fmt: skip
    # Pieces of the training loop (optimlab.run.plateau, .curriculum, .batching, .recipe).
    reduce_lr_on_plateau: dict[str, Any] | None = _opt(
        help="reduce the LR when the monitored metric stalls (Keras' rule): 'on' for the "
        f"defaults, or a setting ({', '.join(PLATEAU_KEYS)}), repeated",
        metavar="KEY=VALUE",
        later=True,
    )
    curriculum: dict[str, Any] = _opt(
        {}, help=f"--order curriculum setting ({', '.join(CURRICULUM_KEYS)})",
        metavar="KEY=VALUE", later=True,
    )  # fmt: skip
    batch_schedule: str | None = _opt(
        help="grow the batch where the LR schedule decays, instead of decaying the LR: "
        + ", ".join(BATCH_SCHEDULES),
        later=True,
    )
    max_batch: int | None = _opt(
        help="batch_schedule: the largest batch, after which the LR decays (N/10)", later=True
    )
    recipe: bool = _opt(False, help="fill unset settings from the problem's published recipe",
                        later=True)  # fmt: skip
    problem_args: dict[str, Any] = _opt(
        {}, help="problem builder option, e.g. activation=sigmoid (optimlab list problems "
        "names each problem's options)", metavar="KEY=VALUE", later=True,
    )  # fmt: skip
    model: str | None = _opt(
        help="train this registered model (optimlab list models) on the problem's data, "
        "loss and metrics instead of the problem's own", metavar="NAME", later=True,
    )  # fmt: skip
    model_args: dict[str, Any] = _opt(
        {}, help="model builder argument, e.g. stem=cifar (needs --model)",
        metavar="KEY=VALUE", later=True,
    )  # fmt: skip
    # Where and how: these do not change the numbers, so a resumed run may change them.
    out: str | None = _opt(help="output directory: checkpoints, metrics, summary.json",
                           identity=False)  # fmt: skip
    data_dir: str | None = _opt(help="where datasets are looked for", identity=False)
    download: bool = _opt(False, help="download a missing dataset", identity=False)
    device: str = _opt("auto", help="cpu, cuda, cuda:N, mps or auto", identity=False)
    checkpoint_every: int | None = _opt(help="also checkpoint every N steps", identity=False)
    keep_epochs: bool = _opt(False, help="also keep every epoch's weights", identity=False)

    def __post_init__(self) -> None:
        for f in fields(self):  # plain containers, so that equal configs compare equal
            value = getattr(self, f.name)
            if isinstance(value, dict):
                object.__setattr__(self, f.name, _plain(value))
        self._check_required()
        self._check_types()
        self._check_values()

    # ------------------------------------------------------------------ checks
    def _check_required(self) -> None:
        from optimlab import optim, problems

        for name, valid in (("problem", problems.available), ("optimizer", optim.available)):
            if not getattr(self, name) and not (name == "optimizer" and self.recipe):
                raise OptimlabError(f"missing {name}; valid {name}s: {', '.join(valid())}")

    def _check_types(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            want = _base_type(f.type)
            if value is None and "None" in str(f.type):
                continue
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, f.name, float(value))
                continue
            if not isinstance(value, want) or (want is int and isinstance(value, bool)):
                raise OptimlabError(f"invalid {f.name}: {value!r}; expected {_type_words(f.type)}")

    def _check_values(self) -> None:
        from optimlab import optim, problems, schedules
        from optimlab.data.loader import ALL_ORDERS

        problem = problems.PROBLEMS.get(self.problem)  # unknown names list the valid ones
        valid_args = problem.options()
        for key in self.problem_args:
            if key not in valid_args:
                raise OptimlabError(
                    f"invalid problem_args key {key!r} for problem {problem.name!r}; valid: "
                    f"{', '.join(valid_args) or 'none (it takes no options)'}"
                )
        self._check_model()
        if self.recipe:
            self._check_recipe()
            if self.optimizer is None:
                return  # the recipe gives the optimizer; the filled copy passed every check
        record = optim.get(self.optimizer)
        if self.lr is not None and (not math.isfinite(self.lr) or self.lr < 0):
            raise OptimlabError(f"invalid lr: {self.lr!r}; valid: a finite number >= 0")
        # a wrapper (lookahead, sam) takes its chosen base's arguments, not its default's
        base = self.hp.get("base") if record.wrapper else None
        valid_hp = record.hyperparameters(base)
        over = f" over base {base or valid_hp['base']!r}" if record.wrapper else ""
        for key in self.hp:
            if key == "lr":
                raise OptimlabError("give the learning rate as lr, not as an optimizer argument")
            if key not in valid_hp:
                raise OptimlabError(
                    f"unknown argument {key!r} of optimizer {record.name!r}{over}; "
                    f"valid: {', '.join(sorted(k for k in valid_hp if k != 'lr'))}"
                )
        if self.schedule is not None:
            rec = schedules.record(self.schedule)
            for key in self.schedule_args:
                if key not in rec.defaults:
                    raise OptimlabError(
                        f"invalid parameter {key!r} for schedule {rec.name!r}; "
                        f"valid parameters: {', '.join(rec.defaults)}"
                    )
        elif self.schedule_args:
            raise OptimlabError("schedule arguments need a schedule name (--schedule NAME)")
        for name in ("epochs", "steps", "batch_size", "grad_accumulation", "threads",
                     "log_every", "diagnose_every", "checkpoint_every",
                     "batch_repeats"):  # fmt: skip
            value = getattr(self, name)
            if value is not None:
                check_range(name, value, 1)
        check_range("seed", self.seed, 0)
        if self.early_stopping is not None:
            check_range("early_stopping", self.early_stopping, 0)
        if self.seconds is not None and not (math.isfinite(self.seconds) and self.seconds > 0):
            raise OptimlabError(f"invalid seconds: {self.seconds!r}; valid: a finite number > 0")
        if self.order not in ALL_ORDERS:
            raise OptimlabError(
                f"invalid order {self.order!r}; valid orders: {', '.join(ALL_ORDERS)}"
            )
        if self.batch_repeats > 1 and self.grad_accumulation > 1:
            raise OptimlabError(
                f"invalid batch_repeats: {self.batch_repeats} with grad_accumulation "
                f"{self.grad_accumulation}; valid: batch_repeats 1, or grad_accumulation 1 "
                "(a repeated batch is one whole batch)"
            )
        if self.preprocess is not None:
            from optimlab.data.preprocess import TRANSFORMS

            if self.preprocess not in TRANSFORMS:
                raise unknown_name("preprocessing", self.preprocess, TRANSFORMS)
        if self.init is not None:
            from optimlab.nn.init import INITIALIZERS

            INITIALIZERS.get(self.init)
        if self.diagnose_every is not None and not self.diagnose:
            raise OptimlabError("diagnose_every needs diagnose (--diagnose)")
        if self.diagnose and not self.out:
            raise OptimlabError("diagnose needs an output directory (--out DIR)")
        if not _valid_device(self.device):
            raise OptimlabError(f"invalid device {self.device!r}; valid: {', '.join(DEVICES)}")
        if self.regularize:
            from optimlab.regularize.options import validate

            validate(dict(self.regularize))
            self._check_adversarial()
        if self.fold is not None and set(self.fold) != {"k", "index", "seed"}:
            raise OptimlabError(f"invalid fold {self.fold!r}; valid: a table of k, index, seed")
        if self.dtype not in DTYPES:
            raise OptimlabError(f"invalid dtype {self.dtype!r}; valid: {', '.join(DTYPES)}")
        self._check_implementation(record)
        self._check_parallel()
        self._check_loop_settings()

    def _check_model(self) -> None:
        """``model`` names a registered model; ``model_args`` are its builder's arguments."""
        if self.model is None:
            if self.model_args:
                raise OptimlabError("model_args need a model (--model NAME)")
            return
        import inspect

        from optimlab.nn import MODELS

        record = MODELS.get(self.model)  # unknown names list the valid ones
        params = inspect.signature(record.builder).parameters.values()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            return  # the builder passes its arguments on; it checks them itself
        valid = [p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL]
        for key in self.model_args:
            if key not in valid:
                raise OptimlabError(
                    f"invalid model_args key {key!r} for model {record.name!r}; valid: "
                    f"{', '.join(valid) or 'none (it takes no arguments)'}"
                )

    def _check_implementation(self, record: Any) -> None:
        from optimlab import optim

        if self.implementation not in IMPLEMENTATIONS:
            raise OptimlabError(
                f"invalid implementation {self.implementation!r}; valid: "
                f"{', '.join(IMPLEMENTATIONS)}"
            )
        if self.implementation != "torch":
            return
        if record.torch_class is None:
            valid = [n for n in optim.available() if optim.get(n).torch_class is not None]
            raise OptimlabError(
                f"optimizer {record.name!r} has no torch.optim class; valid optimizers with "
                f"implementation torch: {', '.join(valid)}"
            )
        if self.fast:
            raise OptimlabError(
                "fast is not available with implementation torch; valid: fast with "
                "implementation optimlab (the compiled path of optimlab's own rule)"
            )
        accepted = torch_arguments(record.torch_class)
        for key in self.hp:
            if key not in accepted:
                raise OptimlabError(
                    f"argument {key!r} of optimizer {record.name!r} has no counterpart in "
                    f"torch.optim.{record.torch_class}; valid: {', '.join(sorted(accepted))}"
                )

    def _check_parallel(self) -> None:
        from optimlab import problems

        record = method(self.parallel)
        for name in ("nproc", "nnodes", "local_sgd_period", "servers", "n_fetch", "n_push",
                     "easgd_period", "micro_batches"):  # fmt: skip
            value = getattr(self, name)
            if value is not None:
                check_range(name, value, 1)
        if self.local_sgd_warmup is not None:
            check_range("local_sgd_warmup", self.local_sgd_warmup, 0)
        for name in ("replica_lr", "easgd_rho"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise OptimlabError(f"invalid {name}: {value!r}; valid: a finite number >= 0")
        if self.easgd_momentum is not None:
            check_range("easgd_momentum", self.easgd_momentum, 0.0, 1.0, high_open=True)
        for name in _METHOD_SETTINGS:
            takers = options_of(name)
            if getattr(self, name) is not None and self.parallel not in takers:
                raise OptimlabError(
                    f"{name} needs parallel {' or '.join(takers)} (--parallel {takers[0]})"
                )
        workers = self.world_size
        if self.parallel == "none" and workers > 1:
            raise OptimlabError(
                f"invalid nproc: {workers} processes with parallel none; valid: 1 process, "
                f"or a parallel method ({', '.join(m for m in PARALLEL if m != 'none')})"
            )
        if self.parallel == "none":
            return
        if self.parallel == "hogwild" and (self.nnodes or 1) > 1:
            raise OptimlabError(
                f"invalid nnodes: {self.nnodes} with parallel hogwild; valid: 1 (its "
                "processes share one machine's memory)"
            )
        simulated = self.simulate_delay is not None
        if simulated:
            self._check_simulation(workers)
        elif record.servers and workers < (self.servers or 1) + 1:
            least = (self.servers or 1) + 1
            raise OptimlabError(
                f"invalid nproc: {workers}; parallel {self.parallel} needs at least {least} "
                f"processes ({least - 1} server{'s' if least > 2 else ''} and 1 replica or "
                f"more); valid: nproc >= {least}, or simulate_delay in one process"
            )
        refused = {
            "diagnose": self.diagnose,
            "fast": self.fast and self.parallel == "hogwild",
            "seconds": self.seconds is not None
            and (record.lockstep or self.parallel == "pipeline"),
            "grad_accumulation": self.grad_accumulation > 1
            and self.parallel in ("local_sgd", "easgd", "pipeline"),
            "early_stopping": self.early_stopping is not None
            and (self.parallel == "hogwild" or (record.servers and not simulated)),
            "schedule": self.schedule is not None
            and self.parallel in ("downpour", "delay_tolerant"),
            "batch_repeats": self.batch_repeats > 1,
            "compile": self.compile,
            "checkpoint_every": self.checkpoint_every is not None
            and record.servers
            and not simulated,
        }
        for name, given in refused.items():
            if given:
                raise OptimlabError(
                    f"{name} is not available with parallel {self.parallel}; valid: "
                    f"{_PARALLEL_LIMITS[name]}"
                )
        if self.parallel in ("downpour", "delay_tolerant"):
            self._check_server_rule()
        if self.parallel.startswith("easgd"):
            self._check_easgd(workers)
        batch = self.batch_size or problems.PROBLEMS.get(self.problem).batch_size
        if self.parallel == "pipeline":
            self._check_pipeline(workers, batch)
        if record.lockstep and self.order != "full" and batch and batch % workers:
            raise OptimlabError(
                f"invalid nproc: {workers} processes do not divide the batch size {batch}; "
                "valid: a world size (nproc x nnodes) that divides the global batch, which "
                "the processes share equally"
            )

    def _check_recipe(self) -> None:
        """Refuse ``recipe`` for a problem without one; check the filled settings."""
        from optimlab.run.recipe import recipe_changes, recipe_of, with_recipe_problems

        recipe = recipe_of(self.problem)
        if recipe is None:
            raise OptimlabError(
                f"invalid recipe: problem {self.problem!r} has none; valid: a problem with a "
                f"published recipe ({', '.join(with_recipe_problems()) or 'none'})"
            )
        changes = recipe_changes(self.to_json(), recipe)
        if changes:
            self.replace(**changes)

    def with_recipe(self) -> RunConfig:
        """This configuration with its problem's recipe filled in where ``recipe`` is on
        (:mod:`optimlab.run.recipe`); itself otherwise."""
        from optimlab.run.recipe import recipe_changes, recipe_of

        if not self.recipe:
            return self
        changes = recipe_changes(self.to_json(), recipe_of(self.problem))
        return self.replace(**changes) if changes else self

    def _check_loop_settings(self) -> None:
        """``reduce_lr_on_plateau``, ``curriculum`` and ``batch_schedule``: names, values,
        and the settings each cannot be combined with."""
        from optimlab.run.curriculum import check_curriculum
        from optimlab.run.plateau import check_plateau

        if self.reduce_lr_on_plateau is not None:
            check_plateau(self.reduce_lr_on_plateau)
            if self.schedule is not None or "snapshots" in self.regularize:
                which = ("a schedule: it" if self.schedule is not None
                         else "snapshots: their cyclic schedule")  # fmt: skip
                raise OptimlabError(
                    f"reduce_lr_on_plateau is not available with {which} writes the LR every "
                    "step and would undo each reduction; valid: one or the other"
                )
        if self.curriculum and self.order != "curriculum":
            raise OptimlabError("curriculum settings need order curriculum (--order curriculum)")
        if self.order == "curriculum":
            check_curriculum(self.curriculum)
        if self.batch_schedule is not None:
            if self.batch_schedule not in BATCH_SCHEDULES:
                raise OptimlabError(f"invalid batch_schedule {self.batch_schedule!r}; valid: "
                                    f"{', '.join(BATCH_SCHEDULES)}")  # fmt: skip
            if self.schedule is None:
                raise OptimlabError(
                    f"batch_schedule {self.batch_schedule} needs an LR schedule to turn into "
                    "batch sizes (--schedule step, multistep, ...)"
                )
            if self.order == "full":
                raise OptimlabError("batch_schedule needs mini-batches; valid orders: "
                                    "random, shuffle_once, cyclic, curriculum")  # fmt: skip
        if self.max_batch is not None:
            if self.batch_schedule is None:
                raise OptimlabError("max_batch needs a batch_schedule (--batch-schedule increase)")
            from optimlab import problems

            batch = self.batch_size or problems.PROBLEMS.get(self.problem).batch_size or 1
            check_range("max_batch", self.max_batch, batch)
        # What each setting runs with. A plateau rule needs every process to see the same
        # validation loss and to own its LR: Hogwild!'s process 0 alone evaluates, and
        # the server methods apply the optimizer on the servers (so a proximal step after
        # a replica's optimizer would threshold weights the next fetch overwrites).
        allowed = (
            ("order curriculum", self.order == "curriculum", ("none",)),
            ("l1_method proximal", self.regularize.get("l1_method") == "proximal",
             ("none", "sync", "local_sgd", "hogwild")),
            ("batch_schedule", self.batch_schedule is not None, ("none",)),
            ("reduce_lr_on_plateau", self.reduce_lr_on_plateau is not None,
             ("none", "sync", "local_sgd")),
        )  # fmt: skip
        for name, given, methods in allowed:
            if given and self.parallel not in methods:
                valid = ", ".join(methods[:-1]) + " or " * (len(methods) > 1) + methods[-1]
                raise OptimlabError(
                    f"{name} is not available with parallel {self.parallel}; valid: "
                    f"parallel {valid}"
                )

    def _check_adversarial(self) -> None:
        # Attacks measure epsilon in the data's units, which a fitted transform changes;
        # their extra passes and robust evaluation run in one process.
        given = [k for k in ("adversarial", "robust_epsilon") if k in self.regularize]
        if given and self.preprocess not in (None, "none"):
            raise OptimlabError(
                f"{given[0]} is not available with preprocess {self.preprocess}; valid: "
                "no preprocess (epsilon is measured in the data's own units)"
            )
        if given and self.parallel != "none":
            raise OptimlabError(
                f"{given[0]} is not available with parallel {self.parallel}; valid: a run "
                "with parallel none"
            )

    def _check_pipeline(self, workers: int, batch: int | None) -> None:
        if workers < 2:
            raise OptimlabError(
                f"invalid nproc: {workers}; parallel pipeline needs at least 2 processes "
                "(one stage of the model each); valid: nproc x nnodes >= 2"
            )
        micro = self.micro_batches
        if micro is not None and self.order != "full" and batch and batch % micro:
            raise OptimlabError(
                f"invalid micro_batches: {micro} does not divide the batch size {batch}; "
                "valid: a divisor of the batch size (the micro-batches are equal)"
            )
        refused = sorted(set(self.regularize) - set(_PIPELINE_REGULARIZE))
        if refused:
            raise OptimlabError(
                f"{refused[0]} is not available with parallel pipeline (it reads every "
                f"stage's parameters); valid regularization: {', '.join(_PIPELINE_REGULARIZE)}"
            )

    def _check_simulation(self, workers: int) -> None:
        from optimlab.parallel.delay import parse_delay

        parse_delay(self.simulate_delay or "")
        if workers > 1:
            raise OptimlabError(
                f"invalid nproc: {workers} with simulate_delay; valid: 1 (the delay model "
                "replays the method in one process)"
            )
        if self.servers is not None:
            raise OptimlabError("servers is not available with simulate_delay; valid: a "
                                "launched run (the simulated server is one)")  # fmt: skip

    def _check_server_rule(self) -> None:
        """The server applies the run's optimizer to shards of the flat parameter
        vector: only rules that act coordinate by coordinate mean the same there."""
        from optimlab.parallel.rules import SERVER_OPTIMIZERS, check_server_optimizer

        if self.parallel == "delay_tolerant":
            from optimlab.parallel.delay_tolerant import check_adagrad_settings

            check_adagrad_settings(self.optimizer, self.hp)
        elif self.optimizer not in SERVER_OPTIMIZERS:
            raise OptimlabError(
                f"invalid optimizer {self.optimizer!r} for parallel {self.parallel}: the "
                "server applies it to shards of the parameters, coordinate by coordinate; "
                f"valid: {', '.join(SERVER_OPTIMIZERS)}"
            )
        else:
            check_server_optimizer(self.hp)

    def _check_easgd(self, workers: int) -> None:
        from optimlab.parallel.methods import elastic_alpha

        alpha = elastic_alpha(self)
        rho = DEFAULT_EASGD_RHO if self.easgd_rho is None else self.easgd_rho
        lr = alpha / rho if rho else math.inf
        if alpha > 1:
            raise OptimlabError(
                f"invalid easgd_rho: {rho:g}; alpha = lr * rho = {alpha:g} exceeds 1 (each "
                "exchange moves a worker past the center); valid: rho <= 1 / lr"
            )
        if self.parallel == "easgd" and workers * alpha > 1:
            raise OptimlabError(
                f"invalid easgd_rho: {rho:g}; beta = processes * alpha = {workers * alpha:g} "
                "exceeds 1 (the center would overshoot the workers' average); valid: rho "
                f"<= 1 / (processes * lr) = {1 / (workers * float(lr)):g}"
            )
        if (self.easgd_momentum or 0) > 0 and self.optimizer != "sgd":
            raise OptimlabError(
                f"invalid optimizer {self.optimizer!r} with easgd_momentum (EAMSGD): the "
                "momentum is EAMSGD's own, on plain SGD steps; valid: sgd"
            )

    @property
    def world_size(self) -> int:
        """The number of processes in the run, ``nproc`` per machine times ``nnodes``."""
        return (self.nproc or 1) * (self.nnodes or 1)

    # ------------------------------------------------------------- identity
    def identity(self) -> dict[str, Any]:
        """The settings the run's numbers depend on, as plain JSON values (a setting
        added later only when it differs from its default)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.metadata["identity"]
            and not (f.metadata.get("later") and getattr(self, f.name) == _default(f))
        }

    def key(self) -> str:
        """A short stable hash of :meth:`identity`: the run's name in a study."""
        text = json.dumps(self.identity(), sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with ``changes`` applied (and checked)."""
        return dataclasses.replace(self, **changes)

    # --------------------------------------------------------- conversions
    def to_json(self) -> dict[str, Any]:
        """Every field as plain JSON values (tuples become lists)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str = "run configuration") -> RunConfig:
        """The inverse of :meth:`to_json`; unknown keys are an error naming ``source``."""
        unknown = sorted(set(data) - set(setting_names()))
        if unknown:
            raise OptimlabError(
                f"unknown setting(s) {', '.join(unknown)} in {source}; "
                f"valid settings: {', '.join(setting_names())}"
            )
        return cls(**dict(data))

    @classmethod
    def from_cli(cls, given: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> RunConfig:
        """The settings given on the command line (``None`` = not given) over ``base``
        (e.g. a TOML run file's), over the defaults. Tables (``hp``, ``schedule_args``,
        ...) merge key by key; an ``lr`` among the optimizer arguments is the learning rate."""
        settings = dict(base or {})
        for key, value in given.items():
            if value is None:
                continue
            if isinstance(value, dict):  # tables merge key by key
                settings[key] = {**(settings.get(key) or {}), **value}
            else:
                settings[key] = value
        hp = dict(settings.get("hp", {}))
        if "lr" in hp:
            lr = hp.pop("lr")
            if settings.get("lr") is not None and settings["lr"] != lr:
                raise OptimlabError("lr given both as --lr and as --hp lr=...; give it once")
            settings["lr"], settings["hp"] = lr, hp
        return cls.from_json(settings, "the command line")

    @classmethod
    def from_study_entry(
        cls,
        *,
        problem: str,
        optimizer: str,
        params: Mapping[str, Any],
        schedule: Mapping[str, Any] | None = None,
        regularize: Mapping[str, Any] | None = None,
        budget: Mapping[str, Any] | None = None,
        batch_size: int | None = None,
        seed: int = 0,
        threads: int | None = None,
        fold: Mapping[str, int] | None = None,
        run: Mapping[str, Any] | None = None,
    ) -> RunConfig:
        """One run of a study: a contender's ``params`` (hyperparameters, lr among them),
        ``schedule = {name, params}`` and ``regularize`` table, the study's budget
        (``epochs``/``steps``/``seconds``), batch size and threads, a seed, and the
        other run settings of the study's ``run`` tables (``run``, by field name)."""
        hp = dict(params)
        lr = hp.pop("lr", None)
        budget = dict(budget or {})
        return cls(
            problem=problem,
            optimizer=optimizer,
            lr=lr,
            hp=hp,
            schedule=schedule["name"] if schedule else None,
            schedule_args=dict(schedule.get("params", {})) if schedule else {},
            regularize=dict(regularize or {}),
            epochs=budget.get("epochs"),
            steps=budget.get("steps"),
            seconds=budget.get("seconds"),
            batch_size=batch_size,
            seed=seed,
            threads=threads,
            fold=dict(fold) if fold else None,
            **dict(run or {}),
        )

    @property
    def params(self) -> dict[str, Any]:
        """The optimizer's arguments as a study writes them (``hp``, with ``lr`` when set)."""
        return {**self.hp, **({"lr": self.lr} if self.lr is not None else {})}


# What each refused combination of a setting with a parallel method allows instead.
_PARALLEL_LIMITS = {
    "diagnose": "diagnose in a run with parallel none",
    "fast": "the default (eager) update, which writes the shared tensors in place",
    "seconds": "epochs or steps (every process must stop at the same step)",
    "grad_accumulation": "1 (each local step takes one batch)",
    "early_stopping": "a run with parallel none, sync, local_sgd or easgd (only one process "
    "evaluates)",
    "batch_repeats": "1 (each process takes its own share of every batch once)",
    "schedule": "a constant lr (the server applies every update with it)",
    "compile": "a run with parallel none",
    "checkpoint_every": "checkpoints at epoch ends (the only points where the servers and "
    "every replica agree)",
}

# Settings that belong to some parallel methods only (see optimlab.parallel.methods).
_METHOD_SETTINGS = ("local_sgd_period", "local_sgd_warmup", "servers", "n_fetch", "n_push",
                    "replica_lr", "easgd_rho", "easgd_period", "easgd_momentum",
                    "micro_batches", "simulate_delay")  # fmt: skip

# Regularization a pipeline runs: what acts on a batch or inside a layer, not what reads
# every stage's parameters (penalties, constraints, weight averages).
_PIPELINE_REGULARIZE = ("dropout", "augment", "mixup", "snapshots")


def torch_arguments(torch_class: str) -> set[str]:
    """The keyword arguments of ``torch.optim.<torch_class>`` besides its parameters."""
    import inspect

    import torch

    signature = inspect.signature(getattr(torch.optim, torch_class))
    return {name for name in signature.parameters if name != "params"}


def _default(f: dataclasses.Field) -> Any:
    """A field's default value, a table's (``default_factory``) included."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def setting_names() -> list[str]:
    return [f.name for f in fields(RunConfig)]


def cli_fields() -> list[dataclasses.Field]:
    """The fields the command line offers as ``--name`` options, in declaration order."""
    return [f for f in fields(RunConfig) if f.metadata.get("cli", True)]


def load_toml(path: str | Path) -> dict[str, Any]:
    """The settings of a TOML run file (keys as the long options with underscores, plus
    ``[hp]``, ``[schedule_args]`` and ``[regularize]`` tables), not yet checked."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OptimlabError(f"config file {str(p)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise OptimlabError(f"cannot read config file {str(p)!r}: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise OptimlabError(f"config file {str(p)!r} is not valid TOML: {err}") from None
    unknown = sorted(set(data) - set(setting_names()))
    if unknown:
        raise OptimlabError(
            f"unknown setting(s) {', '.join(unknown)} in {str(p)!r}; "
            f"valid settings: {', '.join(setting_names())}"
        )
    types = {f.name: f.type for f in fields(RunConfig)}
    for key, value in data.items():
        want = _base_type(types[key])
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise OptimlabError(
                f"invalid {key} in {str(p)!r}: {value!r}; expected {_type_words(types[key])}"
            )
    return _plain(data)


def _plain(value: Any) -> Any:
    """Lists (TOML, JSON) and tuples (Python literals) alike as lists, dicts copied."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


_TYPES = {"str": str, "float": float, "int": int, "bool": bool, "dict": dict}


def _base_type(annotation: Any) -> type:
    """``"float | None"`` -> float; ``"dict[str, Any]"`` -> dict (annotations are text)."""
    text = str(annotation).split("|")[0].strip()
    return _TYPES[text.split("[")[0]]


def _type_words(annotation: Any) -> str:
    kind = _base_type(annotation)
    words = {str: "a string", float: "a number", int: "a whole number", bool: "true or false",
             dict: "a table"}[kind]  # fmt: skip
    return words + (" (or nothing)" if "None" in str(annotation) else "")


def _valid_device(name: str) -> bool:
    if name in ("auto", "cpu", "cuda", "mps"):
        return True
    prefix, _, index = name.partition(":")
    return prefix == "cuda" and index.isdigit()
