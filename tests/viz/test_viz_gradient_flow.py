"""Gradient-flow diagnostics: the numbers against independent computations, the
vanishing-gradient signal, hook hygiene, and the figures."""

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from optimlab import optim, problems
from optimlab.errors import OptimlabError
from optimlab.nn.models import deep_mlp
from optimlab.train import fit
from optimlab.train.diagnostics import GradientFlow
from optimlab.viz import gradient_flow as plots


@pytest.fixture(scope="module")
def digits():
    return problems.build("digits_mlp", seed=0)


def _run(problem, model, steps, every, lr=0.05, seed=0, **kw):
    gf = GradientFlow(every=every, **kw)
    opt = optim.create("sgd", model.parameters(), lr=lr)
    fit(dataclasses.replace(problem, model=model), opt, steps=steps, callbacks=[gf], seed=seed)
    return gf


def test_vanishing_in_deep_sigmoid_net_with_small_init(digits):
    torch.manual_seed(0)
    model = deep_mlp(64, 10, depth=10, width=64, activation="sigmoid", init="normal_0.01")
    gf = _run(digits, model, steps=1, every=1)
    # each layer scales the backward signal by about sigmoid'(0) * 0.01 * sqrt(64) = 0.02
    assert 0 < gf.gradient_ratio() < 1e-10


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_he_relu_nets_keep_gradients_level(digits, seed):
    torch.manual_seed(seed)
    bn = deep_mlp(64, 10, depth=6, width=64, activation="relu", norm="batch", init="he_normal")
    assert 1 / 3 < _run(digits, bn, steps=1, every=1, seed=seed).gradient_ratio() < 3
    torch.manual_seed(seed)
    plain = deep_mlp(64, 10, depth=20, width=64, activation="relu", init="he_normal")
    assert 1 / 3 < _run(digits, plain, steps=1, every=1, seed=seed).gradient_ratio() < 3


def test_gradient_norms_and_update_ratios_match_the_sgd_step(digits):
    torch.manual_seed(0)
    lr = 0.1
    model = deep_mlp(64, 10, depth=4, width=16, activation="tanh")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    before = [m.weight.detach().clone() for m in linears]
    gf = _run(digits, model, steps=1, every=1, lr=lr)
    (rec,) = gf.records
    assert rec["step"] == 1
    for k, (m, w0) in enumerate(zip(linears, before, strict=True)):
        delta = m.weight.detach() - w0
        # plain SGD: W1 = W0 - lr * g
        assert rec["grad_norm"][k] == pytest.approx(float(delta.norm()) / lr, rel=1e-4)
        assert rec["update_ratio"][k] == pytest.approx(float(delta.norm() / w0.norm()), rel=1e-4)


def test_sampling_schedule_and_hooks_removed(digits):
    torch.manual_seed(0)
    model = deep_mlp(64, 10, depth=3, width=16, activation="relu")
    gf = _run(digits, model, steps=25, every=10)
    assert [r["step"] for r in gf.records] == [10, 20]
    for m in model.modules():
        assert not m._forward_hooks
    for p in model.parameters():
        assert not getattr(p, "_post_accumulate_grad_hooks", None)


def test_dead_relus_and_saturated_units(digits):
    torch.manual_seed(0)
    relu = deep_mlp(64, 10, depth=3, width=16, activation="relu")
    with torch.no_grad():
        relu[1][0].bias.fill_(-1e3)  # the first hidden layer never fires: all units dead
    gf = _run(digits, relu, steps=1, every=1, lr=0.0)
    dead = gf.records[0]["dead_fraction"]
    assert dead[0] == 1.0
    # the second layer sees only zeros, so exactly its units with bias <= 0 are dead
    want = float((relu[2][0].bias <= 0).float().mean())
    assert dead[1] == pytest.approx(want)
    assert 0 < want < 1
    tanh = deep_mlp(64, 10, depth=3, width=16, activation="tanh")
    with torch.no_grad():
        tanh[1][0].weight.mul_(1e3)  # pre-activations in the hundreds: tanh = +-1
    gf = _run(digits, tanh, steps=1, every=1, lr=0.0)
    sat = gf.records[0]["saturated_fraction"]
    # standardized digits have some all-zero pixels per sample, so not quite every unit
    assert sat[0] > 0.9
    x = digits.splits.train.x[:32]
    with torch.no_grad():
        h = tanh[1](tanh[0](x))
    assert sat[0] == pytest.approx(float((h.abs() >= 0.98).float().mean()), abs=0.1)


