"""``optimlab trajectories``: optimizer paths on a 2-D function, as a PNG or a GIF."""

from __future__ import annotations

import argparse

from optimlab.errors import OptimlabError


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise OptimlabError(f"invalid {what} {text!r}; expected comma-separated numbers") from None


def _lrs(text: str | None, optimizers: list[str]) -> dict[str, float] | None:
    if text is None:
        return None
    values = _floats(text, "--lr")
    if len(values) == 1:
        values = values * len(optimizers)
    if len(values) != len(optimizers):
        raise OptimlabError(
            f"invalid --lr {text!r}; give one rate, or one per optimizer ({len(optimizers)})"
        )
    return dict(zip(optimizers, values, strict=True))


def _start(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    values = _floats(text, "--start")
    if len(values) != 2:
        raise OptimlabError(f"invalid --start {text!r}; expected two numbers x,y")
    return values[0], values[1]


def run(args: argparse.Namespace) -> int:
    from optimlab.errors import check_range
    from optimlab.io import check_output_dir, check_output_file
    from optimlab.viz import trajectories as tr

    if args.gallery is not None:
        check_output_dir(args.gallery, "--gallery")
    if args.out is not None:
        check_output_file(args.out)
    if args.gallery:
        from pathlib import Path

        from optimlab.viz import wilson

        for path in tr.write_gallery(args.gallery, gif=args.gif, frames=args.frames):
            print(path)
        print(wilson.write(Path(args.gallery) / "wilson.png")[0])
        return 0
    if not args.out:
        raise OptimlabError("missing --out FILE (.png, .svg, .pdf or .gif)")
    if args.preset:
        preset = tr.get_preset(args.preset)
        function, optimizers = preset.function, list(preset.optimizers)
        steps = args.steps or preset.steps
        start = _start(args.start) or preset.start
        lrs = _lrs(args.lr, optimizers) or preset.lrs
        tune = args.tune or (preset.lrs is None and args.lr is None)
        title = None  # set from the paths, once they are computed
    else:
        if not args.function or not args.optimizers:
            raise OptimlabError("give --function and --optimizers (or --preset, or --gallery)")
        function = args.function
        optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
        steps, start, tune, title = args.steps or 200, _start(args.start), args.tune, None
        lrs = _lrs(args.lr, optimizers)
        if lrs and tune:
            raise OptimlabError("give either --lr or --tune, not both")
    check_range("steps", steps, 1)
    paths = tr.compute(function, optimizers, steps=steps, lrs=lrs, tune=tune, start=start)
    if args.preset:
        title = tr.title(preset, paths)
    for p in paths:
        print(f"{p.optimizer:>10}  lr={p.lr:<10.4g} final f={p.losses[-1]:.6g}"
              + ("  (diverged)" if p.diverged else ""))  # fmt: skip
    print(tr.save(function, paths, args.out, frames=args.frames, title=title))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("trajectories", help="optimizer paths on a 2-D function (PNG or GIF)")
    p.add_argument("--function", help="rosenbrock, beale, saddle, ravine, himmelblau, rastrigin")
    p.add_argument("--optimizers", help="comma-separated optimizer names")
    p.add_argument("--lr", help="one learning rate for all, or one per optimizer (a,b,c)")
    p.add_argument(
        "--tune",
        action="store_true",
        help="pick each rate on a log grid 1e-4..1 (distance to a minimum)",
    )
    p.add_argument("--steps", type=int, help="optimizer steps (default 200, or the preset's)")
    p.add_argument("--start", help="start point x,y (default: the function's)")
    p.add_argument(
        "--frames",
        type=int,
        default=60,
        help="GIF frames: min(frames, steps+1) evenly spaced steps (default 60)",
    )
    p.add_argument(
        "--preset",
        help="a gallery picture: ravine, saddle, rosenbrock, beale, himmelblau, rastrigin",
    )
    p.add_argument(
        "--gallery",
        metavar="DIR",
        help="write every preset as DIR/<preset>.png, and DIR/wilson.png (Wilson et al. 2017)",
    )
    p.add_argument("--gif", action="store_true", help="with --gallery: also write GIFs")
    p.add_argument("--out", help="output file: .png, .svg, .pdf or .gif")
    p.set_defaults(func=run)
