"""optimlab: the optimization and regularization lab for deep learning, built on PyTorch."""

from optimlab.errors import OptimlabError

__version__ = "0.1.0"
__all__ = ["OptimlabError", "__version__"]
