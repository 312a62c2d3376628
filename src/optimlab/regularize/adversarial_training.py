"""Adversarial training and robust accuracy in a training run.

:class:`AdversarialTraining` is a trainer ``batch_transform``: it replaces a random
``fraction`` of each training batch by adversarial examples crafted against the model
of the moment (:mod:`optimlab.regularize.adversarial`), so the batch's mean loss is

.. code-block:: text

    (1 - k/n) * J(clean part) + (k/n) * J(adversarial part),   k = round(fraction * n)

an unbiased estimate of Goodfellow, Shlens & Szegedy's (2015) mixed objective
``alpha * J(x) + (1 - alpha) * J(x_adv)`` with ``alpha = 1 - fraction`` (they use
``alpha = 0.5``, the default here); ``fraction = 1`` trains on adversarial examples
alone (Madry et al. 2018). The examples are crafted in evaluation mode (no dropout
draw, BN with its running statistics, which crafting does not move) against the loss
the run trains, and the epoch's training loss and accuracy are those of the mixed
batches. The attack's forward-backward passes are added to the run's
``evaluations`` and ``examples`` counts, so cost comparisons see them.

:class:`RobustAccuracy` is a callback that adds ``val_robust_accuracy``,
``val_robust_loss`` (and ``test_...``) to every epoch's record: PGD with
:data:`ROBUST_STEPS` steps of ``epsilon / 4`` from a random start, on the first
``examples`` examples of each split (all by default).

Both measure ``epsilon`` in the data's own units where the data has a range (images,
pixels in [0, 1], clamped there; :func:`~optimlab.regularize.adversarial.image_space`)
and in the model's input units otherwise. Random starts and the choice of the
attacked examples come from generators seeded by the run's seed and the step (the
epoch, for evaluation), so a resumed run repeats them exactly.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from optimlab.errors import OptimlabError, check_range
from optimlab.regularize.adversarial import METHODS, Attack, InputSpace, Loss, robust_accuracy
from optimlab.regularize.mixup import step_generator
from optimlab.train.callback import Callback

#: PGD steps of the robust evaluation (step size epsilon / 4, random start)
ROBUST_STEPS = 10

#: the run options (``optimlab.regularize.options`` keys) of this module
KEYS = (
    "adversarial",
    "adversarial_epsilon",
    "adversarial_norm",
    "adversarial_steps",
    "adversarial_step_size",
    "adversarial_random_start",
    "adversarial_fraction",
    "robust_epsilon",
    "robust_examples",
)
_PGD_ONLY = ("adversarial_steps", "adversarial_step_size", "adversarial_random_start")


def validate(options: dict[str, Any]) -> None:
    """Check the adversarial keys of a run's regularization options (one-line errors)."""
    given = {k: v for k, v in options.items() if k in KEYS}
    if not given:
        return
    method = given.get("adversarial")
    if "adversarial" in given:
        if method not in METHODS:
            raise OptimlabError(
                f"invalid adversarial {method!r}; valid attacks: {', '.join(METHODS)}"
            )
        if "adversarial_epsilon" not in given:
            raise OptimlabError(
                f"adversarial {method} needs adversarial_epsilon, the size of the "
                "perturbation (in pixel units of [0, 1] for images, e.g. 0.1)"
            )
    else:
        for key in ("adversarial_epsilon", "adversarial_fraction", *_PGD_ONLY):
            if key in given:
                raise OptimlabError(f"{key} needs adversarial (fgsm or pgd)")
    if method == "fgsm":
        for key in _PGD_ONLY:
            if key in given:
                raise OptimlabError(f"{key} is a setting of pgd; fgsm takes one step of epsilon")
    for key in ("adversarial_epsilon", "adversarial_step_size", "robust_epsilon"):
        if key in given:
            _positive(key, given[key])
    if "adversarial_steps" in given:
        _whole(given["adversarial_steps"], "adversarial_steps")
    if "robust_examples" in given:
        _whole(given["robust_examples"], "robust_examples")
        if "robust_epsilon" not in given:
            raise OptimlabError("robust_examples needs robust_epsilon")
    if "adversarial_fraction" in given:
        value = given["adversarial_fraction"]
        _number("adversarial_fraction", value)
        check_range("adversarial_fraction", value, 0.0, 1.0, low_open=True)
    if "adversarial_random_start" in given and not isinstance(
        given["adversarial_random_start"], bool
    ):
        raise OptimlabError(
            f"invalid adversarial_random_start: {given['adversarial_random_start']!r}; "
            "valid: true or false"
        )
    if "adversarial_norm" in given:
        norm = given["adversarial_norm"]
        if norm not in ("linf", "l2"):
            raise OptimlabError(f"invalid adversarial_norm {norm!r}; valid norms: linf, l2")
        if method is None and "robust_epsilon" not in given:
            raise OptimlabError("adversarial_norm needs adversarial or robust_epsilon")


