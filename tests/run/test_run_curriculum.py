"""``order = "curriculum"`` as a run setting: the scores are the documented reference
losses, the first epoch visits exactly the easiest ``ceil(start * n)`` examples, the pool
grows by the pacing formula, the scores are stored with the run and a resumed run is the
uninterrupted one; bad settings are one-line errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from loop_resume import assert_same_run, crashed_and_resumed, fit

from optimlab import optim, problems
from optimlab.cli import main
from optimlab.data.ordering import reference_losses
from optimlab.errors import OptimlabError
from optimlab.run import RunConfig, total_steps
from optimlab.train import Trainer
from resume_checks import Crash, CrashAt

START, EPOCHS = 0.3, 3
CONFIG = RunConfig(problem="digits_mlp", optimizer="sgd", lr=0.1, epochs=5, seed=4,
                   threads=1, order="curriculum",
                   curriculum={"start": START, "epochs": EPOCHS, "pacing": "root"})  # fmt: skip


def root_pacing(epoch: int) -> float:
    """Platanios et al.'s root pacing, written out: sqrt(c0^2 + (1 - c0^2) t)."""
    t = min(epoch / EPOCHS, 1.0)
    return math.sqrt(START**2 + (1 - START**2) * t)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return fit(CONFIG.replace(out=str(tmp_path_factory.mktemp("whole"))))


def test_the_scores_are_the_losses_of_a_reference_trained_one_epoch_from_seed_plus_one(
    uninterrupted,
):
    run = uninterrupted[2]
    train = run.problem.splits.train
    reference = problems.build("digits_mlp", seed=5)  # the model of seed 4 + 1
    opt = optim.create("sgd", reference.model.parameters(), lr=0.1)
    on_the_run_data = (reference.model, reference.loss_fn, {}, {"train": (train.x, train.y)})
    Trainer(on_the_run_data, opt, epochs=1, batch_size=32, seed=5).run()
    expected = reference_losses(reference.model, train.x, train.y).to(torch.float64)
    scores = torch.as_tensor(run.trainer.loader.ordering.scores)
    assert torch.equal(scores, expected)
    assert scores.std() > 0.1  # a real spread of difficulties, not a constant


def test_the_first_epoch_visits_exactly_the_easiest_examples(uninterrupted):
    result, _, run = uninterrupted
    scores = np.asarray(run.trainer.loader.ordering.scores)
    n = len(scores)
    k = math.ceil(START * n)
    visited = run.trainer.loader.indices(0).cpu().numpy()
    assert len(visited) == len(set(visited.tolist())) == k
    others = np.setdiff1d(np.arange(n), visited)
    assert scores[visited].max() <= scores[others].min()
    assert result.history[0]["examples"] == k


def test_the_pool_grows_by_the_pacing_formula_and_the_length_is_counted(uninterrupted):
    result, _, run = uninterrupted
    n = len(run.problem.splits.train.x)
    pools = [math.ceil(root_pacing(e) * n) for e in range(5)]
    assert pools[0] < pools[1] < pools[2] < pools[3] == pools[4] == n
    seen = [h["examples"] for h in result.history]
    assert np.diff([0, *seen]).tolist() == pools
    steps = sum(math.ceil(p / 32) for p in pools)
    assert result.history[-1]["step"] == steps == total_steps(CONFIG, run.problem, 32)


def test_a_resumed_run_reads_the_stored_scores_and_continues_exactly(tmp_path, uninterrupted):
    config = CONFIG.replace(out=str(tmp_path))
    with pytest.raises(Crash):  # in epoch 2, whose pool is larger than epoch 1's
        fit(config, [CrashAt(step=45)])
    stored = tmp_path / "curriculum_scores.pt"
    written = stored.stat().st_mtime_ns
    resumed = fit(config)
    assert stored.stat().st_mtime_ns == written  # read back, not trained again
    assert_same_run(resumed, uninterrupted)


def test_a_crash_after_an_epoch_resumes_exactly(tmp_path, uninterrupted):
    assert_same_run(crashed_and_resumed(CONFIG.replace(out=str(tmp_path)), epoch=1),
                    uninterrupted)  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"order": "curriculum", "curriculum": {"pacing": "cubic"}},
         "invalid curriculum: unknown pacing 'cubic'; valid pacings: exp, linear, root, step"),
        ({"order": "curriculum", "curriculum": {"start": 0}},
         r"invalid curriculum: invalid start: 0; valid range is \(0, 1\]"),
        ({"order": "curriculum", "curriculum": {"begin": 0.5}},
         "invalid curriculum setting 'begin'; valid: start, epochs, pacing"),
        ({"order": "curriculum", "curriculum": {"scoring": "loss"}},
         "invalid curriculum scoring 'loss'; valid: reference"),
        ({"order": "curriculum", "curriculum": {"shuffle": 1}},
         "invalid curriculum shuffle: 1; expected true or false"),
        ({"curriculum": {"start": 0.5}},
         r"curriculum settings need order curriculum \(--order curriculum\)"),
        ({"order": "curriculm"}, "invalid order 'curriculm'; valid orders: random, cyclic, "
         "full, shuffle_once, curriculum"),
    ],
)  # fmt: skip
def test_bad_settings_are_one_line_errors(change, message):
    with pytest.raises(OptimlabError, match=message) as err:
        RunConfig(problem="digits_mlp", optimizer="sgd", **change)
    assert "\n" not in str(err.value)


def test_a_bad_pacing_at_the_command_line(capsys):
    argv = ["train", "--problem", "digits_mlp", "--optimizer", "sgd", "--order", "curriculum",
            "--curriculum", "pacing=cubic", "--quiet"]  # fmt: skip
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "optimlab: error: invalid curriculum: unknown pacing 'cubic'; valid pacings: exp, "
        "linear, root, step\n"
    )


def test_the_length_counts_repeated_batches_of_each_pool():
    config = CONFIG.replace(epochs=2, batch_repeats=2, out=None)
    result, _, run = fit(config)
    n = len(run.problem.splits.train.x)
    pools = [math.ceil(root_pacing(e) * n) for e in range(2)]
    expected = sum(2 * math.ceil(p / 32) for p in pools)
    assert result.history[-1]["step"] == total_steps(config, run.problem, 32) == expected
