"""Natural gradient descent (Amari 1998): ``w <- w - lr F^-1 g``, with the full Fisher
for small models and with its diagonal for any.

How the optimizer sees the model. ``F`` needs the model's Jacobian, or each example's
gradient, which a ``torch.optim`` closure does not return: it returns the mean loss and
leaves the batch gradient in ``.grad``. These optimizers take ``step(closure)`` like
the other second-order methods (the Trainer drives them unchanged, and the registry
builds them from parameters alone, as it builds every optimizer) and watch the
closure's own forward and backward pass (``optimlab.curvature.capture.Recorder``):
the outermost ``nn.Module`` called that holds the parameters is the model, its first
argument the batch ``x``, its output ``z`` and the gradient ``dL/dz`` the backward pass
sends into it. From these alone, with no targets and no loss function:

* the true Fisher is ``mean_i J_i^T F_z(z_i) J_i``, ``F_z`` the Fisher of the
  likelihood named by ``likelihood`` in the outputs (``optimlab.curvature.likelihood``),
  ``J_i`` the Jacobian of example ``i``'s output, by ``torch.func``;
* the empirical Fisher is ``mean_i g_i g_i^T`` with ``g_i = J_i^T (N dL/dz_i)``,
  example ``i``'s own loss gradient when ``L`` is the mean of per-example terms.

The model runs again inside ``torch.func`` to differentiate it example by example,
so its forward pass must treat each example alone: batch normalization or dropout in
training mode is refused with a message (``kfac`` reads the closure's own pass and
takes such models).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from optimlab.curvature.capture import Recorder, example_mixing_modules, parameter_names
from optimlab.curvature.fisher import fisher_of_outputs, per_example_pullbacks
from optimlab.curvature.likelihood import NAMES as LIKELIHOODS
from optimlab.curvature.likelihood import check_output_gradient
from optimlab.errors import OptimlabError
from optimlab.optim.closure import Closure, ClosureOptimizer, check_choice, check_float, check_int

#: The default parameter limit. ``F`` has ``n^2`` entries (200 MB in float64 at 5000
#: parameters) and its Cholesky factorization costs ``n^3 / 3``.
MAX_PARAMS = 5000
FISHERS = ("true", "empirical")
#: Jacobians and per-example gradients are built this many entries at a time (chunks
#: of examples), so memory stays bounded for any batch.
CHUNK_ENTRIES = 1 << 22


@dataclass
class ModelPass:
    """What the closure's pass through the model gave: the model, the optimizer's
    parameters in it by name (closure order), the batch and the outputs."""

    model: nn.Module
    params: dict[str, Tensor]
    x: Tensor
    outputs: Tensor
    output_grad: Tensor | None

    @property
    def examples(self) -> int:
        return self.outputs.shape[0]

    def cotangents(self, who: str) -> Tensor:
        """``N dL/dz``: each example's own loss gradient in its outputs."""
        if self.output_grad is None:
            raise OptimlabError(
                f"{who}: the closure's backward pass sent no gradient into the model's "
                f"output; the loss must be computed from the output and loss.backward() called"
            )
        return self.output_grad * self.examples

    def chunks(self, width: int) -> Iterator[tuple[slice, Tensor]]:
        """Slices of the batch holding about ``CHUNK_ENTRIES / width`` examples each."""
        size = max(1, CHUNK_ENTRIES // max(1, width))
        for start in range(0, self.examples, size):
            part = slice(start, start + size)
            yield part, self.x[part]


class FisherOptimizer(ClosureOptimizer):
    """Base class: a closure optimizer that records the closure's pass through the model
    (see the module docstring) and computes per-example gradients from it."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any], max_params: int | None):
        super().__init__(params, defaults, max_params)
        self._recorder = Recorder(self._params)

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> Any:  # type: ignore[override]
        """One step ``w <- w - lr d``, ``d`` the preconditioned gradient; return the loss
        before it."""
        group = self.param_groups[0]
        state = self.state[self._params[0]]
        try:
            loss, _ = self._evaluate(closure)
            g = self._flat_grad()
            mp = self._model_pass()
            with torch.enable_grad():
                d = self._direction(group, state, g, mp)
        finally:
            self._recorder.clear()  # the recorded pass holds the forward graph
        self._add(-float(group["lr"]), d)
        state["n_iter"] = state.get("n_iter", 0) + 1
        return loss

    def _direction(
        self, group: dict[str, Any], state: dict[str, Any], g: Tensor, mp: ModelPass
    ) -> Tensor:
        """``d``, the preconditioned gradient ``g`` (the subclasses' rule)."""
        raise NotImplementedError

    def _evaluate(self, closure: Closure | None) -> tuple[Any, float]:
        """Run the closure once, recording the model's pass; the loss and its value."""
        if closure is None:
            self._call(None)  # raises, naming what the closure must do
        with self._recorder.recording():
            loss = self._call(closure)
        return loss, self._start_loss(loss)

    def _model_pass(self) -> ModelPass:
        name = type(self).__name__
        call = self._recorder.model
        if call is None or not call.args or not isinstance(call.output, Tensor):
            raise OptimlabError(
                f"{name} needs the loss computed by an nn.Module that holds the parameters, "
                f"called inside the closure on the batch (model(x)) and returning a tensor"
            )
        if self._recorder.other_model_calls:
            raise OptimlabError(
                f"{name}: the closure called the model {1 + self._recorder.other_model_calls} "
                f"times; it must run one forward pass of the batch"
            )
        names = parameter_names(call.module)
        outside = [i for i, p in enumerate(self._params) if id(p) not in names]
        if outside:
            raise OptimlabError(
                f"{name}: parameters {outside} (by position) are not in the model the closure "
                f"called ({type(call.module).__name__}); give the optimizer its parameters only"
            )
        mixing = example_mixing_modules(call.module)
        if mixing:
            raise OptimlabError(
                f"{name} differentiates the model example by example, and {', '.join(mixing)} "
                f"in training mode does not treat examples alone; call model.eval() (or use "
                f"p=0), or use kfac"
            )
        # zero-size parameters add no entries to the flat vector: leave them out
        params = {names[id(p)]: p.detach() for p in self._params if p.numel()}
        grads = call.output_grads
        return ModelPass(call.module, params, call.input, call.output.detach(),
                         grads[0] if grads else None)  # fmt: skip

    def _example_gradients(self, mp: ModelPass) -> Iterator[Tensor]:
        """Chunks ``(c, n)`` of per-example gradients, in the flat order."""
        cotangents = mp.cotangents(type(self).__name__)
        for part, x in mp.chunks(self.numel):
            yield per_example_pullbacks(mp.model, mp.params, x, cotangents[part])


def _check_common(lr: float, damping: float) -> None:
    check_float("lr", lr, 0, open_low=True)
    check_float("damping", damping, 0)


class NaturalGradient(FisherOptimizer):
    """Natural gradient descent with the full Fisher: solve ``(F + lambda I) d = g``,
    step ``w <- w - lr d``.

    .. code-block:: text

        input: lr, damping (lambda), fisher, likelihood, max_params
        per step:
            f, g <- the closure's loss and gradient; x, z, dL/dz <- its pass through
                    the model (see the module docstring)
            fisher "true":      F = 1/N sum_i J_i^T F_z(z_i) J_i
                                (optimlab.curvature.fisher_of_outputs)
            fisher "empirical": F = 1/N sum_i g_i g_i^T,  g_i = J_i^T (N dL/dz_i)
            d <- (F + lambda I)^-1 g      by Cholesky (solved, never inverted)
            w <- w - lr d

    ``F`` is the Fisher information of the model's predictive distribution: the metric
    of steepest descent in distribution space, and for the canonical-link likelihoods
    (cross-entropy on logits, logistic, mean squared error) the generalized
    Gauss-Newton matrix. For a model linear in its parameters (softmax regression) it
    is the Hessian of the mean loss, so a step with ``lr=1`` is a Newton step. The
    empirical Fisher is not the Fisher: it replaces the model's distribution over the
    targets by the observed ones and can point elsewhere (Kunstner, Hennig & Balles
    2019); it needs no ``likelihood``. Parameters the loss does not depend on (a zero
    row and a zero gradient) are left out of the solve and do not move.

    Cost per step: the closure once, then ``N K`` reverse passes of the model (the
    Jacobian of the ``K`` outputs of ``N`` examples; the empirical Fisher: ``N``), built
    ``4M`` entries at a time, ``n^2`` memory for ``F`` and ``n^3 / 3`` for the
    factorization. Models above ``max_params`` are refused.

    Args:
        params: the model's parameters, one group.
        lr: the step ``lr``.
        damping: ``lambda >= 0`` added to ``F``'s diagonal. ``F`` is singular when the
            batch's examples times outputs are fewer than the parameters; the default
            0.1 kept steps with ``lr=1`` stable on ``logreg_digits`` (batches of 64,
            650 parameters), where 1e-3 overshot.
        fisher: ``"true"`` (the expectation over the model's distribution) or
            ``"empirical"`` (the observed targets' gradients).
        likelihood: the distribution whose negative log-likelihood the loss is
            (``"cross_entropy"``, ``"logistic"``, ``"mse"``); the true Fisher only.
            The loss's gradient in the outputs is checked against it.
        max_params: refuse a model with more parameters.

    State: ``n_iter``; ``counts`` (closure calls).

    Reference: Amari 1998, "Natural gradient works efficiently in learning", Neural
    Computation 10(2); Martens 2020, "New insights and perspectives on the natural
    gradient method", JMLR 21.
    """

    registry_name = "natural_gradient"
    large_model_hint = ", use natural_gradient_diag or kfac (no n x n matrix),"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        damping: float = 0.1,
        fisher: str = "true",
        likelihood: str = "cross_entropy",
        *,
        max_params: int | None = MAX_PARAMS,
    ) -> None:
        _check_common(lr, damping)
        check_choice("fisher", fisher, FISHERS)
        check_choice("likelihood", likelihood, LIKELIHOODS)
        if max_params is not None:
            check_int("max_params", max_params, 1)
        defaults = dict(lr=lr, damping=damping, fisher=fisher, likelihood=likelihood)
        super().__init__(params, defaults, max_params)

    def _direction(self, group: dict[str, Any], state: dict[str, Any], g: Tensor,
                   mp: ModelPass) -> Tensor:  # fmt: skip
        f = self.fisher_matrix(mp, group["fisher"], group["likelihood"])
        return self._solve(f, g, float(group["damping"]))

    def fisher_matrix(self, mp: ModelPass, kind: str, likelihood: str) -> Tensor:
        """The ``(n, n)`` Fisher of the recorded pass, accumulated over chunks of examples."""
        n = self.numel
        f = torch.zeros(n, n, dtype=mp.outputs.dtype, device=mp.outputs.device)
        if kind == "empirical":
            for rows in self._example_gradients(mp):
                f += rows.T @ rows
            return f / mp.examples
        if mp.output_grad is not None:
            check_output_gradient(likelihood, mp.outputs, mp.output_grad, type(self).__name__)
        per_example = mp.outputs[0].numel() + (likelihood == "logistic")  # logistic: 2 classes
        for _, x in mp.chunks(per_example * n):
            chunk = fisher_of_outputs(
                lambda p, x=x: functional_call(mp.model, p, (x,)), mp.params, likelihood
            )
            f += chunk * (len(x) / mp.examples)
        return f

    def _solve(self, f: Tensor, g: Tensor, damping: float) -> Tensor:
        """``(F + lambda I)^-1 g`` on the parameters the loss depends on."""
        active = (f != 0).any(dim=1) | (g != 0)
        d = torch.zeros_like(g)
        if not bool(active.any()):
            return d
        a = f[active][:, active]
        a.diagonal().add_(damping)
        factor, info = torch.linalg.cholesky_ex(a)
        if int(info) != 0:
            raise OptimlabError(
                f"{type(self).__name__}: F + {damping:g} I is singular or not positive "
                f"definite here (non-finite Fisher, or too little damping for a batch of "
                f"fewer examples than parameters); use damping > 0"
            )
        d[active] = torch.cholesky_solve(g[active].unsqueeze(1), factor).squeeze(1)
        return d


class DiagonalNaturalGradient(FisherOptimizer):
    """Natural gradient descent with the diagonal of the empirical Fisher:
    ``w <- w - lr g / (diag F + lambda)``.

    .. code-block:: text

        input: lr, damping (lambda), decay (beta)
        per step (k = 1, 2, ...):
            f, g <- the closure's loss and gradient; g_i <- each example's gradient
                    (J_i^T (N dL/dz_i), see the module docstring)
            D_batch = 1/N sum_i g_i * g_i             (the empirical Fisher's diagonal)
            b = min(beta, 1 - 1/k)
            D <- b D + (1 - b) D_batch                (beta = 0: this batch only)
            w <- w - lr g / (D + lambda)

    ``b = min(beta, 1 - 1/k)`` makes ``D`` the plain mean of the first batches until
    ``beta`` takes over (Martens & Grosse 2015, sec. 5), so it starts unbiased.
    Unlike Adagrad or RMSprop it divides by the mean of squared per-example gradients,
    not by the square root of the squared batch gradient: with ``lambda`` small the
    step is close to scale-free in each coordinate (a diagonal Gauss-Newton step when
    the loss is a likelihood).

    Cost per step: the closure once, then ``N`` reverse passes of the model (one per
    example, ``vmap``'d, ``4M`` gradient entries at a time); one parameter-sized buffer.

    Args:
        params: the model's parameters, one group.
        lr: the step ``lr``.
        damping: ``lambda > 0`` added to the diagonal.
        decay: ``beta`` in ``[0, 1)``, the running average's decay.

    State: ``fisher_diagonal`` (``D``), ``fisher_updates`` (``k``), ``n_iter``;
    ``counts`` (closure calls).

    Reference: Amari 1998 (the natural gradient); Martens & Grosse 2015, sec. 5
    (running averages of curvature statistics).
    """

    registry_name = "natural_gradient_diag"

    def __init__(
        self, params: Iterable[Any], lr: float = 0.1, damping: float = 0.1, decay: float = 0.0
    ) -> None:
        check_float("lr", lr, 0, open_low=True)
        check_float("damping", damping, 0, open_low=True)
        check_float("decay", decay, 0, 1, open_high=True)
        super().__init__(params, dict(lr=lr, damping=damping, decay=decay), None)

    def _direction(self, group: dict[str, Any], state: dict[str, Any], g: Tensor,
                   mp: ModelPass) -> Tensor:  # fmt: skip
        batch = torch.zeros_like(g)
        for rows in self._example_gradients(mp):
            batch += (rows * rows).sum(dim=0)
        batch /= mp.examples
        k = state.get("fisher_updates", 0) + 1
        beta = min(float(group["decay"]), 1.0 - 1.0 / k)
        diagonal = state.get("fisher_diagonal")
        state["fisher_diagonal"] = batch if diagonal is None else diagonal.lerp_(batch, 1 - beta)
        state["fisher_updates"] = k
        return g / (state["fisher_diagonal"] + float(group["damping"]))
