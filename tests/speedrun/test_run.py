"""Speedrun runs on the embedded digits: real training, timing fields, JSON, the CLI."""

from __future__ import annotations

import json
from subprocess import DEVNULL, PIPE

import pytest
import torch

from killed import optimlab_process, sigkill
from optimlab.cli import main
from optimlab.data import load
from optimlab.nn import MODELS, build_model
from optimlab.speedrun import loads_recipe, run_speedrun, summarize

DIGITS = """
name = "digits-speedrun"
dataset = "digits"
target = {target}
seeds = 2
threads = 1
[model]
name = "speednet"
params = {{ widths = [8, 16] }}
[optimizer]
name = "nesterov"
params = {{ momentum = 0.9, weight_decay = 5e-4 }}
[schedule]
name = "one_cycle"
params = {{ max_lr = 0.1 }}
[train]
epochs = 2
batch_size = 64
label_smoothing = 0.1
augment = "flip"
[eval]
tta = "flip"
"""


def test_two_seeds_train_and_write_json(tmp_path):
    recipe = loads_recipe(DIGITS.format(target=0.5))
    out = tmp_path / "r.json"
    threads = torch.get_num_threads()
    result = run_speedrun(recipe, out=out)
    assert torch.get_num_threads() == threads  # restored
    saved = json.loads(out.read_text())
    assert saved["summary"] == result["summary"]
    assert [r["seed"] for r in saved["runs"]] == [0, 1]
    for run in saved["runs"]:
        accs = [e["accuracy"] for e in run["epochs"]]
        assert len(accs) == 2 and all(a is not None for a in accs)
        assert run["final_accuracy"] == accs[-1] > 0.5  # chance is 0.1
        # the time to target is the time of the first evaluation at or above it
        first = next(e for e in run["epochs"] if e["accuracy"] >= 0.5)
        assert run["time_to_target"] == first["time"]
        assert 0 < run["load_time"] < run["time_to_target"] <= run["total_time"]
        assert all(0 < e["eval_time"] < e["time"] for e in run["epochs"])
    s = saved["summary"]
    assert s["reached"] == 2 and s["seeds"] == 2
    assert s["time_to_target_std"] is not None and s["time_to_target_std"] >= 0
    assert saved["recipe"]["dataset"] == "digits"
    assert saved["machine"]["torch_threads"] == 1
    # two seeds train differently
    assert saved["runs"][0]["epochs"] != saved["runs"][1]["epochs"]


def test_unreached_target_and_late_evaluation():
    text = DIGITS.format(target=0.9999).replace('tta = "flip"', 'tta = "none"\nfrom_epoch = 2')
    text = text.replace('augment = "flip"', 'augment = "none"\nbfloat16 = true')
    recipe = loads_recipe(text)
    assert recipe.bfloat16 and recipe.augment == "none"
    result = run_speedrun(recipe, seeds=[3])
    (run,) = result["runs"]
    assert run["seed"] == 3
    assert run["epochs"][0]["accuracy"] is None  # not evaluated before from_epoch
    assert run["epochs"][0]["eval_time"] is None
    assert run["epochs"][1]["accuracy"] is not None
    assert run["time_to_target"] is None and not run["reached"]
    assert result["summary"]["reached"] == 0
    assert result["summary"]["time_to_target_mean"] is None


def test_a_fractional_last_epoch_trains_its_share_of_the_batches():
    text = DIGITS.format(target=0.5).replace("epochs = 2", "epochs = 1.5")
    recipe = loads_recipe(text)
    (run,) = run_speedrun(recipe, seeds=[0])["runs"]
    full = len(load("digits", val_size=0).train.x) // 64  # whole batches only
    assert [e["epoch"] for e in run["epochs"]] == [1, 2]
    assert [e["steps"] for e in run["epochs"]] == [full, round(1.5 * full)]
    assert all(e["accuracy"] is not None for e in run["epochs"])


def test_summary_statistics():
    runs = [
        {"time_to_target": 10.0, "final_accuracy": 0.91, "total_time": 12.0},
        {"time_to_target": 14.0, "final_accuracy": 0.93, "total_time": 15.0},
        {"time_to_target": None, "final_accuracy": 0.89, "total_time": 15.0},
    ]
    s = summarize(runs, 0.91)
    assert (s["reached"], s["seeds"]) == (2, 3)
    assert s["time_to_target_mean"] == pytest.approx(12.0)
    assert s["time_to_target_std"] == pytest.approx(2 * 2**0.5)  # sample std of 10, 14
    assert s["final_accuracy_mean"] == pytest.approx(0.91)
    assert s["final_accuracy_std"] == pytest.approx(0.02)


