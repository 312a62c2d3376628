"""Delay-tolerant AdaGrad: AdaptiveRevision ("AdaRevision") on the parameter server.

Paper: McMahan & Streeter 2014, *Delay-Tolerant Algorithms for Asynchronous Distributed
Online Learning* (NeurIPS). ``optimlab train --parallel delay_tolerant`` is Downpour
(:mod:`optimlab.parallel.downpour`: replicas, sharded servers, ``n_fetch``/``n_push``)
with this rule on the servers instead of AdaGrad.

The problem with AdaGrad under delays: a gradient ``g`` computed on weights fetched at
version ``b`` reaches the server at version ``v >= b``, after the gradients of versions
``b .. v-1`` (the *backlog*) were applied. AdaGrad then steps as if ``g`` had seen them,
with a learning rate computed from a sum of squares that does not count how ``g`` and
the backlog overlap. AdaRevision keeps, per coordinate, the sum ``gbar`` of all applied
gradients; the server remembers ``gbar`` as it was when a replica fetched (version
``b``), so that at the push it knows the backlog ``g_bck = gbar_v - gbar_b``. Then, per
coordinate, with ``alpha`` the learning rate::

    g_bck  <- gbar - gbar_b                       (gradients applied during the delay)
    eta'   <- alpha / (sqrt(z' + eps_root) + eps)  (the rate before this update)
    z      <- z + g^2 + 2 g g_bck                  (the squares of the sums g + g_bck)
    z'     <- max(z', z)                           (the rate never grows)
    eta    <- alpha / (sqrt(z' + eps_root) + eps)
    w      <- w - eta g + (eta' - eta) g_bck       (step, and revise the backlog's rate)
    gbar   <- gbar + g

The revision term re-applies the backlog's gradients with the new, smaller rate: they
were stepped with ``eta'`` before ``g`` was known to overlap with them. Without a delay
(``b = v``, ``g_bck = 0``) this is AdaGrad exactly: ``z = z'`` is AdaGrad's sum of
squares and the step is ``w <- w - alpha g / (sqrt(z) + eps)``.

Conventions (the paper writes ``eta = alpha / sqrt(z')`` with ``z`` and ``z'`` starting
at a constant): here the rate is AdaGrad's of :mod:`optimlab.optim.adagrad` (torch's
convention), with ``z = z' = initial_accumulator_value`` at the start, ``eps`` outside
the root and ``eps_root`` inside, so that the rule without delays is the registry's
``adagrad`` bit for bit; ``lr_decay`` and ``weight_decay`` are not part of it. Where the
paper's worker sends ``gbar_b`` back with its update, here the server keeps a snapshot
of ``gbar`` for every version a replica may still push against: memory on the server
instead of traffic.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from optimlab.errors import OptimlabError, check_range
from optimlab.optim.adaptive import denominator

SETTINGS = ("eps", "eps_root", "initial_accumulator_value")
"""The AdaGrad arguments AdaRevision takes (with ``lr``)."""


def check_adagrad_settings(optimizer: str, hp: dict[str, Any]) -> None:
    """Refuse an optimizer other than AdaGrad, and AdaGrad's arguments the rule lacks."""
    if optimizer != "adagrad":
        raise OptimlabError(
            f"invalid optimizer {optimizer!r} for parallel delay_tolerant: it revises "
            "AdaGrad's steps; valid: adagrad"
        )
    for key, value in hp.items():
        if key not in SETTINGS:
            raise OptimlabError(
                f"invalid argument {key!r} of adagrad for parallel delay_tolerant; valid: "
                f"{', '.join(SETTINGS)}"
            )
        check_range(key, float(value), 0.0)


class AdaRevision:
    """The AdaRevision rule on a shard ``w``: learning rate ``lr`` (``alpha``), ``eps``,
    ``eps_root`` and ``initial_accumulator_value`` as AdaGrad's.

    State, per coordinate: ``z``, ``z_max`` (``z'``) and ``g_sum`` (``gbar``), and the
    snapshots of ``g_sum`` by version."""

    needs_snapshots = True

    def __init__(
        self, w: Tensor, lr: float = 1e-2, eps: float = 1e-10, eps_root: float = 0.0,
        initial_accumulator_value: float = 0.0,
    ) -> None:  # fmt: skip
        for name, value in (("lr", lr), ("eps", eps), ("eps_root", eps_root),
                            ("initial_accumulator_value", initial_accumulator_value)):  # fmt: skip
            check_range(name, value, 0.0)
        self.lr, self.eps, self.eps_root = float(lr), float(eps), float(eps_root)
        self.z = torch.full_like(w, float(initial_accumulator_value))
        self.z_max = self.z.clone()
        self.g_sum = torch.zeros_like(w)
        self.snapshots: dict[int, Tensor] = {}

    @classmethod
    def from_settings(cls, w: Tensor, lr: float | None, hp: dict[str, Any]) -> AdaRevision:
        """The rule with the run's ``lr`` (AdaGrad's default when None) and ``hp``."""
        from optimlab import optim

        check_adagrad_settings("adagrad", hp)
        defaults = optim.get("adagrad").hyperparameters()
        values = {k: float(hp.get(k, defaults[k])) for k in SETTINGS}
        return cls(w, lr=float(defaults["lr"] if lr is None else lr), **values)

    def snapshot(self, version: int) -> None:
        """Remember ``g_sum`` as it is now, at ``version`` (a replica fetched it)."""
        if version not in self.snapshots:
            self.snapshots[version] = self.g_sum.clone()

    def release(self, keep: Iterable[int]) -> None:
        """Forget the snapshots of versions not in ``keep``."""
        keep = set(keep)
        for version in [v for v in self.snapshots if v not in keep]:
            del self.snapshots[version]

    def apply(self, w: Tensor, g: Tensor, base: int, version: int) -> None:
        """Apply gradient ``g``, computed on version ``base``, to ``w`` at ``version``."""
        backlog = None if base == version else self.g_sum - self.snapshots[base]
        if backlog is not None:
            old = denominator(self.z_max, self.eps, self.eps_root)
        self.z.addcmul_(g, g)
        if backlog is not None:
            self.z.addcmul_(g, backlog, value=2.0)
        torch.maximum(self.z_max, self.z, out=self.z_max)
        new = denominator(self.z_max, self.eps, self.eps_root)
        # the step as AdaGrad's chain computes it, so that no delay is AdaGrad bit for bit
        w.add_(g / new * -self.lr)
        if backlog is not None:
            w.add_(backlog * (self.lr / old - self.lr / new))
        self.g_sum.add_(g)

    def state_dict(self) -> dict[str, Any]:
        return {"z": self.z, "z_max": self.z_max, "g_sum": self.g_sum,
                "snapshots": dict(self.snapshots)}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("z", "z_max", "g_sum"):
            getattr(self, key).copy_(state[key])
        self.snapshots = {int(k): v.clone() for k, v in state["snapshots"].items()}
