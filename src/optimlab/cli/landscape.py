"""``optimlab landscape``: the loss around a checkpoint along filter-normalized random
directions (Li et al. 2018), between two checkpoints, or in the plane of the top two
PCA directions of a run's trajectory (``--trajectory``, Li et al. 2018 section 7);
cached to an .npz beside --out."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from optimlab.errors import OptimlabError, check_range


def _range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise OptimlabError(f"invalid --range {text!r}; expected LOW,HIGH such as -1,1") from None
    if not low < high:
        raise OptimlabError(f"invalid --range {text!r}; LOW must be below HIGH")
    return low, high


def _model_state(path: str) -> tuple[dict, dict]:
    from optimlab.train.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    if "model" not in state:
        raise OptimlabError(f"checkpoint {path!r} has no model state (not written by optimlab)")
    return state["model"], state.get("config") or {}


def epoch_checkpoints(run_dir: str | Path) -> list[Path]:
    """The ``checkpoints/epoch_*.pt`` files of a run, in epoch order; at least 3."""
    folder = Path(run_dir) / "checkpoints"
    found = []
    for path in folder.glob("epoch_*.pt"):
        k = path.stem.removeprefix("epoch_")
        if k.isdigit():
            found.append((int(k), path))
    if len(found) < 3:
        raise OptimlabError(
            f"invalid --trajectory {str(run_dir)!r}: {len(found)} epoch checkpoint(s) in "
            f"{str(folder)!r}, need at least 3; train with --keep-epochs"
        )
    return [path for _, path in sorted(found)]


def _covering(values: Any, resolution: int, margin: float = 0.2) -> Any:
    """A grid over [min, max] of ``values`` widened by ``margin`` of the span each side."""
    import numpy as np

    low, high = float(np.min(values)), float(np.max(values))
    pad = margin * max(high - low, 1e-3 * max(abs(low), abs(high), 1.0))
    return np.linspace(low - pad, high + pad, resolution)


def _load(problem: Any, state: dict[str, Any], file: str, problem_name: str) -> None:
    """Load a checkpoint's weights into the problem's model; weights of another model
    (another problem, a changed architecture) are a one-line error."""
    try:
        problem.model.load_state_dict(state)
    except RuntimeError:
        raise OptimlabError(
            f"checkpoint {str(file)!r} holds the weights of another model than "
            f"{problem_name!r} builds; give the --problem it was trained on (default: the "
            "one stored in it)"
        ) from None


def _trajectory(problem: Any, files: list[Path], resolution: int) -> tuple[list, Any, Any, Any]:
    """PCA directions of the run's path (epoch weights, then the loaded final model) and
    the grids that cover it; the model is left holding the final weights."""
    from optimlab.train.checkpoint import load_checkpoint
    from optimlab.viz import landscape as ls

    final = problem.model.state_dict()
    final = {k: v.clone() for k, v in final.items()}
    path = []
    for file in files:
        try:
            problem.model.load_state_dict(load_checkpoint(file))
        except RuntimeError as err:
            raise OptimlabError(
                f"epoch checkpoint {str(file)!r} does not fit the model: {err}"
            ) from None
        path.append(ls.weights(problem.model))
    problem.model.load_state_dict(final)
    path.append(ls.weights(problem.model))
    dirs, ratio, coords = ls.pca_directions(path)
    alphas = _covering(coords[:, 0], resolution)
    betas = _covering(coords[:, 1], resolution)
    return dirs, ratio, coords, (alphas, betas)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from optimlab.io import check_output_file
    from optimlab.problems import build
    from optimlab.viz import landscape as ls
    from optimlab.viz import style

    style.check_suffix(args.out, style.SUFFIXES)
    check_output_file(args.out)  # the cached .npz goes beside it
    check_range("--resolution", args.resolution, 2)
    check_range("--subset", args.subset, 1)
    if args.dims not in (1, 2):
        raise OptimlabError(f"invalid --dims {args.dims}; valid: 1, 2")
    low, high = _range(args.range or ("-0.5,1.5" if args.to else "-1,1"))
    files: list[Path] = []
    if args.trajectory:
        if args.to:
            raise OptimlabError("give --to or --trajectory, not both")
        files = epoch_checkpoints(args.trajectory)
        if args.checkpoint is None:
            args.checkpoint = str(Path(args.trajectory) / "checkpoints" / "last.pt")
    elif args.checkpoint is None:
        raise OptimlabError("missing --checkpoint (or --trajectory RUN_DIR)")
    state, config = _model_state(args.checkpoint)
    problem_name = args.problem or config.get("problem")
    if not problem_name:
        raise OptimlabError("the checkpoint does not name its problem; give --problem")
    seed = int(config.get("seed", args.seed))
    meta = {"checkpoint": str(Path(args.checkpoint).resolve()), "to": args.to,
            "problem": problem_name, "dims": 1 if args.to else args.dims, "range": [low, high],
            "resolution": args.resolution, "subset": args.subset, "direction_seed": args.seed,
            "include_1d": args.include_bias_bn}  # fmt: skip
    if files:
        meta.update(dims=2, range=None, direction_seed=None, include_1d=None,
                    trajectory=[str(f.resolve()) for f in files])  # fmt: skip
    cache = Path(args.out).with_suffix(".npz")
    surface = None
    if cache.exists() and not args.recompute:
        cached = ls.Surface.load(cache)
        if {k: cached.meta.get(k) for k in meta} == meta:
            surface = cached
            print(f"replotting from {cache}")
    if surface is None:
        problem = build(problem_name, seed=seed)
        if problem.splits is None:
            raise OptimlabError(f"problem {problem_name!r} has no data to evaluate a loss on")
        _load(problem, state, args.checkpoint, problem_name)
        train = problem.splits.train
        n = min(args.subset, len(train))
        idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]
        x, y = train.x[idx], train.y[idx]
        ts = np.linspace(low, high, args.resolution)
        started = time.perf_counter()
        if files:
            dirs, ratio, coords, (alphas, betas) = _trajectory(problem, files, args.resolution)
            surface = ls.evaluate_plane(problem.model, problem.loss_fn, x, y, dirs, alphas,
                                        betas)  # fmt: skip
            meta.update(path=coords.tolist(), explained_variance=ratio.tolist())
        elif args.to:
            other, _ = _model_state(args.to)
            theta_a = ls.weights(problem.model)
            _load(problem, other, args.to, problem_name)
            theta_b = ls.weights(problem.model)
            surface = ls.interpolate(problem.model, problem.loss_fn, x, y, theta_a, theta_b, ts)
        else:
            dirs = [ls.random_direction(problem.model, args.seed + i,
                                        ignore_1d=not args.include_bias_bn)
                    for i in range(args.dims)]  # fmt: skip
            surface = ls.evaluate_plane(problem.model, problem.loss_fn, x, y, dirs, ts,
                                        ts if args.dims == 2 else None)  # fmt: skip
        seconds = time.perf_counter() - started
        surface = ls.Surface(surface.alphas, surface.betas, surface.z, {**surface.meta, **meta})
        surface.save(cache)
        points = surface.z.size
        print(f"evaluated {points} points on {n} examples in {seconds:.1f} s -> {cache}")
    if files:
        ratio = surface.meta["explained_variance"]
        print(f"explained variance ratio: PC1 {ratio[0]:.4f}, PC2 {ratio[1]:.4f}")
        title = f"{problem_name}: trajectory in the PCA plane ({len(files)} epoch checkpoints)"
    else:
        title = f"{problem_name}: " + (
            "interpolation" if args.to else f"{args.dims}-D, filter-normalized"
        )
    print(style.save_figure(ls.plot(surface, args.kind, title), args.out))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("landscape", help="loss landscape around a checkpoint (Li et al. 2018)")
    p.add_argument("--checkpoint", help="a checkpoint written by optimlab train")
    p.add_argument(
        "--trajectory",
        metavar="RUN_DIR",
        help="the plane of the top two PCA directions of a run trained with --keep-epochs, "
        "with its path (default --checkpoint: RUN_DIR/checkpoints/last.pt)",
    )
    p.add_argument("--to", metavar="CKPT", help="interpolate from --checkpoint to this one")
    p.add_argument("--problem", help="problem name (default: the one in the checkpoint)")
    p.add_argument("--dims", type=int, default=2, help="1 or 2 random directions (default 2)")
    p.add_argument("--range", help="LOW,HIGH of the coefficients (default -1,1)")
    p.add_argument("--resolution", type=int, default=21, help="points per axis (default 21)")
    p.add_argument("--subset", type=int, default=10_000, help="training examples used")
    p.add_argument("--seed", type=int, default=0, help="seed of the random directions")
    p.add_argument(
        "--include-bias-bn",
        action="store_true",
        help="also perturb biases and norm parameters (zero by default)",
    )
    p.add_argument("--kind", default="all", help="contour, filled, surface or all")
    p.add_argument("--recompute", action="store_true", help="ignore the cached .npz")
    p.add_argument("--out", required=True, help="output figure (.png, .svg, .pdf)")
    p.set_defaults(func=run)
