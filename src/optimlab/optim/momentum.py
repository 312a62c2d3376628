"""Momentum: an exponentially weighted trace of past updates (Polyak 1964; Qian 1999).

``Trace`` keeps ``b <- mu*b + (1 - dampening)*u`` (the first step sets ``b = u``, as
torch does) and returns ``b``, or ``u + mu*b`` with Nesterov. Where it sits in a
chain decides the convention:

* torch's form, ``Trace`` then ``ScaleByLearningRate``:
  ``b <- mu*b + g;  w <- w - lr*b``.
* the lectures' velocity form, ``ScaleByLearningRate`` then ``Trace``:
  ``v <- mu*v - lr*g;  w <- w + v``.

The two agree while the learning rate is constant and differ once it changes:
in the velocity form a new learning rate only scales new gradients.

Nesterov (Nesterov 1983; Sutskever et al. 2013) evaluates the gradient at the
look-ahead point ``w + mu*v``. Written in the shifted variable ``w' = w + mu*v``
the update needs only the gradient at the current parameters:
``v <- mu*v - lr*g(w');  w' <- w' + mu*v - lr*g(w')``, which is ``u + mu*b`` above.
So the parameters of a Nesterov optimizer are the look-ahead point ``w + mu*v``.
"""

from __future__ import annotations

from torch import Tensor

from optimlab.errors import OptimlabError, check_range
from optimlab.optim.transform import Hyper, Transform


class Trace(Transform):
    """Momentum: an exponentially weighted trace of the updates.

    .. code-block:: text

        b <- mu * b + (1 - dampening) * u        (b <- u at the first update)
        u <- b                                   (u <- u + mu * b with nesterov)

    Hyperparameters:
        momentum: ``mu`` in [0, 1); 0 (the default) turns it off, keeping no buffer.
        dampening: in [0, 1] (default 0).
        nesterov: use the look-ahead form; needs ``mu`` > 0 and no dampening.

    State:
        momentum_buffer: ``b``.

    Before ``ScaleByLearningRate`` this is torch's form, after it the lectures'
    velocity form (see the module docstring); the first update sets ``b = u``
    undampened, as torch.optim.SGD does.

    References:
        Polyak 1964; Sutskever, Martens, Dahl & Hinton 2013, "On the importance of
        initialization and momentum in deep learning"; torch.optim.SGD.
    """

    defaults = {"momentum": 0.0, "dampening": 0.0, "nesterov": False}
    state_keys = ("momentum_buffer",)

    def validate(self, hp: Hyper) -> None:
        check_range("momentum", float(hp["momentum"]), 0.0, 1.0, high_open=True)
        dampening = hp.get("dampening", 0.0)
        check_range("dampening", float(dampening), 0.0, 1.0)
        if hp.get("nesterov", False) and (hp["momentum"] <= 0 or dampening != 0):
            raise OptimlabError(
                "invalid nesterov=True: Nesterov momentum needs momentum > 0 and dampening = 0"
            )

    def update_one(self, u: Tensor, p: Tensor, state: dict, hp: Hyper) -> Tensor:
        mu = hp["momentum"]
        if mu == 0:
            return u
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = u.detach().clone()
        else:
            buf.mul_(mu).add_(u, alpha=1 - hp.get("dampening", 0.0))
        return u.add(buf, alpha=mu) if hp.get("nesterov", False) else buf
