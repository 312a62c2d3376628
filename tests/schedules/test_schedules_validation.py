"""Every constructor rejects bad arguments with an OptimlabError naming the argument."""

from __future__ import annotations

import pytest

from optimlab.errors import OptimlabError
from optimlab.schedules import (
    Join,
    PerEpoch,
    Scaled,
    StepDecay,
    available,
    create,
    epochs_to_steps,
    with_warmup,
)

BAD = [
    ("constant", {"lr": -0.1}, "lr"),
    ("constant", {"lr": "fast"}, "lr"),
    ("constant", {"lr": float("inf")}, "lr"),
    ("step", {"step_size": -3}, "step_size"),
    ("step", {"step_size": 2.5}, "step_size"),
    ("step", {"step_size": 10, "gamma": 0.0}, "gamma"),
    ("step", {"step_size": True}, "step_size"),
    ("multistep", {"milestones": (30, 10)}, "milestones"),
    ("multistep", {"milestones": (0, 10)}, "milestones"),
    ("multistep", {"milestones": "30"}, "milestones"),
    ("harmonic", {"c": 0}, "c"),
    ("harmonic", {"step_size": 0}, "step_size"),
    ("inverse_time", {"decay_rate": -1}, "decay_rate"),
    ("inverse_time", {"decay_steps": 0}, "decay_steps"),
    ("exponential", {"gamma": -0.5}, "gamma"),
    ("polynomial", {"power": -1}, "power"),
    ("polynomial", {"total_iters": 0}, "total_iters"),
    ("linear", {"total_iters": 0}, "total_iters"),
    ("linear", {"start_factor": -0.1}, "start_factor"),
    ("cosine", {"T_max": 0}, "T_max"),
    ("cosine", {"T_max": 10, "lr": 0.1, "eta_min": 0.2}, "eta_min"),
    ("warmup", {"warmup_steps": 0}, "warmup_steps"),
    ("warmup_cosine", {"total_steps": 10, "warmup_steps": 10}, "warmup_steps"),
    ("sgdr", {"T_0": 0}, "T_0"),
    ("sgdr", {"T_0": 10, "T_mult": 0.5}, "T_mult"),
    ("sgdr", {"T_0": 10, "eta_min": -1}, "eta_min"),
    ("cyclic", {"base_lr": 0.1, "max_lr": 0.01}, "max_lr"),
    ("cyclic", {"mode": "sawtooth"}, "mode"),
    ("cyclic", {"gamma": 1.5}, "gamma"),
    ("cyclic", {"step_size_up": 0}, "step_size_up"),
    ("cyclic", {"step_size_down": -1}, "step_size_down"),
    ("cyclic_momentum", {"base_momentum": 0.95, "max_momentum": 0.9}, "max_momentum"),
    ("cyclic_momentum", {"max_momentum": 1.0}, "max_momentum"),
    ("one_cycle", {"total_steps": 100, "max_lr": 0}, "max_lr"),
    ("one_cycle", {"total_steps": 100, "pct_start": 1.2}, "pct_start"),
    ("one_cycle", {"total_steps": 100, "pct_start": 0.005}, "pct_start"),
    ("one_cycle", {"total_steps": 100, "pct_start": 0.6, "three_phase": True}, "pct_start"),
    ("one_cycle", {"total_steps": 100, "anneal_strategy": "cubic"}, "anneal_strategy"),
    ("one_cycle", {"total_steps": 100, "div_factor": 0.5}, "div_factor"),
    ("one_cycle", {"total_steps": 1}, "total_steps"),
    ("one_cycle_momentum", {"total_steps": 100, "base_momentum": -0.1}, "base_momentum"),
    ("snapshot", {"total_steps": 10, "cycles": 11}, "cycles"),
    ("snapshot", {"total_steps": 0}, "total_steps"),
    ("nag_c", {"r": 0}, "r"),
    ("exp_restarts", {"T_0": 0}, "T_0"),
    ("exp_restarts", {"T_0": 10, "gamma": 1.5}, "gamma"),
    ("exp_restarts", {"T_0": 10, "gamma": 0}, "gamma"),
    ("exp_restarts", {"T_0": 10, "T_mult": 0.5}, "T_mult"),
    ("nag_sc", {"mu": 0, "s": 1}, "mu"),
    ("nag_sc", {"mu": 0.5, "s": 4}, "s"),
]


@pytest.mark.parametrize(("name", "params", "arg"), BAD, ids=lambda x: str(x))
def test_bad_parameter_names_the_argument(name, params, arg):
    with pytest.raises(OptimlabError, match=rf"\b{arg}\b") as info:
        create(name, **params)
    assert name in str(info.value)  # and says which schedule it belongs to
    assert isinstance(info.value, ValueError)  # callers written for torch.optim catch it


def test_every_registered_schedule_has_a_bad_case():
    assert {name for name, _, _ in BAD} == set(available())


def test_unknown_name_lists_valid_ones():
    with pytest.raises(OptimlabError, match="unknown schedule 'cosinus'") as info:
        create("cosinus")
    for name in available():
        assert name in str(info.value)


def test_names_are_case_insensitive_and_aliases_work():
    assert create("Cosine", T_max=10) == create("cosine_annealing", T_max=10)
    assert create("1cycle", total_steps=50) == create("one_cycle", total_steps=50)


def test_unknown_and_missing_parameters():
    with pytest.raises(OptimlabError, match="'T_maxx'.*valid parameters: lr, T_max"):
        create("cosine", T_maxx=10)
    with pytest.raises(OptimlabError, match="needs parameter 'T_max'"):
        create("cosine")


def test_composition_arguments():
    s = StepDecay(lr=0.1, step_size=5)
    with pytest.raises(OptimlabError, match="boundaries"):
        Join([s, s], [10, 20])
    with pytest.raises(OptimlabError, match="boundaries"):
        Join([s, s, s], [20, 10])
    with pytest.raises(OptimlabError, match="schedules"):
        Join([], [])
    with pytest.raises(OptimlabError, match="schedules"):
        Join([s, "cosine"], [10])
    with pytest.raises(OptimlabError, match="factor"):
        Scaled(s, "x")
    with pytest.raises(OptimlabError, match="steps_per_epoch"):
        PerEpoch(s, 0)
    with pytest.raises(OptimlabError, match="warmup_steps"):
        with_warmup(s, -1)
    with pytest.raises(OptimlabError, match="epochs"):
        epochs_to_steps(-1, 10)
