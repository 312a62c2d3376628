"""Curvature from a closure: Hessian-vector products by double backward.

``torch.optim`` closures evaluate the loss of tensors they capture and call
``loss.backward()``; there is no function of the parameters for ``torch.func`` to
transform. Here the gradient is computed with its own graph kept
(``create_graph=True``), and ``H v = d(g . v)/dw`` is one more backward pass through
it (Pearlmutter 1994), as often as needed at that point.

``GradientGraph.of_loss`` takes a loss tensor; ``GradientGraph.of_closure`` runs a
closure that calls ``backward()`` itself, making that call keep the graph
(``backward_creates_graph``), so the same closure serves first- and second-order
optimizers.

Parameters that do not affect the loss (no gradient, or a gradient that does not
depend on the parameters) get zero rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

from optimlab.errors import OptimlabError

# A column chunk of the Hessian: columns x parameters floats at a time.
_CHUNK = 256


class _BackwardMode(TorchFunctionMode):
    """Every ``backward`` call inside gets the keyword arguments ``forced``."""

    def __init__(self, **forced: Any) -> None:
        super().__init__()
        self.forced = forced

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None):
        kwargs = dict(kwargs or {})
        if func is Tensor.backward or func is torch.autograd.backward:
            kwargs.update(self.forced)
        return func(*args, **kwargs)


@contextmanager
def backward_creates_graph() -> Iterator[None]:
    """Inside, ``loss.backward()`` acts as ``loss.backward(create_graph=True)``.

    The gradients left in ``.grad`` then carry their graph: detach them after use
    (``GradientGraph.of_closure`` does), since a parameter whose ``.grad`` refers to a
    graph that refers to the parameter is a reference cycle.
    """
    with warnings.catch_warnings():
        # torch warns of that cycle; of_closure breaks it
        warnings.filterwarnings("ignore", message=r"Using backward\(\) with create_graph=True")
        with _BackwardMode(create_graph=True):
            yield


@contextmanager
def backward_retains_graph() -> Iterator[None]:
    """Inside, ``loss.backward()`` acts as ``loss.backward(retain_graph=True)``: the
    graph of the forward pass survives, for one more backward pass through it (K-FAC's
    pass with sampled targets). It is freed with the last tensor that refers to it."""
    with _BackwardMode(retain_graph=True):
        yield


class GradientGraph:
    """The gradient ``g`` of a loss at the current parameters, with its graph, as the
    operator ``v -> H v`` on flat vectors (the parameters' order).

    Attributes:
        gradient: ``g``, flat and detached.
        size: ``n``, the number of scalars.
        products: how many Hessian-vector products were computed (a column of
            ``matrix()`` counts as one).
    """

    def __init__(self, grads: Sequence[Tensor | None], params: Sequence[Tensor]) -> None:
        self.params = list(params)
        if not self.params:
            raise OptimlabError("invalid params: no tensors that require grad")
        if len(grads) != len(self.params):
            raise OptimlabError(f"{len(grads)} gradients for {len(self.params)} parameters")
        grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, self.params)]
        # only gradients that depend on the parameters can be differentiated again
        self._live = [i for i, g in enumerate(grads) if g.requires_grad]
        self._grads = grads
        self.gradient = torch.cat([g.detach().reshape(-1) for g in grads])
        self.size = self.gradient.numel()
        self.products = 0

    @classmethod
    def of_loss(cls, loss: Tensor, params: Sequence[Tensor]) -> GradientGraph:
        """From a loss tensor whose graph reaches ``params``."""
        params = list(params)
        if loss.dim() != 0:
            raise OptimlabError(f"invalid loss: expected a scalar, got shape {tuple(loss.shape)}")
        grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        return cls(list(grads), params)

    @classmethod
    def of_closure(
        cls, closure: Callable[[], Any], params: Sequence[Tensor]
    ) -> tuple[Any, GradientGraph]:
        """``(loss, graph)`` from a closure that zeroes the gradients, evaluates the loss,
        calls ``loss.backward()`` and returns the loss (a ``torch.optim`` closure).

        The parameters' ``.grad`` hold the detached gradient afterwards.
        """
        params = list(params)
        with torch.enable_grad(), backward_creates_graph():
            loss = closure()
        grads = [p.grad for p in params]
        for p in params:
            if p.grad is not None:
                p.grad = p.grad.detach()
        return loss, cls(grads, params)

    def _split(self, flat: Tensor) -> list[Tensor]:
        pieces, offset = [], 0
        for g in self._grads:
            pieces.append(
                flat[..., offset : offset + g.numel()].reshape(*flat.shape[:-1], *g.shape)
            )
            offset += g.numel()
        return pieces

    def _product(self, vectors: Tensor, batched: bool) -> Tensor:
        """``H`` times each row of ``vectors`` (one row unless ``batched``)."""
        if not self._live:
            return torch.zeros_like(vectors)
        pieces = self._split(vectors)
        outs = torch.autograd.grad(
            [self._grads[i] for i in self._live],
            self.params,
            grad_outputs=[pieces[i] for i in self._live],
            retain_graph=True,
            allow_unused=True,
            is_grads_batched=batched,
        )
        lead = vectors.shape[:-1]
        flat = [
            vectors.new_zeros(*lead, p.numel()) if o is None else o.reshape(*lead, -1)
            for o, p in zip(outs, self.params, strict=True)
        ]
        return torch.cat(flat, dim=-1)

    def __call__(self, vector: Tensor) -> Tensor:
        """``H v`` for a flat ``v``."""
        if vector.shape != (self.size,):
            raise OptimlabError(
                f"invalid vector: shape {tuple(vector.shape)}, expected ({self.size},)"
            )
        self.products += 1
        return self._product(vector.to(self.gradient), batched=False)

    def matrix(self) -> Tensor:
        """The exact Hessian, ``(n, n)``: ``n`` products, batched a chunk of columns at a
        time. Symmetrized, as ``H`` is symmetric up to rounding."""
        basis = torch.eye(self.size, dtype=self.gradient.dtype, device=self.gradient.device)
        cols = [self._product(chunk, batched=True) for chunk in basis.split(_CHUNK)]
        self.products += self.size
        h = torch.cat(cols)
        return 0.5 * (h + h.T)
