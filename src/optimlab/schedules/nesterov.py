"""The momentum schedules of Nesterov's accelerated gradient (Su, Boyd & Candes 2016).

Lecture 003 writes both methods as a gradient step followed by an extrapolation, from
``y_0 = x_0``, with step size ``s``:

.. code-block:: text

    y_{k+1} = x_k - s grad f(x_k)
    x_{k+1} = y_{k+1} + mu_k (y_{k+1} - y_k)

    NAG-C  (f convex, L-smooth, s <= 1/L):            mu_k = k / (k + 3)
    NAG-SC (f mu-strongly convex, L-smooth, s <= 1/L): mu_k = (1 - sqrt(mu s)) / (1 + sqrt(mu s))

A schedule's step counts from 0 at the first update, so ``schedule(k)`` is ``mu_k``,
the momentum of update ``k`` (NAG-C's is 0 at the first update). Both are the
momentum hyperparameters of the optimizers ``nag_c`` and ``nag_sc``
(``optimlab.optim.accelerated``), which run exactly the recursion above.

Driving torch-form Nesterov SGD with ``ScheduleAdapter(opt, NAGCMomentum(),
key="momentum")`` does *not* give NAG-C: its buffer ``b <- mu b + g`` decays by the
momentum of the current update, where the recursion above needs the previous one's
(see ``optimlab.optim.accelerated``). With NAG-SC's constant momentum the two agree.
"""

from __future__ import annotations

from typing import Any

from optimlab.errors import OptimlabError
from optimlab.schedules import _checks
from optimlab.schedules.base import Schedule


def nag_c_momentum(k: Any, r: float = 3.0) -> Any:
    """``k / (k + r)``: NAG-C's momentum at update ``k`` (from 0); a number or a tensor."""
    return k / (k + r)


def nag_sc_momentum(mu: Any, s: Any) -> Any:
    """``(1 - sqrt(mu s)) / (1 + sqrt(mu s))``: NAG-SC's momentum; numbers or tensors."""
    root = (mu * s) ** 0.5
    return (1 - root) / (1 + root)


class NAGCMomentum(Schedule):
    """NAG-C's momentum ``k / (k + r)`` at update ``k`` (Su, Boyd & Candes 2016).

    ``r = 3`` is Nesterov's method. Su, Boyd & Candes (section 5) study the family
    ``(k - 1)/(k + r - 1)`` in their indexing (``k/(k + r)`` here, whose ODE is
    ``X'' + (r/t) X' + grad f(X) = 0``): ``r >= 3`` keeps the ``O(1/k^2)`` rate.
    """

    tensor_ok = True

    def __init__(self, *, r: float = 3.0) -> None:
        self.r = _checks.real("r", r, 0, low_open=True)

    def _value(self, t: Any, ops: type) -> Any:
        return nag_c_momentum(t, self.r)


class NAGSCMomentum(Schedule):
    """NAG-SC's constant momentum ``(1 - sqrt(mu s)) / (1 + sqrt(mu s))``.

    ``mu`` is the objective's strong-convexity constant and ``s`` the step size
    (``s = 1/L`` gives ``(sqrt(kappa) - 1)/(sqrt(kappa) + 1)``, ``kappa = L/mu``);
    ``mu s <= 1`` keeps the momentum in ``[0, 1)``.
    """

    tensor_ok = True

    def __init__(self, *, mu: float, s: float) -> None:
        self.mu = _checks.real("mu", mu, 0, low_open=True)
        self.s = _checks.real("s", s, 0, low_open=True)
        if self.mu * self.s > 1:
            raise OptimlabError(
                f"invalid s: {s!r}; NAG-SC needs mu * s <= 1, so s <= 1/mu = {1 / self.mu:g}"
            )

    def _value(self, t: Any, ops: type) -> Any:
        return nag_sc_momentum(self.mu, self.s)
