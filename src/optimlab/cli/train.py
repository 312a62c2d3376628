"""``optimlab train``: train one problem with one optimizer and print the run summary.

Settings come from the command line, from a TOML file (``--config run.toml``, keys as
the long options with underscores, plus ``[hp]``, ``[schedule_args]`` and
``[regularize]`` tables), or both; the command line wins. Both are read into one
:class:`optimlab.run.RunConfig`, whose fields generate the options below, and built by
:func:`optimlab.run.build_run`. With ``--out DIR`` the run is checkpointed every epoch
and rerunning the same command continues where it stopped, ending as an uninterrupted
run would; a different command on the same directory is refused.

``--parallel sync|local_sgd|easgd|pipeline|downpour|delay_tolerant|easgd_async --nproc
N`` runs in N processes started by torch's elastic launcher (:mod:`optimlab.parallel.launch`); the
same command under ``torchrun`` runs as one of torchrun's processes. ``--parallel
hogwild --nproc N`` shares one model between N processes of this machine
(:mod:`optimlab.parallel.hogwild`). An asynchronous method with ``--simulate-delay``
runs in this process with a seeded staleness (:mod:`optimlab.parallel.simulate`).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import math
import os
import sys
from typing import Any

from optimlab.errors import OptimlabError

EPILOG = """\
Values of --hp, --schedule-arg, --problem-arg, --model-arg, --reduce-lr-on-plateau and
--curriculum are Python literals (0.9, 1e-3, True, 0.9,0.999 for a tuple); other text is a string.
A schedule's lr defaults to the optimizer's, and a required T_max or total_steps to
the run's number of steps. --reduce-lr-on-plateau on takes Keras' defaults; --recipe
fills what is not given from the problem's published recipe.
`optimlab list problems|optimizers|schedules` shows the valid names.

examples:
  optimlab train --problem digits_mlp --optimizer adam --epochs 20 --out runs/adam
  optimlab train --problem fmnist_mlp --optimizer momentum --lr 0.05 --hp momentum=0.9 \\
      --schedule cosine --epochs 30 --out runs/fmnist-momentum
  optimlab train --config run.toml
  optimlab train --problem digits_mlp --optimizer sgd --lr 0.1 --epochs 30 \\
      --reduce-lr-on-plateau patience=3 --reduce-lr-on-plateau factor=0.5
  optimlab train --problem digits_mlp --optimizer momentum --lr 0.05 --epochs 20 \\
      --schedule multistep --schedule-arg milestones=450,900 --batch-schedule increase
  optimlab train --problem digits_mlp --optimizer sgd --epochs 20 --order curriculum \\
      --curriculum start=0.3 --curriculum pacing=root
  optimlab train --problem cifar10_resnet20 --recipe --out runs/resnet20
  optimlab train --problem cifar10_resnet20 --recipe --model resnet18 --model-arg stem=cifar
  optimlab train --problem digits_mlp --problem-arg activation=sigmoid \\
      --problem-arg hidden=64, --optimizer adam --kl-sparsity 0.1 --kl-target 0.05
  optimlab train --problem fmnist_mlp --optimizer momentum --lr 0.05 --epochs 5 \\
      --parallel sync --nproc 2 --out runs/fmnist-sync
  torchrun --nproc-per-node 2 -m optimlab.cli train --problem digits_mlp \\
      --optimizer sgd --parallel local_sgd --local-sgd-period 4
"""

# Options whose names differ from their field's; "key=value" options repeat, and a
# bare "on" turns a switch on with every setting at its default.
OPTION_NAMES = {"schedule_args": "--schedule-arg", "problem_args": "--problem-arg",
                "model_args": "--model-arg"}  # fmt: skip
PAIRS = ("hp", "schedule_args", "reduce_lr_on_plateau", "curriculum", "problem_args",
         "model_args")  # fmt: skip
SWITCHES = ("reduce_lr_on_plateau",)


def parse_value(text: str) -> Any:
    """A Python literal when ``text`` is one (lists become tuples), else the text."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return tuple(value) if isinstance(value, list) else value


