"""Natural gradient with the full and the diagonal Fisher: exact facts against Newton
and against optimlab.curvature's independent Fisher matrices, and bad input."""

from __future__ import annotations

import pytest
import torch
from fisher_problems import (
    closure_of,
    example_gradients,
    flat,
    seeded,
    softmax_data,
    tanh_mlp,
)
from second_order_problems import resumed_against_straight
from torch import nn

import optimlab.curvature as cv
import optimlab.optim as oo
from optimlab.errors import OptimlabError

TOL = dict(rtol=1e-10, atol=1e-12)


def one_step(name, model, x, y, loss_fn=nn.functional.cross_entropy, **hp):
    opt = oo.create(name, model.parameters(), **hp)
    opt.step(closure_of(opt, model, x, y, loss_fn))
    return flat(model), opt


def test_true_fisher_step_is_the_newton_step_for_softmax_regression():
    """For softmax regression the Hessian of the mean cross-entropy equals the true
    Fisher (a linear model, a canonical link), so with the same damping the natural
    gradient step with lr=1 is the Newton step. The empirical Fisher is another
    matrix: its step differs, here by more than a fifth of the step's length."""
    x, y = softmax_data()
    start = seeded(nn.Linear(5, 3).double(), 1)
    w0 = flat(start)
    damping = 1e-4  # softmax's shift invariance makes F and H singular; both get it
    kw = dict(lr=1.0, damping=damping)
    natural, _ = one_step("natural_gradient", seeded(nn.Linear(5, 3).double(), 1), x, y, **kw)
    newton, _ = one_step("newton", seeded(nn.Linear(5, 3).double(), 1), x, y,
                         line_search_fn=None, **kw)  # fmt: skip
    empirical, _ = one_step("natural_gradient", seeded(nn.Linear(5, 3).double(), 1), x, y,
                            fisher="empirical", **kw)  # fmt: skip
    step = newton - w0
    assert float(step.norm()) > 0.1  # a real step, not a trivial agreement
    assert float((natural - newton).abs().max()) < 1e-8
    assert float((empirical - newton).norm()) > 0.2 * float(step.norm())


def test_true_fisher_step_is_the_newton_step_for_linear_least_squares():
    """The Gaussian likelihood (mse): F = H for a linear model, too."""
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(30, 4, generator=gen, dtype=torch.float64)
    y = torch.randn(30, 2, generator=gen, dtype=torch.float64)
    mse = nn.functional.mse_loss
    kw = dict(lr=1.0, damping=1e-6)
    natural, _ = one_step("natural_gradient", seeded(nn.Linear(4, 2).double(), 2), x, y, mse,
                          likelihood="mse", **kw)  # fmt: skip
    newton, _ = one_step("newton", seeded(nn.Linear(4, 2).double(), 2), x, y, mse,
                         line_search_fn=None, **kw)  # fmt: skip
    assert float((natural - newton).abs().max()) < 1e-8


@pytest.mark.parametrize("kind", ["true", "empirical"])
def test_the_fisher_from_the_closure_is_curvatures_fisher(kind):
    """On an MLP with an unused parameter, in float64: the matrix the optimizer builds
    from the closure's pass (outputs and their gradient, no targets) equals
    optimlab.curvature's, built from the loss and the targets; the unused parameter's
    rows are zero and it does not move."""
    x, y = softmax_data(n=12, dim=5, classes=3, seed=3)
    model = tanh_mlp(seed=5)
    opt = oo.NaturalGradient(model.parameters(), fisher=kind, damping=1e-3)
    closure = closure_of(opt, model, x, y)
    with opt._recorder.recording():
        closure()
    f = opt.fisher_matrix(opt._model_pass(), kind, "cross_entropy")
    obj = cv.ModelObjective(model, nn.functional.cross_entropy, x, y)
    expected = cv.fisher(obj) if kind == "true" else cv.empirical_fisher(obj)
    names = [n for n, _ in model.named_parameters()]
    assert names[0] == "unused"
    torch.testing.assert_close(f, expected, **TOL)
    assert torch.count_nonzero(f[:3]) == 0 and float(f.abs().max()) > 1e-3
    before = flat(model)
    opt.step(closure)
    after = flat(model)
    assert torch.equal(after[:3], before[:3]) and not torch.equal(after[3:], before[3:])


