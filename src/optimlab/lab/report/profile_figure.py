"""The performance-profile figure: rho(tau) per optimizer over tau in [1, 4]."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from optimlab.lab.report.analysis import Analysis
from optimlab.lab.report.figures import FigureFile, new_figure, save
from optimlab.lab.report.targets import TAU_MAX, profile

UNITS = {"time": "seconds", "step": "optimizer steps", "epoch": "epochs"}


def profile_figure(analysis: Analysis, palette: dict[str, str], out_dir: Path) -> FigureFile | None:
    """rho(tau) as step curves, scores in the legend; None with fewer than two problems."""
    if not analysis.scores:
        return None
    taus = np.linspace(1.0, TAU_MAX, 301)
    rho = profile(analysis.profile_times, taus.tolist())
    fig, (ax,) = new_figure(1, height=3.6)
    for optimizer, ys in rho.items():
        score = analysis.scores[optimizer]
        ax.step(
            taus,
            ys,
            where="post",
            color=palette[optimizer],
            lw=1.8,
            label=f"{optimizer} (score {score:.2f})",
        )
    ax.set_xlim(1.0, TAU_MAX)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("tau (time to target / fastest optimizer's time)")
    ax.set_ylabel("fraction of problems within tau")
    fig.legend(loc="outside right upper", fontsize=8, frameon=False)
    fig.suptitle("Performance profile", fontsize=11)
    n = len(analysis.profile_times)
    caption = (
        f"rho(tau): the fraction of the {n} problems on which an optimizer reaches the target "
        f"within tau times the fastest optimizer's {UNITS[analysis.clock]} (median over the "
        "final seeds). The score is the area under the curve for tau in [1, 4] divided by 3."
    )
    return save(fig, out_dir, "performance_profile", "Performance profile", caption)
