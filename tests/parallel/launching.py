"""Running ``optimlab`` in a fresh process group, so that a test can always end it (and
every process it started) and never hangs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

SRC = str(Path(__file__).resolve().parents[2] / "src")


def env() -> dict[str, str]:
    """This checkout's package first; one thread per process unless a run says more."""
    path = os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def start(args: list[str], *, module: str = "optimlab.cli") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        start_new_session=True,  # its own process group: killpg ends the workers too
    )


def finish(proc: subprocess.Popen, timeout: float) -> subprocess.CompletedProcess:
    """Wait for ``proc``; past ``timeout`` kill its whole group and fail."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
        raise AssertionError(f"timed out after {timeout} s\n{out}\n{err}") from None
    finally:
        kill_group(proc)  # workers left behind by a failed launcher, if any
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def optimlab(
    *args: str, timeout: float = 240, module: str = "optimlab.cli"
) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` to the end."""
    return finish(start(list(args), module=module), timeout)


def torchrun(*args: str, nproc: int = 2, timeout: float = 240) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node NPROC -m optimlab.cli ARGS`` to the end."""
    launcher = ["--nproc-per-node", str(nproc), "-m", "optimlab.cli"]
    return optimlab(*launcher, *args, timeout=timeout, module="torch.distributed.run")


def start_until_checkpoint(args: list[str], out: Path) -> tuple[subprocess.Popen, list[int]]:
    """Start ``optimlab ARGS --out OUT`` (two processes); once its first checkpoint is
    written, return the launcher and its two workers, oldest first."""
    launcher = start([*args, "--out", str(out)])
    last = out / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 180
    while not last.exists() and launcher.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    workers = workers_of(launcher.pid)
    assert last.exists() and len(workers) == 2, finish(launcher, 10).stderr
    return launcher, workers


def kill_after_first_checkpoint(args: list[str], out: Path) -> subprocess.CompletedProcess:
    """Run ``optimlab ARGS --out OUT --max-restarts 1``, SIGKILL its last worker once the
    first checkpoint is written, and wait for the restarted group to end."""
    victim, workers = start_until_checkpoint([*args, "--max-restarts", "1"], out)
    os.kill(workers[-1], signal.SIGKILL)
    return finish(victim, 240)


def history(out: Path) -> list[dict]:
    """The run's epoch records without their times."""
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


def assert_ends_as_uninterrupted(args: list[str], out: Path, reference: Path) -> None:
    """Run ``optimlab ARGS --out REFERENCE`` straight through; the run in ``out`` must
    end with its weights and epoch records, bit for bit."""
    straight = optimlab(*args, "--out", str(reference), timeout=240)
    assert straight.returncode == 0, straight.stderr
    a, b = final_weights(out), final_weights(reference)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert history(out) == history(reference)


def workers_of(launcher: int) -> list[int]:
    """Processes the launcher spawned (by their command line), oldest first."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == launcher and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return sorted(found)


def final_weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "checkpoints" / "last.pt", weights_only=True)["model"]


def max_relative_error(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest ``|a - b| / |b|`` over the tensors (norms of each tensor)."""
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).norm() / b[k].norm()) for k in a)


def listening_addresses(pgid: int) -> list[str]:
    """The addresses (``HOST:PORT``, IPv6 hosts in brackets) on which the processes of
    process group ``pgid`` listen for TCP connections, read from ``/proc``."""
    import ipaddress

    inodes = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            fds = list((entry / "fd").iterdir())
        except OSError:  # ended meanwhile
            continue
        for fd in fds:
            try:
                link = os.readlink(fd)
            except OSError:  # closed meanwhile
                continue
            if link.startswith("socket:["):
                inodes.add(link[len("socket:[") : -1])
    found = []
    for table, width in (("tcp", 4), ("tcp6", 16)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            host_hex, port_hex = fields[1].split(":")
            # the kernel prints each 32-bit word of the address in host (little-endian) order
            raw = b"".join(bytes.fromhex(host_hex[i : i + 8])[::-1] for i in range(0, 2 * width, 8))
            host, port = ipaddress.ip_address(raw), int(port_hex, 16)
            found.append(f"{host}:{port}" if width == 4 else f"[{host}]:{port}")
    return found
