"""Test problems: data + model + loss + metrics + a default budget, built by name.

>>> problem = build("digits_mlp", seed=0)  # doctest: +SKIP
>>> problem.model, problem.loss_fn, problem.metrics, problem.splits  # doctest: +SKIP
"""

from optimlab.problems import catalog as _catalog  # noqa: F401  (registers the problems)
from optimlab.problems import sparse as _sparse  # noqa: F401  (registers sparse_logreg)
from optimlab.problems.functions1d import FUNCTIONS_1D, Function1D
from optimlab.problems.functions2d import FUNCTIONS, Function2D, PointModel
from optimlab.problems.losses import LOSSES, get_loss
from optimlab.problems.problem import PROBLEMS, Problem, ProblemRecord, available, build

__all__ = [
    "FUNCTIONS",
    "FUNCTIONS_1D",
    "LOSSES",
    "PROBLEMS",
    "Function1D",
    "Function2D",
    "PointModel",
    "Problem",
    "ProblemRecord",
    "available",
    "build",
    "get_loss",
]
