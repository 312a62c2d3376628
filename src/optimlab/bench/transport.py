"""How long a parameter fetch takes over loopback: gloo's point-to-point messages
against torch's RPC (TensorPipe), the two ways a parameter server can be built on
torch.distributed.

    optimlab bench transport [--rounds 4] [--repeats 300]

Each round starts two fresh processes per transport, in alternating order; one serves
a float32 vector, the other requests it ``repeats`` times per size and keeps the
median round trip (request and reply). The table gives every round's medians and the
median over rounds, in microseconds, and RPC's time over point-to-point's.
"""

from __future__ import annotations

import os
import socket
import statistics
import time
from typing import Any

import torch

SIZES = (650, 100_000, 1_300_000)  # logreg_digits, a small MLP, fmnist_mlp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_SERVED: dict[int, torch.Tensor] = {}


def _serve(n: int) -> torch.Tensor:
    return _SERVED[n]


def _rpc(rank: int, port: int, sizes: tuple[int, ...], repeats: int, results: Any) -> None:
    from torch.distributed import rpc

    options = rpc.TensorPipeRpcBackendOptions(init_method=f"tcp://127.0.0.1:{port}",
                                              num_worker_threads=4)  # fmt: skip
    rpc.init_rpc(f"w{rank}", rank=rank, world_size=2, rpc_backend_options=options)
    for n in sizes:
        _SERVED[n] = torch.randn(n)
    if rank == 1:
        medians = {}
        for n in sizes:
            times = []
            for i in range(repeats + 5):
                t0 = time.perf_counter()
                rpc.rpc_sync("w0", _serve, args=(n,))
                if i >= 5:  # the first calls set up the connection
                    times.append(time.perf_counter() - t0)
            medians[n] = statistics.median(times)
        results.put(medians)
    rpc.shutdown()


def _p2p(rank: int, port: int, sizes: tuple[int, ...], repeats: int, results: Any) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)  # fmt: skip
    request = torch.zeros(3, dtype=torch.int64)
    medians = {}
    for n in sizes:
        buffer = torch.randn(n) if rank == 0 else torch.empty(n)
        times = []
        for i in range(repeats + 5):
            if rank == 0:  # the server: a request from any rank, then the reply
                src = dist.recv(request, src=None, tag=1)
                dist.send(buffer, dst=src, tag=2)
                continue
            t0 = time.perf_counter()
            dist.send(request, dst=0, tag=1)
            dist.recv(buffer, src=0, tag=2)
            if i >= 5:
                times.append(time.perf_counter() - t0)
        if rank == 1:
            medians[n] = statistics.median(times)
    if rank == 1:
        results.put(medians)
    dist.destroy_process_group()


def measure(kind: str, sizes: tuple[int, ...], repeats: int) -> dict[int, float]:
    """One round of ``kind`` ("p2p" or "rpc"): median round trip per size, seconds."""
    ctx = torch.multiprocessing.get_context("spawn")
    results = ctx.Queue()
    target = _p2p if kind == "p2p" else _rpc
    port = _free_port()
    procs = [ctx.Process(target=target, args=(r, port, sizes, repeats, results))
             for r in range(2)]  # fmt: skip
    for p in procs:
        p.start()
    medians = results.get(timeout=600)
    for p in procs:
        p.join(60)
    return medians


ROUNDS, REPEATS = 4, 300


def run_transport_bench(rounds: int = ROUNDS, repeats: int = REPEATS) -> None:
    """Print every round's median fetch times of both transports, and their ratio."""
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # the children stay on loopback
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows: dict[str, list[dict[int, float]]] = {"p2p": [], "rpc": []}
    print("round  transport  " + "  ".join(f"{n:>10,d}" for n in SIZES) + "   (us)")
    for r in range(rounds):
        order = ("p2p", "rpc") if r % 2 == 0 else ("rpc", "p2p")
        for kind in order:
            medians = measure(kind, SIZES, repeats)
            rows[kind].append(medians)
            cells = "  ".join(f"{medians[n] * 1e6:>10.0f}" for n in SIZES)
            print(f"{r + 1:>5}  {kind:<9}  {cells}", flush=True)
    overall = {k: {n: statistics.median(m[n] for m in v) for n in SIZES} for k, v in rows.items()}
    for kind in ("p2p", "rpc"):
        cells = "  ".join(f"{overall[kind][n] * 1e6:>10.0f}" for n in SIZES)
        print(f"median {kind:<9}  {cells}")
    ratios = "  ".join(f"{overall['rpc'][n] / overall['p2p'][n]:>10.2f}" for n in SIZES)
    print(f"rpc / p2p         {ratios}")
