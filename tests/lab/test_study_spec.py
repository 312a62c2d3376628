"""Study files: valid ones parse, bad ones name the key, its line and the valid values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optimlab.errors import OptimlabError
from optimlab.lab import load_study, parse_study
from optimlab.lab.space import log_grid, sample_configs
from optimlab.lab.spec import StudySpec

GOOD = """
name = "t"
problems = ["digits_mlp"]
seeds = 2

[budget]
epochs = 2

[protocol]
kind = "random"
trials = 4

[[optimizers]]
name = "momentum"
params = { momentum = 0.8 }
search = { lr = { log_uniform = [1e-3, 1.0] }, dampening = { uniform = [0.0, 0.5] } }

[[optimizers]]
name = "adam"
label = "adam-cosine"
schedule = { name = "cosine" }
"""


def test_parses_a_good_study():
    spec = parse_study(GOOD)
    assert spec.protocol == "random" and spec.trials == 4 and spec.seeds == 2
    assert [o.label for o in spec.optimizers] == ["momentum", "adam-cosine"]
    assert spec.optimizers[0].search["lr"] == ("log_uniform", [1e-3, 1.0])
    assert spec.optimizers[1].search == {"lr": ("log_uniform", [1e-5, 1.0])}  # default space


def test_deepobs_grid_is_36_log_values():
    spec = parse_study('problems = ["digits_mlp"]\noptimizers = ["sgd"]\n')
    grid = spec.lr_values()
    assert len(grid) == 36 and grid[0] == 1e-5 and grid[-1] == 1e2
    ratios = [b / a for a, b in zip(grid, grid[1:])]
    assert max(ratios) / min(ratios) < 1 + 1e-4  # evenly spaced in log
    assert log_grid(1e-3, 1.0, 4) == [1e-3, 1e-2, 1e-1, 1.0]


def test_sampling_is_a_pure_function_of_the_seed():
    space = {"lr": ("log_uniform", [1e-4, 1.0]), "momentum": ("uniform", [0.0, 0.99])}
    a = sample_configs(space, 5, seed=3)
    assert a == sample_configs(space, 5, seed=3)
    assert a != sample_configs(space, 5, seed=4)
    assert all(1e-4 <= c["lr"] <= 1.0 and 0 <= c["momentum"] <= 0.99 for c in a)
    q = sample_configs(space, 8, seed=0, quasi=True)
    assert len({c["lr"] for c in q}) == 8


@pytest.mark.parametrize(
    "text, match",
    [
        (
            'problems = ["digits_mlp"]\noptimizers = ["sgd", "adamm"]\n',
            r"line 2: optimizers\[1\]\.name: unknown optimizer 'adamm'; valid optimizers: .*adam",
        ),
        (
            'problems = ["digits"]\noptimizers = ["sgd"]\n',
            r"line 1: problems: unknown problem 'digits'; valid problems: .*digits_mlp",
        ),
        (
            'problems = ["digits_mlp"]\n[[optimizers]]\nname = "sgd"\n'
            'schedule = {name = "cosin"}\n',
            r"line 4: optimizers\[0\]\.schedule: unknown schedule 'cosin'; valid .*cosine",
        ),
        (
            'problems = ["digits_mlp"]\noptimizers = ["sgd"]\nseeds = "three"\n',
            r"line 3: seeds: must be a whole number >= 1; got 'three'",
        ),
        (
            'problems = ["digits_mlp"]\noptimizers = ["sgd"]\n[budget]\nepochs = -2\n',
            r"line 4: budget\.epochs: must be a number > 0",
        ),
        (
            'problems = ["digits_mlp"]\noptimizers = ["sgd"]\n[protocol]\nkind = "bayes"\n',
            r"line 4: protocol\.kind: unknown protocol 'bayes'; valid: deepobs",
        ),
        (
            'problems = ["digits_mlp"]\n[[optimizers]]\nname = "adam"\nparams = {beta1 = 0.9}\n',
            r"optimizers\[0\]\.beta1: unknown hyperparameter of 'adam'; valid: .*betas",
        ),
        (
            'problems = ["digits_mlp"]\n[[optimizers]]\nname = "adam"\n'
            "search = {lr = {log_uniform = [0, 1]}}\n",
            r"needs 0 < low < high",
        ),
        ('problems = ["digits_mlp"]\noptimizers = ["sgd", "sgd"]\n', r"label 'sgd' is used twice"),
        (
            'problems = ["digits_mlp"]\noptimizers = ["sgd"]\nepochs = 3\n',
            r"line 3: epochs: unknown key; valid keys: .*budget",
        ),
        (
            'problems = ["digits_mlp"]\n[[optimizers]]\nname = "sgd"\nparams = { lr = -0.5 }\n',
            r"^study\.toml, line 4: optimizers\[0\]\.params: invalid lr: -0\.5; valid: a finite",
        ),
        (
            'problems = ["digits_mlp"]\n[[optimizers]]\nname = "adam"\n'
            "params = { betas = [0.9, 1.5] }\n",
            r"line 4: optimizers\[0\]\.params: invalid betas\[1\]: 1\.5",
        ),
        (
            'problems = ["digits_mlp"]\n[[optimizers]]\nname = "sgd"\nparams = { lr = "fast" }\n',
            r"line 4: optimizers\[0\]\.params: invalid lr: 'fast'; expected a number",
        ),
        (
            'name = "../../x"\nproblems = ["digits_mlp"]\noptimizers = ["sgd"]\n',
            r"line 1: name: invalid study name '\.\./\.\./x'; .*valid are letters, digits, "
            r"'\.', '_' and '-', not starting with '\.'",
        ),
        (
            'name = ".hidden"\nproblems = ["digits_mlp"]\noptimizers = ["sgd"]\n',
            r"line 1: name: invalid study name '\.hidden'",
        ),
        (
            'name = "s"\nproblems = ["digits_mlp"]\n\n[[optimizers]]\nname = "sgd"\n\n'
            '[[optimizers]]\nlabel = "x"\nname = "adamm"\n',
            r"line 9: optimizers\[1\]\.name: unknown optimizer 'adamm'",
        ),
        (
            'name = "s"\nproblems = ["digits_mlp"]\noptimizers = [\n  "sgd",  # a, comment\n'
            '  { name = "adam", label = "a" },\n  { name = "nope" },\n]\n',
            r"line 6: optimizers\[2\]\.name: unknown optimizer 'nope'",
        ),
        (
            'problems = ["digits_mlp"]\n[[optimizers]]\nname = "sgd"\n'
            'schedule = { name = "cosine" }\n[[optimizers]]\nname = "adam"\n'
            'schedule = { name = "cosin" }\n',
            r"line 7: optimizers\[1\]\.schedule: unknown schedule 'cosin'",
        ),
        ('problems = ["digits_mlp"\n', r"not valid TOML"),
        ('optimizers = ["sgd"]\n', r"problems: is required"),
    ],
)
def test_bad_study_errors(text, match):
    with pytest.raises(OptimlabError, match=match):
        parse_study(text, source="study.toml")


def test_a_name_from_the_file_name_must_be_safe_too(tmp_path):
    study = tmp_path / "my study.toml"
    study.write_text('problems = ["digits_mlp"]\noptimizers = ["sgd"]\n')
    with pytest.raises(OptimlabError, match=r"'my study' \(from the file name; set name ="):
        load_study(study)
    study.write_text('name = "my-study_2.b"\nproblems = ["digits_mlp"]\noptimizers = ["sgd"]\n')
    assert load_study(study).name == "my-study_2.b"


def test_missing_study_file(tmp_path):
    with pytest.raises(OptimlabError, match="does not exist"):
        load_study(tmp_path / "nope.toml")


def test_example_studies_parse():
    from pathlib import Path

    examples = sorted(
        path
        for path in Path(__file__).parents[2].joinpath("examples").glob("*.toml")
        if not path.name.startswith("speedrun_")  # recipes, checked in tests/speedrun
    )
    assert len(examples) >= 3
    for path in examples:
        spec = load_study(path)
        assert spec.problems and spec.optimizers


def test_coarse_to_fine_is_a_permutation_spreading_early_points():
    from optimlab.lab.space import coarse_to_fine

    assert coarse_to_fine(8) == [0, 4, 2, 6, 1, 5, 3, 7]
    for n in (1, 5, 36):
        order = coarse_to_fine(n)
        assert sorted(order) == list(range(n))
    first = coarse_to_fine(36)[:4]
    assert min(first) == 0 and max(first) >= 24  # both ends of the grid come early


@pytest.mark.parametrize("path", sorted(Path(__file__).parents[2].glob("examples/*.toml")))
def test_the_stored_form_is_the_file_form_and_reads_back(path):
    if path.name.startswith("speedrun"):
        pytest.skip("a speedrun recipe, not a study")
    spec = load_study(path)
    data = spec.to_dict()
    assert isinstance(data["protocol"], dict) and data["protocol"]["kind"] == spec.protocol
    assert StudySpec.from_dict(data) == spec
    # what is stored goes through JSON (the storage's user attributes) unchanged
    assert StudySpec.from_dict(json.loads(json.dumps(data))) == spec


def test_full_batch_and_batch_repeats_reach_every_run():
    from optimlab.lab.runner import base_config
    from optimlab.lab.trial import run_config

    text = 'name = "s"\nproblems = ["logreg_digits"]\noptimizers = ["lbfgs"]\n'
    plain = parse_study(text)
    plain_run = run_config(base_config(plain, "logreg_digits", plain.optimizers[0], {}, seed=0))
    assert plain_run.order == "random" and plain_run.batch_repeats == 1
    for extra, order, repeats in [("full_batch = true\n", "full", 1),
                                  ("[run]\nbatch_repeats = 4\n", "random", 4)]:  # fmt: skip
        spec = parse_study(text + extra)
        assert StudySpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
        run = run_config(base_config(spec, "logreg_digits", spec.optimizers[0], {}, seed=1))
        assert run.order == order and run.batch_repeats == repeats


@pytest.mark.parametrize(
    "extra, match",
    [
        ("full_batch = 1\n", r"line 4: full_batch: must be true or false; got 1"),
        ("full_batch = true\nbatch_size = 32\n", r"full_batch: steps on the whole training set"),
        ('full_batch = true\n[run]\norder = "cyclic"\n', r"contradicts order 'cyclic'"),
        ("[run]\nbatch_repeats = 0\n", r"invalid batch_repeats: 0"),
    ],
)
def test_bad_full_batch_and_batch_repeats(extra, match):
    text = 'name = "s"\nproblems = ["logreg_digits"]\noptimizers = ["lbfgs"]\n' + extra
    with pytest.raises(OptimlabError, match=match):
        parse_study(text, source="study.toml")


def wrapper_study(params: str) -> str:
    return f'problems = ["digits_mlp"]\n[[optimizers]]\nname = "lookahead"\nparams = {{{params}}}\n'


def test_a_wrapper_in_a_study_takes_its_chosen_base_arguments():
    spec = parse_study(wrapper_study('base = "sgd", momentum = 0.9'), source="study.toml")
    assert spec.optimizers[0].params == {"base": "sgd", "momentum": 0.9}


@pytest.mark.parametrize(
    "params, match",
    [
        # lookahead's default base is adam, which has no momentum
        (
            "momentum = 0.9",
            r"optimizers\[0\]\.momentum: unknown hyperparameter of 'lookahead' "
            r"over base 'adam'; valid: .*betas",
        ),
        (
            'base = "sgd", betas = [0.9, 0.99]',
            r"optimizers\[0\]\.betas: unknown hyperparameter "
            r"of 'lookahead' over base 'sgd'; valid: .*momentum",
        ),
        ('base = "nope"', r"optimizers\[0\]\.base: unknown optimizer 'nope'; valid optimizers"),
    ],
)
def test_a_wrapper_in_a_study_refuses_arguments_its_chosen_base_lacks(params, match):
    with pytest.raises(OptimlabError, match=match) as err:
        parse_study(wrapper_study(params), source="study.toml")
    assert "\n" not in str(err.value)


PRUNED = """name = "p"
problems = ["logreg_digits"]
protocol = { kind = "random", trials = 2, pruning = true }
[[optimizers]]
name = "sgd"
[[optimizers]]
name = "adagrad"
label = "two"
"""


@pytest.mark.parametrize(
    "run",
    ['{ parallel = "sync", nproc = 2 }', '{ parallel = "downpour", nproc = 2 }',
     '{ parallel = "hogwild", nproc = 2 }'],
)  # fmt: skip
def test_pruning_refuses_a_contender_whose_trials_run_in_processes(run):
    """Such trials report their epochs only once they have ended: nothing to prune on."""
    with pytest.raises(OptimlabError) as err:
        parse_study(f"{PRUNED}run = {run}\n", source="study.toml")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("study.toml, line 3: protocol.pruning: not available with ")
    assert "contender 'two', whose trials run in processes of their own" in message
    assert "valid: pruning = false" in message
    # the same contender in one process, with a simulated delay, or without pruning
    parse_study(f'{PRUNED}run = {{ parallel = "downpour", simulate_delay = "fixed:1" }}\n')
    parse_study(f"{PRUNED.replace('pruning = true', 'pruning = false')}run = {run}\n")
