"""Generalization: the train-test gap per contender, and averaged models at the same cost.

Regularization is judged by what it does to the gap between training and test
performance, not by the selection metric alone. Snapshot ensembles, SWA and EMA
(``optimlab.regularize.ensembles``) log their own test metric from the same run
(``ens_test_*``, ``swa_test_*``, ``ema_test_*``), so they cost no extra training and are
compared with the single model they come from.
"""

from __future__ import annotations

import statistics

from optimlab.lab.report.analysis import ProblemAnalysis
from optimlab.lab.report.document import Table
from optimlab.lab.report.fmt import num

AVERAGED = (("ens_", "snapshot ensemble"), ("swa_", "SWA"), ("ema_", "EMA"))


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def generalization_table(p: ProblemAnalysis) -> Table | None:
    """Mean final train and test value and their gap per optimizer, over the final runs
    that finished; None when the runs have no test split."""
    runs = [r for r in p.runs if r.phase == "final" and r.status not in ("diverged", "failed")]
    base = "accuracy" if any("test_accuracy" in r.final for r in runs) else "loss"
    if not any(f"test_{base}" in r.final for r in runs):
        return None
    extra = [(prefix, name) for prefix, name in AVERAGED
             if any(f"{prefix}test_{base}" in r.final for r in runs)]  # fmt: skip
    rows = []
    for optimizer in sorted({r.label for r in runs}):
        mine = [r.final for r in runs if r.label == optimizer]
        train = _mean([f[base] for f in mine if f.get(base) is not None])
        test = _mean([f[f"test_{base}"] for f in mine if f.get(f"test_{base}") is not None])
        gap = None if train is None or test is None else train - test
        row = [optimizer, str(len(mine)), num(train), num(test), num(gap)]
        for prefix, _ in extra:
            row.append(num(_mean([f[f"{prefix}test_{base}"] for f in mine
                                  if f.get(f"{prefix}test_{base}") is not None])))  # fmt: skip
        rows.append(row)
    headers = ["optimizer", "runs", f"train {base}", f"test {base}", "train - test"]
    headers += [f"{name} test {base}" for _, name in extra]
    caption = (
        f"Means over the final runs. Train {base} is the running mean over the last epoch, "
        "measured with dropout and augmentation active, as Keras reports it; the gap is "
        "train minus test."
    )
    if extra:
        caption += " Averaged models come from the same runs: same training cost."
    return Table(headers, rows, caption, frozenset(range(1, len(headers))))
