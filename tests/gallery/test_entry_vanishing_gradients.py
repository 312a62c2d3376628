"""The verdict rule of the vanishing_gradients entry on fixed numbers: numbers that show
the claim in every seed are "reproduced", numbers that contradict it in one seed "not
reproduced"."""

from __future__ import annotations

import copy

import pytest

from optimlab.gallery.entries import vanishing_gradients as vg
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED, Context


def config(ratio: float | None, first: float, last: float, accuracy: float, grad1: float = 0.5):
    return {"status": "completed", "grad_norms_init": [grad1, 1.0], "grad_norms_end": [1.0, 1.0],
            "ratio_init": ratio, "ratio_end": 1.0, "weight_change": [first, 0.3, last],
            "val_accuracy": accuracy}  # fmt: skip


def seed_numbers() -> dict:
    """One seed of the quick tier's measured picture (rounded)."""
    return {
        "sigmoid": config(1.8e-12, 0.0, 0.17, 0.097, grad1=2.6e-12),
        "tanh": config(2.1, 1.9, 0.52, 0.28),
        "relu": config(0.40, 0.31, 0.51, 0.17),
        "leaky relu": config(0.40, 0.6, 0.51, 0.21),
        "elu": config(0.45, 0.5, 0.5, 0.2),
        "tanh, N(0, 0.01) init": config(1.6, 0.0, 0.025, 0.104, grad1=2.4e-21),
        "relu, N(0, 0.01) init": config(None, 0.0, 0.0074, 0.104, grad1=0.0),
        "sigmoid + batch norm": config(0.45, 0.36, 1.1, 0.875),
        "sigmoid + residual": config(0.0086, 1.3, 5.2, 0.83),
    }


def numbers(seeds: int = 3) -> dict:
    return {"depth": 20, "seeds": list(range(seeds)),
            "runs": {k: [copy.deepcopy(v) for _ in range(seeds)]
                     for k, v in seed_numbers().items()}}  # fmt: skip


def test_vanishing_reproduced_on_the_measured_picture():
    data = numbers()
    data["runs"]["sigmoid"][1]["ratio_init"] = 2.2e-12
    data["runs"]["sigmoid"][2]["ratio_init"] = 2.0e-12
    verdict = vg.rule(data)
    assert verdict.status == REPRODUCED
    assert "in each of 3 seeds" in verdict.reason
    assert "2e-12 (1.8e-12 to 2.2e-12) with sigmoid units" in verdict.reason
    assert "sigmoid + residual: ratio 0.0086 (0.0086 to 0.0086), accuracy 0.83 ± 0" in (
        verdict.reason
    )


@pytest.mark.parametrize(
    ("label", "key", "value", "words"),
    [
        ("sigmoid", "ratio_init", 0.5, "does not vanish"),
        ("relu", "ratio_init", 1e-11, "does not vanish"),
        ("elu", "ratio_init", 1e-11, "does not vanish"),
        ("leaky relu", "ratio_init", None, "does not vanish"),
        ("sigmoid", "ratio_init", None, "does not vanish"),
        ("sigmoid", "weight_change", [0.1, 0.1, 0.17], "moved the sigmoid net's first layer"),
        ("relu", "weight_change", [1e-4, 0.1, 0.5], "hardly moved the ReLU net's first layer"),
        ("relu", "weight_change", None, "hardly moved the ReLU net's first layer"),
        ("elu", "status", "diverged", "the elu net diverged"),
        ("tanh, N(0, 0.01) init", "grad_norms_init", [0.4, 1.0],
         "tanh net's initialization does not lift the first layer's gradient"),
        ("relu, N(0, 0.01) init", "weight_change", [0.3, 0.1, 0.5],
         "relu net's initialization does not let training move the first layer"),
        ("sigmoid + batch norm", "ratio_init", 1e-12, "batch norm does not lift"),
        ("sigmoid + batch norm", "val_accuracy", 0.09, "batch norm does not train"),
        ("sigmoid + residual", "ratio_init", 1e-11, "residual does not lift"),
        ("sigmoid + residual", "val_accuracy", 0.097, "residual does not train"),
    ],
)  # fmt: skip
def test_vanishing_not_reproduced_when_one_seed_contradicts(label, key, value, words):
    data = numbers()
    data["runs"][label][2][key] = value
    verdict = vg.rule(data)
    assert verdict.status == NOT_REPRODUCED
    assert "seed 2: " in verdict.reason and words in verdict.reason
    assert "seed 0" not in verdict.reason


def test_a_small_net_measures_every_configuration(tmp_path):
    budget = {"depth": 8, "width": 16, "lr": 0.05, "seeds": 2, "epochs": 1}
    work = Context(work=str(tmp_path))
    sigmoid = vg.run_config("sigmoid", budget, work, 0)
    relu = vg.run_config("relu", budget, Context(), 0)
    residual = vg.run_config("sigmoid + residual", budget, Context(), 0)
    for r in (sigmoid, relu, residual):
        assert len(r["grad_norms_init"]) == len(r["weight_change"]) == 8
        assert r["ratio_init"] == pytest.approx(r["grad_norms_init"][0] / r["grad_norms_init"][-1])
    assert sigmoid["ratio_init"] < relu["ratio_init"] / 10
    assert residual["grad_norms_init"][0] > 10 * sigmoid["grad_norms_init"][0]
    # Another seed is another run with other numbers.
    assert (
        vg.run_config("sigmoid", budget, Context(), 1)["grad_norms_init"]
        != (sigmoid["grad_norms_init"])
    )
    # The sigmoid run checkpointed in the work folder; a rerun resumes it to the same numbers
    # (the gradients at initialization come from the fresh model, not the checkpoint).
    assert [p.name[:4] for p in tmp_path.iterdir()] == ["run-"]
    assert vg.run_config("sigmoid", budget, work, 0) == sigmoid


def test_the_run_trains_the_network_the_entry_describes():
    """The registered model the run builds from ``model_args`` has the weights of the net
    built by hand from the same seed: deep_mlp, then the configuration's initializer."""
    import torch

    from optimlab.nn import init as nn_init
    from optimlab.nn.models import deep_mlp
    from optimlab.run import RunConfig, build_run

    budget = {"depth": 6, "width": 16, "lr": 0.05, "seeds": 1, "epochs": 1}
    for label, (activation, norm, init, residual) in vg.CONFIGS.items():
        config = RunConfig(problem="digits_mlp", model="deep_mlp", optimizer="sgd",
                           model_args=vg.model_args(label, budget), seed=3)  # fmt: skip
        built = build_run(config).problem.model
        torch.manual_seed(3)
        hand = deep_mlp(64, 10, 6, 16, activation, norm, residual=residual)
        by_hand = nn_init.apply(hand, init)
        assert str(built) == str(by_hand)
        for a, b in zip(built.state_dict().values(), by_hand.state_dict().values(), strict=True):
            assert torch.equal(a, b)


def test_the_configuration_table():
    data = numbers(2)
    data["runs"]["sigmoid"][1]["val_accuracy"] = 0.103
    data["runs"]["elu"][0]["weight_change"] = None
    headers, rows = vg.table(data)
    by_label = {r[0]: r for r in rows}
    assert by_label["sigmoid"] == [
        "sigmoid",
        "1.8e-12 (1.8e-12 to 1.8e-12)",
        "2.6e-12 (2.6e-12 to 2.6e-12)",
        "0",
        "0.1 ± 0.00424",
    ]
    assert by_label["elu"][3] == "undefined in 1 of 2 seeds"
    assert by_label["relu, N(0, 0.01) init"][1:3] == ["undefined in 2 of 2 seeds", "0"]
