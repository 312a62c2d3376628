"""Adversarial examples: the fast gradient sign method and projected gradient descent,
in the L-infinity and L2 balls, and robust accuracy.

An attack moves each input ``x`` within the ball ``||delta|| <= eps`` around it in the
direction that raises the loss most, to first order:

.. code-block:: text

    FGSM (Goodfellow, Shlens & Szegedy 2015), one step:
        L-inf: x_adv = x + eps * sign(grad_x L(x, y))
        L2:    x_adv = x + eps * grad_x L / ||grad_x L||_2    (the fast gradient method)
    PGD (Madry et al. 2018), from x_0 = x, or a uniform draw from the ball (random start):
        x_{t+1} = Proj_ball(x_t + alpha * sign(grad_x L(x_t, y)))            L-inf
        x_{t+1} = Proj_ball(x_t + alpha * grad_x L(x_t, y) / ||grad_x L||_2)  L2
        Proj_ball: clamp delta to [-eps, eps] (L-inf), scale delta to norm <= eps (L2)
    then, where the data has a range [lo, hi] (pixels in [0, 1]), clamp x_adv into it

Norms are per example, over all of its input dimensions. The gradient is taken of the
batch's mean loss, whose gradient with respect to one input is that example's own
loss gradient divided by the batch size, which neither the sign nor the normalization
sees (so examples do not interact, in evaluation mode). One PGD step of size ``eps``
from ``x``, without projection, is FGSM. The model is run in whatever mode it is in;
parameter gradients are not touched (only the input's gradient is computed).

Robust accuracy at ``eps`` counts an example as correct when the model classifies it
correctly both as it is and after the attack: the clean input lies in the ball too, so
robust accuracy never exceeds clean accuracy on the same examples.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from optimlab.errors import OptimlabError

NORMS = ("linf", "l2")
METHODS = ("fgsm", "pgd")

Loss = Callable[[Tensor, Tensor], Tensor]
#: a network, or any function of the inputs that returns its outputs
Model = Callable[[Tensor], Tensor]
#: a data range ``(lo, hi)``, numbers or tensors that broadcast against the inputs
Bounds = tuple[Any, Any]


def _check(name: str, value: Any, low: float, *, integer: bool = False) -> None:
    kind = int if integer else (int, float)
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= low:
        what = "a whole number" if integer else "a finite number"
        raise OptimlabError(f"invalid {name}: {value!r}; valid: {what} > {low:g}")


def check_norm(norm: Any) -> str:
    if norm not in NORMS:
        raise OptimlabError(f"invalid norm {norm!r}; valid norms: {', '.join(NORMS)}")
    return norm


def input_gradient(model: Model, loss_fn: Loss, x: Tensor, y: Tensor) -> Tensor:
    """``d loss_fn(model(x), y) / dx``, without touching the parameters' ``.grad``."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(model(x), y), x)
    return grad


def _per_example_norm(t: Tensor) -> Tensor:
    """The L2 norm of each example, shaped to broadcast against ``t``."""
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.ndim - 1)))


def ascent_direction(grad: Tensor, norm: str) -> Tensor:
    """The steepest-ascent unit step of each example: ``sign(g)`` in L-inf, ``g/||g||_2``
    in L2 (0 where the gradient is 0)."""
    if norm == "linf":
        return grad.sign()
    length = _per_example_norm(grad)
    return torch.where(length > 0, grad / length.clamp_min(torch.finfo(grad.dtype).tiny), 0.0)


def project(x_adv: Tensor, x: Tensor, epsilon: float, norm: str) -> Tensor:
    """``x_adv`` moved back into the ``epsilon``-ball around ``x``."""
    delta = x_adv - x
    if norm == "linf":
        return x + delta.clamp(-epsilon, epsilon)
    length = _per_example_norm(delta)
    scale = torch.where(length > epsilon, epsilon / length.clamp_min(epsilon), 1.0)
    return x + delta * scale


def clamp_to(x: Tensor, bounds: Bounds | None) -> Tensor:
    """``x`` clamped into the data range ``bounds`` (unchanged without one)."""
    if bounds is None:
        return x
    lo, hi = (torch.as_tensor(b, dtype=x.dtype, device=x.device) for b in bounds)
    return torch.maximum(torch.minimum(x, hi), lo)


