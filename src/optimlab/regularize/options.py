"""Regularization switched on by name: one plain dict of options, the same keys for
``optimlab train``'s options, a run file's ``[regularize]`` table and study files.

Keys (all optional): ``l1``, ``l2`` (penalty factors >= 0, Keras convention: l2 adds
``l2 * sum(w**2)``), ``l1_method`` (``"penalty"``, the default: ``l1 * sum(|w|)`` added
to the loss; ``"proximal"``: soft-thresholding at ``lr * l1`` after each step,
:mod:`optimlab.regularize.proximal`), ``l1_start_step`` / ``l1_start_epoch`` (int >= 0,
one of them: L1 switched on only from that step or epoch, counted from 0,
:mod:`optimlab.regularize.penalty_schedule`), ``kl_sparsity`` (beta > 0: the sparse
autoencoder's KL penalty on every ``nn.Sigmoid`` output) with ``kl_target`` (rho in
(0, 1), 0.05; :mod:`optimlab.regularize.sparsity`), ``dropout`` (rate in [0, 1) after
every hidden activation), ``max_norm`` (r > 0), ``augment`` (a spec such as
``"flip,crop:4"``, see ``optimlab.data.augment_presets.SPEC_OPS``), ``mixup`` (Beta
alpha > 0), ``snapshots``
(number of cosine cycles M >= 1; sets a SnapshotCycles schedule unless one is given),
``swa`` (fraction of the budget after which averaging starts, in [0, 1)), ``ema``
(decay in (0, 1)), and adversarial training and robust accuracy
(:mod:`optimlab.regularize.adversarial_training`): ``adversarial`` (``"fgsm"`` or
``"pgd"``) with ``adversarial_epsilon`` (> 0, required), ``adversarial_norm``
(``"linf"``, the default, or ``"l2"``), ``adversarial_fraction`` (of each batch, in
(0, 1], 0.5), and for pgd ``adversarial_steps`` (10), ``adversarial_step_size``
(``2.5 * epsilon / steps``) and ``adversarial_random_start`` (true); ``robust_epsilon``
(> 0) logs robust accuracy under PGD at that epsilon, on the first ``robust_examples``
examples of the validation and test sets (all by default). The two fixes of batch
norm's train/test mismatch at small batch sizes (:mod:`optimlab.regularize.bn_fixes`):
``bn_test_mode`` (``"running"``, the default, or ``"batch"``: evaluate with batch
statistics) and ``bn_finetune`` (fraction of the budget in (0, 1) after which batch
norms switch to the training set's statistics, frozen, for the rest of training).
"""

from __future__ import annotations

from typing import Any

from optimlab.errors import OptimlabError, check_range
from optimlab.regularize.adversarial_training import KEYS as ADVERSARIAL_KEYS
from optimlab.regularize.adversarial_training import validate as validate_adversarial

#: the values of ``l1_method``
L1_METHODS = ("penalty", "proximal")
#: the keys that qualify ``l1`` and need it
L1_KEYS = ("l1_method", "l1_start_step", "l1_start_epoch")

KEYS = (
    "l1", *L1_KEYS, "l2", "kl_sparsity", "kl_target", "dropout", "max_norm", "augment",
    "mixup", "snapshots", "swa", "ema", "bn_test_mode", "bn_finetune",
    *ADVERSARIAL_KEYS,
)  # fmt: skip

BN_TEST_MODES = ("running", "batch")


def validate(options: dict[str, Any]) -> dict[str, Any]:
    """Check every value; unknown keys and bad values raise OptimlabError."""
    unknown = sorted(set(options) - set(KEYS))
    if unknown:
        raise OptimlabError(
            f"unknown regularization option(s) {', '.join(unknown)}; valid: {', '.join(KEYS)}"
        )
    for key in ("l1", "l2"):
        if key in options:
            check_range(key, options[key], 0.0)
    _validate_l1(options)
    if "kl_sparsity" in options:
        check_range("kl_sparsity", options["kl_sparsity"], 0.0, low_open=True)
    if "kl_target" in options:
        if "kl_sparsity" not in options:
            raise OptimlabError("kl_target needs kl_sparsity (the weight beta of the KL penalty)")
        check_range("kl_target", options["kl_target"], 0.0, 1.0, low_open=True, high_open=True)
    if "dropout" in options:
        check_range("dropout", options["dropout"], 0.0, 1.0, high_open=True)
    if "max_norm" in options:
        check_range("max_norm", options["max_norm"], 0.0, low_open=True)
    if "mixup" in options:
        check_range("mixup", options["mixup"], 0.0, low_open=True)
    if "snapshots" in options:
        check_range("snapshots", options["snapshots"], 1)
    if "swa" in options:
        check_range("swa", options["swa"], 0.0, 1.0, high_open=True)
    if "ema" in options:
        check_range("ema", options["ema"], 0.0, 1.0, low_open=True, high_open=True)
    if "augment" in options:
        from optimlab.data.augment_presets import parse_spec

        parse_spec(options["augment"])
    if options.get("bn_test_mode", "running") not in BN_TEST_MODES:
        raise OptimlabError(
            f"invalid bn_test_mode {options['bn_test_mode']!r}; valid: {', '.join(BN_TEST_MODES)}"
        )
    if "bn_finetune" in options:
        check_range("bn_finetune", options["bn_finetune"], 0.0, 1.0, low_open=True, high_open=True)
    validate_adversarial(options)
    return options


