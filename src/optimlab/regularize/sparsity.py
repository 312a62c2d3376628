"""KL sparsity of hidden activations, the sparse autoencoder's penalty.

From Ng's CS294A notes "Sparse autoencoder" (2011, section 2.3) and Lee, Ekanadham & Ng
(NIPS 2007): for sigmoid units ``a_j`` in (0, 1) and a batch of ``m`` examples, the mean
activation of unit ``j`` is ``rho_hat_j = (1/m) sum_i a_j(x_i)``, and the penalty added to
the loss is::

    beta * sum_j KL(rho || rho_hat_j)
    KL(rho || rho_hat) = rho * log(rho / rho_hat) + (1 - rho) * log((1 - rho) / (1 - rho_hat))

the KL divergence between Bernoulli variables of means ``rho`` (the target, small, e.g.
0.05) and ``rho_hat_j``. It is 0 exactly when ``rho_hat_j = rho`` and grows without
bound as ``rho_hat_j`` nears 0 or 1, so it pushes each unit's mean activation toward
``rho``: most units are near 0 on most examples. Its derivative in ``rho_hat_j`` is
``beta * (-rho / rho_hat_j + (1 - rho) / (1 - rho_hat_j))`` (the term the notes add to
the back-propagated error).

Here the mean runs over the batch dimension (dim 0); every other element of the output
is one unit (for a convolution's output, each channel at each position). ``rho_hat`` is
clamped to ``[eps, 1 - eps]`` of its dtype, so that a saturated unit gives a large
finite penalty instead of infinity.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from optimlab.errors import check_range
from optimlab.regularize.penalties import OutputPenalty

#: the target mean activation of the CS294A notes' example
DEFAULT_TARGET = 0.05


def kl_sparsity(activations: Tensor, target: float) -> Tensor:
    """``sum_j KL(target || rho_hat_j)`` with ``rho_hat`` the mean of ``activations`` over dim 0."""
    check_range("kl_target", target, 0.0, 1.0, low_open=True, high_open=True)
    eps = torch.finfo(activations.dtype).eps
    rho_hat = activations.mean(dim=0).clamp(eps, 1.0 - eps)
    rho = target
    kl = rho * torch.log(rho / rho_hat) + (1.0 - rho) * torch.log((1.0 - rho) / (1.0 - rho_hat))
    return kl.sum()


class KLSparsity(OutputPenalty):
    """``beta * sum_j KL(target || rho_hat_j)`` on the outputs of ``modules`` (per module,
    summed over modules); the outputs must lie in (0, 1), as sigmoid units' do."""

    def __init__(
        self, modules: Iterable[nn.Module], *, beta: float, target: float = DEFAULT_TARGET
    ) -> None:
        check_range("kl_sparsity", beta, 0.0, low_open=True)
        check_range("kl_target", target, 0.0, 1.0, low_open=True, high_open=True)
        self.beta, self.target = float(beta), float(target)
        super().__init__(modules)

    def value(self, output: Tensor) -> Tensor:
        return self.beta * kl_sparsity(output, self.target)

    def __repr__(self) -> str:
        return (
            f"KLSparsity(beta={self.beta:g}, target={self.target:g}, modules={len(self.modules)})"
        )


def sigmoid_units(model: nn.Module) -> list[nn.Module]:
    """The ``nn.Sigmoid`` modules of ``model`` (the units KL sparsity applies to by name)."""
    return [m for m in model.modules() if isinstance(m, nn.Sigmoid)]
