"""Curvature of a loss: Hessian-, Gauss-Newton- and Fisher-vector products, exact small
Hessians and Fishers, and spectra by Lanczos.

Two front ends, one per way a loss is given:

* a pure function of the parameters (``ModelObjective`` builds one from a module, a
  loss and a batch): products and matrices with ``torch.func`` (``hvp``, ``hessian``,
  ``ggn_vector_product``, ``fisher``, ``empirical_fisher``, ...);
* a closure that evaluates the loss of tensors it captures, as ``torch.optim``
  closures do: ``GradientGraph``, products by double backward through autograd.

Either gives an operator ``v -> A v`` for ``extreme_eigenvalues`` (Lanczos),
``power_iteration``, ``hutchinson_trace`` and the conjugate-gradient solver
``conjugate_gradient``.

A third way in, for optimizers that precondition with the Fisher: ``Recorder`` watches
a closure's forward and backward pass through a model's modules (the model's output
and its gradient, each layer's input and output gradient), from which
``per_example_pullbacks`` gives per-example gradients and ``fisher_of_outputs`` the
true Fisher without the targets, and ``optimlab.curvature.kfac`` K-FAC's Kronecker
factors.
"""

from optimlab.curvature.capture import Recorder
from optimlab.curvature.cg import CGResult, conjugate_gradient
from optimlab.curvature.fisher import (
    KINDS,
    empirical_fisher,
    empirical_fisher_vector_product,
    fisher,
    fisher_of_outputs,
    fisher_vector_product,
    ggn,
    ggn_operator,
    ggn_vector_product,
    hessian_matrix,
    operator,
    per_example_gradients,
    per_example_pullbacks,
)
from optimlab.curvature.flat import Params, flatten, numel, unflatten
from optimlab.curvature.graph import (
    GradientGraph,
    backward_creates_graph,
    backward_retains_graph,
)
from optimlab.curvature.hvp import (
    DEFAULT_METHOD,
    METHODS,
    hessian,
    hvp,
    hvp_operator,
)
from optimlab.curvature.likelihood import likelihood_of
from optimlab.curvature.model import ModelObjective
from optimlab.curvature.spectrum import (
    Extremes,
    extreme_eigenvalues,
    hutchinson_trace,
    lanczos,
    power_iteration,
)

__all__ = [
    "CGResult",
    "DEFAULT_METHOD",
    "KINDS",
    "METHODS",
    "Extremes",
    "GradientGraph",
    "ModelObjective",
    "Params",
    "Recorder",
    "backward_creates_graph",
    "backward_retains_graph",
    "conjugate_gradient",
    "empirical_fisher",
    "empirical_fisher_vector_product",
    "extreme_eigenvalues",
    "fisher",
    "fisher_of_outputs",
    "fisher_vector_product",
    "flatten",
    "ggn",
    "ggn_operator",
    "ggn_vector_product",
    "hessian",
    "hessian_matrix",
    "hutchinson_trace",
    "hvp",
    "hvp_operator",
    "lanczos",
    "likelihood_of",
    "numel",
    "operator",
    "per_example_gradients",
    "per_example_pullbacks",
    "power_iteration",
    "unflatten",
]
