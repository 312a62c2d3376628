"""The training engine: a lean trainer with callbacks, checkpoints and exact resume.

>>> result = fit(problem, optimizer, epochs=10, out_dir="runs/x")  # doctest: +SKIP
>>> result.status, result.summary["best"]["val_accuracy"]  # doctest: +SKIP
"""

from optimlab.train.callback import Callback, CallbackList
from optimlab.train.checkpoint import ModelCheckpoint, load_checkpoint
from optimlab.train.denormals import flush_denormals
from optimlab.train.early_stopping import EarlyStopping
from optimlab.train.evaluate import evaluate
from optimlab.train.loggers import CSVLogger, JSONLLogger, TensorBoardLogger
from optimlab.train.plateau import ReduceLROnPlateau
from optimlab.train.progress import ProgressBar
from optimlab.train.trainer import STATUSES, RunResult, Trainer, fit

__all__ = [
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "JSONLLogger",
    "ModelCheckpoint",
    "ProgressBar",
    "ReduceLROnPlateau",
    "RunResult",
    "STATUSES",
    "TensorBoardLogger",
    "Trainer",
    "evaluate",
    "fit",
    "flush_denormals",
    "load_checkpoint",
]
