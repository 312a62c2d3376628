"""Optimizers built from composable transforms, drop-in for ``torch.optim``.

Named optimizers (``SGD``, ``Adagrad``, ``RMSprop``, ``Adadelta``, ``Adam``,
``AdamW``, ``Adamax``, ``NAdam``, Nesterov's ``NAGC`` and ``NAGSC``, ``SWATS`` and
``AdamThenSGD``, and the later ``RAdam``, ``Lion``, ``Lamb``, ``Lars``, ``Adafactor``,
``ScheduleFreeSGD``, ``ScheduleFreeAdamW``, ``Muon``) are chains with good defaults;
``Chain`` builds a custom one from the transforms exported here; ``Prodigy`` runs the
chain's common options around its own two-pass step. The second-order ones (``Newton``,
``BFGS``, ``LBFGS``, ``NonlinearCG``, ``HessianFree``) take ``step(closure)`` and evaluate
the loss several times per step (``optimlab.optim.closure``); the natural-gradient ones
(``NaturalGradient``, ``DiagonalNaturalGradient``, ``KFAC``) take ``step(closure)`` too and
read the Fisher from the closure's pass through the model. ``Lookahead`` and ``SAM`` wrap
any optimizer (``optimlab.optim.wrapper``). ``create(name, params, **hp)`` builds one by
its registry name.
"""

from optimlab.optim.accelerated import (
    NAGC,
    NAGSC,
    NesterovConvexTrace,
    NesterovStronglyConvexTrace,
)
from optimlab.optim.adadelta import Adadelta, ScaleByAdadelta
from optimlab.optim.adafactor import Adafactor, ScaleByAdafactor
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
from optimlab.optim.lamb import Lamb, ScaleByLamb
from optimlab.optim.lars import Lars, ScaleByLars, ZeroStartTrace
from optimlab.optim.lbfgs import LBFGS
from optimlab.optim.lion import Lion, ScaleByLion, ScheduleRelativeWeightDecay
from optimlab.optim.lookahead import Lookahead
from optimlab.optim.momentum import Trace
from optimlab.optim.muon import Muon, ScaleByMuon, muon_param_groups, newton_schulz
from optimlab.optim.nadam import NAdam, ScaleByNAdam
from optimlab.optim.natural_gradient import DiagonalNaturalGradient, NaturalGradient
from optimlab.optim.newton import Newton
from optimlab.optim.noise import AddGradientNoise
from optimlab.optim.path_sgd import PathSGD
from optimlab.optim.prodigy import Prodigy
from optimlab.optim.radam import RAdam, ScaleByRAdam
from optimlab.optim.registry import OPTIMIZERS, OptimizerRecord, available, create, get
from optimlab.optim.rmsprop import RMSprop, ScaleByRMS
from optimlab.optim.sam import SAM
from optimlab.optim.scale import ScaleByLearningRate
from optimlab.optim.schedule_free import (
    ScaleByDebiasedRMS,
    ScheduleFree,
    ScheduleFreeAdamW,
    ScheduleFreeSGD,
    ScheduleFromBetas,
    update_bn_at_average,
)
from optimlab.optim.sgd import SGD
from optimlab.optim.shampoo import ScaleByShampoo, Shampoo, ShampooMomentum
from optimlab.optim.soap import DecayMovedWeights, ScaleBySoap, Soap
from optimlab.optim.switching import SWATS, AdamThenSGD, ScaleByAdamThenSGD, ScaleBySwats
from optimlab.optim.transform import Transform
from optimlab.optim.wrapper import WrapperOptimizer

__all__ = [
    "BFGS",
    "LBFGS",
    "Lamb",
    "Lars",
    "Lion",
    "Lookahead",
    "OPTIMIZERS",
    "SAM",
    "SGD",
    "SWATS",
    "ScheduleFree",
    "ScheduleFreeAdamW",
    "ScheduleFreeSGD",
    "ScheduleFromBetas",
    "ScheduleRelativeWeightDecay",
    "Adadelta",
    "Adafactor",
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
    "Muon",
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
    "Prodigy",
    "Shampoo",
    "ShampooMomentum",
    "ScaleByShampoo",
    "Soap",
    "ScaleBySoap",
    "DecayMovedWeights",
    "RAdam",
    "PathSGD",
    "RMSprop",
    "ScaleByAdadelta",
    "ScaleByDebiasedRMS",
    "ScaleByAdafactor",
    "ScaleByAdagrad",
    "ScaleByAdam",
    "ScaleByAdamThenSGD",
    "ScaleByAdamax",
    "ScaleByLearningRate",
    "ScaleByMuon",
    "ScaleByNAdam",
    "ScaleByRAdam",
    "ScaleByLamb",
    "ScaleByLars",
    "ScaleByLion",
    "ScaleByRMS",
    "ScaleBySwats",
    "Trace",
    "Transform",
    "WrapperOptimizer",
    "available",
    "ZeroStartTrace",
    "create",
    "get",
    "muon_param_groups",
    "newton_schulz",
    "update_bn_at_average",
]
