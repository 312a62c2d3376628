"""Linear conjugate gradients: solve ``A x = b`` for a symmetric positive-definite ``A``
known only through ``v -> A v`` (Hestenes & Stiefel 1952; Nocedal & Wright,
*Numerical Optimization*, 2nd ed., Alg. 5.2, preconditioned: Alg. 5.3).

.. code-block:: text

    r <- b - A x;  z <- M^-1 r;  p <- z
    repeat:
        alpha <- (r . z) / (p . A p)
        x <- x + alpha p;  r <- r - alpha A p
        stop if ||r|| <= max(rtol ||b||, atol)
        z <- M^-1 r;  beta <- (r . z)_new / (r . z)_old;  p <- z + beta p

In exact arithmetic it ends within ``n`` iterations (the residuals are orthogonal, so
at most ``n`` of them are non-zero), and after ``k`` it has minimized the ``A``-norm
of the error over a ``k``-dimensional Krylov space: the error falls at least as fast as
``2 ((sqrt(kappa) - 1) / (sqrt(kappa) + 1))^k``. One product with ``A`` per iteration,
four vectors of memory.

A direction of non-positive curvature (``p . A p <= 0``: ``A`` is not positive
definite, as a Hessian away from a minimum may be) ends the solve with status
``"negative_curvature"`` and the iterate reached so far, which is what truncated
Newton methods use (Steihaug 1983); ``direction`` holds that ``p``.

``callback(k, x, r)`` sees every iterate ``x`` and its residual ``r = b - A x`` after
iteration ``k``; returning True ends the solve with status ``"stopped"``. Truncated
Newton methods keep iterates and apply their own stopping rules through it: the value
of the quadratic ``phi(x) = 1/2 x.A x - b.x`` is ``-1/2 x.(b + r)``, with no product
with ``A``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from optimlab.errors import OptimlabError, check_range

MatVec = Callable[[Tensor], Tensor]
#: ``callback(k, x, r) -> stop?`` after iteration ``k``
Callback = Callable[[int, Tensor, Tensor], bool]
STATUSES = ("converged", "max_iter", "negative_curvature", "stopped")


class CGResult(NamedTuple):
    """What ``conjugate_gradient`` found.

    Attributes:
        x: the solution (the last iterate unless ``status == "converged"``).
        status: ``"converged"``, ``"max_iter"``, ``"negative_curvature"`` or
            ``"stopped"`` (by the callback).
        iterations: iterations done (each one product with ``A``).
        products: products with ``A`` in all (one more when ``x0`` is given).
        residual_norm: ``||b - A x||`` by the recurrence (not recomputed).
        direction: the direction of non-positive curvature, else None.
    """

    x: Tensor
    status: str
    iterations: int
    products: int
    residual_norm: float
    direction: Tensor | None = None

    @property
    def converged(self) -> bool:
        return self.status == "converged"


def conjugate_gradient(
    matvec: MatVec,
    b: Tensor,
    x0: Tensor | None = None,
    *,
    rtol: float = 1e-10,
    atol: float = 0.0,
    max_iter: int | None = None,
    preconditioner: MatVec | None = None,
    callback: Callback | None = None,
) -> CGResult:
    """Solve ``A x = b`` by (preconditioned) conjugate gradients.

    Args:
        matvec: ``v -> A v`` on vectors shaped like ``b``; ``A`` symmetric.
        b: the right-hand side, a 1-D tensor.
        x0: the start (zero by default).
        rtol, atol: stop once ``||r|| <= max(rtol * ||b||, atol)``.
        max_iter: at most this many iterations (default ``2 n``: ``n`` is enough in
            exact arithmetic, rounding may need a few more).
        preconditioner: ``v -> M^-1 v`` for a symmetric positive-definite ``M``
            approximating ``A``; the identity by default.
        callback: ``(k, x, r) -> bool`` after each iteration; True stops the solve.
    """
    if b.dim() != 1:
        raise OptimlabError(f"invalid b: expected a vector, got shape {tuple(b.shape)}")
    if not bool(torch.isfinite(b).all()):
        raise OptimlabError("invalid b: it has non-finite entries")
    check_range("rtol", rtol, 0)
    check_range("atol", atol, 0)
    if rtol == 0 and atol == 0:
        raise OptimlabError("invalid rtol, atol: both are 0, so CG could never stop early")
    n = b.numel()
    max_iter = 2 * n if max_iter is None else max_iter
    check_range("max_iter", max_iter, 0)
    if x0 is not None and x0.shape != b.shape:
        raise OptimlabError(f"invalid x0: shape {tuple(x0.shape)}, b has {tuple(b.shape)}")

    def apply(v: Tensor) -> Tensor:
        av = matvec(v)
        if av.shape != b.shape:
            raise OptimlabError(
                f"invalid matvec: returned shape {tuple(av.shape)} for a vector of "
                f"shape {tuple(b.shape)}"
            )
        if not bool(torch.isfinite(av).all()):
            raise OptimlabError("invalid matvec: it returned non-finite entries")
        return av

    precondition = preconditioner or (lambda v: v)
    products = 0
    if x0 is None:
        x = torch.zeros_like(b)
        r = b.clone()
    else:
        x = x0.clone()
        r = b - apply(x)
        products += 1
    threshold = max(rtol * float(b.norm()), atol)
    r_norm = float(r.norm())
    if r_norm <= threshold:
        return CGResult(x, "converged", 0, products, r_norm)
    z = precondition(r)
    p = z.clone()
    rz = torch.dot(r, z)
    for k in range(1, max_iter + 1):
        ap = apply(p)
        products += 1
        curvature = torch.dot(p, ap)
        if curvature <= 0:
            return CGResult(x, "negative_curvature", k, products, r_norm, p)
        alpha = rz / curvature
        x = x + alpha * p
        r = r - alpha * ap
        r_norm = float(r.norm())
        stop = callback is not None and callback(k, x, r)  # sees every iterate
        if r_norm <= threshold:
            return CGResult(x, "converged", k, products, r_norm)
        if stop:
            return CGResult(x, "stopped", k, products, r_norm)
        z = precondition(r)
        rz_new = torch.dot(r, z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    return CGResult(x, "max_iter", max_iter, products, r_norm)
