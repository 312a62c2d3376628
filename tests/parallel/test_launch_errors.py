"""Bad input to a parallel run: one line on stderr, exit status 2, no traceback, no
process left behind."""

from __future__ import annotations

import socket

import pytest
from launching import optimlab

from optimlab.cli import main
from optimlab.errors import OptimlabError
from optimlab.parallel.launch import LaunchOptions, parse_endpoint
from optimlab.run import RunConfig

RUN = ["train", "--problem", "digits_mlp", "--optimizer", "sgd", "--steps", "2", "--quiet"]


def one_line_error(proc) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("optimlab: error: "), proc.stderr
    return lines[0]


def test_a_port_in_use_is_named():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = optimlab(*RUN, "--parallel", "sync", "--nproc", "2",
                        "--rdzv-endpoint", f"127.0.0.1:{port}", timeout=120)  # fmt: skip
    line = one_line_error(proc)
    assert f"port {port} on 127.0.0.1 is already in use" in line


def test_an_unreachable_rendezvous_times_out_in_one_line():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = optimlab(*RUN, "--parallel", "sync", "--nproc", "1", "--nnodes", "2",
                    "--node-rank", "1", "--rdzv-endpoint", f"127.0.0.1:{port}",
                    "--rdzv-timeout", "2", timeout=120)  # fmt: skip
    line = one_line_error(proc)
    assert f"cannot reach the rendezvous at 127.0.0.1:{port} within 2 s" in line


def test_a_workers_mistake_is_reported_once_in_one_line():
    # polyfit steps on its whole training set of 21 examples: 2 processes cannot share
    # it equally, which only the built problem (in each worker) knows.
    proc = optimlab("train", "--problem", "polyfit", "--optimizer", "sgd", "--steps", "2",
                    "--parallel", "sync", "--nproc", "2", "--quiet", timeout=240)  # fmt: skip
    line = one_line_error(proc)
    assert "invalid nproc: 2 processes do not divide the batch size 21" in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--parallel", "sync", "--nproc", "3", "--batch-size", "32"],
         "invalid nproc: 3 processes do not divide the batch size 32"),
        (["--parallel", "sync", "--nproc", "2", "--nnodes", "2", "--batch-size", "6"],
         "invalid nproc: 4 processes do not divide the batch size 6"),
        (["--parallel", "sync", "--nproc", "0"], "invalid nproc: 0; valid range is [1, inf]"),
        (["--parallel", "sync", "--nproc", "-1"], "invalid nproc: -1; valid range is [1, inf]"),
        (["--parallel", "ring"],
         "invalid parallel 'ring'; valid: none, sync, local_sgd, hogwild"),
        (["--nproc", "2"], "invalid nproc: 2 processes with parallel none; valid: 1 process"),
        (["--parallel", "sync", "--local-sgd-period", "4"],
         "local_sgd_period needs parallel local_sgd"),
        (["--parallel", "local_sgd", "--local-sgd-period", "0"],
         "invalid local_sgd_period: 0; valid range is [1, inf]"),
        (["--parallel", "hogwild", "--nnodes", "2"], "invalid nnodes: 2 with parallel hogwild"),
        (["--parallel", "sync", "--seconds", "5"],
         "seconds is not available with parallel sync; valid: epochs or steps"),
        (["--rdzv-endpoint", "127.0.0.1:5"], "--rdzv-endpoint need --parallel sync or local_sgd"),
        (["--parallel", "sync", "--nnodes", "2", "--nproc", "1"],
         "nnodes 2 needs a rendezvous endpoint"),
        (["--parallel", "sync", "--rdzv-endpoint", "no-port"], "invalid rdzv_endpoint 'no-port'"),
        (["--parallel", "sync", "--node-rank", "1"], "invalid node_rank: 1; valid range is [0, 0]"),
    ],
)  # fmt: skip
def test_bad_settings_are_one_line_errors(args, expected, capsys):
    assert main([*RUN, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("optimlab: error: ") and err.count("\n") == 1, err
    assert expected in err


def test_endpoints_and_options_are_checked():
    assert parse_endpoint("127.0.0.1:29500", 2) == ("127.0.0.1", 29500)
    assert parse_endpoint("[::1]:7", 1) == ("::1", 7)
    assert parse_endpoint("localhost:0", 1) == ("localhost", 0)
    for bad in ("localhost:0", "host:70000", ":80", "host:"):
        with pytest.raises(OptimlabError, match="invalid rdzv_endpoint"):
            parse_endpoint(bad, 2)
    with pytest.raises(OptimlabError, match="invalid max_restarts"):
        LaunchOptions(max_restarts=-1).check(1)
    with pytest.raises(OptimlabError, match="invalid rdzv_timeout"):
        LaunchOptions(rdzv_timeout=0).check(1)


def test_run_config_records_the_world():
    base = {"problem": "digits_mlp", "optimizer": "sgd"}
    one = RunConfig(**base)
    assert one.world_size == 1 and one.parallel == "none"
    # settings added for parallel runs enter the identity only when set, so the keys
    # and checkpoints of runs recorded before them stay valid
    later = {"dtype", "parallel", "nproc", "nnodes", "local_sgd_period", "local_sgd_warmup"}
    assert not later & set(one.identity())
    assert RunConfig(**base, dtype="float64").identity()["dtype"] == "float64"
    two = RunConfig(**base, parallel="sync", nproc=2)
    assert two.world_size == 2 and two.key() != one.key()
    assert RunConfig(**base, parallel="sync", nproc=2, nnodes=2).world_size == 4
    assert two.replace(dtype="float64").key() != two.key()
    assert RunConfig(**base, parallel="local_sgd", nproc=2, local_sgd_period=4).key() != (
        RunConfig(**base, parallel="local_sgd", nproc=2, local_sgd_period=2).key()
    )
    with pytest.raises(OptimlabError, match="invalid dtype 'float16'; valid: float32, float64"):
        RunConfig(**base, dtype="float16")
