"""The Wilson et al. 2017 toy figure: the PNG and the numbers behind it."""

import pytest
import torch

from optimlab.errors import OptimlabError
from optimlab.problems import build
from optimlab.viz import wilson

LRS = {"sgd": 0.1, "adagrad": 0.1, "rmsprop": 0.1, "adam": 0.1}


def test_figure_is_png_and_gd_alone_generalizes(tmp_path) -> None:
    torch.set_num_threads(1)
    path, curves = wilson.write(tmp_path / "wilson.png", steps=150, lrs=LRS)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    by_name = {c.optimizer: c for c in curves}
    assert set(by_name) == {"sgd", "adagrad", "rmsprop", "adam"}
    assert all(len(c.train_loss) == len(c.test_error) == 151 for c in curves)
    gd = by_name.pop("sgd")
    # Independent reference: the adaptive methods label every test point with the
    # training majority, so their error is the test set's minority share.
    problem = build("wilson_separable", seed=0)
    majority = int(problem.splits.train.y.float().mean() > 0.5)
    minority_share = (problem.splits.test.y != majority).float().mean().item()
    assert gd.test_error[-1] == 0.0
    for curve in by_name.values():
        assert curve.test_error[-1] == pytest.approx(minority_share)
        assert gd.test_error[-1] < curve.test_error[-1]
        assert curve.train_loss[-1] < 0.5 * curve.train_loss[0]  # they do fit the data


def test_grid_picks_lowest_final_training_loss() -> None:
    grids = {"sgd": (0.01, 1.0), "adagrad": (0.1,), "rmsprop": (0.1,), "adam": (0.1,)}
    picked = {c.optimizer: c for c in wilson.compute(steps=20, grids=grids)}
    other = wilson.compute(steps=20, lrs={"sgd": 0.01, "adagrad": 0.1, "rmsprop": 0.1, "adam": 0.1})
    assert picked["sgd"].lr == 1.0  # a larger stable GD step fits faster on this data
    assert picked["sgd"].train_loss[-1] < other[0].train_loss[-1]


def test_bad_input_names_the_argument(tmp_path) -> None:
    with pytest.raises(OptimlabError, match="steps"):
        wilson.compute(steps=0)
    with pytest.raises(OptimlabError, match="lrs"):
        wilson.compute(steps=1, lrs={"sgd": 0.1})
    with pytest.raises(OptimlabError, match="adam"):
        wilson.compute(steps=1, lrs={**LRS, "adam": -1.0})
    with pytest.raises(OptimlabError, match="--out"):
        wilson.write(tmp_path / "w.txt", steps=1, lrs=LRS)
