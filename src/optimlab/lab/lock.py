"""One planner at a time: a lock around creating a study's storage and deciding its trials.

Creating a new storage (Optuna builds its schema) and planning (reading what a study
holds, then enqueueing the rest) read and then write; two runners started together on
one study would both do them, and the second could fail while the first builds the
schema. ``planning_lock(url)`` makes them take turns:

* SQLite: ``fcntl.flock`` on ``<database file>.lock``, beside the database (in the
  study directory by default). The kernel drops the lock when its holder dies, so a
  killed runner never leaves it held.
* PostgreSQL: a session advisory lock (``pg_advisory_lock``) on a connection of its
  own, which the server drops when that connection closes, also when its process dies.
* MySQL and MariaDB: ``GET_LOCK``, the same idea.
* Other databases, an in-memory SQLite, or a system without ``fcntl``: no lock.
  Planning stays correct without it: it enqueues only the run keys a study lacks, and
  a key enqueued twice runs once (see ``optimlab.lab.store``); a race costs at most
  "duplicate" bookkeeping trials.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy

from optimlab.errors import OptimlabError
from optimlab.lab.database import cannot_open, engine_kwargs, shown

# one advisory lock per database, the same number in every process
_KEY = int.from_bytes(hashlib.sha1(b"optimlab.lab planning").digest()[:8], "big", signed=True)
_WAIT_SECONDS = 600


@contextmanager
def planning_lock(url: str) -> Iterator[None]:
    """Hold the study's planning lock (see the module docstring) while the block runs."""
    parsed = sqlalchemy.engine.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        with _file_lock(parsed.database, url):
            yield
    elif backend in ("postgresql", "mysql", "mariadb"):
        with _advisory_lock(backend, url):
            yield
    else:
        yield


@contextmanager
def _file_lock(database: str | None, url: str) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not a POSIX system
        yield
        return
    if not database or database == ":memory:" or database.startswith("file:"):
        yield  # in memory (or a URI we do not parse): no other process shares it
        return
    path = f"{database}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        raise OptimlabError(
            f"cannot open storage {shown(url)!r}: "
            f"cannot create its lock file {path!r}: {err.strerror}"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # blocks until the holder is done (or dead)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextmanager
def _advisory_lock(backend: str, url: str) -> Iterator[None]:
    if backend == "postgresql":
        take, give = "SELECT pg_advisory_lock(:key)", "SELECT pg_advisory_unlock(:key)"
        params = {"key": _KEY}
    else:
        take, give = "SELECT GET_LOCK(:name, :wait)", "SELECT RELEASE_LOCK(:name)"
        params = {"name": f"optimlab{_KEY}", "wait": _WAIT_SECONDS}
    try:
        engine = sqlalchemy.create_engine(
            url, poolclass=sqlalchemy.pool.NullPool, **engine_kwargs(url)
        )
        # autocommit: the lock belongs to the session, and no transaction stays open
        connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except Exception as err:  # the driver's many kinds all mean "cannot reach it"
        raise cannot_open(url, err) from None
    try:
        connection.execute(sqlalchemy.text(take), params)
        yield
    finally:
        try:
            connection.execute(sqlalchemy.text(give), params)
        finally:
            connection.close()
            engine.dispose()
