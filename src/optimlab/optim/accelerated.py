"""Nesterov's accelerated gradient with the momentum of the theory: NAG-C and NAG-SC
(Nesterov 1983; in the form of Su, Boyd & Candes 2016, "A Differential Equation for
Modeling Nesterov's Accelerated Gradient Method: Theory and Insights", JMLR 17).

Lecture 003 writes both as a gradient step and an extrapolation, from ``y_0 = x_0``:

.. code-block:: text

    y_{k+1} = x_k - s grad f(x_k)
    x_{k+1} = y_{k+1} + mu_k (y_{k+1} - y_k)

with ``mu_k = k/(k+3)`` (NAG-C) or ``(1 - sqrt(mu s))/(1 + sqrt(mu s))`` (NAG-SC), the
schedules of ``optimlab.schedules.nesterov``. The gradient is taken at ``x_k``, so the
parameters are the ``x_k`` and ``y_k`` is never stored: with ``b_{k+1} = (y_k -
y_{k+1})/s`` the recursion becomes torch's momentum form

.. code-block:: text

    b_{k+1} = mu_{k-1} b_k + g_k          (b_1 = g_0)
    x_{k+1} = x_k - s (g_k + mu_k b_{k+1})

which is torch's Nesterov SGD except that the buffer decays by the *previous* update's
momentum. With a constant momentum (NAG-SC) the two are the same; with NAG-C's
growing one, Nesterov SGD whose ``momentum`` is driven by the schedule is a different
method. The gradient steps ``y_{k+1} = x_k - s g_k`` are where Su, Boyd & Candes
bound the error: ``f(y_k) - f* <= 2 ||x_0 - x*||^2 / (s (k + 1)^2)`` for NAG-C
(their Theorem 6, whose ``x_k`` is this ``y_k``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import Tensor

from optimlab.errors import OptimlabError, check_range
from optimlab.optim.base import ChainOptimizer
from optimlab.optim.decay import AddWeightDecay
from optimlab.optim.scale import ScaleByLearningRate
from optimlab.optim.transform import Hyper, Transform, learning_rate, per_step, step_of
from optimlab.schedules.nesterov import nag_c_momentum, nag_sc_momentum


class _NesterovTrace(Transform):
    """The momentum of NAG with a momentum that may change every update: subclasses
    give ``momentum(hp, state, back)``, the momentum ``mu_{k - back}`` of update ``k``
    (this one) or of an earlier one."""

    state_keys = ("momentum_buffer",)

    def momentum(self, hp: Hyper, state: dict, back: int) -> Any:
        raise NotImplementedError

    def update_one(self, u: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = u.detach().clone()
        else:  # from the second update on, so mu_{k-1} exists
            buf.mul_(per_step(self.momentum(hp, state, 1), buf)).add_(u)
        mu = self.momentum(hp, state, 0)
        if isinstance(mu, Tensor):  # compiled: the momentum is a tensor of the step
            return u + per_step(mu, buf) * buf
        return u.add(buf, alpha=mu)  # as torch's Nesterov SGD, for equal rounding


class NesterovConvexTrace(_NesterovTrace):
    """NAG-C's momentum: Nesterov's look-ahead with ``mu_k = k / (k + r)``.

    .. code-block:: text

        mu_k = k / (k + r),  k = t - 1
        b <- mu_{k-1} * b + u                    (b <- u at t = 1)
        u <- u + mu_k * b

    Hyperparameters:
        r: ``r`` > 0 (default 3, Nesterov's; ``r >= 3`` keeps the O(1/k^2) rate).

    State:
        momentum_buffer: ``b``.

    Followed by ``ScaleByLearningRate`` (``s``), the parameters are the points
    ``x_k`` of the recursion ``y_{k+1} = x_k - s g_k``,
    ``x_{k+1} = y_{k+1} + mu_k (y_{k+1} - y_k)`` (see the module docstring).

    References:
        Nesterov 1983; Su, Boyd & Candes 2016 (section 5 for ``r``).
    """

    defaults = {"r": 3.0}

    def validate(self, hp: Hyper) -> None:
        check_range("r", float(hp["r"]), 0.0, low_open=True)

    def momentum(self, hp: Hyper, state: dict, back: int) -> Any:
        return nag_c_momentum(step_of(state) - 1 - back, hp["r"])


class NesterovStronglyConvexTrace(_NesterovTrace):
    """NAG-SC's momentum: Nesterov's look-ahead with the constant
    ``(1 - sqrt(mu * lr)) / (1 + sqrt(mu * lr))``.

    .. code-block:: text

        m = (1 - sqrt(mu * lr_t)) / (1 + sqrt(mu * lr_t))
        b <- m * b + u                           (b <- u at t = 1)
        u <- u + m * b

    Hyperparameters:
        lr: ``lr_t``, the step size ``s`` the momentum is tuned to (shared with
            ``ScaleByLearningRate``).
        mu: ``mu`` > 0, the objective's strong-convexity constant, with
            ``mu * lr <= 1`` (default 0.1).

    State:
        momentum_buffer: ``b``.

    With a constant ``lr`` this is torch's Nesterov SGD with that momentum.

    References:
        Nesterov 2004, "Introductory Lectures on Convex Optimization" (2.2.19);
        Su, Boyd & Candes 2016.
    """

    defaults = {"lr": 1e-3, "mu": 0.1}

    def validate(self, hp: Hyper) -> None:
        mu = float(hp["mu"])
        check_range("mu", mu, 0.0, low_open=True)
        lr = hp["lr"]
        if not callable(lr) or isinstance(lr, Tensor):
            if mu * float(lr) > 1:
                raise OptimlabError(
                    f"invalid mu: {mu!r}; NAG-SC needs mu * lr <= 1, "
                    f"so mu <= 1/lr = {1 / float(lr):g}"
                )

    def momentum(self, hp: Hyper, state: dict, back: int) -> Any:
        return nag_sc_momentum(hp["mu"], learning_rate(hp, state))


class NAGC(ChainOptimizer):
    """NAG-C: Nesterov's accelerated gradient for convex objectives, momentum k/(k+3).

    .. code-block:: text

        input: lr (s <= 1/L), r (3), weight_decay (coupled L2)
        y_0 = x_0 (the parameters)
        for k = 0, 1, 2, ...:
            g_k <- grad f(x_k) + weight_decay * x_k
            y_{k+1} = x_k - s g_k
            x_{k+1} = y_{k+1} + k/(k+r) (y_{k+1} - y_k)
        run as: b <- mu_{k-1} b + g_k (b <- g_0);  x <- x - s (g_k + mu_k b),  mu_k = k/(k+r)

    Su, Boyd & Candes 2016 (Theorem 6): with ``s <= 1/L``,
    ``f(y_k) - f* <= 2 ||x_0 - x*||^2 / (s (k+1)^2)``; as ``s -> 0`` the iterates follow
    ``X'' + (3/t) X' + grad f(X) = 0`` at ``t = k sqrt(s)``. The momentum schedule is
    the registered schedule ``nag_c``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        r: float = 3.0,
        weight_decay: float = 0.0,
        **options: Any,
    ) -> None:
        hp = dict(lr=lr, r=r, weight_decay=weight_decay)
        chain = [AddWeightDecay(), NesterovConvexTrace(), ScaleByLearningRate()]
        super().__init__(params, chain, hp, **options)