def parse_pairs(pairs: list[str] | None, option: str, switch: bool = False) -> dict[str, Any]:
    """``["momentum=0.9", "nesterov=True"]`` -> ``{"momentum": 0.9, "nesterov": True}``;
    with ``switch``, a bare ``on`` adds nothing."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        if switch and pair.strip() == "on":
            continue
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            expected = "key=value or on" if switch else "key=value"
            raise OptimlabError(f"invalid {option} {pair!r}; expected {expected}")
        if key in out:
            raise OptimlabError(f"{option} {key!r} given twice")
        out[key] = parse_value(value.strip())
    return out


def option_name(field_name: str) -> str:
    return OPTION_NAMES.get(field_name, "--" + field_name.replace("_", "-"))


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per field of ``RunConfig`` (its help text and type), then the
    regularization options."""
    from optimlab.run.config import _base_type, cli_fields

    for f in cli_fields():
        name, help_text = option_name(f.name), f.metadata["help"]
        kind = _base_type(f.type)
        if kind is not bool and f.default not in (None, dataclasses.MISSING):
            help_text += f" ({f.default})"
        if f.name in PAIRS:
            parser.add_argument(name, dest=f.name, action="append", metavar="KEY=VALUE",
                                help=help_text)  # fmt: skip
        elif kind is bool:
            parser.add_argument(name, dest=f.name, action="store_true", default=None,
                                help=help_text)  # fmt: skip
        else:
            parser.add_argument(name, dest=f.name, type=kind, metavar=f.metadata.get("metavar"),
                                help=help_text)  # fmt: skip
    add_regularization_arguments(parser)


def add_regularization_arguments(parser: argparse.ArgumentParser) -> None:
    """The regularization options (keys of ``optimlab.regularize.options``)."""
    g = parser.add_argument_group("regularization")
    g.add_argument("--l1", type=float, help="L1 penalty factor on weights")
    g.add_argument(
        "--l1-method", metavar="METHOD",
        help="penalty (default: l1*sum|w| in the loss) or proximal (soft-threshold each step)",
    )  # fmt: skip
    g.add_argument("--l1-start-step", type=int, metavar="T", help="L1 only from step T (0-based)")
    g.add_argument("--l1-start-epoch", type=int, metavar="E", help="L1 only from epoch E (0-based)")
    g.add_argument("--l2", type=float, help="L2 penalty l*sum(w^2) on weights (= wd 2l)")
    g.add_argument(
        "--kl-sparsity", type=float, metavar="BETA",
        help="KL sparsity penalty on sigmoid units' mean activations",
    )  # fmt: skip
    g.add_argument(
        "--kl-target",
        type=float,
        metavar="RHO",
        help="target mean activation of --kl-sparsity (0.05)",
    )
    g.add_argument("--dropout", type=float, help="dropout rate after hidden activations")
    g.add_argument("--max-norm", type=float, metavar="R", help="max-norm r per unit")
    g.add_argument("--augment", metavar="SPEC", help="augmentations, e.g. flip,crop:4")
    g.add_argument("--mixup", type=float, metavar="ALPHA", help="mixup Beta(alpha, alpha)")
    g.add_argument("--snapshots", type=int, metavar="M", help="snapshot ensemble of M cycles")
    g.add_argument(
        "--swa", type=float, nargs="?", const=0.75, metavar="START",
        help="stochastic weight averaging from this fraction of the budget (0.75)",
    )  # fmt: skip
    g.add_argument("--ema", type=float, metavar="DECAY", help="EMA of the weights")
    g.add_argument(
        "--bn-test-mode",
        metavar="MODE",
        help="batch norm in evaluation: running (default) or batch statistics",
    )
    g.add_argument("--bn-finetune", type=float, metavar="F",
                   help="after this fraction of the budget, freeze batch norms at the "
                   "training set's statistics and fine-tune")  # fmt: skip
    a = parser.add_argument_group("adversarial training and robust accuracy")
    a.add_argument("--adversarial", metavar="ATTACK", help="train on fgsm or pgd examples")
    a.add_argument(
        "--adversarial-epsilon",
        type=float,
        metavar="EPS",
        help="perturbation size (pixel units of [0, 1] for images)",
    )
    a.add_argument("--adversarial-norm", metavar="NORM", help="linf (default) or l2")
    a.add_argument("--adversarial-steps", type=int, metavar="N", help="pgd steps (10)")
    a.add_argument(
        "--adversarial-step-size",
        type=float,
        metavar="ALPHA",
        help="pgd step size (2.5 * eps / steps)",
    )
    a.add_argument(
        "--adversarial-random-start",
        action=argparse.BooleanOptionalAction,
        help="pgd starts at a random point of the ball (yes)",
    )
    a.add_argument(
        "--adversarial-fraction",
        type=float,
        metavar="F",
        help="share of each batch replaced by adversarial examples (0.5)",
    )
    a.add_argument(
        "--robust-epsilon",
        type=float,
        metavar="EPS",
        help="log val/test robust accuracy under PGD at this epsilon",
    )
    a.add_argument(
        "--robust-examples",
        type=int,
        metavar="N",
        help="robust accuracy on the first N examples of each split (all)",
    )


