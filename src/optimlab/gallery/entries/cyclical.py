"""Cyclical learning rates and snapshot cycles, checked against the papers' closed forms.

optimlab's ``cyclic`` schedule (modes triangular, triangular2, exp_range) and its
``snapshot`` schedule are evaluated at every step of the budget and compared with plain
transcriptions of Smith (2017) and Huang et al. (2017), written here independently of
:mod:`optimlab.schedules`:

.. code-block:: text

    cycle = floor(1 + it / (2 s)),  x = |it / s - 2 cycle + 1|,
    lr = base + (max - base) max(0, 1 - x) * (1 | 1 / 2^(cycle-1) | gamma^it)
    snapshot (t from 1): lr = lr0 / 2 (cos(pi mod(t - 1, ceil(T/M)) / ceil(T/M)) + 1)

Measured besides the largest deviation: the peak of each cycle (whose amplitudes
triangular2 should halve and exp_range shrink by gamma^(2s)), and the snapshot
schedule's value at each cycle's start and at each saved snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from optimlab.gallery import figures
from optimlab.gallery.decks import deck
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED, Context, Entry, Measured, Verdict

MODES = ("triangular", "triangular2", "exp_range")
TOL = 1e-12  # relative to the schedule's largest value: the formulas are closed forms


def smith(it: int, base: float, top: float, s: int, mode: str, gamma: float) -> float:
    """Smith (2017), eq. in section 3.1, with the mode's amplitude scale."""
    cycle = math.floor(1 + it / (2 * s))
    x = abs(it / s - 2 * cycle + 1)
    scale = {"triangular": 1.0, "triangular2": 1 / 2 ** (cycle - 1), "exp_range": gamma**it}
    return base + (top - base) * max(0.0, 1 - x) * scale[mode]


def huang(t: int, lr0: float, total: int, cycles: int) -> float:
    """Huang et al. (2017), eq. (2), with t counted from 1."""
    length = math.ceil(total / cycles)
    return lr0 / 2 * (math.cos(math.pi * ((t - 1) % length) / length) + 1)


def compute(budget: Mapping[str, Any], context: Context) -> Measured:
    from optimlab.schedules import create

    steps, s = budget["steps"], budget["step_size"]
    base, top, gamma = budget["base_lr"], budget["max_lr"], budget["gamma"]
    curves, numbers = {}, {}
    for mode in MODES:
        schedule = create("cyclic", base_lr=base, max_lr=top, step_size_up=s, mode=mode,
                          gamma=gamma)  # fmt: skip
        ours = np.array([schedule(t) for t in range(steps)])
        paper = np.array([smith(t, base, top, s, mode, gamma) for t in range(steps)])
        peaks = [float(ours[k : k + 2 * s].max()) for k in range(0, steps, 2 * s)]
        amplitudes = [p - base for p in peaks]
        curves[mode] = ours
        numbers[mode] = {
            "max_error": float(np.abs(ours - paper).max() / top),
            "peaks": peaks,
            "amplitude_ratios": [b / a for a, b in zip(amplitudes, amplitudes[1:], strict=False)],
        }
    numbers["exp_range"]["expected_ratio"] = gamma ** (2 * s)
    lr0, cycles = budget["snapshot_lr"], budget["cycles"]
    snap = create("snapshot", lr=lr0, total_steps=steps, cycles=cycles)
    ours = np.array([snap(t) for t in range(steps)])
    paper = np.array([huang(t + 1, lr0, steps, cycles) for t in range(steps)])
    ends = snap.cycle_ends()
    length = math.ceil(steps / cycles)
    curves["snapshot"] = ours
    numbers["snapshot"] = {
        "max_error": float(np.abs(ours - paper).max() / lr0),
        "cycle_length": length,
        "snapshot_steps": ends,
        "values_at_cycle_starts": [float(ours[k]) for k in range(0, steps, length)],
        "values_at_snapshots": [float(ours[e]) for e in ends],
        "cycle_minima": [float(ours[k : k + length].min()) for k in range(0, steps, length)],
    }
    return Measured(numbers, {"curves": curves, "snapshots": ends})


def draw(measured: Measured) -> dict[str, Any]:
    from optimlab.viz import style

    curves = measured.data["curves"]
    fig = figures.figure(12.0, 6.2)
    axes = fig.subplots(2, 2, sharex=True).ravel()
    titles = {
        "triangular": "triangular",
        "triangular2": "triangular2: amplitude halved every cycle",
        "exp_range": "exp_range: amplitude times gamma^iteration",
        # Said in the title: a legend had no corner free of the curve.
        "snapshot": "snapshot ensembles: cosine cycles, a model saved at each end (triangles)",
    }
    for i, (ax, (name, values)) in enumerate(zip(axes, curves.items(), strict=True)):
        ax.plot(np.arange(len(values)), values, color=style.PALETTE[i], linewidth=1.4)
        if name == "snapshot":
            ends = measured.data["snapshots"]
            ax.plot(ends, values[ends], marker="v", color="black", linestyle="none")
        ax.set_title(titles[name], fontsize=10)
        ax.set_ylabel("learning rate")
        ax.grid(True, alpha=0.3, linewidth=0.6)
    for ax in axes[2:]:
        ax.set_xlabel("iteration")
    fig.suptitle("cyclical learning rates (Smith 2017) and snapshot cycles (Huang et al. 2017)")
    return {"schedules": fig}


