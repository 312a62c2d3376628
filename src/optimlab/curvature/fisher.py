"""Gauss-Newton and Fisher matrices of a model's loss: products and exact matrices.

With ``z = f(w)`` the model's outputs on a batch and ``L(z)`` the loss:

- generalized Gauss-Newton: ``G = J^T H_L J``, ``J = dz/dw``, ``H_L = d^2 L / dz^2``
  (Schraudolph 2002). The Hessian without the term of the model's own curvature;
  positive semi-definite when ``L`` is convex in ``z``. Works for any loss.
- true Fisher: ``F = mean_i E_{y ~ p(y | z_i)} [grad log p(y|z_i) grad log p(y|z_i)^T]``,
  for losses that are negative log-likelihoods (``optimlab.curvature.likelihood``);
  equal to ``G`` there, since their links are canonical.
- empirical Fisher: ``mean_i g_i g_i^T`` with ``g_i`` the gradient of example ``i``'s
  loss at its observed target (Amari's Fisher with the data's labels in place of the
  model's: not the Fisher in general, see Kunstner, Hennig & Balles 2019).

Products never form the matrix: ``G v`` is one forward-mode pass (``J v``), a product
with ``H_L`` in output space and one reverse pass (``J^T u``). Matrices are for small
models: ``fisher`` sums the outer products of per-example, per-class log-likelihood
gradients (or, for the Gaussian, of per-entry Jacobian rows), computed directly and
not through the products, so the two can check each other.

Vectors are flat, in the order of ``objective.params()``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, jacrev, jvp, vjp, vmap

from optimlab.curvature.flat import flatten, unflatten
from optimlab.curvature.hvp import DEFAULT_METHOD, hessian, hvp_operator
from optimlab.curvature.likelihood import (
    class_log_likelihoods,
    likelihood_of,
    output_fisher_product,
)
from optimlab.curvature.model import ModelObjective
from optimlab.errors import OptimlabError

MatVec = Callable[[Tensor], Tensor]
#: Parameter tensors by name, as ``torch.func.functional_call`` takes them.
Params = dict[str, Tensor]
KINDS = ("hessian", "ggn", "fisher", "empirical_fisher")


def _point(objective: ModelObjective, params: Params | None) -> Params:
    return objective.params() if params is None else params


def _through_outputs(
    objective: ModelObjective, params: Params, v: Tensor, output_product: Callable
) -> Tensor:
    """``J^T M J v`` where ``M`` is ``output_product(z, u)``."""
    tangent = unflatten(v.to(flatten(params)), params)
    z, jv = jvp(objective.outputs, (params,), (tangent,))
    _, pullback = vjp(objective.outputs, params)
    return flatten(pullback(output_product(z.detach(), jv))[0])


def ggn_vector_product(
    objective: ModelObjective, v: Tensor, params: Params | None = None
) -> Tensor:
    """``G v`` for the generalized Gauss-Newton matrix of the objective's loss."""
    params = _point(objective, params)

    def loss_hessian_product(z: Tensor, u: Tensor) -> Tensor:
        # reverse-over-reverse: forward-mode fails on mse_loss (see optimlab.curvature.hvp)
        _, pullback = vjp(grad(objective.loss_of_outputs), z)
        return pullback(u)[0]

    return _through_outputs(objective, params, v, loss_hessian_product)


def ggn_operator(objective: ModelObjective, params: Params | None = None) -> tuple[MatVec, int]:
    """``(matvec, n)``: ``v -> G v`` at one point, for many products there.

    The reverse pass ``u -> J^T u`` and the loss's Hessian in output space are built
    once; each product is then one forward-mode pass and two backward passes through
    kept graphs (1.4x faster per product than ``ggn_vector_product`` on a 64-128-64-10
    MLP, batch 512, one CPU thread)."""
    params = _point(objective, params)
    z, pullback = vjp(objective.outputs, params)
    # reverse-over-reverse: forward-mode fails on mse_loss (see optimlab.curvature.hvp)
    _, loss_hessian = vjp(grad(objective.loss_of_outputs), z.detach())
    like = flatten(params)

    def matvec(v: Tensor) -> Tensor:
        tangent = unflatten(v.to(like), params)
        _, jv = jvp(objective.outputs, (params,), (tangent,))
        return flatten(pullback(loss_hessian(jv)[0])[0])

    return matvec, like.numel()


def fisher_vector_product(
    objective: ModelObjective,
    v: Tensor,
    params: Params | None = None,
    *,
    likelihood: str | None = None,
) -> Tensor:
    """``F v`` for the true Fisher of the likelihood the loss is the negative log of
    (``likelihood`` names it; by default it is read off ``objective.loss_fn``)."""
    params = _point(objective, params)
    name = likelihood_of(likelihood or objective.loss_fn)
    return _through_outputs(objective, params, v, lambda z, u: output_fisher_product(name, z, u))


def per_example_gradients(objective: ModelObjective, params: Params | None = None) -> Tensor:
    """``(N, n)``: row ``i`` is the gradient of example ``i``'s loss, by ``vmap``."""
    params = _point(objective, params)
    grads = vmap(grad(objective.example_loss), in_dims=(None, 0, 0))(
        params, objective.x, objective.y
    )
    n = len(objective.x)
    return torch.cat([g.reshape(n, -1) for g in grads.values()], dim=1)


def empirical_fisher(objective: ModelObjective, params: Params | None = None) -> Tensor:
    """The empirical Fisher ``mean_i g_i g_i^T`` as an ``(n, n)`` matrix."""
    g = per_example_gradients(objective, params)
    return g.T @ g / g.shape[0]


