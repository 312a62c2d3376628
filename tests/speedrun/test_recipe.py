"""Speedrun recipes: the shipped default, the example file, and clear errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from optimlab.errors import OptimlabError
from optimlab.speedrun import DEFAULT_TOML, load_recipe, loads_recipe, parse_recipe
from optimlab.speedrun.recipe import epoch_count

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "speedrun_fmnist.toml"


def raw() -> dict:
    return tomllib.loads(DEFAULT_TOML)


def test_example_file_is_the_builtin_default():
    assert tomllib.loads(EXAMPLE.read_text()) == tomllib.loads(DEFAULT_TOML)
    for device in ("cpu", "cuda"):
        assert load_recipe(EXAMPLE, device=device) == load_recipe(None, device=device)


def test_default_recipe_values():
    r = load_recipe()
    assert (r.dataset, r.target, r.device, r.threads) == ("fashion_mnist", 0.91, "cpu", 2)
    assert r.eval_from_epoch <= epoch_count(r.epochs)


def test_cuda_variant_overrides_only_what_it_names():
    cpu = parse_recipe(raw())
    gpu = parse_recipe(raw(), device="cuda")
    cuda = raw()["cuda"]
    assert gpu.device == "cuda"
    assert gpu.batch_size == cuda["train"]["batch_size"] != cpu.batch_size
    assert gpu.model_params == cuda["model"]["params"]
    # keys the [cuda] tables leave out keep the CPU values
    assert gpu.label_smoothing == cpu.label_smoothing
    assert gpu.optimizer_params == cpu.optimizer_params
    assert gpu.tta == cpu.tta
    assert parse_recipe(raw(), device="cuda:1").device == "cuda:1"


def with_change(table: str | None, key: str, value) -> dict:
    data = raw()
    (data if table is None else data[table])[key] = value
    return data


@pytest.mark.parametrize(
    ("table", "key", "value", "words"),
    [
        (None, "epochs", 3, ["'epochs'", "valid keys", "train"]),
        ("train", "epoch", 3, ["train.epoch", "valid keys in [train]", "epochs"]),
        ("eval", "tta", "crop", ["eval.tta", "'crop'", "flip"]),
        ("eval", "from_epoch", 99, ["eval.from_epoch", "train.epochs"]),
        (None, "target", 1.5, ["target", "1.5", "valid range"]),
        ("train", "label_smoothing", 1.0, ["train.label_smoothing"]),
        ("train", "batch_size", 0, ["train.batch_size", ">= 1"]),
        ("train", "epochs", 0, ["train.epochs", "numbers > 0", "1.8"]),
        ("train", "epochs", "2", ["train.epochs", "'2'", "numbers > 0"]),
        ("model", "channels_last", "yes", ["model.channels_last", "true and false"]),
        ("model", "name", "resnet1000", ["unknown model 'resnet1000'", "speednet"]),
        ("model", "init", "magic", ["unknown initializer 'magic'", "he_normal"]),
        ("optimizer", "name", "adamm", ["unknown optimizer 'adamm'", "nesterov"]),
        ("optimizer", "params", {"momentun": 0.9}, ["momentun", "momentum"]),
        ("schedule", "name", "warp", ["unknown schedule 'warp'", "one_cycle"]),
        ("schedule", "params", {"max_learning_rate": 1}, ["max_learning_rate", "max_lr"]),
        ("train", "augment", "flip,spin", ["unknown augmentation 'spin'", "rotate"]),
        ("train", "augment", "", ["train.augment", "non-empty"]),
        (None, "dataset", "imagenet", ["unknown dataset 'imagenet'", "fashion_mnist"]),
        (None, "device", "tpu", ["invalid device", "'tpu'", "cuda"]),
    ],
)
def test_bad_keys_are_named(table, key, value, words):
    with pytest.raises(OptimlabError) as err:
        parse_recipe(with_change(table, key, value))
    for word in words:
        assert word in str(err.value)


def test_bad_cuda_override_is_named_even_on_cpu():
    data = raw()
    data["cuda"]["train"]["batchsize"] = 64
    for device in ("cpu", "cuda"):
        with pytest.raises(OptimlabError, match=r"cuda\.train\.batchsize"):
            parse_recipe(data, device=device)
    data = raw()
    data["cuda"]["trian"] = {}
    with pytest.raises(OptimlabError, match=r"cuda\.trian"):
        parse_recipe(data)


def test_missing_name_and_bad_toml_and_missing_file(tmp_path):
    data = raw()
    del data["optimizer"]["name"]
    with pytest.raises(OptimlabError, match=r"missing key optimizer\.name"):
        parse_recipe(data)
    with pytest.raises(OptimlabError, match="not valid TOML"):
        loads_recipe("target = ", "r.toml")
    with pytest.raises(OptimlabError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.toml")


def test_the_first_recipe_kept_for_comparison_loads_and_differs_from_the_shipped_one():
    first = load_recipe(EXAMPLE.with_name("speedrun_fmnist_3epoch.toml"))
    shipped = load_recipe()
    assert (first.dataset, first.target, first.threads) == ("fashion_mnist", 0.91, 2)
    assert first.epochs == 3 and shipped.epochs == 1.8


def test_the_2epoch_recipe_differs_from_the_shipped_one_in_length_and_lr_only():
    kept = tomllib.loads(EXAMPLE.with_name("speedrun_fmnist_2epoch.toml").read_text())
    shipped = raw()
    assert (kept["train"]["epochs"], shipped["train"]["epochs"]) == (2, 1.8)
    lrs = [r["schedule"]["params"]["max_lr"] for r in (kept, shipped)]
    assert lrs == [0.05, 0.07]
    for r in (kept, shipped):
        del r["name"], r["train"]["epochs"], r["schedule"]["params"]["max_lr"]
    assert kept == shipped
    assert load_recipe(EXAMPLE.with_name("speedrun_fmnist_2epoch.toml")).epochs == 2
    candidate = load_recipe(EXAMPLE.with_name("speedrun_fmnist_batch512.toml"))
    assert (candidate.batch_size, candidate.epochs) == (512, 2)
    assert candidate.schedule_params["max_lr"] == 0.1


def test_fractional_epochs_bound_the_evaluation_epoch_by_the_partial_one():
    data = with_change("train", "epochs", 1.5)
    data["eval"]["from_epoch"] = 2  # the cut-short second epoch can be evaluated
    assert parse_recipe(data).epochs == 1.5
    data["eval"]["from_epoch"] = 3
    with pytest.raises(OptimlabError, match=r"eval\.from_epoch: 3; valid: 1 to .*\(2\)"):
        parse_recipe(data)
