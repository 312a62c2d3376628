"""The lab: optimizer comparisons with a fair tuning protocol, resumable studies in
a real database (Optuna storage), and a report with plots.

>>> spec = load_study("examples/digits_lectures.toml")  # doctest: +SKIP
>>> run_study(spec, out_dir="runs/digits", workers=2)  # doctest: +SKIP
"""

from optimlab.lab.spec import OptimizerSpec, StudySpec, load_study, parse_study

__all__ = ["OptimizerSpec", "StudySpec", "load_study", "parse_study"]
