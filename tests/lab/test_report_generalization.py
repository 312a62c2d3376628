"""The report's generalization table: train-test gap and averaged models, from the numbers."""

from __future__ import annotations

import statistics

from optimlab.lab.report import write_report

STUDY = {"name": "gap", "metric": "val_accuracy", "mode": "max", "protocol": "fixed",
         "seeds": 2, "epochs": 1, "targets": {}, "created": "2026-01-01T00:00:00"}  # fmt: skip


def record(label: str, seed: int, train: float, test: float, ens: float | None = None) -> dict:
    row = {"epoch": 1, "loss": 0.3, "accuracy": train, "val_loss": 0.4,
           "val_accuracy": test + 0.01, "test_loss": 0.4, "test_accuracy": test,
           "time": 1.0, "step": 10}  # fmt: skip
    if ens is not None:
        row["ens_test_accuracy"] = ens
    return {"problem": "p", "label": label, "name": "sgd", "phase": "final", "params": {"lr": 0.1},
            "seed": seed, "status": "completed", "history": [row], "final": row,
            "error": None, "wall_time": 1.0}  # fmt: skip


def test_gap_and_ensemble_columns(tmp_path):
    records = [
        record("none", 0, 0.99, 0.85), record("none", 1, 0.97, 0.83),
        record("dropout", 0, 0.90, 0.86, ens=0.87), record("dropout", 1, 0.88, 0.86, ens=0.88),
    ]  # fmt: skip
    paths = write_report(records, STUDY, tmp_path)
    md = paths["markdown"].read_text()
    assert "## Generalization" in md
    section = md.split("## Generalization", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith(("| none", "| dropout"))]
    table = {cells[0]: cells for cells in
             ([c.strip() for c in line.strip("|").split("|")] for line in lines)}  # fmt: skip
    gap_none = statistics.fmean([0.99, 0.97]) - statistics.fmean([0.85, 0.83])
    gap_dropout = statistics.fmean([0.90, 0.88]) - statistics.fmean([0.86, 0.86])
    assert any(f"{gap_none:.4g}" == c for c in table["none"])
    assert any(f"{gap_dropout:.4g}" == c for c in table["dropout"])
    assert any(f"{statistics.fmean([0.87, 0.88]):.4g}" == c for c in table["dropout"])
    assert "snapshot ensemble test accuracy" in md