def rule(numbers: Mapping[str, Any]) -> Verdict:
    """Reproduced when every schedule matches its paper's formula at every step (within
    1e-12 of its largest value), every triangular peak is the same, triangular2 halves
    each cycle's amplitude, exp_range shrinks it by gamma^(2s), and each snapshot is
    taken at its cycle's lowest rate after a restart at lr0."""
    problems = []
    for name in (*MODES, "snapshot"):
        err = numbers[name]["max_error"]
        if err > TOL:
            problems.append(f"{name} departs from its paper's formula by {err:.2g} of its maximum")
    tri = numbers["triangular"]["peaks"]
    if max(tri) - min(tri) > TOL * max(tri):
        problems.append(f"triangular's peaks differ: {tri}")
    halves = numbers["triangular2"]["amplitude_ratios"]
    if any(abs(r - 0.5) > 1e-9 for r in halves):
        problems.append(f"triangular2's amplitude ratios are {halves}, not 1/2")
    exp = numbers["exp_range"]
    if any(abs(r - exp["expected_ratio"]) > 1e-9 for r in exp["amplitude_ratios"]):
        problems.append(
            f"exp_range's amplitude ratios are {exp['amplitude_ratios']}, not gamma^(2s) = "
            f"{exp['expected_ratio']:.6g}"
        )
    snap = numbers["snapshot"]
    starts = snap["values_at_cycle_starts"]
    if max(starts) - min(starts) > TOL * max(starts):
        problems.append(f"the snapshot cycles restart at {starts}, not all at lr0")
    lowest = all(
        abs(v - m) <= TOL * max(starts)
        for v, m in zip(snap["values_at_snapshots"], snap["cycle_minima"], strict=False)
    )
    if not lowest or len(snap["values_at_snapshots"]) != len(snap["cycle_minima"]):
        problems.append("the snapshots are not taken at the cycles' lowest rates")
    if problems:
        return Verdict(NOT_REPRODUCED, "; ".join(problems) + ".")
    worst = max(numbers[n]["max_error"] for n in (*MODES, "snapshot"))
    return Verdict(
        REPRODUCED,
        f"all four schedules match the papers' formulas at every step (largest deviation "
        f"{worst:.1e} of the maximum); triangular2's amplitude halves each cycle, exp_range's "
        f"shrinks by {exp['expected_ratio']:.4g} = gamma^(2s), and each of the "
        f"{len(snap['snapshot_steps'])} snapshots is taken at its cycle's lowest rate.",
    )


def table(numbers: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = [
        [name, f"{numbers[name]['max_error']:.1e}",
         ", ".join(f"{r:.4g}" for r in numbers[name]["amplitude_ratios"])]
        for name in MODES
    ]  # fmt: skip
    snap = numbers["snapshot"]
    rows.append(["snapshot", f"{snap['max_error']:.1e}",
                 f"snapshots at steps {', '.join(map(str, snap['snapshot_steps']))}"])  # fmt: skip
    return ["schedule", "largest deviation from the paper", "amplitude ratio per cycle"], rows


_BUDGET = {"base_lr": 0.001, "max_lr": 0.006, "gamma": 0.999, "snapshot_lr": 0.1, "cycles": 5}
ENTRY = Entry(
    name="cyclical",
    title="Cyclical learning rates and snapshot cycles",
    deck=deck("000"),
    slide="SGD with Learning Rate Schedule: New problems.... new ideas!",
    claim="Cyclical learning rates (Smith 2017) move the rate in triangles between a lower and "
    "an upper bound; triangular2 halves the amplitude every cycle and exp_range shrinks it by "
    "gamma^iteration. Snapshot ensembles (Huang et al. 2017) fit M cosine cycles into the "
    "budget and save a model at the end of each, where the rate is lowest.",
    tier="quick",
    version=2,
    budgets={
        "quick": {"steps": 2000, "step_size": 250, **_BUDGET},
        "standard": {"steps": 2000, "step_size": 250, **_BUDGET},
        "full": {"steps": 10000, "step_size": 1000, **_BUDGET, "gamma": 0.9998},
    },
    compute=compute,
    draw=draw,
    rule=rule,
    threads=1,
    table=table,
    reference="Smith, Cyclical Learning Rates, WACV 2017; Huang et al., Snapshot Ensembles, "
    "ICLR 2017",
)
