"""Mixup (Zhang et al., ICLR 2018): train on convex combinations of example pairs.

For a batch (x, y) and a permutation pi of it, with ``lam ~ Beta(alpha, alpha)`` drawn
once per batch: ``x~ = lam * x + (1 - lam) * x[pi]`` and the loss is
``lam * L(f(x~), y) + (1 - lam) * L(f(x~), y[pi])``.

Here the two targets travel as one soft target ``t = lam * onehot(y) + (1 - lam) *
onehot(y[pi])``. Cross-entropy is linear in its target, so
``CE(s, t) = lam * CE(s, y) + (1 - lam) * CE(s, y[pi])`` exactly: the batch transform
(:class:`Mixup`) makes the soft targets, and :func:`mixup_problem` wraps the problem's
loss and metrics to accept them (hard targets, e.g. at evaluation, pass unchanged;
metrics score the mixed batch against its dominant label).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from optimlab.errors import OptimlabError, check_range


def step_generator(seed: int, step: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator seeded from (seed, step): the same batch gets the same draw on resume."""
    gen = torch.Generator(device=device)
    # Two 32-bit halves keep different (seed, step) pairs apart.
    gen.manual_seed((int(seed) & 0xFFFFFFFF) << 32 | (int(step) & 0xFFFFFFFF))
    return gen


class Mixup:
    """Batch transform ``(x, y, step) -> (x~, soft targets)`` for ``Trainer(batch_transform=)``.

    ``alpha`` is the Beta parameter (0.2 in the paper's ImageNet runs; 0 disables mixup
    and only one-hot encodes). ``num_classes`` sizes the soft targets.
    """

    def __init__(self, alpha: float, num_classes: int, seed: int = 0) -> None:
        check_range("mixup alpha", alpha, 0.0)
        check_range("num_classes", num_classes, 2)
        self.alpha, self.num_classes, self.seed = float(alpha), int(num_classes), int(seed)

    def mix(self, x: Tensor, y: Tensor, lam: float, perm: Tensor) -> tuple[Tensor, Tensor]:
        """The mixed batch for a given ``lam`` and permutation (deterministic)."""
        onehot = F.one_hot(y.long(), self.num_classes).to(x.dtype)
        return lam * x + (1.0 - lam) * x[perm], lam * onehot + (1.0 - lam) * onehot[perm]

    def __call__(self, x: Tensor, y: Tensor, step: int) -> tuple[Tensor, Tensor]:
        gen = step_generator(self.seed, step)
        if self.alpha == 0.0:
            lam = 1.0
        else:
            # Beta(a, a) from two Gammas, drawn with our generator (torch's Beta has none).
            a = torch.full((2,), self.alpha, dtype=torch.float64)
            g = torch._standard_gamma(a, generator=gen)
            lam = float(g[0] / g.sum())
        perm = torch.randperm(x.shape[0], generator=gen).to(x.device)
        return self.mix(x, y, lam, perm)


def hard_target_metric(metric: Callable[[Tensor, Tensor], Tensor]) -> Callable:
    """``metric`` fed the argmax of soft targets (the dominant label of a mixed example)."""

    def wrapped(output: Tensor, target: Tensor) -> Tensor:
        if target.is_floating_point() and target.ndim == 2 and target.shape == output.shape:
            target = target.argmax(dim=1)
        return metric(output, target)

    return wrapped


def _is_cross_entropy(problem: Any) -> bool:
    from optimlab.problems import PROBLEMS
    from optimlab.problems.losses import cross_entropy

    loss_fn = problem.loss_fn
    if getattr(loss_fn, "base_loss", loss_fn) is cross_entropy:
        return True
    # A registered problem with its own penalty (cifar10_3c3d) wraps its loss in a
    # closure; the registry names the loss inside.
    return (
        problem.penalty is not None
        and problem.name in PROBLEMS
        and PROBLEMS.get(problem.name).loss == "cross_entropy"
    )


def mixup_problem(problem: Any) -> Any:
    """A copy of a classification ``problem`` whose loss and metrics accept the soft
    targets :class:`Mixup` produces: soft targets get softmax cross-entropy plus the
    problem's penalty (in training mode); hard targets go to the problem's own loss.
    Only cross-entropy is linear in the target, so other losses are refused."""
    if problem.task != "classification":
        raise OptimlabError(f"mixup needs a classification problem; {problem.name!r} is not")
    if not _is_cross_entropy(problem):
        raise OptimlabError("mixup works with the cross_entropy loss only")
    loss_fn, model, penalty = problem.loss_fn, problem.model, problem.penalty

    def mixed_loss(output: Tensor, target: Tensor) -> Tensor:
        if not (target.is_floating_point() and target.ndim == 2):
            return loss_fn(output, target)
        value = F.cross_entropy(output, target)
        if penalty is not None and model.training:
            value = value + penalty().to(value.device)
        return value

    metrics = {k: hard_target_metric(m) for k, m in problem.metrics.items()}
    return dataclasses.replace(problem, loss_fn=mixed_loss, metrics=metrics)
