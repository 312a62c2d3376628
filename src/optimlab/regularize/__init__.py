"""Fighting overfitting: penalties (and their proximal and scheduled forms), activation
sparsity, constraints, dropout and noise, mixup, ensembles.

Batched image augmentation lives in :mod:`optimlab.data.augment`; the command-line and
study-file options that switch all of these on by name are in
:mod:`optimlab.regularize.options`.
"""

from optimlab.regularize.constraints import MaxNorm, apply_max_norm, max_norm_
from optimlab.regularize.dropout import (
    DropConnectLinear,
    GaussianDropout,
    GaussianNoise,
    InvertedDropout,
    StochasticDepth,
    VanillaDropout,
    add_dropout,
)
from optimlab.regularize.mixup import Mixup, mixup_problem
from optimlab.regularize.penalties import (
    ActivityPenalty,
    OutputPenalty,
    WeightPenalty,
    elastic_net,
    l1,
    l2,
    penalized_loss,
    penalized_parameters,
    with_penalty,
)
from optimlab.regularize.penalty_schedule import ScheduledPenalty
from optimlab.regularize.proximal import ProximalL1, soft_threshold_
from optimlab.regularize.ridge import ridge_solution
from optimlab.regularize.sparsity import KLSparsity, kl_sparsity

__all__ = [
    "ActivityPenalty",
    "DropConnectLinear",
    "GaussianDropout",
    "GaussianNoise",
    "InvertedDropout",
    "KLSparsity",
    "MaxNorm",
    "Mixup",
    "OutputPenalty",
    "ProximalL1",
    "ScheduledPenalty",
    "StochasticDepth",
    "VanillaDropout",
    "WeightPenalty",
    "add_dropout",
    "apply_max_norm",
    "elastic_net",
    "kl_sparsity",
    "l1",
    "l2",
    "max_norm_",
    "mixup_problem",
    "penalized_loss",
    "penalized_parameters",
    "ridge_solution",
    "soft_threshold_",
    "with_penalty",
]
