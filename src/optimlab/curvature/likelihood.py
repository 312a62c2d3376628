"""The losses that are negative log-likelihoods, and their Fisher in output space.

A loss of ``optimlab.problems`` that is the mean negative log-likelihood of a
distribution over the targets given the model's output ``z`` defines a Fisher
information ``F = mean_i J_i^T F_z(z_i) J_i`` (``J_i = dz_i/dw``), with ``F_z`` the
Fisher of that distribution in its natural parameter:

==================  ==================================  ====================================
loss                distribution                        output-space Fisher ``F_z``
==================  ==================================  ====================================
``cross_entropy``   categorical, ``p = softmax(z)``     ``diag(p) - p p^T``
``logistic``        Bernoulli, ``p = sigmoid(z)``       ``p (1 - p)``
``mse``             Gaussian per entry, variance        ``2 I`` (the loss averages
                    1/2, mean ``z``                     ``(z - y)^2`` over all entries)
==================  ==================================  ====================================

Each link is canonical, so ``F_z`` is also the Hessian of the loss in ``z``: the Fisher
equals the generalized Gauss-Newton matrix, and for a model linear in its parameters
(softmax or logistic regression, linear least squares) the Hessian itself
(Schraudolph 2002; Martens 2020, "New insights and perspectives on the natural
gradient method", JMLR 21).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from optimlab.errors import OptimlabError
from optimlab.problems.losses import LOSSES

NAMES = ("cross_entropy", "logistic", "mse")
# torch's functional losses with their default mean reduction are the same likelihoods
_TORCH = {
    torch.nn.functional.cross_entropy: "cross_entropy",
    torch.nn.functional.binary_cross_entropy_with_logits: "logistic",
    torch.nn.functional.mse_loss: "mse",
}


def likelihood_of(loss: str | Callable[..., Tensor]) -> str:
    """The likelihood name of a loss given by registry name (or alias) or by function
    (one of ``optimlab.problems``' losses, or torch's ``cross_entropy``, ``mse_loss``,
    ``binary_cross_entropy_with_logits``)."""
    if isinstance(loss, str):
        name = LOSSES.get(loss).name
    else:
        name = next((r.name for r in LOSSES if r.fn is loss), _TORCH.get(loss, ""))
        if not name:
            raise OptimlabError(
                f"invalid loss {getattr(loss, '__name__', loss)!r}: not a loss of "
                f"optimlab.problems; pass likelihood= one of {', '.join(NAMES)}"
            )
    if name not in NAMES:
        raise OptimlabError(
            f"invalid likelihood: the loss {name!r} is not a negative log-likelihood; "
            f"valid: {', '.join(NAMES)}"
        )
    return name


def _scores(outputs: Tensor) -> Tensor:
    if outputs.ndim == 2 and outputs.shape[1] == 1:
        return outputs[:, 0]
    if outputs.ndim != 1:
        raise OptimlabError(
            f"the logistic likelihood needs one score per example, (N,) or (N, 1); "
            f"got {tuple(outputs.shape)}"
        )
    return outputs


def output_fisher_product(name: str, outputs: Tensor, u: Tensor) -> Tensor:
    """``F_z u`` for every example, divided by what the loss's mean divides by (so that
    ``J^T (this) J`` is the Fisher of the mean loss). ``u`` is shaped like ``outputs``."""
    if name == "cross_entropy":
        p = torch.softmax(outputs, dim=-1)
        pu = p * u
        return (pu - p * pu.sum(dim=-1, keepdim=True)) / outputs.shape[0]
    if name == "logistic":
        p = torch.sigmoid(_scores(outputs))
        return (p * (1 - p)).reshape(u.shape) * u / outputs.shape[0]
    if name == "mse":
        return 2.0 * u / outputs.numel()
    raise OptimlabError(f"invalid likelihood: {name!r}; valid: {', '.join(NAMES)}")


def class_log_likelihoods(name: str, outputs: Tensor) -> Tensor:
    """``(N, C)`` log-probabilities of every class, for a discrete likelihood."""
    if name == "cross_entropy":
        return torch.log_softmax(outputs, dim=-1)
    if name == "logistic":
        s = _scores(outputs)
        # class 0 then class 1: labels 0/1, read as margins -1/+1 (optimlab.problems)
        return torch.stack([torch.nn.functional.logsigmoid(-s),
                            torch.nn.functional.logsigmoid(s)], dim=-1)  # fmt: skip
    raise OptimlabError(
        f"invalid likelihood: {name!r} is not discrete; valid: cross_entropy, logistic"
    )


def _check_class_scores(name: str, outputs: Tensor) -> None:
    if name == "cross_entropy" and outputs.ndim != 2:
        raise OptimlabError(
            f"the cross_entropy likelihood needs outputs (N, C), one score per class; got "
            f"{tuple(outputs.shape)}"
        )


def sampled_loss(name: str, outputs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """A mean loss at targets drawn from the model's own distribution, for the true
    Fisher by sampling (Martens & Grosse 2015, sec. 5).

    Returns ``(1/N) sum_i l_i(z_i, y_i)`` with one ``y_i ~ p(y | z_i)`` per example (the
    draw is not differentiated), scaled so that ``g_i = N dL/dz_i`` has
    ``E[g_i g_i^T] = N F_z(z_i)``, the per-example output Fisher in the scaling of
    ``output_fisher_product`` (that of the mean loss):

    ==================  ==========================================  ========================
    likelihood          draw                                        ``l_i``
    ==================  ==========================================  ========================
    ``cross_entropy``   ``y_i ~ Categorical(softmax z_i)``          ``-log softmax(z_i)_y``
    ``logistic``        ``y_i ~ Bernoulli(sigmoid s_i)``            binary cross-entropy
    ``mse``             ``y_i = z_i + e``, ``e ~ N(0, I/2)``         ``|z_i - y_i|^2 / sqrt(D)``
    ==================  ==========================================  ========================

    (``D`` output entries per example.)
    """
    n = outputs.shape[0]
    _check_class_scores(name, outputs)
    with torch.no_grad():
        if name == "cross_entropy":
            probs = torch.softmax(outputs.detach(), dim=-1)
            draws = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator)
            targets = draws.reshape(probs.shape[:-1])
        elif name == "logistic":
            p = torch.sigmoid(_scores(outputs.detach()))
            targets = torch.bernoulli(p, generator=generator)
        elif name == "mse":
            noise = torch.randn(outputs.shape, generator=generator, dtype=outputs.dtype,
                                device=outputs.device)  # fmt: skip
            targets = outputs.detach() + noise * 0.5**0.5
        else:
            raise OptimlabError(f"invalid likelihood: {name!r}; valid: {', '.join(NAMES)}")
    if name == "cross_entropy":
        return torch.nn.functional.cross_entropy(outputs, targets)
    if name == "logistic":
        return torch.nn.functional.binary_cross_entropy_with_logits(_scores(outputs), targets)
    per_example = outputs.numel() // n
    return ((outputs - targets) ** 2).sum() / (n * per_example**0.5)


def check_output_gradient(name: str, outputs: Tensor, gradient: Tensor, who: str) -> None:
    """Raise unless ``gradient`` (the gradient of the mean loss in ``outputs``) can come
    from the likelihood ``name``: a cross-entropy gradient sums to zero over the classes
    of each example, ``N`` times a logistic one is ``sigmoid(s) - y`` with ``y`` in
    ``[0, 1]``. A cheap guard against a likelihood option that does not match the loss
    (every gradient could come from ``mse``)."""
    if name == "mse":
        return
    _check_class_scores(name, outputs)
    scaled = gradient.detach() * outputs.shape[0]
    tol = 1e-3 * max(1.0, float(scaled.abs().max()))
    if name == "cross_entropy":
        bad = float(scaled.sum(dim=-1).abs().max()) > tol
        why = "its gradient in the outputs does not sum to 0 over the classes"
    else:
        y = torch.sigmoid(_scores(outputs.detach())) - _scores(scaled)
        bad = float(y.min()) < -tol or float(y.max()) > 1 + tol
        why = "its gradient in the scores is not sigmoid(s) - y for labels y in [0, 1]"
    if bad:
        raise OptimlabError(
            f"{who}: the loss is not the {name} of the model's outputs ({why}); set "
            f"likelihood= to the loss's own ({', '.join(NAMES)}), or use fisher='empirical'"
        )
