"""``optimlab train``: train one problem with one optimizer and print the run summary.

Settings come from the command line, from a TOML file (``--config run.toml``, keys as
the long options with underscores, plus ``[hp]`` and ``[schedule_args]`` tables), or
both; the command line wins. With ``--out DIR`` the run is checkpointed every epoch and
rerunning the same command continues where it stopped, ending as an uninterrupted run
would; a different command on the same directory is refused.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import tomllib
from pathlib import Path
from typing import Any

from optimlab.cli import gradients
from optimlab.errors import OptimlabError

EPILOG = """\
Values of --hp and --schedule-arg are Python literals (0.9, 1e-3, True, 0.9,0.999 for a
tuple); other text is taken as a string. A schedule's lr defaults to the optimizer's,
and a required T_max or total_steps to the run's number of steps.
`optimlab list problems|optimizers|schedules` shows the valid names.

examples:
  optimlab train --problem digits_mlp --optimizer adam --epochs 20 --out runs/adam
  optimlab train --problem fmnist_mlp --optimizer momentum --lr 0.05 --hp momentum=0.9 \\
      --schedule cosine --epochs 30 --out runs/fmnist-momentum
  optimlab train --config run.toml
"""

# Settings a config file may hold, with their types; "hp" and "schedule_args" are tables.
SETTINGS: dict[str, type] = {
    "problem": str,
    "optimizer": str,
    "lr": float,
    "hp": dict,
    "schedule": str,
    "schedule_args": dict,
    "epochs": int,
    "steps": int,
    "seconds": float,
    "batch_size": int,
    "grad_accumulation": int,
    "seed": int,
    "early_stopping": int,
    "log_every": int,
    "checkpoint_every": int,
    "keep_epochs": bool,
    "out": str,
    "data_dir": str,
    "download": bool,
    "device": str,
    "preprocess": str,
    "order": str,
    "fast": bool,
    **gradients.SETTINGS,  # --init, --diagnose, --diagnose-every
}
# Settings that do not change what is computed, so they may differ on a resumed run.
NOT_IN_FINGERPRINT = ("out", "data_dir", "download", "device", "checkpoint_every", "keep_epochs")
DEFAULTS: dict[str, Any] = {"seed": 0, "grad_accumulation": 1, "log_every": 50, "device": "auto"}


def parse_value(text: str) -> Any:
    """A Python literal when ``text`` is one (lists become tuples), else the text."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return tuple(value) if isinstance(value, list) else value


def parse_pairs(pairs: list[str] | None, option: str) -> dict[str, Any]:
    """``["momentum=0.9", "nesterov=True"]`` -> ``{"momentum": 0.9, "nesterov": True}``."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OptimlabError(f"invalid {option} {pair!r}; expected key=value")
        if key in out:
            raise OptimlabError(f"{option} {key!r} given twice")
        out[key] = parse_value(value.strip())
    return out


def _typed(key: str, value: Any, source: str) -> Any:
    want = SETTINGS[key]
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
    if not ok:
        raise OptimlabError(f"invalid {key} in {source}: {value!r}; expected a {want.__name__}")
    if want is dict:
        return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    return value


def load_config(path: str | Path) -> dict[str, Any]:
    """The settings of a TOML run file, type-checked; unknown keys are an error."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OptimlabError(f"config file {str(p)!r} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise OptimlabError(f"config file {str(p)!r} is not valid TOML: {err}") from None
    unknown = sorted(set(data) - set(SETTINGS))
    if unknown:
        raise OptimlabError(
            f"unknown setting(s) {', '.join(unknown)} in {str(p)!r}; "
            f"valid settings: {', '.join(SETTINGS)}"
        )
    return {k: _typed(k, v, str(p)) for k, v in data.items()}


def _preprocess(settings: dict[str, Any], splits: Any, restart: bool) -> Any:
    """Fit the input transform on train and store it with the run (``preprocess.pt``), so
    that a resumed run, or a later evaluation, uses the very transform it trained with."""
    import torch

    from optimlab.data.preprocess import apply_fitted, apply_to_splits, from_state_dict
    from optimlab.train.atomic import atomic_torch_save

    out = settings.get("out")
    path = Path(out) / "preprocess.pt" if out else None
    if path is not None and path.exists() and not restart:
        return apply_fitted(splits, from_state_dict(torch.load(path, weights_only=True)))
    splits, transform = apply_to_splits(splits, settings["preprocess"])
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_torch_save(transform.state_dict(), path)
    return splits


