"""Start a launched run's processes (``sync``, ``local_sgd``, ``easgd``, and the methods
with parameter servers) with torch's elastic launcher.

``optimlab train --parallel sync --nproc N`` calls :func:`launch`, which hands
:func:`optimlab.parallel.worker.run_worker` to
``torch.distributed.launcher.api.elastic_launch``, the engine behind ``torchrun``: it
starts ``N`` processes on this machine, meets the other machines' launchers at a
rendezvous (torch's c10d rendezvous: a TCP store hosted by node 0), sets each
process's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``, watches them, and restarts the whole
group up to ``max_restarts`` times when one fails (a restarted group resumes from the
run's last checkpoint when the run has an output directory).

On one machine the rendezvous listens on the loopback address (127.0.0.1) on a port
the system picks, and gloo talks over the loopback interface. For several machines,
give every launcher the same ``--nnodes`` and ``--rdzv-endpoint HOST:PORT`` (a port of
node 0's machine) and its own ``--node-rank``; node 0 hosts the rendezvous.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from optimlab.errors import OptimlabError, check_range

LOOPBACK = "127.0.0.1"
RUN_ID = "optimlab"
# torch's elastic loggers that report a failed worker with its traceback; a user's
# mistake is reported in one line instead (see WorkerFailed for real failures).
_FAILURE_LOGGERS = ("torch.distributed.elastic.multiprocessing", "torch.multiprocessing")
_AGENT_LOGGER = "torch.distributed.elastic.agent.server.api"


@dataclass(frozen=True)
class LaunchOptions:
    """Where the processes run; nothing here changes the run's numbers.

    Attributes:
        node_rank: this machine's index among ``nnodes`` (node 0 hosts the rendezvous).
        rdzv_endpoint: ``HOST:PORT`` of the rendezvous; None: 127.0.0.1 on a free port
            (one machine only).
        rdzv_timeout: seconds to wait for the rendezvous (and for the other machines).
        max_restarts: how many times the launcher restarts the processes after a failure.
    """

    node_rank: int = 0
    rdzv_endpoint: str | None = None
    rdzv_timeout: float = 60.0
    max_restarts: int = 0

    def check(self, nnodes: int) -> None:
        check_range("node_rank", self.node_rank, 0, nnodes - 1)
        check_range("rdzv_timeout", self.rdzv_timeout, 0.0, low_open=True)
        check_range("max_restarts", self.max_restarts, 0)
        if nnodes > 1 and self.rdzv_endpoint is None:
            raise OptimlabError(
                f"nnodes {nnodes} needs a rendezvous endpoint; valid: --rdzv-endpoint "
                "HOST:PORT, the same on every machine (a port of node 0's machine)"
            )


class WorkerFailed(OptimlabError):
    """A process of the run failed for another reason than a user's mistake; ``trace``
    holds its traceback when it left one."""

    def __init__(self, message: str, trace: str = "") -> None:
        super().__init__(message)
        self.trace = trace


def parse_endpoint(text: str, nnodes: int) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) -> (host, port); port 0 (pick a free one)
    only on one machine, where no other launcher needs to know it."""
    host, sep, port_text = text.strip().rpartition(":")
    host = host.strip("[]")
    valid = "HOST:PORT with a port from 1 to 65535"
    if not sep or not host or not port_text.isdigit():
        raise OptimlabError(f"invalid rdzv_endpoint {text!r}; valid: {valid}")
    port = int(port_text)
    if port > 65535 or (port == 0 and nnodes > 1):
        raise OptimlabError(f"invalid rdzv_endpoint {text!r}; valid: {valid}")
    return host, port


