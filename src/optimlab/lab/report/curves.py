"""Learning curves: median over the final seeds with an interquartile band, per problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D

from optimlab.lab.report.analysis import ProblemAnalysis
from optimlab.lab.report.figures import FigureFile, new_figure, save, slug
from optimlab.lab.report.runs import Run, finite

FAMILIES = (("loss", "loss"), ("accuracy", "accuracy"))


def epoch_matrix(runs: list[Run], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Epochs (sorted) and a runs x epochs array of ``key`` with NaN where missing or non-finite.

    A row without an epoch number takes its position (from 1) in the history.
    """
    cells: list[tuple[int, float, float]] = []
    for j, run in enumerate(runs):
        for i, row in enumerate(run.history):
            epoch = finite(row.get("epoch"))
            value = finite(row.get(key))
            if value is not None:
                cells.append((j, float(i + 1) if epoch is None else epoch, value))
    epochs = np.array(sorted({c[1] for c in cells}), dtype=float)
    values = np.full((len(runs), len(epochs)), np.nan)
    where = {e: i for i, e in enumerate(epochs.tolist())}
    for j, epoch, value in cells:
        values[j, where[epoch]] = value
    return epochs, values


def quartiles(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per column: 25th, 50th and 75th percentile of the finite entries, and their count."""
    count = np.isfinite(values).sum(axis=0)
    q = np.full((3, values.shape[1]), np.nan)
    for i in np.flatnonzero(count):
        q[:, i] = np.percentile(values[np.isfinite(values[:, i]), i], [25, 50, 75])
    return q[0], q[1], q[2], count


def curve_runs(runs: list[Run]) -> tuple[list[Run], bool]:
    """The final runs to draw: those with a history, diverged ones left out when others exist.

    Returns the runs and whether any diverged run was left out.
    """
    drawn = [r for r in runs if r.phase == "final" and r.status != "failed" and r.history]
    stable = [r for r in drawn if r.status != "diverged"]
    if stable and len(stable) < len(drawn):
        return stable, True
    return drawn, False


def _held_out(runs: list[Run], family: str) -> str | None:
    for split in ("test", "val"):
        if any(r.has(f"{split}_{family}") for r in runs):
            return f"{split}_{family}"
    return None


def curves_figure(p: ProblemAnalysis, palette: dict[str, str], out_dir: Path) -> FigureFile | None:
    """Training and held-out loss (and accuracy when present) against epochs; None if no runs."""
    by_optimizer: dict[str, list[Run]] = {}
    left_out: list[str] = []
    for optimizer in sorted({r.label for r in p.runs}):
        runs, dropped = curve_runs([r for r in p.runs if r.label == optimizer])
        if runs:
            by_optimizer[optimizer] = runs
        if dropped:
            left_out.append(optimizer)
    all_runs = [r for runs in by_optimizer.values() for r in runs]
    panels = []
    for family, label in FAMILIES:
        keys = [
            k
            for k in (family, _held_out(all_runs, family))
            if k and any(r.has(k) for r in all_runs)
        ]
        if keys:
            panels.append((label, keys))
    if not panels:
        return None
    held_out = sorted({k.split("_")[0] for _, keys in panels for k in keys if "_" in k})
    fig, axes = new_figure(len(panels))
    for ax, (label, keys) in zip(axes, panels):
        drawn: list[float] = []
        for optimizer, runs in by_optimizer.items():
            colour = palette[optimizer]
            for key in keys:
                epochs, values = epoch_matrix(runs, key)
                if not len(epochs):
                    continue
                q1, med, q3, count = quartiles(values)
                style = "--" if "_" in key else "-"
                ax.plot(epochs, med, style, color=colour, linewidth=1.6)
                band = count >= 2
                if band.any():
                    ax.fill_between(epochs, q1, q3, where=band, color=colour, alpha=0.18, lw=0)
                drawn.extend(v for v in np.concatenate([q1, med, q3]) if np.isfinite(v))
        positive = [v for v in drawn if v > 0]
        # Loss often spans decades (and explodes just before a divergence); a log axis keeps
        # the interesting part visible.
        if (
            label == "loss"
            and drawn
            and len(positive) == len(drawn)
            and max(drawn) > 20 * min(drawn)
        ):
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
    handles = [Line2D([], [], color=palette[o], lw=2, label=o) for o in by_optimizer]
    handles.append(Line2D([], [], color="black", lw=1.4, label="train"))
    names = {"test": "test", "val": "validation"}
    for split in held_out:
        handles.append(Line2D([], [], color="black", lw=1.4, ls="--", label=names[split]))
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)
    fig.suptitle(f"{p.problem}: learning curves", fontsize=11)
    seeds = sorted({len(runs) for runs in by_optimizer.values()})
    seed_text = str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]} to {seeds[-1]}"
    split_text = " or ".join(names[s] for s in held_out) or "no held-out split"
    caption = (
        f"Median over the final seeds ({seed_text} per optimizer) with the interquartile band "
        f"where two or more seeds have a value; solid: training, dashed: {split_text}."
    )
    if left_out:
        caption += f" Diverged seeds are left out for {', '.join(left_out)}."
    stem = f"curves_{slug(p.problem)}"
    return save(fig, out_dir, stem, f"Learning curves: {p.problem}", caption)