def empirical_fisher_vector_product(
    objective: ModelObjective, v: Tensor, params: Params | None = None
) -> Tensor:
    """``mean_i g_i (g_i^T v)`` without forming the matrix (``N x n`` memory)."""
    g = per_example_gradients(objective, params)
    return g.T @ (g @ v.to(g)) / g.shape[0]


def _jacobian_rows(outputs: Callable[[Params], Tensor], params: Params, fn: Callable) -> Tensor:
    """``(N, K, n)``: the Jacobian of ``fn(outputs(params))`` (``(N, K)``) per example."""
    jac = jacrev(lambda p: fn(outputs(p)))(params)
    n, k = next(iter(jac.values())).shape[:2]
    return torch.cat([j.reshape(n, k, -1) for j in jac.values()], dim=2)


def fisher(
    objective: ModelObjective,
    params: Params | None = None,
    *,
    likelihood: str | None = None,
) -> Tensor:
    """The exact true Fisher as an ``(n, n)`` matrix (see ``fisher_of_outputs``)."""
    params = _point(objective, params)
    name = likelihood_of(likelihood or objective.loss_fn)
    return fisher_of_outputs(objective.outputs, params, name)


def fisher_of_outputs(
    outputs: Callable[[Params], Tensor], params: Params, likelihood: str
) -> Tensor:
    """The exact true Fisher, ``(n, n)``, of the mean negative log-likelihood
    ``likelihood`` (a name of ``optimlab.curvature.likelihood``) of a model given by
    ``outputs(params) -> z`` on a batch.

    Discrete likelihoods: the expectation over the model's own distribution is a
    finite sum, ``mean_i sum_c p_ic s_ic s_ic^T`` with ``s_ic`` the gradient of
    ``log p(c | x_i)``. Gaussian (``mse``): ``2 / M sum_e j_e j_e^T`` over the ``M``
    output entries, ``j_e`` the entry's Jacobian row. Memory: ``N K n`` for the
    Jacobian of ``N`` examples' ``K`` outputs.
    """
    if likelihood == "mse":
        rows = _jacobian_rows(outputs, params, lambda z: z.reshape(z.shape[0], -1))
        flat_rows = rows.reshape(-1, rows.shape[-1])
        return 2.0 * flat_rows.T @ flat_rows / flat_rows.shape[0]
    with torch.no_grad():
        probs = class_log_likelihoods(likelihood, outputs(params)).exp()
    scores = _jacobian_rows(outputs, params, lambda z: class_log_likelihoods(likelihood, z))
    weighted = scores * probs.unsqueeze(-1)
    n = scores.shape[0]
    return torch.einsum("ick,icl->kl", weighted, scores) / n


def per_example_pullbacks(
    model: nn.Module, params: Params, x: Tensor, cotangents: Tensor
) -> Tensor:
    """``(N, n)``: row ``i`` is ``J_i^T c_i``, ``J_i`` the Jacobian in ``params`` of the
    model's output on example ``x[i]`` alone (a batch of one), ``c_i = cotangents[i]``.

    With ``c_i = N dL/dz_i`` for a loss ``L`` that is the mean of per-example terms, row
    ``i`` is the gradient of example ``i``'s term: per-example gradients from the output
    gradient a backward pass leaves, with no need of the targets or the loss function.
    ``params`` may be a subset of the model's parameters (the others are held fixed).
    The model runs once per example (``vmap``), so its forward pass must treat each
    example alone (``optimlab.curvature.capture.example_mixing_modules``).
    """
    keys = list(params)

    def one(xi: Tensor, ci: Tensor) -> Tensor:
        def out(p: Params) -> Tensor:
            return functional_call(model, p, (xi.unsqueeze(0),))

        _, pullback = vjp(out, dict(params))
        grads = pullback(ci.unsqueeze(0))[0]
        return torch.cat([grads[k].reshape(-1) for k in keys])

    return vmap(one)(x, cotangents)


def ggn(objective: ModelObjective, params: Params | None = None) -> Tensor:
    """The generalized Gauss-Newton matrix, ``(n, n)``, one product per column."""
    params = _point(objective, params)
    size = flatten(params).numel()
    basis = torch.eye(size, dtype=flatten(params).dtype, device=flatten(params).device)
    columns = vmap(lambda e: ggn_vector_product(objective, e, params))(basis)
    return 0.5 * (columns + columns.T)


def operator(
    objective: ModelObjective,
    kind: str = "hessian",
    params: Params | None = None,
    *,
    likelihood: str | None = None,
) -> tuple[MatVec, int]:
    """``(matvec, n)`` for the Hessian, Gauss-Newton, Fisher or empirical Fisher at
    ``params`` (the model's own by default), on flat vectors: for Lanczos and CG."""
    params = _point(objective, params)
    size = flatten(params).numel()
    if kind == "hessian":
        return hvp_operator(objective.loss, params, method=DEFAULT_METHOD)
    if kind == "ggn":
        return ggn_operator(objective, params)
    if kind == "fisher":
        name = likelihood_of(likelihood or objective.loss_fn)
        return (lambda v: fisher_vector_product(objective, v, params, likelihood=name)), size
    if kind == "empirical_fisher":
        g = per_example_gradients(objective, params)
        return (lambda v: g.T @ (g @ v.to(g)) / g.shape[0]), size
    raise OptimlabError(f"invalid kind: {kind!r}; valid kinds: {', '.join(KINDS)}")


def hessian_matrix(objective: ModelObjective, params: Params | None = None) -> Tensor:
    """The exact Hessian of the objective's loss, ``(n, n)``."""
    return hessian(objective.loss, _point(objective, params))
