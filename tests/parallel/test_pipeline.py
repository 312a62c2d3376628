"""Pipeline model parallelism on real processes (gloo over loopback): the split model's
loss and gradients are the unsplit model's, in float64."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from launching import (
    assert_ends_as_uninterrupted,
    final_weights,
    kill_after_first_checkpoint,
    max_relative_error,
    optimlab,
    torchrun,
)
from torch import nn

from optimlab.cli import main
from optimlab.errors import OptimlabError
from optimlab.parallel.pipeline import micro_batches_for, split_model, split_points

TOLERANCE = 1e-10


def _model() -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Linear(6, 9), nn.Tanh(), nn.Linear(9, 7), nn.ReLU(), nn.Linear(7, 4)
    ).double()


def _batch(b: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(b)
    x = torch.randn(b, 6, dtype=torch.float64, generator=gen)
    return x, torch.randint(0, 4, (b,), generator=gen)


def _stage_worker(rank: int, size: int, port: int, micro: int, sizes: list[int], result) -> None:
    import torch.distributed as dist

    from optimlab.parallel.pipeline import PipelineWorld
    from optimlab.parallel.world import Place

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=size)
    world = PipelineWorld(Place(rank, size, rank, size), torch.device("cpu"), micro)
    try:
        model = _model()
        world.wrap_model(model)

        class _Trainer:
            loss_fn = nn.CrossEntropyLoss()

        world.start(_Trainer())
        found = []
        for b in sizes:
            model.zero_grad(set_to_none=True)
            loss, out = world.forward_backward(*_batch(b))
            # numpy arrays: tensors would travel through shared memory that ends with us
            grads = {k: p.grad.numpy().copy() for k, p in model.named_parameters()
                     if p.grad is not None}  # fmt: skip
            found.append((float(loss), out.numpy().copy(), grads))
        result.put((rank, found))
    finally:
        world.close()
    # Left alive past here, gloo's threads could free the schedules' last work while the
    # interpreter shuts down, which aborts the process now and then: none may be left.
    left = [t for t in os.listdir("/proc/self/task")
            if "gloo" in open(f"/proc/self/task/{t}/comm").read()]  # fmt: skip
    assert not left, f"{len(left)} gloo threads outlive the process group"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_stages_give_the_unsplit_loss_and_gradients():
    # 12: four equal micro-batches; 10: an epoch's last batch, two micro-batches of 5
    sizes, ctx = [12, 10], mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    port = _free_port()
    procs = [ctx.Process(target=_stage_worker, args=(r, 2, port, 4, sizes, queue))
             for r in range(2)]  # fmt: skip
    for p in procs:
        p.start()
    try:
        results = dict(queue.get() for _ in procs)
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in procs)
    reference = _model()
    lengths = [len(stage) for stage in split_model(_model(), 2)]
    owner = [s for s, n in enumerate(lengths) for _ in range(n)]  # top-level child -> stage
    stage_of = {name: owner[int(name.split(".")[0])] for name, _ in _model().named_parameters()}
    for i, b in enumerate(sizes):
        reference.zero_grad(set_to_none=True)
        x, y = _batch(b)
        out = reference(x)
        loss = nn.CrossEntropyLoss()(out, y)
        loss.backward()
        for rank in (0, 1):
            got_loss, got_out, grads = results[rank][i]
            assert got_loss == pytest.approx(loss.item(), rel=TOLERANCE, abs=0)
            got_out = torch.from_numpy(got_out)
            assert torch.allclose(got_out, out.detach(), rtol=TOLERANCE, atol=0)
            # each process holds the gradients of its own stage only, of the whole batch
            assert grads, f"rank {rank} computed no gradients"
            assert sorted(grads) == sorted(n for n, s in stage_of.items() if s == rank)
            for name, p in reference.named_parameters():
                if name in grads:
                    error = (torch.from_numpy(grads[name]) - p.grad).norm() / p.grad.norm()
                    assert float(error) < TOLERANCE


ARGS = ["--problem", "digits_mlp", "--optimizer", "momentum", "--lr", "0.05",
        "--hp", "momentum=0.9", "--batch-size", "48", "--steps", "30", "--dtype", "float64",
        "--log-every", "7", "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    assert main(["train", *ARGS, "--out", str(out)]) == 0
    return out


def test_a_pipelined_run_takes_the_steps_of_one_process(serial, tmp_path):
    # 27 steps per epoch, the last of 46 examples (two micro-batches of 23)
    out = tmp_path / "pipeline"
    proc = optimlab("train", *ARGS, "--parallel", "pipeline", "--nproc", "2",
                    "--micro-batches", "4", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "completed 2 epochs (30 steps)" in proc.stdout
    assert max_relative_error(final_weights(out), final_weights(serial)) < TOLERANCE


def test_torchrun_starts_a_pipeline_of_its_processes(serial, tmp_path):
    # torchrun takes --nproc itself: the run's world size comes from its environment
    out = tmp_path / "torchrun"
    proc = torchrun("train", *ARGS, "--parallel", "pipeline", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert max_relative_error(final_weights(out), final_weights(serial)) < TOLERANCE


def test_split_points_balance_the_largest_stage():
    assert split_points([10, 0, 10, 0, 10], 3) == [0, 2, 4]
    assert split_points([1, 1, 1, 8], 2) == [0, 3]
    assert split_points([5, 5], 2) == [0, 1]
    stages = split_model(_model(), 2)
    assert [len(s) for s in stages] == [2, 3]  # Linear, Tanh (63 parameters); then 70 + 32
    assert micro_batches_for(48, 4) == 4 and micro_batches_for(46, 4) == 2
    assert micro_batches_for(7, 4) == 1


def test_a_model_that_cannot_be_split_is_refused_in_one_line():
    with pytest.raises(OptimlabError, match="has 5 layers in sequence and cannot be split "
                       "into 6 stages; valid: nproc x nnodes <= 5"):  # fmt: skip
        split_model(_model(), 6)

    class Block(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(OptimlabError, match="cannot split a Block: it cuts an nn.Sequential"):
        split_model(Block(), 2)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--nproc", "2", "--micro-batches", "5"],
         "invalid micro_batches: 5 does not divide the batch size 48"),
        (["--nproc", "1"], "parallel pipeline needs at least 2 processes"),
        (["--nproc", "2", "--grad-accumulation", "2"],
         "grad_accumulation is not available with parallel pipeline"),
        (["--nproc", "2", "--seconds", "3"], "seconds is not available with parallel pipeline"),
    ],
)  # fmt: skip
def test_bad_pipeline_settings_are_one_line_errors(args, expected, capsys):
    run = ["train", "--problem", "digits_mlp", "--optimizer", "sgd", "--batch-size", "48",
           "--steps", "2", "--quiet", "--parallel", "pipeline", *args]  # fmt: skip
    assert main(run) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err


def test_micro_batches_belong_to_the_pipeline(capsys):
    run = ["train", "--problem", "digits_mlp", "--optimizer", "sgd", "--micro-batches", "2"]
    assert main(run) == 2
    assert "micro_batches needs parallel pipeline" in capsys.readouterr().err


@pytest.mark.slow
def test_a_killed_stage_is_restarted_and_the_run_resumes_exactly(tmp_path):
    # checkpoints every 5 steps, mid-epoch: each stage's latest weights are only in its
    # own process until the epoch ends, so the checkpoint must hold every rank's model
    args = ["train", "--problem", "digits_mlp", "--optimizer", "momentum", "--lr", "0.05",
            "--batch-size", "48", "--epochs", "2", "--dropout", "0.2", "--dtype", "float64",
            "--checkpoint-every", "5", "--quiet", "--parallel", "pipeline",
            "--nproc", "2"]  # fmt: skip
    victim_out, ref_out = tmp_path / "victim", tmp_path / "reference"
    done = kill_after_first_checkpoint(args, victim_out)  # kills the last stage
    assert done.returncode == 0, done.stderr
    assert "completed 2 epochs (54 steps)" in done.stdout
    assert_ends_as_uninterrupted(args, victim_out, ref_out)