def regularization_options(args: argparse.Namespace) -> dict[str, Any]:
    """The regularization options given on the command line, as a plain dict."""
    from optimlab.regularize.options import KEYS

    return {k: getattr(args, k) for k in KEYS if getattr(args, k, None) is not None}


def config_from_args(args: argparse.Namespace) -> Any:
    """The run's :class:`RunConfig`: the command line over the TOML file over defaults."""
    from optimlab.run import RunConfig, load_toml
    from optimlab.run.config import cli_fields

    base = load_toml(args.config) if args.config else {}
    given = {f.name: getattr(args, f.name) for f in cli_fields()}
    for key in PAIRS:
        switch = key in SWITCHES
        pairs = parse_pairs(given[key], option_name(key), switch)
        given[key] = pairs if pairs or (switch and given[key]) else None
    given["regularize"] = regularization_options(args) or None
    if args.full_batch:
        if given["order"] not in (None, "full"):
            raise OptimlabError(f"--full-batch contradicts --order {given['order']}; give one")
        given["order"] = "full"
    _counts_from_torchrun(given, base)
    return RunConfig.from_cli(given, base).with_recipe()


def _counts_from_torchrun(given: dict[str, Any], base: dict[str, Any]) -> None:
    """Under torchrun, the process counts of a launched method that the command line
    and the run file leave out come from torchrun's environment, so that the settings
    are checked against the real world size (torchrun itself takes ``--nproc``)."""
    from optimlab.parallel.methods import DISTRIBUTED

    if "RANK" not in os.environ or (given["parallel"] or base.get("parallel")) not in DISTRIBUTED:
        return
    from optimlab.parallel.world import in_launched_worker, place_from_environment

    if not in_launched_worker():
        return
    place = place_from_environment()
    for name, count in (("nproc", place.local_size), ("nnodes", place.nnodes)):
        if given[name] is None and name not in base:
            given[name] = count


# The launcher's options: where the processes of a parallel run meet; they change no
# number, so they are not run settings (defaults: optimlab.parallel.launch.LaunchOptions).
# name -> (type, metavar, help)
LAUNCH_OPTIONS: dict[str, tuple[type, str, str]] = {
    "node_rank": (int, "K", "this machine's index among --nnodes (0 hosts the rendezvous)"),
    "rdzv_endpoint": (str, "HOST:PORT",
                      "rendezvous of several machines (default: 127.0.0.1, a free port)"),
    "rdzv_timeout": (float, "SECONDS", "wait this long for the rendezvous (60)"),
    "max_restarts": (int, "N", "restart the processes up to N times after a failure (0)"),
}  # fmt: skip


def launch_options(args: argparse.Namespace, config: Any) -> Any:
    """The launcher's options given on the command line, checked against the run."""
    from optimlab.parallel.launch import LaunchOptions
    from optimlab.parallel.methods import DISTRIBUTED, launched

    given = {k: getattr(args, k) for k in LAUNCH_OPTIONS if getattr(args, k) is not None}
    if given and not launched(config):
        names = ", ".join("--" + k.replace("_", "-") for k in given)
        raise OptimlabError(f"{names} need --parallel {' or '.join(DISTRIBUTED)} without "
                            "--simulate-delay (a launched run)")  # fmt: skip
    return LaunchOptions(**given)


