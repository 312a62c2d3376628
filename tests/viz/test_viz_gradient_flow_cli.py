"""``optimlab train --init NAME --diagnose``: the options reach the model and the files."""

import json

import pytest
import torch

from optimlab import problems
from optimlab.cli import main
from optimlab.errors import OptimlabError
from optimlab.run import RunConfig, build_run


def test_train_with_init_and_diagnose_writes_diagnostics(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--problem", "digits_mlp", "--optimizer", "sgd", "--steps", "12"]
    args += ["--init", "he_uniform", "--diagnose", "--diagnose-every", "4"]
    assert main(args + ["--out", str(out), "--quiet"]) == 0
    data = json.loads((out / "diagnostics" / "gradient_flow.json").read_text())
    assert [r["step"] for r in data["records"]] == [4, 8, 12]
    assert data["every"] == 4 and len(data["layers"]) == 3
    assert (out / "diagnostics" / "gradient_flow_heatmap.png").exists()
    assert "status     completed" in capsys.readouterr().out


def test_init_option_reinitializes_reproducibly():
    config = RunConfig(problem="digits_mlp", optimizer="sgd", init="he_normal", seed=3, steps=1)
    a, b = build_run(config).problem, build_run(config).problem
    before = problems.build("digits_mlp", seed=3).model[1].weight
    assert not torch.equal(a.model[1].weight, before)
    assert torch.equal(a.model[1].weight, b.model[1].weight)
    # He normal: Var = 2 / fan_in with fan_in = 64
    assert float(a.model[1].weight.detach().var()) == pytest.approx(2 / 64, rel=0.1)
    assert torch.count_nonzero(a.model[1].bias) == 0


def test_option_errors():
    base = {"problem": "digits_mlp", "optimizer": "sgd"}
    with pytest.raises(OptimlabError, match="needs an output directory"):
        RunConfig(**base, diagnose=True)
    with pytest.raises(OptimlabError, match="needs diagnose"):
        RunConfig(**base, diagnose_every=5)
    with pytest.raises(OptimlabError, match="unknown initializer 'nope'"):
        RunConfig(**base, init="nope")
