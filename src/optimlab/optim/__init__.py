"""Optimizers built from composable transforms, drop-in for ``torch.optim``.

Named optimizers (``SGD``, ``Adagrad``, ``RMSprop``, ``Adadelta``, ``Adam``,
``AdamW``, ``Adamax``, ``NAdam``, Nesterov's ``NAGC`` and ``NAGSC``, ``SWATS`` and
``AdamThenSGD``) are chains with good defaults; ``Chain`` builds a custom one from the
transforms exported here. The second-order ones (``Newton``, ``BFGS``, ``LBFGS``,
``NonlinearCG``, ``HessianFree``) take ``step(closure)`` and evaluate the loss several
times per step (``optimlab.optim.closure``); the natural-gradient ones (``NaturalGradient``,
``DiagonalNaturalGradient``, ``KFAC``) take ``step(closure)`` too and read the Fisher from the
closure's pass through the model. ``create(name, params, **hp)`` builds one by its
registry name.
"""

from optimlab.optim.accelerated import (
    NAGC,
    NAGSC,
    NesterovConvexTrace,
    NesterovStronglyConvexTrace,
)
from optimlab.optim.adadelta import Adadelta, ScaleByAdadelta
from optimlab.optim.adagrad import Adagrad, ScaleByAdagrad
from optimlab.optim.adam import Adam, AdamW, ScaleByAdam
from optimlab.optim.adamax import Adamax, ScaleByAdamax
from optimlab.optim.base import Chain, ChainOptimizer
from optimlab.optim.bfgs import BFGS
from optimlab.optim.cg import NonlinearCG
from optimlab.optim.clipping import ClipByGlobalNorm, ClipByNorm, ClipByValue
from optimlab.optim.closure import ClosureOptimizer
from optimlab.optim.decay import AddWeightDecay, DecoupledWeightDecay
from optimlab.optim.hessian_free import HessianFree
from optimlab.optim.kfac import KFAC
from optimlab.optim.lbfgs import LBFGS
from optimlab.optim.momentum import Trace
from optimlab.optim.nadam import NAdam, ScaleByNAdam
from optimlab.optim.natural_gradient import DiagonalNaturalGradient, NaturalGradient
from optimlab.optim.newton import Newton
from optimlab.optim.noise import AddGradientNoise
from optimlab.optim.path_sgd import PathSGD
from optimlab.optim.registry import OPTIMIZERS, OptimizerRecord, available, create, get
from optimlab.optim.rmsprop import RMSprop, ScaleByRMS
from optimlab.optim.scale import ScaleByLearningRate
from optimlab.optim.sgd import SGD
from optimlab.optim.switching import SWATS, AdamThenSGD, ScaleByAdamThenSGD, ScaleBySwats
from optimlab.optim.transform import Transform

__all__ = [
    "BFGS",
    "LBFGS",
    "OPTIMIZERS",
    "SGD",
    "SWATS",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamThenSGD",
    "AdamW",
    "Adamax",
    "AddGradientNoise",
    "AddWeightDecay",
    "Chain",
    "ChainOptimizer",
    "ClipByGlobalNorm",
    "ClipByNorm",
    "ClipByValue",
    "ClosureOptimizer",
    "DecoupledWeightDecay",
    "HessianFree",
    "DiagonalNaturalGradient",
    "KFAC",
    "NAGC",
    "NAGSC",
    "NAdam",
    "NaturalGradient",
    "NesterovConvexTrace",
    "NesterovStronglyConvexTrace",
    "Newton",
    "NonlinearCG",
    "OptimizerRecord",
    "PathSGD",
    "RMSprop",
    "ScaleByAdadelta",
    "ScaleByAdagrad",
    "ScaleByAdam",
    "ScaleByAdamThenSGD",
    "ScaleByAdamax",
    "ScaleByLearningRate",
    "ScaleByNAdam",
    "ScaleByRMS",
    "ScaleBySwats",
    "Trace",
    "Transform",
    "available",
    "create",
    "get",
]