def wait_until_reachable(host: str, port: int, timeout: float) -> None:
    """Return once something listens at ``host:port``; fail after ``timeout`` seconds.

    A machine other than node 0 checks this before handing over to torch, whose own
    connection attempts end in a C++ trace rather than a sentence."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=max(0.05, min(1.0, left))):
                return
        except socket.gaierror as err:
            raise OptimlabError(
                f"invalid rdzv_endpoint {host}:{port}: unknown host ({err.strerror}); "
                "valid: node 0's host name or address"
            ) from None
        except OSError as err:
            if time.monotonic() >= deadline:
                reason = err.strerror or type(err).__name__
                raise OptimlabError(
                    f"cannot reach the rendezvous at {host}:{port} within {timeout:g} s "
                    f"({reason}); valid: the endpoint where node 0 (--node-rank 0) runs, "
                    "or a longer --rdzv-timeout"
                ) from None
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


def _not_a_death_signal(record: logging.LogRecord) -> bool:
    return "death signal" not in record.getMessage()


@contextlib.contextmanager
def _quiet_failures() -> Iterator[None]:
    """Keep torch's failure logs (tracebacks, "received death signal") off the terminal
    while the launcher runs; :func:`launch` reports a failure or a signal itself. The
    agent's notes on restarts stay."""
    loggers = [logging.getLogger(name) for name in _FAILURE_LOGGERS]
    levels = [lg.level for lg in loggers]
    agent = logging.getLogger(_AGENT_LOGGER)
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    agent.addFilter(_not_a_death_signal)
    try:
        yield
    finally:
        agent.removeFilter(_not_a_death_signal)
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@contextlib.contextmanager
def _environment(changes: dict[str, str]) -> Iterator[None]:
    before = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _loopback_store(host_name: str, port: int, *args: Any, **kwargs: Any) -> Any:
    """torch's ``TCPStore``, a server listening on the loopback address only."""
    import torch.distributed as dist

    is_master = kwargs.pop("is_master", args[1] if len(args) > 1 else False)
    args = args[:1]  # world_size; is_master is a keyword from here on
    if not is_master:
        return dist.TCPStore(host_name, port, *args, is_master=False, **kwargs)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, port))
        listener.listen(socket.SOMAXCONN)
    except OSError as err:
        listener.close()
        # as torch's own store reports it (a RuntimeError), so that the rendezvous fails
        # as it would without this (see rendezvous_failure)
        raise RuntimeError(f"cannot listen on {LOOPBACK}:{port}: {err.strerror}") from err
    port = listener.getsockname()[1]
    # the store owns the listening socket from here on
    return dist.TCPStore(LOOPBACK, port, *args, is_master=True,
                         master_listen_fd=listener.detach(), **kwargs)  # fmt: skip


@contextlib.contextmanager
def _stores_on_loopback() -> Iterator[None]:
    """Make the TCP stores this launcher hosts listen on 127.0.0.1 only.

    torch's elastic launcher hosts two stores (the rendezvous's, and the one its
    processes share) and binds them to every interface of the machine, whatever the
    rendezvous address; a run on one machine needs none but loopback. Both are made
    in torch's rendezvous code, which takes no listening address: the two places that
    make them are pointed at :func:`_loopback_store` while the launcher runs."""
    from torch.distributed.elastic.rendezvous import c10d_rendezvous_backend as backend
    from torch.distributed.elastic.rendezvous.dynamic_rendezvous import (
        DynamicRendezvousHandler as Handler,
    )

    def server(handler: Any, master_addr: str, master_port: int) -> Any:
        return _loopback_store(master_addr, master_port, is_master=True, multi_tenant=True)

    before = backend.TCPStore, Handler._create_tcp_store_server
    backend.TCPStore = _loopback_store
    Handler._create_tcp_store_server = server  # type: ignore[method-assign]
    try:
        yield
    finally:
        backend.TCPStore, Handler._create_tcp_store_server = before  # type: ignore[method-assign]


def _loopback_interface() -> str | None:
    """The name of the loopback interface (``lo`` on Linux), if the system lists one."""
    names = [name for _, name in socket.if_nameindex()]
    return next((n for n in ("lo", "lo0") if n in names), None)


def worker_failure(err: Any) -> OptimlabError:
    """The error to report for torch's ``ChildFailedError``: the first failure's own
    message for a user's mistake, else which process failed and how."""
    rank, failure = err.get_first_failure()
    message = failure.message
    trace = ""
    if isinstance(message, dict):
        trace = str(message.get("extraInfo", {}).get("py_callstack", ""))
        message = str(message.get("message", ""))
    message = str(message).strip()
    prefix = f"{OptimlabError.__name__}: "
    if message.startswith(prefix):
        return OptimlabError(message[len(prefix) :])
    if failure.exitcode is not None and failure.exitcode < 0:
        return WorkerFailed(f"process {rank} was killed by signal {failure.signal_name()}")
    return WorkerFailed(f"process {rank} failed (exit code {failure.exitcode}): {message}", trace)


