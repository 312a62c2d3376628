"""FGSM and PGD against closed forms and their definitions: FGSM on logistic
regression, PGD's one unprojected step of size eps is FGSM, the eps-balls and the data
range hold, and robust accuracy never exceeds clean accuracy."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optimlab import problems
from optimlab.errors import OptimlabError
from optimlab.regularize.adversarial import (
    Attack,
    InputSpace,
    fgsm,
    image_space,
    pgd,
    random_in_ball,
    robust_accuracy,
)


def logistic(seed=0, d=6):
    gen = torch.Generator().manual_seed(seed)
    model = nn.Linear(d, 1).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(1, d, generator=gen, dtype=torch.float64))
        model.bias.fill_(0.3)
    x = torch.rand(40, d, generator=gen, dtype=torch.float64)
    t = torch.randint(0, 2, (40,), generator=gen).double()
    return model, x, t


def bce(out, t):
    return nn.functional.binary_cross_entropy_with_logits(out[:, 0], t)


def test_fgsm_on_logistic_regression_is_the_closed_form():
    model, x, t = logistic()
    w = model.weight.detach()[0]
    z = x @ w + model.bias.detach()
    dl_dz = torch.sigmoid(z) - t  # L = log(1 + exp(z)) - t z
    want = x + 0.07 * torch.sign(w[None, :] * dl_dz[:, None])
    assert torch.equal(fgsm(model, bce, x, t, 0.07), want)
    assert torch.equal(fgsm(model, bce, x, t, 0.07, bounds=(0.0, 1.0)), want.clamp(0.0, 1.0))
    # L2: the step is eps along w * dL/dz, normalized per example
    g = w[None, :] * dl_dz[:, None]
    want_l2 = x + 0.07 * g / g.norm(dim=1, keepdim=True)
    torch.testing.assert_close(fgsm(model, bce, x, t, 0.07, norm="l2"), want_l2, rtol=1e-14, atol=0)
    assert model.weight.grad is None  # only the input's gradient was taken


def mlp_and_batch(seed=1):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3)).double()
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(25, 3, 2, 2, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (25,), generator=gen)
    return model, nn.functional.cross_entropy, x, y


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("bounds", [None, (0.0, 1.0)])
def test_one_unprojected_pgd_step_of_size_eps_from_x_is_fgsm(norm, bounds):
    model, loss, x, y = mlp_and_batch()
    eps = 0.05
    got = pgd(model, loss, x, y, eps, norm=norm, steps=1, step_size=eps, random_start=False,
              projection=False, bounds=bounds)  # fmt: skip
    assert torch.equal(got, fgsm(model, loss, x, y, eps, norm=norm, bounds=bounds))
    # and it is an attack: the loss went up
    with torch.no_grad():
        assert float(loss(model(got), y)) > float(loss(model(x), y))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_stays_in_the_ball_and_the_data_range(norm):
    model, loss, x, y = mlp_and_batch(seed=2)
    eps = 0.3
    gen = torch.Generator().manual_seed(3)
    adv = pgd(model, loss, x, y, eps, norm=norm, steps=7, step_size=0.25, bounds=(0.0, 1.0),
              generator=gen)  # fmt: skip
    delta = (adv - x).flatten(1)
    size = delta.abs().max(dim=1).values if norm == "linf" else delta.norm(dim=1)
    assert float(size.max()) <= eps * (1 + 1e-12)
    assert float(size.max()) > 0.9 * eps  # steps of 0.25 push most examples to the edge
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    # without the projection the same steps leave the ball
    free = pgd(model, loss, x, y, eps, norm=norm, steps=7, step_size=0.25, projection=False,
               generator=torch.Generator().manual_seed(3))  # fmt: skip
    d = (free - x).flatten(1)
    assert float((d.abs().max(dim=1).values if norm == "linf" else d.norm(dim=1)).max()) > eps


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_random_start_is_inside_the_ball_and_fills_it(norm):
    x = torch.zeros(4000, 2, dtype=torch.float64)
    draw = random_in_ball(x, 0.5, norm, torch.Generator().manual_seed(0))
    size = draw.abs().max(dim=1).values if norm == "linf" else draw.norm(dim=1)
    assert float(size.max()) <= 0.5
    # uniform in the ball: the inner half radius holds (1/2)^2 of a 2-D ball's mass
    assert float((size <= 0.25).double().mean()) == pytest.approx(0.25, abs=0.03)


def trained_classifier():
    """A small MLP fitted to three Gaussian blobs (float64, full batch)."""
    gen = torch.Generator().manual_seed(0)
    centers = torch.tensor([[0.0, 0.0], [2.0, 0.5], [0.5, 2.0]], dtype=torch.float64)
    y = torch.arange(3).repeat_interleave(100)
    x = centers[y] + 0.6 * torch.randn(300, 2, generator=gen, dtype=torch.float64)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 3)).double()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model, x, y


def test_robust_accuracy_never_exceeds_clean_accuracy():
    model, x, y = trained_classifier()
    model.train()
    results = {}
    for eps in (1e-9, 0.1, 0.3, 0.6, 1.2):
        for norm in ("linf", "l2"):
            attack = Attack("pgd", eps, norm=norm, steps=10)
            r = robust_accuracy(model, nn.functional.cross_entropy, x, y, attack, batch_size=64,
                                generator=torch.Generator().manual_seed(1))  # fmt: skip
            assert r["robust_accuracy"] <= r["clean_accuracy"]
            results[eps, norm] = r
    clean = results[0.1, "linf"]["clean_accuracy"]
    assert clean > 0.85  # the model did learn
    assert results[1e-9, "linf"]["robust_accuracy"] == clean  # no room to move
    assert results[0.6, "linf"]["robust_accuracy"] < clean - 0.2  # the attack bites
    assert results[1.2, "l2"]["robust_loss"] > results[0.1, "l2"]["robust_loss"]
    assert model.training  # the mode is restored
    # even an "attack" that helps (it ascends the negative loss) cannot lift it above
    # clean accuracy: an example counts only if it is also right before the attack
    helper = Attack("pgd", 1.2, steps=10)
    r = robust_accuracy(model, lambda out, t: -nn.functional.cross_entropy(out, t), x, y, helper,
                        generator=torch.Generator().manual_seed(1))  # fmt: skip
    assert r["robust_accuracy"] <= r["clean_accuracy"]
    helped = pgd(model, lambda out, t: -nn.functional.cross_entropy(out, t), x, y, 1.2,
                 generator=torch.Generator().manual_seed(1))  # fmt: skip
    with torch.no_grad():
        assert float((model(helped).argmax(1) == y).double().mean()) > r["clean_accuracy"]


def test_image_space_measures_epsilon_in_pixels_and_clamps_to_their_range():
    problem = problems.build("digits_mlp", seed=0)
    space = image_space(problem.splits)
    assert space is not None and space.bounds == (0.0, 1.0)
    x, y = problem.splits.val.x[:64], problem.splits.val.y[:64]
    attack = Attack("pgd", 0.1, steps=3)
    adv = space.attack(attack, problem.model, problem.loss_fn, x, y, torch.Generator())
    raw, raw_adv = space.to_raw(x), space.to_raw(adv)
    assert float((raw_adv - raw).abs().max()) <= 0.1 + 1e-6  # pixels move by <= eps
    assert float((raw_adv - raw).abs().max()) > 0.09
    assert float(raw_adv.min()) >= -1e-6 and float(raw_adv.max()) <= 1 + 1e-6
    # the standardized inputs move by eps / std, more than eps where std < 1
    assert float((adv - x).abs().max()) > 0.15
    assert image_space(problems.build("linreg", seed=0).splits) is None  # no range


def test_bad_settings_are_one_line_errors():
    with pytest.raises(OptimlabError, match=r"invalid epsilon: -0.1; valid: a finite number > 0"):
        Attack("fgsm", -0.1)
    with pytest.raises(OptimlabError, match="valid attacks: fgsm, pgd"):
        Attack("cw", 0.1)
    with pytest.raises(OptimlabError, match="valid norms: linf, l2"):
        Attack("pgd", 0.1, norm="l1")
    with pytest.raises(OptimlabError, match="invalid steps"):
        Attack("pgd", 0.1, steps=0)
    with pytest.raises(OptimlabError, match="both mean and std"):
        InputSpace(mean=torch.zeros(1))
