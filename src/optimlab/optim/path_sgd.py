"""Path-SGD (Neyshabur, Salakhutdinov & Srebro 2015): SGD with each weight's step
divided by how much of the network's path norm runs through it.

A ReLU network computes the same function after a hidden unit's incoming weights (and
bias) are multiplied by ``a > 0`` and its outgoing weights by ``1/a``; SGD's steps are
not invariant to that rescaling, Path-SGD's are. The optimizer needs the network's
graph, so it reads the model: a feed-forward chain of ``nn.Linear`` layers (nested
``nn.Sequential`` containers of Linear layers, parameter-free elementwise activations,
torch's dropout layers, ``Flatten`` and ``Identity``), or the lectures' deep linear toy
``z = W_d ... W_1 x`` (:class:`~optimlab.nn.models.DeepLinear`); anything else is refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from optimlab.errors import OptimlabError
from optimlab.nn.activations import BY_CLASS as ACTIVATION_CLASSES

# Modules that map each unit to itself: they add no edge to the network's graph.
_PASS_THROUGH = (nn.Flatten, nn.Identity, nn.modules.dropout._DropoutNd)

#: one layer of the chain, its weight ``(out, in)`` and its bias (or None)
Layer = tuple[Tensor, Tensor | None]


def linear_chain(model: nn.Module) -> list[Layer]:
    """The ``(weight, bias)`` of each layer of ``model`` in forward order, checked to
    form one chain: Linear layers in (nested) ``nn.Sequential`` containers, or the
    weight matrices of a :class:`~optimlab.nn.models.DeepLinear`.

    Raises:
        OptimlabError: naming the first module that is not a Linear layer, an
            activation without parameters, a dropout, Flatten or Identity (or a
            container other than ``nn.Sequential``), or two layers whose widths do
            not meet.
    """
    from optimlab.nn.models import DeepLinear

    if not isinstance(model, nn.Module):
        raise OptimlabError(f"path_sgd needs an nn.Module, got {type(model).__name__}")
    if isinstance(model, DeepLinear):
        return [(w, None) for w in model.weights]
    layers: list[Layer] = []
    for name, module in _leaves(model, "model"):
        if isinstance(module, nn.Linear):
            if layers and module.in_features != layers[-1][0].shape[0]:
                raise OptimlabError(
                    f"path_sgd needs a chain of Linear layers; {name} takes "
                    f"{module.in_features} inputs but the layer before gives "
                    f"{layers[-1][0].shape[0]}"
                )
            layers.append((module.weight, module.bias))
        elif not _passes_through(module):
            raise OptimlabError(
                f"path_sgd supports feed-forward chains of Linear layers with elementwise "
                f"activations, dropout and Flatten between them; {name} is a "
                f"{type(module).__name__}"
            )
    if not layers:
        raise OptimlabError("path_sgd needs a model with at least one Linear layer")
    return layers


def _leaves(module: nn.Module, name: str) -> Iterator[tuple[str, nn.Module]]:
    if isinstance(module, nn.Sequential):
        for child_name, child in module.named_children():
            yield from _leaves(child, f"{name}.{child_name}")
    else:
        yield name, module


def _passes_through(module: nn.Module) -> bool:
    if any(True for _ in module.parameters()):
        return False  # e.g. PReLU: its slope would not be stepped by Path-SGD
    return isinstance(module, _PASS_THROUGH) or type(module) in ACTIVATION_CLASSES


def path_scales(layers: list[Layer]) -> list[tuple[Tensor, Tensor | None]]:
    """``gamma`` of every weight and bias of a chain (see :func:`linear_chain`),
    ``(weight_gamma, bias_gamma)`` per layer, each shaped as its parameter (``None``
    for a layer without bias).

    For the edge ``u -> v`` of a weight, ``gamma = gamma_in(u) * gamma_out(v)``:
    ``gamma_in`` is the forward pass of the network with squared weights and biases
    and no activations on an input of ones (the sum, over all paths from an input or a
    bias into ``u``, of the product of the squared weights on the path), ``gamma_out``
    the same pass run backwards from ones at the outputs (paths from ``v`` out). A
    bias is the edge from a unit whose value is always 1, so its ``gamma`` is
    ``gamma_out(v)``.
    """
    squares = [weight.detach().square() for weight, _ in layers]
    first = squares[0]
    into = torch.ones(first.shape[1], dtype=first.dtype, device=first.device)
    gamma_in = []
    for (_, bias), w2 in zip(layers, squares, strict=True):
        gamma_in.append(into)
        into = w2 @ into
        if bias is not None:
            into = into + bias.detach().square()
    out_of = torch.ones(squares[-1].shape[0], dtype=first.dtype, device=first.device)
    gamma_out: list[Tensor] = [out_of] * len(layers)
    for i in range(len(layers) - 1, -1, -1):
        gamma_out[i] = out_of
        out_of = squares[i].T @ out_of
    return [
        (torch.outer(g_out, g_in), g_out if bias is not None else None)
        for (_, bias), g_in, g_out in zip(layers, gamma_in, gamma_out, strict=True)
    ]


class PathSGD(torch.optim.Optimizer):
    """Path-SGD: ``w <- w - lr * g / gamma(w)``, one ``gamma`` per weight, from the
    path regularizer with ``p = 2``.

    .. code-block:: text

        input: lr, the model (a chain of Linear layers, see attach_model)
        per step, with every gamma computed from the weights before the step:
            gamma_in(u)  = 1 at the inputs;  sum over edges (t -> u) of
                           gamma_in(t) w_(t->u)^2, plus b_u^2   (forward pass of the
                           squared weights on a vector of ones)
            gamma_out(v) = 1 at the outputs; sum over edges (v -> s) of
                           w_(v->s)^2 gamma_out(s)   (the same pass, backwards)
            weight w_(u->v):  gamma = gamma_in(u) * gamma_out(v)
            bias b_v:         gamma = gamma_out(v)   (an edge from a unit fixed at 1)
            w <- w - lr * g / gamma   (no step where gamma = 0: no path to an output,
                                       so g = 0 as well)

    ``gamma(w_e)`` is the sum over all input-to-output paths through ``e`` of the
    product of the other edges' squared weights: the diagonal of the Hessian of the
    squared path norm ``sum_paths prod_e w_e^2`` (p = 2). Dividing by it makes the
    step the steepest descent in that norm's diagonal approximation, and because
    every path product is unchanged when a unit's incoming weights and bias are
    scaled by ``a`` and its outgoing ones by ``1/a``, the iterates of the rescaled
    network are the rescaled iterates: the trajectory does not depend on the
    rescaling (exactly, for ReLU, leaky ReLU and identity activations, which commute
    with a positive scale).

    Biases: the paper's networks route every path from an input unit; here a bias is
    the weight of an edge from a constant-1 unit, so paths may also start at a bias
    (the forward pass above adds ``b^2``). This keeps the invariance, which treating
    biases as plain SGD parameters would break, and matches the authors' published
    code, which squares biases with the weights.

    The model is read by :meth:`attach_model` (``optimlab train`` and
    :func:`optimlab.run.build_run` call it): ``PathSGD(model.parameters(),
    lr=0.01).attach_model(model)``. Every parameter given must be a weight or bias of
    the chain; a chain parameter not given is held fixed but still counts in
    ``gamma``. The optimizer keeps no per-parameter state; each step costs two
    matrix-vector passes over the squared weights (about one forward pass of a single
    example).

    Args:
        params: the chain's weights and biases, or param groups of them.
        lr: the learning rate, > 0.

    References:
        Neyshabur, Salakhutdinov & Srebro, "Path-SGD: Path-Normalized Optimization in
        Deep Neural Networks", NIPS 2015 (Algorithm 1, p = 2).
    """

    #: the run builder passes the model to optimizers that say so
    needs_model: ClassVar[bool] = True

    def __init__(self, params: Iterable[Any], lr: float = 0.01) -> None:
        _check_lr(lr)
        super().__init__(params, {"lr": lr})
        self.layers: list[Layer] | None = None

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        _check_lr(self.param_groups[-1]["lr"])
        if getattr(self, "layers", None) is not None:
            self._check_params()

    def attach_model(self, model: nn.Module) -> PathSGD:
        """Read the layer structure of ``model`` (see :func:`linear_chain`); returns self.

        Raises:
            OptimlabError: for a model that is not a chain of Linear layers, or a
                parameter of the optimizer that is not one of the chain's.
        """
        self.layers = linear_chain(model)
        self._check_params()
        return self

    def _check_params(self) -> None:
        own = {id(p) for layer in self.layers for p in layer if p is not None}
        for group in self.param_groups:
            for p in group["params"]:
                if id(p) not in own:
                    raise OptimlabError(
                        f"path_sgd steps the weights and biases of the model's Linear "
                        f"layers; a parameter of shape {tuple(p.shape)} is not one of them"
                    )

    def gammas(self) -> dict[int, Tensor]:
        """``gamma`` of every parameter of the chain at the current weights, by ``id``."""
        if self.layers is None:
            raise OptimlabError(
                "path_sgd needs the model's layer structure before its first step: "
                "call optimizer.attach_model(model)"
            )
        out: dict[int, Tensor] = {}
        scales = path_scales(self.layers)
        for (weight, bias), (g_weight, g_bias) in zip(self.layers, scales, strict=True):
            out[id(weight)] = g_weight
            if bias is not None:
                out[id(bias)] = g_bias
        return out

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter with a gradient; ``closure`` re-evaluates the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        gammas = self.gammas()  # all from the weights before this step
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                gamma = gammas[id(p)]
                scaled = torch.where(gamma > 0, p.grad / gamma, torch.zeros_like(p.grad))
                p.add_(scaled, alpha=-group["lr"])
        return loss


def _check_lr(lr: Any) -> None:
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr < math.inf:
        raise OptimlabError(f"invalid lr: {lr!r}; valid: a finite number > 0")