class NAGSC(ChainOptimizer):
    """NAG-SC: Nesterov's accelerated gradient for mu-strongly convex objectives.

    .. code-block:: text

        input: lr (s <= 1/L), mu (strong convexity, mu * s <= 1), weight_decay (coupled L2)
        m = (1 - sqrt(mu s)) / (1 + sqrt(mu s))
        y_0 = x_0 (the parameters)
        for k = 0, 1, 2, ...:
            g_k <- grad f(x_k) + weight_decay * x_k
            y_{k+1} = x_k - s g_k
            x_{k+1} = y_{k+1} + m (y_{k+1} - y_k)
        run as: b <- m b + g_k (b <- g_0);  x <- x - s (g_k + m b)

    With ``s = 1/L`` the momentum is ``(sqrt(kappa) - 1)/(sqrt(kappa) + 1)``; the
    iterates equal ``SGD(lr=s, momentum=m, nesterov=True)``. Unlike heavy-ball momentum,
    this converges on every such ``f``, not only on quadratics (Lessard, Recht &
    Packard 2016; ``optimlab.problems.functions1d``). The momentum is the registered
    schedule ``nag_sc``, computed from the group's ``lr`` at each step.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        mu: float = 0.1,
        weight_decay: float = 0.0,
        **options: Any,
    ) -> None:
        hp = dict(lr=lr, mu=mu, weight_decay=weight_decay)
        chain = [AddWeightDecay(), NesterovStronglyConvexTrace(), ScaleByLearningRate()]
        super().__init__(params, chain, hp, **options)
