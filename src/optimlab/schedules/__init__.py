"""Pure, closed-form schedules ``step -> value`` for learning rates, momentum and batch size.

Every schedule is a picklable callable of the step (from 0 at the first update); joins,
warm-up, restarts and scaling are compositions. ``create(name, **params)`` builds one by
its registry name, ``ScheduleAdapter`` drives a torch optimizer's param groups with one.
"""

from optimlab.schedules.adapter import ScheduleAdapter
from optimlab.schedules.base import Constant, Schedule
from optimlab.schedules.batch_size import (
    BatchCompensatedLR,
    BatchSchedule,
    ConstantBatch,
    EpochClock,
    IncreaseBatch,
    MultiStepBatch,
    OnEpochs,
    OnSteps,
    increase_batch_instead,
)
from optimlab.schedules.compose import (
    Join,
    PerEpoch,
    Product,
    Scaled,
    epochs_to_steps,
    steps_per_epoch,
)
from optimlab.schedules.cyclic import Cyclic, CyclicMomentum
from optimlab.schedules.decay import (
    CosineDecay,
    ExponentialDecay,
    InverseTimeDecay,
    Linear,
    PolynomialDecay,
)
from optimlab.schedules.nesterov import NAGCMomentum, NAGSCMomentum
from optimlab.schedules.one_cycle import OneCycle, OneCycleMomentum
from optimlab.schedules.piecewise import Harmonic, MultiStepDecay, StepDecay
from optimlab.schedules.registry import SCHEDULES, available, create, record
from optimlab.schedules.restarts import ExponentialRestarts, SnapshotCycles, WarmRestarts
from optimlab.schedules.warmup import LinearWarmup, warmup_cosine, with_warmup

__all__ = [
    "SCHEDULES",
    "BatchCompensatedLR",
    "BatchSchedule",
    "Constant",
    "ConstantBatch",
    "CosineDecay",
    "Cyclic",
    "CyclicMomentum",
    "EpochClock",
    "ExponentialDecay",
    "ExponentialRestarts",
    "Harmonic",
    "IncreaseBatch",
    "InverseTimeDecay",
    "Join",
    "Linear",
    "LinearWarmup",
    "MultiStepBatch",
    "MultiStepDecay",
    "NAGCMomentum",
    "NAGSCMomentum",
    "OnEpochs",
    "OnSteps",
    "OneCycle",
    "OneCycleMomentum",
    "PerEpoch",
    "PolynomialDecay",
    "Product",
    "Scaled",
    "Schedule",
    "ScheduleAdapter",
    "SnapshotCycles",
    "StepDecay",
    "WarmRestarts",
    "available",
    "create",
    "epochs_to_steps",
    "increase_batch_instead",
    "record",
    "steps_per_epoch",
    "warmup_cosine",
    "with_warmup",
]