def _validate_l1(options: dict[str, Any]) -> None:
    from optimlab.regularize.penalty_schedule import check_start

    given = [k for k in L1_KEYS if k in options]
    if given and not options.get("l1"):
        raise OptimlabError(f"{given[0]} needs l1 (the L1 factor, > 0)")
    method = options.get("l1_method", "penalty")
    if method not in L1_METHODS:
        raise OptimlabError(f"invalid l1_method {method!r}; valid: {', '.join(L1_METHODS)}")
    if "l1_start_step" in options and "l1_start_epoch" in options:
        raise OptimlabError("give one of l1_start_step and l1_start_epoch, not both")
    for key in ("l1_start_step", "l1_start_epoch"):
        check_start(key, options.get(key))


def _l1(options: dict[str, Any], problem: Any, callbacks: list[Any]) -> Any:
    """L1 in proximal form, or as a penalty switched on late: the problem is returned, the
    callbacks that read the trainer's clock are appended to ``callbacks``."""
    from optimlab.regularize.penalties import l1, with_penalty
    from optimlab.regularize.penalty_schedule import ScheduledPenalty
    from optimlab.regularize.proximal import ProximalL1

    start = {"start_step": options.get("l1_start_step"),
             "start_epoch": options.get("l1_start_epoch")}  # fmt: skip
    if options.get("l1_method", "penalty") == "proximal":
        callbacks.append(ProximalL1(options["l1"], **start))
        return problem
    scheduled = ScheduledPenalty(l1(problem.model, options["l1"]), **start)
    callbacks.append(scheduled)  # it reads the trainer's step and epoch
    return with_penalty(problem, scheduled)


def _kl_sparsity(options: dict[str, Any], problem: Any) -> Any:
    from optimlab.regularize.penalties import with_penalty
    from optimlab.regularize.sparsity import DEFAULT_TARGET, KLSparsity, sigmoid_units

    units = sigmoid_units(problem.model)
    if not units:
        raise OptimlabError(
            f"kl_sparsity needs a model with sigmoid units (nn.Sigmoid); {problem.name!r} has "
            "none; valid: a problem built with sigmoid units, e.g. digits_mlp with problem_args "
            "activation=sigmoid"
        )
    penalty = KLSparsity(
        units, beta=options["kl_sparsity"], target=options.get("kl_target", DEFAULT_TARGET)
    )
    return with_penalty(problem, penalty)


def _chain(first: Any, second: Any) -> Any:
    def both(x: Any, y: Any, step: int) -> Any:
        x, y = first(x, y, step)
        return second(x, y, step)

    return both


