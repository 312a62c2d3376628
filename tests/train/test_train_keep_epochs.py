"""ModelCheckpoint(keep_epochs=True): the weights of every epoch, one file each."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from train_toys import make_problem

from optimlab.errors import OptimlabError
from optimlab.train.callback import Callback
from optimlab.train.checkpoint import epoch_path
from optimlab.train.trainer import Trainer


class _Snapshots(Callback):
    """Copies the model's weights at the end of each epoch (before checkpointing)."""

    def __init__(self) -> None:
        super().__init__()
        self.states: list[dict[str, torch.Tensor]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self.states.append({k: v.clone() for k, v in self.trainer.model.state_dict().items()})


def test_every_epoch_is_kept_and_equals_the_model_then(tmp_path) -> None:
    problem = make_problem()
    start = {k: v.clone() for k, v in problem.model.state_dict().items()}
    snaps = _Snapshots()
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    Trainer(problem, opt, epochs=3, batch_size=32, out_dir=tmp_path, callbacks=[snaps],
            keep_epoch_checkpoints=True).run()  # fmt: skip
    folder = tmp_path / "checkpoints"
    names = sorted(p.name for p in folder.glob("epoch_*.pt"))
    assert names == [f"epoch_{k:04d}.pt" for k in range(4)]  # the start, then 3 epochs
    assert len(snaps.states) == 3
    for k, expected in enumerate([start, *snaps.states]):
        saved = torch.load(epoch_path(folder, k), weights_only=True)
        assert saved.keys() == expected.keys()
        for key, value in expected.items():
            torch.testing.assert_close(saved[key], value, rtol=0, atol=0)
    # consecutive epochs differ: the files are not one state written several times
    assert not torch.equal(snaps.states[0]["0.weight"], snaps.states[1]["0.weight"])


def test_off_by_default_and_needs_an_out_dir(tmp_path) -> None:
    problem = make_problem()
    opt = torch.optim.SGD(problem.model.parameters(), lr=0.1)
    Trainer(problem, opt, epochs=1, batch_size=32, out_dir=tmp_path).run()
    assert not list((tmp_path / "checkpoints").glob("epoch_*.pt"))
    with pytest.raises(OptimlabError, match="keep_epoch_checkpoints"):
        Trainer(problem, opt, epochs=1, batch_size=32, keep_epoch_checkpoints=True)