def test_chunks_of_examples_add_up_to_the_whole_fisher(monkeypatch):
    """The Fisher is built a chunk of examples at a time; one example per chunk gives
    the same matrix."""
    import optimlab.optim.natural_gradient as ng

    x, y = softmax_data(n=7, dim=5, classes=3, seed=8)
    model = tanh_mlp(seed=6)
    opt = oo.NaturalGradient(model.parameters())
    with opt._recorder.recording():
        closure_of(opt, model, x, y)()
    mp = opt._model_pass()
    whole = {k: opt.fisher_matrix(mp, k, "cross_entropy") for k in ("true", "empirical")}
    monkeypatch.setattr(ng, "CHUNK_ENTRIES", 1)
    assert len(list(mp.chunks(10))) == 7
    for kind, f in whole.items():
        torch.testing.assert_close(opt.fisher_matrix(mp, kind, "cross_entropy"), f, **TOL)


def test_diagonal_fisher_is_the_diagonal_of_the_empirical_fisher():
    x, y = softmax_data(n=15, dim=5, classes=3, seed=9)
    model = tanh_mlp(seed=7)
    obj = cv.ModelObjective(model, nn.functional.cross_entropy, x, y)
    expected = torch.diagonal(cv.empirical_fisher(obj)).clone()
    g = torch.autograd.grad(obj.loss(dict(model.named_parameters())), list(model.parameters()),
                            allow_unused=True)  # fmt: skip
    g = torch.cat([torch.zeros(3, dtype=torch.float64)] + [t.reshape(-1) for t in g[1:]])
    before = flat(model)
    _, opt = one_step("natural_gradient_diag", model, x, y, lr=0.3, damping=0.05)
    diagonal = opt.state[next(model.parameters())]["fisher_diagonal"]
    torch.testing.assert_close(diagonal, expected, **TOL)
    assert float(diagonal[3:].min()) >= 0 and float(diagonal.max()) > 1e-3
    torch.testing.assert_close(flat(model), before - 0.3 * g / (expected + 0.05), **TOL)


def test_diagonal_running_average_starts_as_the_plain_mean():
    """b = min(decay, 1 - 1/k): with decay 0.6, the mean of the first two batches'
    diagonals (b = 1/2), then the exponential average (b = 0.6 < 2/3)."""
    x, y = softmax_data(n=24, dim=5, classes=3, seed=10)
    batches = [(x[:8], y[:8]), (x[8:16], y[8:16]), (x[16:], y[16:])]
    model = tanh_mlp(seed=8)
    params = list(model.parameters())
    opt = oo.DiagonalNaturalGradient(params, lr=0.1, decay=0.6)
    seen = []
    for xb, yb in batches:
        rows = example_gradients(model, xb, yb, nn.functional.cross_entropy, params)
        seen.append(torch.stack(rows).pow(2).mean(0))
        opt.step(closure_of(opt, model, xb, yb))
    expected = 0.6 * (seen[0] + seen[1]) / 2 + 0.4 * seen[2]
    torch.testing.assert_close(opt.state[params[0]]["fisher_diagonal"], expected, **TOL)
    assert opt.state[params[0]]["fisher_updates"] == 3


@pytest.mark.parametrize("name", ["natural_gradient", "natural_gradient_diag"])
def test_state_dict_round_trip_continues_identically(name):
    x, y = softmax_data(n=20, dim=5, classes=3, seed=11)

    def fresh():
        model = tanh_mlp(seed=9)
        params = list(model.parameters())
        opt = oo.create(name, params, lr=0.5, **({"decay": 0.8} if "diag" in name else {}))
        return params, opt, closure_of(opt, model, x, y)

    straight, counts, params, opt = resumed_against_straight(fresh, steps=6)
    assert torch.equal(torch.cat([p.detach().reshape(-1) for p in params]), straight)
    assert opt.counts == counts


def test_refuses_a_model_above_the_limit_naming_it_and_the_alternatives():
    big = nn.Linear(100, 60)  # 6060 parameters
    message = r"6060 parameters.*max_params=5000.*natural_gradient_diag or kfac.*use lbfgs"
    with pytest.raises(OptimlabError, match=message):
        oo.create("natural_gradient", big.parameters())
    oo.create("natural_gradient", big.parameters(), max_params=10_000)
    oo.create("natural_gradient_diag", big.parameters())  # no limit