def apply(
    options: dict[str, Any],
    problem: Any,
    trainer_kwargs: dict[str, Any],
    *,
    optimizer: Any = None,
    total_steps: int | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Return ``(problem, trainer_kwargs)`` with ``options`` applied.

    The problem's model gains dropout layers in place; the loss gains the penalties (in
    training mode only); ``trainer_kwargs`` gains ``callbacks`` (proximal L1, a late L1's
    clock, max-norm, snapshots, averaging), ``batch_transform`` (augmentation, then
    mixup) and, for ``snapshots`` without a scheduler, ``scheduler``. ``optimizer`` and
    ``total_steps`` are needed for ``snapshots`` (the schedule) and ``swa`` (its start
    step).
    """
    from optimlab.regularize.constraints import MaxNorm
    from optimlab.regularize.dropout import add_dropout
    from optimlab.regularize.ensembles import SnapshotEnsemble, WeightAveraging
    from optimlab.regularize.mixup import Mixup, mixup_problem
    from optimlab.regularize.penalties import elastic_net, l2, with_penalty

    validate(options)
    kw = dict(trainer_kwargs)
    callbacks = list(kw.get("callbacks") or [])
    seed = int(kw.get("seed", 0))
    if options.get("dropout"):
        if add_dropout(problem.model, options["dropout"]) == 0:
            raise OptimlabError(f"problem {problem.name!r} has no activation to add dropout after")
    # A plain L1 penalty keeps the one elastic-net term it always had.
    plain_l1 = options.get("l1_method", "penalty") == "penalty" and not any(
        k in options for k in ("l1_start_step", "l1_start_epoch")
    )
    if plain_l1 and (options.get("l1") or options.get("l2")):
        penalty = elastic_net(problem.model, options.get("l1", 0.0), options.get("l2", 0.0))
        problem = with_penalty(problem, penalty)
    elif options.get("l1") or options.get("l2"):
        if options.get("l2"):
            problem = with_penalty(problem, l2(problem.model, options["l2"]))
        if options.get("l1"):
            problem = _l1(options, problem, callbacks)
    if "kl_sparsity" in options:
        problem = _kl_sparsity(options, problem)
    if "max_norm" in options:
        callbacks.append(MaxNorm(options["max_norm"]))
    transform = kw.get("batch_transform")
    if "augment" in options:
        from optimlab.data.augment_presets import from_spec

        if problem.splits is None or problem.splits.train.x.ndim != 4:
            raise OptimlabError("--augment needs a problem with images (N, C, H, W)")
        aug = from_spec(options["augment"], seed=seed, train_x=problem.splits.train.x)
        transform = aug if transform is None else _chain(transform, aug)
    if "mixup" in options:
        problem = mixup_problem(problem)
        classes = problem.splits.num_classes or int(problem.splits.train.y.max()) + 1
        mix = Mixup(options["mixup"], classes, seed=seed + 1)
        transform = mix if transform is None else _chain(transform, mix)
    if "adversarial" in options:  # last: it attacks the batch as the model will see it
        adversarial = _adversarial_training(options, problem, seed)
        callbacks.append(adversarial)  # it counts its passes into the run's
        transform = adversarial if transform is None else _chain(transform, adversarial)
    if transform is not None:
        kw["batch_transform"] = transform
    if "snapshots" in options:
        from optimlab.schedules import ScheduleAdapter, SnapshotCycles

        scheduler = kw.get("scheduler")
        schedules = getattr(scheduler, "schedules", None) or []
        cycles = next((s for s in schedules if isinstance(s, SnapshotCycles)), None)
        if cycles is None:
            if scheduler is not None:
                raise OptimlabError("--snapshots sets its own schedule; drop --schedule")
            if optimizer is None or total_steps is None:
                raise OptimlabError("--snapshots needs a step budget (--epochs or --steps)")
            lr = float(optimizer.param_groups[0]["lr"])
            cycles = SnapshotCycles(lr=lr, total_steps=total_steps, cycles=options["snapshots"])
            kw["scheduler"] = ScheduleAdapter(optimizer, cycles)
        callbacks.append(SnapshotEnsemble.from_schedule(cycles))
    if "swa" in options:
        if total_steps is None:
            raise OptimlabError("--swa needs a step budget (--epochs or --steps)")
        callbacks.append(WeightAveraging(start=int(options["swa"] * total_steps)))
    if "ema" in options:
        callbacks.append(WeightAveraging(decay=options["ema"]))
    if "robust_epsilon" in options:
        callbacks.append(_robust_accuracy(options, problem, seed))
    if options.get("bn_test_mode", "running") == "batch" or "bn_finetune" in options:
        callbacks += _bn_fixes(options, problem, total_steps)
    kw["callbacks"] = callbacks
    return problem, kw


def _adversarial_training(options: dict[str, Any], problem: Any, seed: int) -> Any:
    from optimlab.regularize.adversarial import image_space
    from optimlab.regularize.adversarial_training import AdversarialTraining, training_attack

    if problem.splits is None:
        raise OptimlabError(f"--adversarial needs a problem with data; {problem.name!r} has none")
    return AdversarialTraining(
        problem.model, problem.loss_fn, training_attack(options),
        fraction=options.get("adversarial_fraction", 0.5),
        space=image_space(problem.splits), seed=seed + 2,
    )  # fmt: skip


def _robust_accuracy(options: dict[str, Any], problem: Any, seed: int) -> Any:
    from optimlab.regularize.adversarial import image_space
    from optimlab.regularize.adversarial_training import RobustAccuracy, robust_attack

    if problem.splits is None or problem.task != "classification":
        raise OptimlabError(
            f"--robust-epsilon needs a classification problem with data; {problem.name!r} "
            "is not one"
        )
    return RobustAccuracy(
        robust_attack(options), image_space(problem.splits),
        examples=options.get("robust_examples"), seed=seed + 3,
    )  # fmt: skip


def _bn_fixes(options: dict[str, Any], problem: Any, total_steps: int | None) -> list[Any]:
    from optimlab.nn.bn_stats import batch_norms
    from optimlab.regularize.bn_fixes import FineTuneFrozen, KeepBatchStatistics

    if not batch_norms(problem.model):
        raise OptimlabError(
            f"bn_test_mode and bn_finetune need a model with batch norm; {problem.name!r} has none"
        )
    out: list[Any] = []
    if options.get("bn_test_mode", "running") == "batch":
        out.append(KeepBatchStatistics())
    if "bn_finetune" in options:
        if total_steps is None:
            raise OptimlabError("--bn-finetune needs a step budget (--epochs or --steps)")
        if problem.splits is None:
            raise OptimlabError(f"bn_finetune needs a problem with data; {problem.name!r} has none")
        start = max(1, int(options["bn_finetune"] * total_steps))
        out.append(FineTuneFrozen(start, problem.splits.train.x))
    return out