def test_writes_records_and_figures(digits, tmp_path):
    torch.manual_seed(0)
    model = deep_mlp(64, 10, depth=5, width=16, activation="sigmoid", init="glorot_normal")
    gf = _run(digits, model, steps=12, every=3, out_dir=tmp_path)
    import json

    data = json.loads((tmp_path / "gradient_flow.json").read_text())
    assert data["layers"] == gf.layer_names and len(data["records"]) == 4
    for name in ("gradient_flow_heatmap.png", "activation_histograms.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries


def _keep_figures(monkeypatch) -> list:
    """The figures the plots save, kept for inspection (they are saved as usual)."""
    figures = []
    save = plots._save_png

    def keep(fig, path):
        figures.append(fig)
        return save(fig, path)

    monkeypatch.setattr(plots, "_save_png", keep)
    return figures


def test_heatmap_leaves_blank_cells_blank(tmp_path, monkeypatch):
    """NaN and zero norms are drawn as the axes' background; the others take the
    colour of their value on a log scale spanning only the drawn cells. Read back
    from the PNG at each cell's centre."""
    from matplotlib import colormaps
    from matplotlib.image import imread

    figures = _keep_figures(monkeypatch)
    norms = [[1.0, float("nan")], [0.0, 1e-3]]  # rows: layers a, b; columns: steps 1, 2
    path = plots.heatmap(["a", "b"], [1, 2], norms, tmp_path / "h.png")
    (fig,) = figures
    ax = fig.axes[0]
    (image,) = ax.images
    assert (image.norm.vmin, image.norm.vmax) == (1e-3, 1.0)
    pixels = imread(path)[..., :3]
    height = pixels.shape[0]
    for row, values in enumerate(norms):
        for col, value in enumerate(values):
            x, y = ax.transData.transform((col, row))
            got = pixels[int(height - y), int(x)]
            if value > 0:  # drawn: magma at log10(value) over [log10(1e-3), log10(1)]
                want = colormaps["magma"]((np.log10(value) + 3) / 3)[:3]
            else:  # blank: the axes' white background
                want = (1.0, 1.0, 1.0)
            np.testing.assert_allclose(got, want, atol=2 / 255, err_msg=f"cell {row},{col}")


def test_histograms_count_only_finite_values(tmp_path, monkeypatch):
    """Each layer's panel counts its finite values, every one of them, and nothing
    else; a layer with none gets an empty panel."""
    figures = _keep_figures(monkeypatch)
    gen = torch.Generator().manual_seed(0)
    finite = torch.randn(50, generator=gen)
    blanks = torch.tensor([float("nan"), float("inf"), -float("inf")])
    samples = {
        "clean": finite,
        "holes": torch.cat([finite[:30], blanks]),
        "none": torch.full((4,), float("nan")),
    }
    plots.histograms(samples, tmp_path / "x.png")
    (fig,) = figures
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == list(samples)
    counts = [sum(bar.get_height() for bar in ax.patches) for ax in panels]
    assert counts == [50, 30, 0]


def test_validation():
    with pytest.raises(OptimlabError, match="every"):
        GradientFlow(every=0)
    with pytest.raises(OptimlabError, match="no sampled step"):
        GradientFlow().gradient_ratio()


def test_sample_first_adds_step_one(digits):
    torch.manual_seed(0)
    model = deep_mlp(64, 10, depth=3, width=16, activation="relu")
    gf = _run(digits, model, steps=12, every=5, sample_first=True)
    assert [r["step"] for r in gf.records] == [1, 5, 10]