def random_in_ball(
    x: Tensor, epsilon: float, norm: str, generator: torch.Generator | None = None
) -> Tensor:
    """A uniform draw from the ``epsilon``-ball around each example of ``x``."""
    shape, d = x.shape, x[0].numel() if len(x) else 1
    if norm == "linf":
        u = torch.rand(shape, generator=generator, dtype=x.dtype)
        delta = (2 * u - 1) * epsilon
    else:  # a uniform direction, and a radius r with P(r <= s) = (s/eps)^d
        direction = torch.randn(shape, generator=generator, dtype=x.dtype)
        direction = direction / _per_example_norm(direction).clamp_min(1e-30)
        radius = torch.rand(len(x), generator=generator, dtype=x.dtype) ** (1.0 / d)
        delta = direction * (epsilon * radius).view(-1, *([1] * (x.ndim - 1)))
    return x + delta.to(x.device)


def fgsm(
    model: Model,
    loss_fn: Loss,
    x: Tensor,
    y: Tensor,
    epsilon: float,
    *,
    norm: str = "linf",
    bounds: Bounds | None = None,
) -> Tensor:
    """The fast gradient sign method: ``x + eps * sign(grad_x L)`` (L-inf), or
    ``x + eps * grad_x L / ||grad_x L||_2`` (L2), clamped into ``bounds``."""
    _check("epsilon", epsilon, 0.0)
    check_norm(norm)
    grad = input_gradient(model, loss_fn, x, y)
    return clamp_to(x.detach() + epsilon * ascent_direction(grad, norm), bounds).detach()


