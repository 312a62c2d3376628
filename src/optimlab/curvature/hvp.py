"""Hessian-vector products and exact Hessians of a pure function, with ``torch.func``.

For ``f: params -> scalar`` the Hessian-vector product ``H v = d/dt grad f(w + t v)``
at ``t = 0`` costs a small multiple of one gradient and never forms ``H``
(Pearlmutter 1994). Two ways to compute it:

* ``"forward_over_reverse"``: ``torch.func.jvp`` of ``torch.func.grad``, the
  directional derivative of the gradient, carried forward with dual numbers;
* ``"reverse_over_reverse"``: ``torch.func.vjp`` of ``torch.func.grad``, a backward
  pass through the gradient's own graph (``H`` is symmetric, so ``v^T H = (H v)^T``).
  ``hvp_operator`` builds that graph once and reuses it for every product at the same
  point, which is what Lanczos, power iteration and conjugate gradients do.

The default is reverse-over-reverse, by measurement and by what works
(``python -m optimlab.bench.curvature``, five runs on one thread of a shared 2-core
AMD EPYC x86-64 machine, torch 2.13 CPU, float64; products on a 64-32-10 tanh MLP,
2,410 parameters, batch 256; the matrix on a 64-8-10 one, 610 parameters):

* one product at a new point: forward-over-reverse takes 1.3x to 2.8x the time of
  reverse-over-reverse;
* many products at one point: a reused reverse-over-reverse graph takes 0.12x to
  0.21x the time of a forward-over-reverse product;
* the exact Hessian, every column batched by ``vmap``: forward-over-reverse takes
  0.71x to 1.09x the time of reverse-over-reverse, about a tie; and it fails on
  ``torch.nn.functional.mse_loss`` with the mean reduction (pytorch issue 123996,
  open in torch 2.13: "ZeroTensors are immutable"), so ``hessian`` uses
  reverse-over-reverse too.

Parameters that do not affect ``f`` get zero rows: their gradient is identically
zero and so is its derivative.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor
from torch.func import grad, jvp, vjp, vmap

from optimlab.curvature.flat import Params, flatten, numel, unflatten
from optimlab.errors import OptimlabError

METHODS = ("forward_over_reverse", "reverse_over_reverse")
#: for products and matrices alike (see the module docstring)
DEFAULT_METHOD = "reverse_over_reverse"

Function = Callable[[Params], Tensor]
MatVec = Callable[[Tensor], Tensor]


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise OptimlabError(f"invalid method: {method!r}; valid methods: {', '.join(METHODS)}")


def flat_function(f: Function, params: Params) -> tuple[Callable[[Tensor], Tensor], Tensor]:
    """``(g, w)``: ``g(w) = f(params as the flat vector w)`` and the flat point ``w``."""
    like = params

    def g(w: Tensor) -> Tensor:
        return f(unflatten(w, like))

    return g, flatten(params).detach()


@contextmanager
def _forward_mode_errors() -> Iterator[None]:
    """Name torch's forward-over-reverse bug instead of passing on its message."""
    try:
        yield
    except RuntimeError as err:
        if "ZeroTensors are immutable" not in str(err):
            raise
        raise OptimlabError(
            "method 'forward_over_reverse' failed in torch's forward-mode derivative of "
            "the loss (mse_loss with the mean reduction: pytorch issue 123996); "
            "use method='reverse_over_reverse'"
        ) from err


def _flat_hvp(g: Callable[[Tensor], Tensor], w: Tensor, v: Tensor, method: str) -> Tensor:
    if method == "forward_over_reverse":
        with _forward_mode_errors():
            return jvp(grad(g), (w,), (v,))[1]
    _, pullback = vjp(grad(g), w)
    return pullback(v)[0]


def hvp(f: Function, params: Params, v: Params, *, method: str = DEFAULT_METHOD) -> Params:
    """``H v`` for the Hessian of ``f`` at ``params``, shaped like ``params``.

    Args:
        f: a scalar function of a parameter collection (a dict or list of tensors).
        params: the point.
        v: the direction, shaped like ``params``.
        method: ``"forward_over_reverse"`` or ``"reverse_over_reverse"``.
    """
    _check_method(method)
    g, w = flat_function(f, params)
    return unflatten(_flat_hvp(g, w, flatten(v).to(w), method), params)


def hvp_operator(
    f: Function, params: Params, *, method: str = DEFAULT_METHOD
) -> tuple[MatVec, int]:
    """``(matvec, n)``: ``matvec(v) = H v`` on flat vectors of length ``n``, for many
    products at one point. Reverse-over-reverse builds the gradient's graph once."""
    _check_method(method)
    g, w = flat_function(f, params)
    if method == "reverse_over_reverse":
        _, pullback = vjp(grad(g), w)
        return (lambda v: pullback(v)[0]), w.numel()
    return (lambda v: _flat_hvp(g, w, v, method)), w.numel()


def hessian(
    f: Function,
    params: Params,
    *,
    method: str = DEFAULT_METHOD,
    chunk_size: int | None = None,
) -> Tensor:
    """The exact Hessian of ``f`` at ``params`` as an ``(n, n)`` matrix, ``n`` the number
    of scalars, in the order of ``flatten(params)``.

    Every column is one Hessian-vector product with a unit vector, batched by
    ``torch.func.vmap`` (``chunk_size`` columns at a time; all at once by default).
    Costs ``n`` products and ``n^2`` memory: for small models.
    """
    _check_method(method)
    if chunk_size is not None and chunk_size < 1:
        raise OptimlabError(f"invalid chunk_size: {chunk_size}; valid range is [1, inf]")
    g, w = flat_function(f, params)
    basis = torch.eye(numel(params), dtype=w.dtype, device=w.device)
    if method == "reverse_over_reverse":
        _, pullback = vjp(grad(g), w)
        columns = vmap(lambda e: pullback(e)[0], chunk_size=chunk_size)(basis)
    else:
        with _forward_mode_errors():
            columns = vmap(lambda e: jvp(grad(g), (w,), (e,))[1], chunk_size=chunk_size)(basis)
    # H is symmetric; symmetrize away the rounding so that eigvalsh and Cholesky see
    # exactly the matrix they assume
    return 0.5 * (columns + columns.T)
