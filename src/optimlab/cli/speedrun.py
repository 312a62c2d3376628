"""``optimlab speedrun [RECIPE.toml]``: time-to-accuracy runs over several seeds."""

from __future__ import annotations

import argparse

from optimlab.errors import OptimlabError


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from optimlab.io import check_output_file
    from optimlab.speedrun import format_table, load_recipe, run_speedrun

    if args.out is not None:
        check_output_file(args.out)
    recipe = load_recipe(args.recipe, device=args.device)
    if args.threads is not None:
        if args.threads < 1:
            raise OptimlabError(f"invalid --threads {args.threads}; valid: an integer >= 1")
        recipe = replace(recipe, threads=args.threads)
    if args.seeds is not None and args.seeds < 1:
        raise OptimlabError(f"invalid --seeds {args.seeds}; valid: an integer >= 1")
    if recipe.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise OptimlabError(f"device {recipe.device!r} asked for, but CUDA is not available")
    seeds = range(args.seeds if args.seeds is not None else recipe.seeds)
    print(
        f"{recipe.name}: target {recipe.target * 100:g}% on {recipe.dataset}, "
        f"{len(seeds)} seeds, device {recipe.device}, {recipe.threads} threads",
        flush=True,
    )

    def on_epoch(seed: int, row: dict) -> None:
        if not args.quiet:
            acc = "-" if row["accuracy"] is None else f"{row['accuracy'] * 100:.2f}%"
            print(
                f"  seed {seed} epoch {row['epoch']}: {row['time']:.1f} s, test {acc}", flush=True
            )

    result = run_speedrun(recipe, seeds, args.out, on_epoch=on_epoch)
    print(format_table(result["runs"], result["summary"]))
    if args.out:
        print(f"results: {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "speedrun", help="time to a target test accuracy (default: Fashion-MNIST, 91%%)"
    )
    p.add_argument(
        "recipe", nargs="?", help="a speedrun recipe (TOML); default: the shipped Fashion-MNIST one"
    )
    p.add_argument("--seeds", type=int, help="number of seeds, 0..N-1 (default: the recipe's)")
    p.add_argument("--out", help="write the results as JSON to this file")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: the recipe's)")
    p.add_argument("--device", help="cpu or cuda[:N]; cuda applies the recipe's [cuda] settings")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    p.set_defaults(func=run)