def resolve_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Defaults, then the config file, then the command line."""
    settings = dict(DEFAULTS)
    if args.config:
        settings.update(load_config(args.config))
    hp = dict(settings.get("hp", {}))
    hp.update(parse_pairs(args.hp, "--hp"))
    sargs = dict(settings.get("schedule_args", {}))
    sargs.update(parse_pairs(args.schedule_arg, "--schedule-arg"))
    for key in SETTINGS:
        value = getattr(args, key, None)
        if value is not None and key not in ("hp", "schedule_args"):
            settings[key] = value
    settings["hp"], settings["schedule_args"] = hp, sargs
    if "lr" in hp:
        if "lr" in settings and settings["lr"] != hp["lr"]:
            raise OptimlabError("lr given both as --lr and as --hp lr=...; give it once")
        settings["lr"] = float(hp.pop("lr"))
    if sargs and not settings.get("schedule"):
        raise OptimlabError("--schedule-arg needs --schedule NAME")
    return settings


def _require(settings: dict[str, Any], key: str, names: list[str]) -> str:
    if not settings.get(key):
        raise OptimlabError(f"missing --{key}; valid {key}s: {', '.join(names)}")
    return settings[key]


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise OptimlabError(f"invalid device {name!r}: CUDA is not available here; use cpu")
    return name


def _schedule(settings: dict[str, Any], optimizer: Any, total_steps: int | None) -> Any:
    from optimlab.schedules import ScheduleAdapter, create, record
    from optimlab.schedules.registry import HORIZON, REQUIRED, run_params

    rec = record(settings["schedule"])
    lr = float(optimizer.param_groups[0]["lr"])
    params = run_params(rec.name, settings["schedule_args"], lr=lr, total_steps=total_steps)
    for key in HORIZON:
        if rec.defaults.get(key, None) is REQUIRED and key not in params:
            raise OptimlabError(
                f"schedule {rec.name!r} needs {key} (the run has no step count: "
                "give --epochs or --steps, or --schedule-arg {key}=N)"
            )
    return ScheduleAdapter(optimizer, create(rec.name, **params))


def _total_steps(settings: dict[str, Any], problem: Any, batch_size: int) -> int | None:
    epochs, steps = settings.get("epochs"), settings.get("steps")
    if epochs is None and steps is None and settings.get("seconds") is None:
        epochs = problem.epochs
    if problem.splits is None:
        per_epoch = 1
    else:
        batches = math.ceil(len(problem.splits.train.x) / batch_size)
        per_epoch = math.ceil(batches / settings["grad_accumulation"])
    candidates = [n for n in (steps, epochs and epochs * per_epoch) if n]
    return min(candidates) if candidates else None


def run(args: argparse.Namespace) -> int:
    settings = resolve_settings(args)
    from optimlab import optim, problems
    from optimlab.train import EarlyStopping, fit

    problem_name = _require(settings, "problem", problems.available())
    optimizer_name = _require(settings, "optimizer", optim.available())
    problems.PROBLEMS.get(problem_name)  # unknown names fail before any data is read
    optim.get(optimizer_name)
    problem = problems.build(
        problem_name,
        seed=settings["seed"],
        data_dir=settings.get("data_dir"),
        download=bool(settings.get("download", False)),
        device=_device(settings["device"]),
    )
    if settings.get("preprocess") and problem.splits is not None:  # fitted on train only
        problem.splits = _preprocess(settings, problem.splits, args.restart)
    gradients.apply_init(settings, problem)
    hp = dict(settings["hp"])
    if settings.get("lr") is not None:
        hp["lr"] = settings["lr"]
    if settings.get("fast"):
        hp["fast"] = True  # the compiled fast path of optimlab.optim.fast
    optimizer = optim.create(optimizer_name, problem.model.parameters(), **hp)
    batch_size = settings.get("batch_size") or problem.batch_size
    scheduler = None
    if settings.get("schedule"):
        scheduler = _schedule(settings, optimizer, _total_steps(settings, problem, batch_size))
    callbacks = gradients.callbacks(settings)
    monitor = "val_loss" if problem.splits is not None and problem.splits.val else "loss"
    if settings.get("early_stopping") is not None:
        callbacks.append(
            EarlyStopping(monitor, patience=settings["early_stopping"], restore_best_weights=True)
        )
    from optimlab.regularize import options as reg  # --l1, --dropout, --augment, ...

    reg_options = reg.validate(reg.from_namespace(args))
    if reg_options:  # in the fingerprint only when used, so older runs still resume
        settings["regularize"] = reg_options
    problem, kw = reg.apply(
        reg_options, problem, {"callbacks": callbacks, "scheduler": scheduler,
        "seed": settings["seed"]}, optimizer=optimizer,
        total_steps=_total_steps(settings, problem, batch_size),
    )  # fmt: skip
    # What defines the run's numbers, as plain JSON values (tuples become lists), so that
    # it compares equal to the copy stored in the checkpoint.
    fingerprint = json.loads(
        json.dumps({k: v for k, v in sorted(settings.items()) if k not in NOT_IN_FINGERPRINT})
    )
    out = settings.get("out")
    if args.restart and not out:
        raise OptimlabError("--restart needs --out DIR")
    result = fit(
        problem,
        optimizer,
        epochs=settings.get("epochs"),
        steps=settings.get("steps"),
        seconds=settings.get("seconds"),
        batch_size=batch_size,
        scheduler=kw.get("scheduler"),
        grad_accumulation=settings["grad_accumulation"],
        callbacks=kw["callbacks"],
        batch_transform=kw.get("batch_transform"),
        seed=settings["seed"],
        out_dir=out,
        resume=True if args.resume else (False if args.restart else "auto"),
        checkpoint_every=settings.get("checkpoint_every"),
        keep_epoch_checkpoints=bool(settings.get("keep_epochs")),
        log_every=settings["log_every"],
        monitor=monitor,
        progress=not args.quiet,
        config=fingerprint,
        order=settings.get("order") or "random",
    )
    print(format_summary(result.summary, optimizer_name, float(hp.get("lr", math.nan)), out))
    return 0


def _metrics(record: dict[str, Any]) -> str:
    skip = ("epoch", "step", "time", "batch_size")
    return "  ".join(
        f"{k} {v:.4g}" for k, v in record.items() if k not in skip and isinstance(v, float)
    )


def format_summary(summary: dict[str, Any], optimizer: str, lr: float, out: str | None) -> str:
    """The summary as a few aligned lines."""
    lr_text = f" (lr {lr:g})" if math.isfinite(lr) else " (default lr)"
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
    p.add_argument("--problem", help="problem name (optimlab list problems)")
    p.add_argument("--optimizer", help="optimizer name (optimlab list optimizers)")
    p.add_argument("--lr", type=float, help="learning rate (default: the optimizer's)")
    p.add_argument("--hp", action="append", metavar="KEY=VALUE", help="optimizer argument")
    p.add_argument("--schedule", help="LR schedule name (optimlab list schedules)")
    p.add_argument(
        "--schedule-arg", action="append", metavar="KEY=VALUE", help="schedule parameter"
    )
    p.add_argument("--epochs", type=int, help="epochs (default: the problem's)")
    p.add_argument("--steps", type=int, help="stop after this many optimizer steps")
    p.add_argument("--seconds", type=float, help="stop after this much training time")
    p.add_argument("--batch-size", type=int, help="batch size (default: the problem's)")
    p.add_argument("--grad-accumulation", type=int, help="micro-batches per step (default 1)")
    p.add_argument("--seed", type=int, help="seed of the model, data split and order (0)")
    p.add_argument("--early-stopping", type=int, metavar="PATIENCE", help="stop early")
    p.add_argument("--log-every", type=int, help="sample the loss every N steps (50)")
    p.add_argument(
        "--checkpoint-every", type=int, metavar="N", help="also checkpoint every N steps"
    )
    p.add_argument(
        "--keep-epochs",
        action="store_true",
        default=None,
        help="also keep the weights of every epoch (for landscape --trajectory)",
    )
    p.add_argument("--out", help="output directory: checkpoints, metrics, summary.json")
    p.add_argument("--resume", action="store_true", help="require a checkpoint in --out")
    p.add_argument("--restart", action="store_true", help="ignore a checkpoint in --out")
    p.add_argument("--config", help="TOML file with these settings")
    p.add_argument("--data-dir", help="where datasets are looked for")
    p.add_argument(
        "--download", action="store_true", default=None, help="download a missing dataset"
    )
    p.add_argument("--device", help="cpu, cuda or auto (default)")
    p.add_argument("--preprocess", help="input transform fitted on train: standardize, "
                   "channel_mean, pca_whiten, zca_whiten, none")  # fmt: skip
    p.add_argument("--order", help="example order: random (default), shuffle_once, cyclic, full")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument(
        "--fast", action="store_true", default=None,
        help="run the optimizer's compiled fast path (same math, fused kernels)",
    )  # fmt: skip
    gradients.add_arguments(p)
    from optimlab.regularize.options import add_arguments

    add_arguments(p)
    p.set_defaults(func=run)