def _number(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise OptimlabError(f"invalid {key}: {value!r}; valid: a finite number")


def _positive(key: str, value: Any) -> None:
    _number(key, value)
    if value <= 0:
        raise OptimlabError(f"invalid {key}: {value!r}; valid: a finite number > 0")


def _whole(value: Any, key: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptimlabError(f"invalid {key}: {value!r}; valid: a whole number >= 1")


def training_attack(options: dict[str, Any]) -> Attack:
    """The attack the options train against."""
    return Attack(
        method=options["adversarial"],
        epsilon=float(options["adversarial_epsilon"]),
        norm=options.get("adversarial_norm", "linf"),
        steps=int(options.get("adversarial_steps", 10)),
        step_size=options.get("adversarial_step_size"),
        random_start=bool(options.get("adversarial_random_start", True)),
    )


def robust_attack(options: dict[str, Any]) -> Attack:
    """The attack of the robust evaluation: PGD in the options' norm at ``robust_epsilon``."""
    epsilon = float(options["robust_epsilon"])
    return Attack(
        method="pgd",
        epsilon=epsilon,
        norm=options.get("adversarial_norm", "linf"),
        steps=ROBUST_STEPS,
        step_size=epsilon / 4,
        random_start=True,
    )


class AdversarialTraining(Callback):
    """Trainer ``batch_transform(x, y, step)`` that replaces a random ``fraction`` of
    the batch by ``attack``'s adversarial examples against ``model`` and ``loss_fn``
    (see the module docstring); also a callback, to count the attack's passes."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Loss,
        attack: Attack,
        fraction: float = 0.5,
        space: InputSpace | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_range("adversarial_fraction", fraction, 0.0, 1.0, low_open=True)
        self.model, self.loss_fn, self.attack = model, loss_fn, attack
        self.fraction, self.space, self.seed = float(fraction), space or InputSpace(), int(seed)

    def __call__(self, x: Tensor, y: Tensor, step: int) -> tuple[Tensor, Tensor]:
        n = x.shape[0]
        k = math.floor(self.fraction * n + 0.5)
        if k == 0:
            return x, y
        gen = step_generator(self.seed, step)
        chosen = torch.randperm(n, generator=gen)[:k].to(x.device)
        was_training = self.model.training
        self.model.eval()
        try:
            adv = self.space.attack(
                self.attack, self.model, self.loss_fn, x[chosen], y[chosen], gen
            )
        finally:
            self.model.train(was_training)
        x = x.clone()
        x[chosen] = adv.to(x.dtype)
        if self.trainer is not None:
            self.trainer.evaluations += self.attack.passes
            self.trainer.examples += k * self.attack.passes
        return x, y


class RobustAccuracy(Callback):
    """Log ``{val,test}_robust_accuracy`` and ``{val,test}_robust_loss`` under ``attack``
    at every epoch end, on the first ``examples`` examples of each split (all: None)."""

    #: before the callbacks that read the epoch's record (early stopping, loggers)
    order = -10

    def __init__(
        self,
        attack: Attack,
        space: InputSpace | None = None,
        examples: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if examples is not None:
            check_range("robust_examples", examples, 1)
        self.attack, self.space, self.examples, self.seed = attack, space, examples, int(seed)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        t = self.trainer
        splits = [("val_", t.val_xy), ("test_", t.test_xy if t.evaluate_test else None)]
        for i, (prefix, xy) in enumerate(splits):
            if xy is None or len(xy[0]) == 0:
                continue
            x, y = (part[: self.examples] for part in xy)
            result = robust_accuracy(
                t.model, t.loss_fn, x, y, self.attack, space=self.space,
                batch_size=t.eval_batch_size, generator=step_generator(self.seed, 2 * epoch + i),
            )  # fmt: skip
            logs[f"{prefix}robust_accuracy"] = result["robust_accuracy"]
            logs[f"{prefix}robust_loss"] = result["robust_loss"]
