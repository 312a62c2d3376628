"""``optimlab lr-find``: the LR range test (Smith 2017) on one problem with one optimizer."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from optimlab.errors import OptimlabError

EPILOG = """\
The learning rate grows every step from --min-lr to --max-lr (geometrically, or linearly
with --mode linear) while the model trains on the problem's training batches; the run stops
once the smoothed loss exceeds --diverge-factor times its best. Model and optimizer are
left untouched. The suggestion is the steepest descent of the smoothed loss; the bounds
(base_lr, max_lr) suit a cyclical schedule (optimlab list schedules: cyclic, one_cycle).
With few steps per decade the smoothed loss lags the raw one and the readings come out
high: more --steps (e.g. 300) or a lower --smoothing reduce the lag.

examples:
  optimlab lr-find --problem digits_mlp --optimizer adam
  optimlab lr-find --problem digits_mlp --optimizer momentum --hp momentum=0.95 \\
      --steps 300 --out lrf.svg
"""


def run(args: argparse.Namespace) -> int:
    from optimlab import optim, problems
    from optimlab.cli.train import parse_pairs
    from optimlab.io import check_output_file
    from optimlab.run.build import resolve_device
    from optimlab.train.lr_find import check_args, lr_find
    from optimlab.viz.lr_find import figure_format, plot_lr_find

    # Every user mistake is reported before any data is read or any step is taken.
    problem_name = problems.PROBLEMS.get(args.problem).name
    optimizer_name = optim.get(args.optimizer).name
    check_args(
        args.min_lr, args.max_lr, args.steps, args.mode, args.smoothing, args.diverge_factor,
        option_names=True,
    )  # fmt: skip
    out = Path(args.out or f"lr_find_{problem_name}_{optimizer_name}.png")
    try:
        figure_format(out)
    except OptimlabError:
        raise OptimlabError(
            f"invalid --out: {str(out)!r}; use a .png, .svg or .pdf file name"
        ) from None
    check_output_file(out)
    if args.batch_size is not None and args.batch_size < 1:
        raise OptimlabError(f"invalid --batch-size: {args.batch_size}; valid range is [1, inf)")
    hp = parse_pairs(args.hp, "--hp")
    if "lr" in hp:
        raise OptimlabError("--hp lr=... is not allowed: the test sets the learning rate")

    problem = problems.build(problem_name, seed=args.seed, device=resolve_device(args.device))
    optimizer = optim.create(optimizer_name, problem.model.parameters(), **hp)
    if getattr(optimizer, "needs_model", False):
        optimizer.attach_model(problem.model)  # path_sgd reads the layers
    if problem.splits is None:  # a pure function: its model ignores the input
        batches: object = [(None, None)]
    else:
        batches = problem.loader("train", args.batch_size, seed=args.seed)
    result = lr_find(
        problem.model, optimizer, problem.loss_fn, batches,  # type: ignore[arg-type]
        min_lr=args.min_lr, max_lr=args.max_lr, steps=args.steps, mode=args.mode,
        smoothing=args.smoothing, diverge_factor=args.diverge_factor,
    )  # fmt: skip
    title = f"LR range test: {problem_name}, {optimizer_name}"
    plot_lr_find(result, out, title=title)

    n = len(result.lrs)
    stop = f", stopped at step {n} (loss diverged)" if result.stopped_early else f", {n} steps"
    print(
        f"lr-find    {problem_name} with {optimizer_name}, seed {args.seed}: lr "
        f"{args.min_lr:g} to {args.max_lr:g} ({args.mode}){stop}"
    )
    if math.isfinite(result.suggested_lr):
        base, top = result.bounds
        print(f"suggested  lr {result.suggested_lr:.3g} (steepest descent of the smoothed loss)")
        print(f"bounds     base_lr {base:.3g}, max_lr {top:.3g} (for a cyclical schedule)")
    else:
        print(f"suggested  none: {result.note}")
    print(f"figure     {out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from optimlab.train.lr_find import MODES

    p = sub.add_parser(
        "lr-find",
        help="LR range test: suggest a learning rate and cyclical bounds",
        description="Run the learning-rate range test (Smith 2017, section 3.3), print the "
        "suggested learning rate and the bounds for a cyclical schedule, and plot the curve.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--problem", required=True, help="problem name (optimlab list problems)")
    p.add_argument("--optimizer", required=True, help="optimizer name (optimlab list optimizers)")
    p.add_argument("--hp", action="append", metavar="KEY=VALUE", help="optimizer argument")
    p.add_argument("--min-lr", type=float, default=1e-7, help="first learning rate (1e-7)")
    p.add_argument("--max-lr", type=float, default=10.0, help="last learning rate (10)")
    p.add_argument("--steps", type=int, default=100, help="steps of the sweep (100)")
    p.add_argument("--mode", default="exp", choices=MODES, help="LR growth (exp)")
    p.add_argument(
        "--smoothing", type=float, default=0.98, help="moving-average beta, [0, 1) (0.98)"
    )
    p.add_argument(
        "--diverge-factor", type=float, default=4.0, help="stop at this multiple of the best (4)"
    )
    p.add_argument("--batch-size", type=int, help="batch size (default: the problem's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the model and batches (0)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--out", help="figure file, .png/.svg/.pdf (lr_find_<problem>_<optimizer>.png)")
    p.set_defaults(func=run)