# what torch's store client says when the other end of its connection has gone
_CONNECTION_LOST = ("Broken pipe", "Connection was likely closed", "Connection reset")


def rendezvous_failure(
    err: BaseException, host: str, port: int, is_host: bool = True
) -> OptimlabError:
    """The error to report for a failed rendezvous (``is_host``: this launcher is node
    0's, which hosts it)."""
    cause = err.__cause__ or err
    text = str(cause)
    if "EADDRINUSE" in text or "already in use" in text:
        return OptimlabError(
            f"port {port} on {host} is already in use; valid: a free port in "
            "--rdzv-endpoint, or no --rdzv-endpoint on one machine (a free port is picked)"
        )
    if not is_host and any(words in text for words in _CONNECTION_LOST):
        # node 0's launcher ends without waiting for the others once its processes fail
        return OptimlabError(
            f"lost the rendezvous at {host}:{port}: node 0's launcher has ended; its own "
            "error says why"
        )
    first = text.strip().splitlines()[0] if text.strip() else type(cause).__name__
    return OptimlabError(f"rendezvous at {host}:{port} failed: {first}")


def launch(
    config: Any, options: LaunchOptions, *, resume: bool | str = "auto", progress: bool = False
) -> dict[str, Any] | None:
    """Run ``config`` (a ``RunConfig`` with a launched ``parallel`` method) in
    ``config.nproc`` processes here, as node ``options.node_rank`` of ``config.nnodes``;
    return the run's summary where rank 0 ran, else None."""
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous import RendezvousError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from optimlab.parallel.methods import check_resumable
    from optimlab.parallel.worker import run_worker

    nproc, nnodes = config.nproc or 1, config.nnodes or 1
    options.check(nnodes)
    check_resumable(config, resume)
    host, port = parse_endpoint(options.rdzv_endpoint or f"{LOOPBACK}:0", nnodes)
    is_host = options.node_rank == 0
    if not is_host:
        wait_until_reachable(host, port, options.rdzv_timeout)
    settings = config.replace(nproc=nproc, nnodes=nnodes).to_json()
    timeout = max(1, round(options.rdzv_timeout))
    env: dict[str, str] = {}
    loopback = nnodes == 1 and host in (LOOPBACK, "localhost")
    interface = _loopback_interface() if loopback else None
    if interface is not None and "GLOO_SOCKET_IFNAME" not in os.environ:
        env["GLOO_SOCKET_IFNAME"] = interface  # one machine: gloo stays on loopback too
    with tempfile.TemporaryDirectory(prefix="optimlab-launch-") as logs:
        launch_config = LaunchConfig(
            min_nodes=nnodes,
            max_nodes=nnodes,
            nproc_per_node=nproc,
            run_id=RUN_ID,
            rdzv_backend="c10d",
            rdzv_endpoint=f"{host}:{port}",
            rdzv_configs={"is_host": is_host, "read_timeout": timeout, "join_timeout": timeout},
            max_restarts=options.max_restarts,
            monitor_interval=0.1,
            start_method="spawn",
            logs_specs=DefaultLogsSpecs(log_dir=logs),
            local_addr=LOOPBACK if loopback else None,
        )
        on_loopback = loopback and host == LOOPBACK
        local = _stores_on_loopback() if on_loopback else contextlib.nullcontext()
        with _environment(env), _quiet_failures(), local:
            try:
                results = elastic_launch(launch_config, run_worker)(settings, resume, progress)
            except ChildFailedError as err:
                raise worker_failure(err) from None
            except RendezvousError as err:
                raise rendezvous_failure(err, host, port, is_host) from None
            except SignalException as err:
                # the launcher has ended the processes; report the signal, not a trace
                raise stopped_by(err.sigval) from None
    return results.get(0)


def stopped_by(sigval: signal.Signals) -> BaseException:
    """Ctrl-C as KeyboardInterrupt; another signal as a one-line error."""
    if sigval == signal.SIGINT:
        return KeyboardInterrupt()
    return OptimlabError(
        f"the launcher was stopped by {signal.Signals(sigval).name} and ended its "
        "processes; with --out, the same command resumes from the last checkpoint"
    )