@pytest.mark.parametrize("name", ["natural_gradient", "natural_gradient_diag"])
def test_models_that_mix_or_randomize_examples_are_refused_in_training_mode(name):
    x, y = softmax_data(n=8, dim=5, seed=12)
    for extra in (nn.BatchNorm1d(4), nn.Dropout(0.5)):
        model = nn.Sequential(nn.Linear(5, 4), extra, nn.Tanh(), nn.Linear(4, 3)).double()
        opt = oo.create(name, model.parameters())
        kind = type(extra).__name__
        with pytest.raises(OptimlabError, match=rf"{kind} '1' in training mode.*model.eval"):
            opt.step(closure_of(opt, model, x, y))
        model.eval()  # then each example is on its own
        opt.step(closure_of(opt, model, x, y))


@pytest.mark.parametrize("name", ["natural_gradient", "natural_gradient_diag"])
def test_closure_must_run_the_model_once_and_give_a_finite_loss(name):
    x, y = softmax_data(n=8, dim=5, seed=13)
    model = tanh_mlp(seed=1)
    opt = oo.create(name, model.parameters())
    with pytest.raises(OptimlabError, match="needs a closure"):
        opt.step()
    nan = closure_of(
        opt, model, x, y, lambda out, t: nn.functional.cross_entropy(out, t) * torch.nan
    )
    with pytest.raises(OptimlabError, match=r"non-finite loss \(nan\)"):
        opt.step(nan)
    twice = closure_of(opt, model, x, y, lambda out, t: nn.functional.cross_entropy(
        out + model(x), t))  # fmt: skip
    with pytest.raises(OptimlabError, match="called the model 2 times"):
        opt.step(twice)
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    raw = oo.create(name, [w])
    with pytest.raises(OptimlabError, match="needs the loss computed by an nn.Module"):
        raw.step(closure_of(raw, lambda x: x @ torch.ones(5, 3, dtype=torch.float64) + w, x, y))


def test_the_likelihood_must_match_the_loss():
    """The default likelihood is cross_entropy; an mse loss's gradient does not sum to
    zero over the outputs, which the true Fisher notices."""
    gen = torch.Generator().manual_seed(14)
    x = torch.randn(10, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(10, 3, generator=gen, dtype=torch.float64)
    model = tanh_mlp(seed=2)
    opt = oo.NaturalGradient(model.parameters())
    mse = nn.functional.mse_loss
    with pytest.raises(OptimlabError, match=r"not the cross_entropy.*set likelihood=.*"
                                            r"fisher='empirical'"):  # fmt: skip
        opt.step(closure_of(opt, model, x, y, mse))
    oo.NaturalGradient(model.parameters(), likelihood="mse").step(closure_of(opt, model, x, y, mse))
    oo.NaturalGradient(model.parameters(), fisher="empirical").step(
        closure_of(opt, model, x, y, mse)
    )


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda p: oo.NaturalGradient(p, lr=0.0), r"invalid lr: 0.0; valid range is \(0, inf\)"),
        (lambda p: oo.NaturalGradient(p, damping=-1.0), r"invalid damping: -1.0"),
        (lambda p: oo.NaturalGradient(p, fisher="exact"),
         r"invalid fisher: 'exact'; valid: 'true', 'empirical'"),
        (lambda p: oo.NaturalGradient(p, likelihood="hinge"),
         r"invalid likelihood: 'hinge'; valid: 'cross_entropy', 'logistic', 'mse'"),
        (lambda p: oo.NaturalGradient(p, max_params=0), r"invalid max_params: 0"),
        (lambda p: oo.DiagonalNaturalGradient(p, damping=0.0), r"invalid damping: 0.0"),
        (lambda p: oo.DiagonalNaturalGradient(p, decay=1.0), r"invalid decay: 1.0"),
    ],
)  # fmt: skip
def test_every_argument_is_validated_with_a_message_naming_it(build, match):
    with pytest.raises(OptimlabError, match=match):
        build(nn.Linear(2, 2).parameters())