def test_cli_runs_a_recipe_and_reports_bad_keys(tmp_path, capsys):
    path = tmp_path / "digits.toml"
    path.write_text(DIGITS.format(target=0.5))
    out = tmp_path / "res.json"
    assert main(["speedrun", str(path), "--seeds", "1", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "reached 50%: 1/1 seeds" in printed
    assert json.loads(out.read_text())["summary"]["seeds"] == 1
    path.write_text(DIGITS.format(target=0.5).replace("epochs = 2", "epoch = 2"))
    assert main(["speedrun", str(path)]) == 2
    assert "train.epoch" in capsys.readouterr().err
    assert main(["speedrun", "--device", "cuda:x"]) == 2
    assert "invalid device" in capsys.readouterr().err
    path.write_text(DIGITS.format(target=0.5).replace("batch_size = 64", "batch_size = 5000"))
    assert main(["speedrun", str(path), "--seeds", "1"]) == 2
    assert "invalid train.batch_size: 5000" in capsys.readouterr().err


def test_speednet_is_registered_and_checks_its_widths():
    assert MODELS.get("speednet").input_shape == (1, 28, 28)
    net = build_model("speednet", widths=[4, 8, 16])
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    pooled = build_model("speednet", widths=[4, 8], head="max", input_size=8, num_classes=3)
    assert pooled(torch.zeros(2, 1, 8, 8)).shape == (2, 3)
    with pytest.raises(ValueError, match="invalid widths"):
        build_model("speednet", widths=[4, 4, 4, 4, 4, 4])
    with pytest.raises(ValueError, match="invalid head"):
        build_model("speednet", head="avg")


def test_each_seed_is_written_as_it_finishes_and_a_rerun_keeps_them(tmp_path, monkeypatch):
    import optimlab.speedrun as speedrun

    recipe = loads_recipe(DIGITS.format(target=0.5))
    out = tmp_path / "r.json"
    real, calls = speedrun.run_seed, []

    def second_seed_killed(recipe, seed, on_epoch=None):
        if seed == 1:
            saved = json.loads(out.read_text())  # written before the second seed starts
            assert saved["finished"] is False and [r["seed"] for r in saved["runs"]] == [0]
            raise KeyboardInterrupt
        calls.append(seed)
        return real(recipe, seed, on_epoch)

    monkeypatch.setattr(speedrun, "run_seed", second_seed_killed)
    with pytest.raises(KeyboardInterrupt):
        run_speedrun(recipe, out=out)
    first = json.loads(out.read_text())["runs"][0]
    monkeypatch.setattr(speedrun, "run_seed", lambda r, s, h=None: calls.append(s) or real(r, s, h))
    result = run_speedrun(recipe, out=out)
    assert calls == [0, 1]  # seed 0 ran once, in the first call
    assert result["finished"] is True and result["runs"][0] == first
    assert json.loads(out.read_text())["summary"]["seeds"] == 2


def test_a_killed_speedrun_keeps_the_seeds_it_finished(tmp_path):
    """A real ``optimlab speedrun`` process killed with SIGKILL during its second seed:
    the results file holds the first seed whole, and a rerun keeps it and runs the rest."""
    recipe, out = tmp_path / "digits.toml", tmp_path / "r.json"
    recipe.write_text(DIGITS.format(target=0.5).replace("epochs = 2", "epochs = 8"))
    argv = ["speedrun", str(recipe), "--seeds", "2", "--out", str(out)]
    with optimlab_process(*argv, text=True, stdout=PIPE, stderr=DEVNULL) as proc:
        for line in proc.stdout:  # the first epoch of seed 1: seed 0 is done
            if line.startswith("  seed 1 epoch 1:"):
                break
        else:
            pytest.fail(f"the speedrun ended (status {proc.wait()}) before seed 1 began")
        sigkill(proc)
    saved = json.loads(out.read_text())
    assert saved["finished"] is False and [r["seed"] for r in saved["runs"]] == [0]
    first = saved["runs"][0]
    assert len(first["epochs"]) == 8 and first["final_accuracy"] > 0.5
    assert saved["summary"]["seeds"] == 1
    assert main(argv + ["--quiet"]) == 0
    done = json.loads(out.read_text())
    assert done["finished"] is True and [r["seed"] for r in done["runs"]] == [0, 1]
    assert done["runs"][0] == first  # kept as written, not run again


def test_speednet_pool_first_pools_before_norm_and_relu():
    torch.manual_seed(0)
    net = build_model("speednet", widths=[4, 8], input_size=8, num_classes=3, pool_first=True)
    kinds = [type(m).__name__ for m in net]
    assert kinds[:4] == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"]
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    # the norm sees the pooled map: its running statistics come from 4x4 positions
    net[2].reset_running_stats()
    x = torch.randn(5, 1, 8, 8)
    pooled = net[1](net[0](x))
    net[:3](x)
    torch.testing.assert_close(net[2].running_mean, 0.1 * pooled.mean(dim=(0, 2, 3)))
    with pytest.raises(ValueError, match="invalid pool_first"):
        build_model("speednet", pool_first="yes")
