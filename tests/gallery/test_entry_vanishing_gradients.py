"""The verdict rule of the vanishing_gradients entry on fixed numbers: numbers that show
the claim are "reproduced", numbers that contradict it "not reproduced"."""

from __future__ import annotations

import pytest

from optimlab.gallery.entries import vanishing_gradients as vg
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED, Context


def config(ratio: float, first: float, last: float, accuracy: float) -> dict:
    return {"status": "completed", "grad_norms_init": [ratio, 1.0], "grad_norms_end": [1.0, 1.0],
            "ratio_init": ratio, "ratio_end": 1.0, "weight_change": [first, 0.3, last],
            "val_accuracy": accuracy}  # fmt: skip


def numbers() -> dict:
    return {
        "sigmoid": config(1.8e-12, 0.0, 0.17, 0.097),
        "tanh": config(2.1, 1.9, 0.52, 0.28),
        "relu": config(0.40, 0.31, 0.51, 0.17),
        "sigmoid + batch norm": config(0.45, 0.36, 1.1, 0.875),
    }


def test_vanishing_reproduced_on_the_measured_picture():
    verdict = vg.rule(numbers())
    assert verdict.status == REPRODUCED
    assert "1.8e-12 with sigmoid units" in verdict.reason


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        ("sigmoid.ratio_init", 0.5, "does not vanish"),
        ("relu.ratio_init", 1e-11, "does not vanish"),
        ("sigmoid.ratio_init", None, "does not vanish"),
        ("sigmoid.weight_change", [0.1, 0.1, 0.17], "moved the sigmoid net's first layer"),
        ("relu.weight_change", [1e-4, 0.1, 0.5], "hardly moved the ReLU net's first layer"),
        ("relu.weight_change", None, "hardly moved the ReLU net's first layer"),
        ("sigmoid + batch norm.ratio_init", 1e-12, "does not lift"),
        ("sigmoid + batch norm.val_accuracy", 0.09, "does not train the sigmoid net better"),
    ],
)
def test_vanishing_not_reproduced_when_numbers_contradict(path, value, words):
    data = numbers()
    label, key = path.rsplit(".", 1)
    data[label][key] = value
    verdict = vg.rule(data)
    assert verdict.status == NOT_REPRODUCED
    assert words in verdict.reason


def test_a_small_net_measures_every_configuration(tmp_path):
    budget = {"depth": 8, "width": 16, "lr": 0.05, "seed": 0, "epochs": 1}
    work = Context(work=str(tmp_path))
    sigmoid = vg.run_config("sigmoid", budget, work)
    relu = vg.run_config("relu", budget, Context())
    for r in (sigmoid, relu):
        assert len(r["grad_norms_init"]) == len(r["weight_change"]) == 8
        assert r["ratio_init"] == pytest.approx(r["grad_norms_init"][0] / r["grad_norms_init"][-1])
    assert sigmoid["ratio_init"] < relu["ratio_init"] / 10
    # The sigmoid run checkpointed in the work folder; a rerun resumes it to the same numbers
    # (the gradients at initialization come from the fresh model, not the checkpoint).
    assert [p.name[:4] for p in tmp_path.iterdir()] == ["run-"]
    assert vg.run_config("sigmoid", budget, work) == sigmoid


def test_the_run_trains_the_network_the_entry_describes():
    """The registered model the run builds from ``model_args`` has the weights of the net
    built by hand from the same seed: deep_mlp, then the configuration's initializer."""
    import torch

    from optimlab.nn import init as nn_init
    from optimlab.nn.models import deep_mlp
    from optimlab.run import RunConfig, build_run

    budget = {"depth": 6, "width": 16, "lr": 0.05, "seed": 3, "epochs": 1}
    for label, (activation, norm, init) in vg.CONFIGS.items():
        config = RunConfig(problem="digits_mlp", model="deep_mlp", optimizer="sgd",
                           model_args=vg.model_args(label, budget), seed=3)  # fmt: skip
        built = build_run(config).problem.model
        torch.manual_seed(3)
        by_hand = nn_init.apply(deep_mlp(64, 10, 6, 16, activation, norm), init)
        assert str(built) == str(by_hand)
        for a, b in zip(built.state_dict().values(), by_hand.state_dict().values(), strict=True):
            assert torch.equal(a, b)


def test_the_configuration_table():
    headers, rows = vg.table(numbers())
    assert rows[0] == ["sigmoid", "1.8e-12", "1", "0 / 0.17", "0.097"]
