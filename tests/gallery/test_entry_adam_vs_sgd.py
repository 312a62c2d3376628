"""The verdict rule of the Adam-against-tuned-SGD entry on fixed numbers, the study it
runs, and one tiny study end to end."""

from __future__ import annotations

from gallery_helpers import changed

from optimlab.gallery.entries import adam_vs_sgd as avs
from optimlab.gallery.entry import NOT_REPRODUCED, REPRODUCED, VERDICTS, Context


def numbers() -> dict:
    lab = {"best": "adam", "runner_up": "sgd-momentum", "gap": 0.0097, "spread": 0.021,
           "separated": False, "welch_t": 0.86,
           "sentences": ["adam has the highest mean val_accuracy.", "Within the spread.",
                         "No run diverged or failed."]}  # fmt: skip

    def contender(params: dict, tests: list) -> dict:
        return {"params": params, "trials": 12, "val_accuracy": [0.96, 0.97], "diverged": 0,
                "test_accuracy": tests, "train_loss": [[1.0, 0.1]],
                "test_curve": [[0.9, 0.97]]}  # fmt: skip

    contenders = {"sgd-momentum": contender({"lr": 0.24, "momentum": 0.76}, [0.98, 0.97]),
                  "adam": contender({"lr": 0.0018}, [0.975, 0.97])}  # fmt: skip
    return {"metric": "val_accuracy", "lab": lab, "contenders": contenders,
            "problem": "digits_mlp", "epochs": 15, "trials": 12, "seeds": 2}  # fmt: skip


def test_reproduced_when_adam_leads_within_the_seed_spread():
    verdict = avs.rule(numbers())
    assert verdict.status == REPRODUCED and "less than the seed spread" in verdict.reason
    assert "sgd-momentum 0.9750, adam 0.9725" in verdict.reason


def test_reproduced_when_tuned_sgd_ranks_first():
    won = changed(changed(numbers(), "lab.best", "sgd-momentum"), "lab.separated", True)
    verdict = avs.rule(changed(won, "lab.runner_up", "adam"))
    assert verdict.status == REPRODUCED and "ranks first" in verdict.reason


def test_not_reproduced_when_adam_is_separated_from_sgd():
    verdict = avs.rule(changed(numbers(), "lab.separated", True))
    assert verdict.status == NOT_REPRODUCED and "more than the seed spread" in verdict.reason


def test_not_reproduced_when_the_lab_cannot_compare():
    verdict = avs.rule(changed(numbers(), "lab.separated", None))
    assert verdict.status == NOT_REPRODUCED and "cannot compare" in verdict.reason


def test_the_study_is_the_labs_random_search_over_both_contenders():
    from optimlab.lab.spec import parse_study

    spec = parse_study(avs.study_text({"problem": "digits_mlp", "seeds": 3, "epochs": 4,
                                       "trials": 5}, data_dir="data here"))  # fmt: skip
    assert spec.protocol == "random" and spec.trials == 5
    assert [o.label for o in spec.optimizers] == list(avs.CONTENDERS)
    assert set(spec.optimizers[0].search) == {"lr", "momentum"}
    assert set(spec.optimizers[1].search) == {"lr"}
    assert spec.run == {"data_dir": "data here"} and spec.seeds == 3


def test_a_tiny_study_gives_the_labs_verdict_and_every_final():
    budget = {"problem": "digits_mlp", "epochs": 1, "trials": 1, "seeds": 2, "threads": 1}
    measured = avs.compute(budget, Context())
    n = measured.numbers
    assert n["lab"]["best"] in avs.CONTENDERS and n["lab"]["sentences"]
    for label in avs.CONTENDERS:
        c = n["contenders"][label]
        assert c["trials"] == 1 and len(c["test_accuracy"]) == 2
        assert len(c["train_loss"]) == 2 and len(c["train_loss"][0]) == 1
    assert set(n["contenders"]["sgd-momentum"]["params"]) == {"lr", "momentum"}
    assert avs.rule(n).status in VERDICTS
