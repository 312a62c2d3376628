"""AdaRevision (delay-tolerant AdaGrad): without delays it is the registry's AdaGrad bit
for bit; with delays it follows a per-coordinate transcription of McMahan & Streeter's
update, and gradients computed on one read add up to one AdaGrad step on their sum."""

from __future__ import annotations

import math

import pytest
import torch

from optimlab import optim
from optimlab.errors import OptimlabError
from optimlab.parallel.delay_tolerant import AdaRevision


@pytest.mark.parametrize("hp", [{}, {"initial_accumulator_value": 0.1, "eps": 1e-6},
                                {"eps_root": 1e-8}])  # fmt: skip
def test_without_delay_it_is_adagrad_bit_for_bit(hp):
    torch.manual_seed(0)
    w0 = torch.randn(257, dtype=torch.float64)
    p = torch.nn.Parameter(w0.clone())
    adagrad = optim.create("adagrad", [p], lr=0.05, **hp)
    w = w0.clone()
    rule = AdaRevision.from_settings(w, 0.05, hp)
    for t in range(200):
        g = torch.randn(257, dtype=torch.float64)
        p.grad = g.clone()
        adagrad.step()
        rule.snapshot(t)
        rule.apply(w, g, base=t, version=t)
    assert torch.equal(w, p.detach())
    assert torch.equal(rule.z_max, adagrad.state[p]["sum"])


def transcription(alpha, x0, events):
    """The paper's AdaRevision on one coordinate, written out with floats: ``events``
    are ("read", worker) and ("update", worker, g); a worker's update uses the gradient
    sum it saw at its last read."""
    x, z, z_max, g_sum = x0, 0.0, 0.0, 0.0
    seen = {}
    for event in events:
        if event[0] == "read":
            seen[event[1]] = g_sum
            continue
        _, worker, g = event
        backlog = g_sum - seen[worker]
        eta_old = alpha / math.sqrt(z_max) if z_max else 0.0
        z = z + g * g + 2 * g * backlog
        z_max = max(z_max, z)
        eta = alpha / math.sqrt(z_max)
        x = x - eta * g + (eta_old - eta) * backlog
        g_sum = g_sum + g
    return x


def test_delayed_updates_follow_the_papers_equations():
    # three workers reading and updating out of step, on 5 coordinates at once
    gen = torch.Generator().manual_seed(1)
    n, alpha = 5, 0.3
    x0 = torch.randn(n, dtype=torch.float64, generator=gen)
    events, base, version = [], {}, 0
    w = x0.clone()
    rule = AdaRevision(w, lr=alpha, eps=0.0)
    schedule = [0, 1, 2, 0, 0, 1, 2, 2, 1, 0, 1, 2]  # whose turn: read if not pending, else update
    pending = set()
    delays = []
    for worker in schedule:
        if worker not in pending:
            events.append(("read", worker))
            rule.snapshot(version)
            base[worker] = version
            pending.add(worker)
        else:
            g = torch.randn(n, dtype=torch.float64, generator=gen) + 0.5
            delays.append(version - base[worker])
            events.append(("update", worker, g))
            rule.apply(w, g, base=base[worker], version=version)
            version += 1
            pending.discard(worker)
    for i in range(n):
        per_coordinate = [e if e[0] == "read" else (e[0], e[1], float(e[2][i])) for e in events]
        assert float(w[i]) == pytest.approx(transcription(alpha, float(x0[i]), per_coordinate),
                                            rel=1e-12, abs=1e-12)  # fmt: skip
    assert delays == [0, 1, 2, 2, 1, 2]  # the others' updates came in between


def test_gradients_from_one_read_make_one_adagrad_step_on_their_sum():
    # Two gradients computed on the same weights, applied one after the other: the
    # second sees the first as its backlog, and the revision makes the pair one AdaGrad
    # step on g1 + g2 (same signs, so that the learning rate only shrinks).
    g1 = torch.tensor([0.5, 2.0, 1e-3], dtype=torch.float64)
    g2 = torch.tensor([1.5, 0.1, 3.0], dtype=torch.float64)
    w = torch.zeros(3, dtype=torch.float64)
    rule = AdaRevision(w, lr=0.1, eps=0.0)
    rule.snapshot(0)
    rule.apply(w, g1, base=0, version=0)
    rule.apply(w, g2, base=0, version=1)
    total = g1 + g2
    assert torch.allclose(w, -0.1 * total / total.abs(), rtol=1e-14, atol=0)
    # AdaGrad applying them in turn, blind to the delay, steps further
    plain = -0.1 * (g1 / g1.abs() + g2 / (g1 * g1 + g2 * g2).sqrt())
    assert (plain.abs() > w.abs()).all()


def test_settings_other_than_adagrads_are_refused():
    from optimlab.run import RunConfig

    base = {"problem": "logreg_digits", "parallel": "delay_tolerant", "simulate_delay": "fixed:1"}
    with pytest.raises(OptimlabError, match="invalid optimizer 'sgd' for parallel delay_tolerant"):
        RunConfig(**base, optimizer="sgd")
    with pytest.raises(OptimlabError, match="invalid argument 'weight_decay' of adagrad"):
        RunConfig(**base, optimizer="adagrad", hp={"weight_decay": 0.1})
    RunConfig(**base, optimizer="adagrad", hp={"eps": 1e-8})
