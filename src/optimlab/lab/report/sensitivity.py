"""Learning-rate sensitivity (the tunability view): tuned metric against learning rate."""

from __future__ import annotations

from pathlib import Path

from matplotlib.lines import Line2D

from optimlab.lab.report.analysis import ProblemAnalysis
from optimlab.lab.report.figures import FigureFile, new_figure, save, slug
from optimlab.lab.report.fmt import plural
from optimlab.lab.report.runs import FINISHED, Run, is_diverged


def tune_points(runs: list[Run], key: str) -> tuple[list[tuple[float, float]], list[float]]:
    """Finished tuning runs as ``(lr, metric)`` sorted by lr, and the lrs of diverged ones.

    Runs without a positive ``lr`` parameter, failed and pruned runs are not drawn.
    """
    ok: list[tuple[float, float]] = []
    bad: list[float] = []
    for run in runs:
        if run.phase != "tune" or run.lr is None:
            continue
        if is_diverged(run, key):
            bad.append(run.lr)
        elif run.status in FINISHED:
            value = run.value(key)
            if value is not None:
                ok.append((run.lr, value))
    return sorted(ok), sorted(bad)


def sensitivity_figure(
    p: ProblemAnalysis, palette: dict[str, str], out_dir: Path, protocol: str
) -> FigureFile | None:
    """Final tuning metric against learning rate (log x), one colour per optimizer.

    Diverged trials are drawn as crosses on the worst edge of the plot; a dotted vertical
    line marks the learning rate each optimizer's final runs used. None when no tuning run
    has a learning rate.
    """
    key = p.metric.key
    points = {
        o: tune_points([r for r in p.runs if r.label == o], key)
        for o in sorted({r.label for r in p.runs})
    }
    points = {o: v for o, v in points.items() if v[0] or v[1]}
    if not points:
        return None
    fig, (ax,) = new_figure(1, height=3.8)
    # A random search samples several hyperparameters at once, so joining its points in
    # lr order would draw a curve that no single setting follows.
    join = protocol != "random"
    # Crosses sit on the worst edge, staggered per optimizer so equal lrs stay visible.
    edge, step = (0.03, 0.04) if p.metric.mode == "max" else (0.97, -0.04)
    values = [v for ok, _ in points.values() for _, v in ok]
    diverged = 0
    for i, (optimizer, (ok, bad)) in enumerate(points.items()):
        colour = palette[optimizer]
        if ok:
            xs, ys = zip(*ok)
            ax.plot(xs, ys, "o-" if join else "o", color=colour, ms=4, lw=1.3, label=optimizer)
        if bad:
            diverged += len(bad)
            ax.plot(
                bad,
                [edge + step * (i % 5)] * len(bad),
                "x",
                color=colour,
                ms=7,
                mew=2,
                transform=ax.get_xaxis_transform(),
                label=None if ok else optimizer,
            )
        chosen = next((s.lr for s in p.stats if s.label == optimizer and s.lr), None)
        if chosen is not None:
            ax.axvline(chosen, color=colour, ls=":", lw=1.2)
    ax.set_xscale("log")
    if key.endswith("loss") and values and min(values) > 0 and max(values) > 20 * min(values):
        ax.set_yscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"{key} after training")
    handles, labels = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], color="black", marker="x", ls="", mew=2, label="diverged"))
    handles.append(Line2D([], [], color="black", ls=":", label="final runs' lr"))
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)
    fig.suptitle(f"{p.problem}: learning-rate sensitivity", fontsize=11)
    edge = "bottom" if p.metric.mode == "max" else "top"
    better = "higher" if p.metric.mode == "max" else "lower"
    trials = sum(1 for r in p.runs if r.phase == "tune")
    caption = (
        f"{key} at the end of each tuning trial against its learning rate "
        f"({plural(trials, 'trial')}; {better} is better). "
    )
    if diverged:
        caption += f"Crosses on the {edge} edge: {plural(diverged, 'diverged trial')}. "
    caption += (
        "Dotted lines: the learning rate of the final runs. A wide plateau means easy tuning."
    )
    stem = f"lr_sensitivity_{slug(p.problem)}"
    return save(fig, out_dir, stem, f"Learning-rate sensitivity: {p.problem}", caption)
