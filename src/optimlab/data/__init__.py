"""Datasets as device tensors: file formats, the dataset registry, ``load`` and the
index-based ``BatchLoader``."""

from optimlab.data.datasets import DATASETS, DatasetRecord, available, load, read_raw
from optimlab.data.loader import BatchLoader
from optimlab.data.sources import DatasetNotFound
from optimlab.data.splits import Split, Splits

__all__ = [
    "DATASETS",
    "BatchLoader",
    "DatasetNotFound",
    "DatasetRecord",
    "Split",
    "Splits",
    "available",
    "load",
    "read_raw",
]
