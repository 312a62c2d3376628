"""Neural-network building blocks: model builders (``optimlab.nn.models``)."""

from optimlab.nn.models import MODELS, build_model, count_parameters

__all__ = ["MODELS", "build_model", "count_parameters"]