def pgd(
    model: Model,
    loss_fn: Loss,
    x: Tensor,
    y: Tensor,
    epsilon: float,
    *,
    norm: str = "linf",
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    projection: bool = True,
    bounds: Bounds | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Projected gradient ascent on the loss within the ``epsilon``-ball around ``x``.

    ``steps`` ascent steps of size ``step_size`` (default ``2.5 * epsilon / steps``,
    Madry et al.'s choice), each followed by the projection onto the ball (unless
    ``projection=False``) and the clamp into ``bounds``; ``random_start`` begins at a
    uniform draw from the ball (drawn with ``generator``) instead of at ``x``.
    Returns the last iterate.
    """
    _check("epsilon", epsilon, 0.0)
    check_norm(norm)
    _check("steps", steps, 0, integer=True)
    alpha = 2.5 * epsilon / steps if step_size is None else step_size
    _check("step_size", alpha, 0.0)
    x = x.detach()
    x_adv = clamp_to(random_in_ball(x, epsilon, norm, generator), bounds) if random_start else x
    for _ in range(steps):
        grad = input_gradient(model, loss_fn, x_adv, y)
        x_adv = x_adv + alpha * ascent_direction(grad, norm)
        if projection:
            x_adv = project(x_adv, x, epsilon, norm)
        x_adv = clamp_to(x_adv, bounds)
    return x_adv.detach()


@dataclass(frozen=True)
class Attack:
    """An attack's settings, checked once: ``method`` fgsm or pgd, ``epsilon``, ``norm``
    (linf or l2) and, for pgd, ``steps``, ``step_size`` (None: ``2.5 * epsilon /
    steps``) and ``random_start``. Call it as ``attack(model, loss_fn, x, y, bounds=,
    generator=)``."""

    method: str
    epsilon: float
    norm: str = "linf"
    steps: int = 10
    step_size: float | None = None
    random_start: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise OptimlabError(
                f"invalid attack {self.method!r}; valid attacks: {', '.join(METHODS)}"
            )
        _check("epsilon", self.epsilon, 0.0)
        check_norm(self.norm)
        _check("steps", self.steps, 0, integer=True)
        if self.step_size is not None:
            _check("step_size", self.step_size, 0.0)

    @property
    def passes(self) -> int:
        """Forward-backward passes the attack makes per batch."""
        return 1 if self.method == "fgsm" else self.steps

    def __call__(
        self,
        model: Model,
        loss_fn: Loss,
        x: Tensor,
        y: Tensor,
        *,
        bounds: Bounds | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        if self.method == "fgsm":
            return fgsm(model, loss_fn, x, y, self.epsilon, norm=self.norm, bounds=bounds)
        return pgd(
            model, loss_fn, x, y, self.epsilon, norm=self.norm, steps=self.steps,
            step_size=self.step_size, random_start=self.random_start, bounds=bounds,
            generator=generator,
        )  # fmt: skip


class InputSpace:
    """Where an attack measures ``epsilon``: the data's own units when the model sees
    standardized inputs ``(raw - mean) / std`` of a raw range ``bounds`` (pixels in
    [0, 1]), so that ``epsilon = 8/255`` means eight grey levels whatever the
    standardization. ``mean``/``std`` None: the model's inputs are the raw ones."""

    def __init__(
        self, mean: Tensor | None = None, std: Tensor | None = None, bounds: Bounds | None = None
    ) -> None:
        if (mean is None) != (std is None):
            raise OptimlabError("give both mean and std of the standardization, or neither")
        self.mean, self.std, self.bounds = mean, std, bounds

    def to_raw(self, x: Tensor) -> Tensor:
        return x if self.mean is None else x * self.std + self.mean

    def from_raw(self, raw: Tensor) -> Tensor:
        return raw if self.mean is None else (raw - self.mean) / self.std

    def model(self, model: Model) -> Model:
        """``model`` as a function of raw inputs."""
        if self.mean is None:
            return model
        return lambda raw: model(self.from_raw(raw))

    def attack(
        self,
        attack: Attack,
        model: nn.Module,
        loss_fn: Loss,
        x: Tensor,
        y: Tensor,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``attack`` on model inputs ``x``, run in raw units; returns model inputs."""
        raw = self.to_raw(x.detach())
        adv = attack(self.model(model), loss_fn, raw, y, bounds=self.bounds, generator=generator)
        return self.from_raw(adv).detach()


def image_space(splits: Any, tolerance: float = 1e-4) -> InputSpace | None:
    """The input space of image data (``splits.train.x`` of shape ``(N, C, H, W)``),
    which ``optimlab.data`` scales to [0, 1] before standardizing: raw units with the
    range [0, 1], checked on the training inputs. None for other data (tabular or
    synthetic inputs have no range: attacks then work in the model's input units)."""
    if splits is None or splits.train.x.ndim != 4 or len(splits.train.x) == 0:
        return None
    space = InputSpace(splits.mean, splits.std, (0.0, 1.0))
    raw = space.to_raw(splits.train.x)
    if float(raw.min()) < -tolerance or float(raw.max()) > 1 + tolerance:
        return None
    return space


def robust_accuracy(
    model: nn.Module,
    loss_fn: Loss,
    x: Tensor,
    y: Tensor,
    attack: Attack,
    *,
    space: InputSpace | None = None,
    batch_size: int = 1024,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Clean accuracy, robust accuracy and the mean loss at the attacked inputs over
    ``(x, y)``, in evaluation mode (the model's mode is restored afterwards).

    An example counts as robust when it is classified correctly both as it is and
    after ``attack`` (run in ``space``, the model's input units by default).
    """
    n = len(x)
    if n == 0:
        return {}
    space = space or InputSpace()
    was_training = model.training
    model.eval()
    clean = robust = 0
    loss_sum = 0.0
    try:
        for i in range(0, n, batch_size):
            xb, yb = x[i : i + batch_size], y[i : i + batch_size]
            adv = space.attack(attack, model, loss_fn, xb, yb, generator)
            with torch.no_grad():
                right = model(xb).argmax(dim=1) == yb
                out = model(adv)
                loss_sum += float(loss_fn(out, yb)) * len(xb)
                clean += int(right.sum())
                robust += int((right & (out.argmax(dim=1) == yb)).sum())
    finally:
        model.train(was_training)
    return {"clean_accuracy": clean / n, "robust_accuracy": robust / n, "robust_loss": loss_sum / n}
