"""A model's training loss as a pure function of its parameters, for ``torch.func``.

``ModelObjective(model, loss_fn, x, y)`` holds one batch and gives the functions every
curvature product needs: the loss of given parameters, the outputs (for Gauss-Newton
and Fisher products, which work through the output layer) and the loss of one example
(for per-example gradients). The module's own parameters are not touched: the
functions run the module with the parameters they are given
(``torch.func.functional_call``), and its buffers as they are.

A model with batch normalization in training mode mixes the examples of a batch, so
per-example quantities (the empirical Fisher) are defined only in eval mode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn
from torch.func import functional_call

from optimlab.errors import OptimlabError

Loss = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class ModelObjective:
    """``loss_fn(model(x), y)`` as a function of the model's parameters.

    Args:
        model: the module; its parameters that require grad are the variables.
        loss_fn: ``loss_fn(output, target) -> scalar``, a mean over the batch (as every
            loss of ``optimlab.problems`` is).
        x, y: the batch.
    """

    model: nn.Module
    loss_fn: Loss
    x: Tensor
    y: Tensor

    def __post_init__(self) -> None:
        if not self.params():
            raise OptimlabError("invalid model: it has no parameters that require grad")
        if len(self.x) != len(self.y):
            raise OptimlabError(
                f"invalid batch: x has {len(self.x)} examples and y has {len(self.y)}"
            )

    def params(self) -> dict[str, Tensor]:
        """The variables: the model's parameters that require grad, detached."""
        return {n: p.detach() for n, p in self.model.named_parameters() if p.requires_grad}

    def outputs(self, params: dict[str, Tensor]) -> Tensor:
        """The model's outputs on the batch with parameters ``params``."""
        return functional_call(self.model, params, (self.x,))

    def loss_of_outputs(self, outputs: Tensor) -> Tensor:
        """The loss as a function of the outputs (the targets held fixed)."""
        return self.loss_fn(outputs, self.y)

    def loss(self, params: dict[str, Tensor]) -> Tensor:
        """The batch loss with parameters ``params``."""
        return self.loss_of_outputs(self.outputs(params))

    def example_loss(self, params: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        """The loss of one example ``(x, y)`` (no batch dimension), as a batch of one."""
        out = functional_call(self.model, params, (x.unsqueeze(0),))
        return self.loss_fn(out, y.unsqueeze(0))