def _train(config: Any, args: argparse.Namespace, resume: bool | str) -> dict[str, Any] | None:
    """Train ``config`` here, in launched processes, or as one of torchrun's; return the
    summary where this process has it."""
    from optimlab.parallel.methods import launched

    progress = not args.quiet
    if launched(config):
        from optimlab.parallel.world import in_launched_worker

        options = launch_options(args, config)
        if in_launched_worker():  # torchrun started this process: it is a worker
            if options != type(options)():
                raise OptimlabError(
                    "torchrun places this process; leave out --node-rank, --rdzv-endpoint, "
                    "--rdzv-timeout and --max-restarts"
                )
            from optimlab.parallel.worker import run_worker

            return run_worker(config.to_json(), resume, progress)
        from optimlab.parallel.launch import WorkerFailed, launch

        try:
            return launch(config, options, resume=resume, progress=progress)
        except WorkerFailed as err:
            if err.trace:
                print(err.trace, file=sys.stderr, end="" if err.trace.endswith("\n") else "\n")
            raise
    launch_options(args, config)  # refuses launcher options without a launched method
    if config.parallel == "hogwild":
        from optimlab.parallel.hogwild import run_hogwild

        return run_hogwild(config, resume=resume, progress=progress).summary
    from optimlab.run import build_run

    return build_run(config, resume=resume, progress=progress).fit().summary


def run(args: argparse.Namespace) -> int:
    from optimlab import optim

    if args.resume and args.restart:
        raise OptimlabError("--resume and --restart contradict each other; give one")
    config = config_from_args(args)
    if (args.resume or args.restart) and not config.out:
        raise OptimlabError(f"{'--resume' if args.resume else '--restart'} needs --out DIR")
    resume = True if args.resume else (False if args.restart else "auto")
    summary = _train(config, args, resume)
    if summary is None:  # another process of the run reports it
        return 0
    lr = (
        config.lr
        if config.lr is not None
        else optim.get(config.optimizer).hyperparameters().get("lr")
    )
    print(format_summary(summary, config.optimizer, lr, config.lr is None, config.out))
    return 0


def _metrics(record: dict[str, Any]) -> str:
    skip = ("epoch", "step", "time", "batch_size")
    return "  ".join(
        f"{k} {v:.4g}" for k, v in record.items() if k not in skip and isinstance(v, float)
    )


def format_summary(
    summary: dict[str, Any],
    optimizer: str,
    lr: float | None,
    default_lr: bool,
    out: str | None,
) -> str:
    """The summary as a few aligned lines."""
    lr_text = ""
    if lr is not None and math.isfinite(lr):
        lr_text = f" (lr {lr:g}, the optimizer's default)" if default_lr else f" (lr {lr:g})"
    lines = [
        f"status     {summary['status']}: {summary['message']}",
        f"run        {summary['problem']} with {optimizer}{lr_text}, seed {summary['seed']}",
    ]
    best, final = summary.get("best") or {}, summary.get("final") or {}
    if best:
        lines.append(f"best       epoch {best['epoch']} by {summary['monitor']}: {_metrics(best)}")
    if final:
        lines.append(f"final      epoch {final['epoch']}: {_metrics(final)}")
    if summary.get("restored_epoch") is not None:
        lines.append(f"weights    restored from epoch {summary['restored_epoch']}")
    lines.append(f"wall time  {summary['wall_time']:.1f} s")
    if out:
        lines.append(f"output     {out} (summary.json, metrics.jsonl/csv, checkpoints/)")
    return "\n".join(lines)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train one problem with one optimizer",
        description="Train one problem with one optimizer and print the run summary.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="TOML file with these settings")
    p.add_argument("--resume", action="store_true", help="require a checkpoint in --out")
    p.add_argument("--restart", action="store_true", help="ignore a checkpoint in --out")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument("--full-batch", action="store_true",
                   help="one step per epoch on the whole training set (--order full)")  # fmt: skip
    add_run_arguments(p)
    g = p.add_argument_group("launcher (the parallel methods of a process group)")
    for name, (kind, metavar, help_text) in LAUNCH_OPTIONS.items():
        g.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, metavar=metavar,
                       help=help_text)  # fmt: skip
    p.set_defaults(func=run)
