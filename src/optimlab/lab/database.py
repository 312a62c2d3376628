"""Connecting to a study's database: engine settings per backend, URLs shown without their
password, and one-line errors for a database that cannot be used.

SQLite waits up to a minute for a lock that another worker holds. PostgreSQL gives up a
connection attempt after ``CONNECT_TIMEOUT`` seconds (libpq waits indefinitely by
default, so an address that drops packets would hang the command), and pings a pooled
connection before reusing it, so that a worker whose connection the server or a
firewall closed during a long run reconnects instead of failing.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy

from optimlab.errors import OptimlabError

CONNECT_TIMEOUT = 10  # seconds; a URL's own ?connect_timeout= wins


def backend(url: str) -> str:
    """``"sqlite"``, ``"postgresql"``, ... (``""`` for a string that is no database URL)."""
    try:
        return sqlalchemy.engine.make_url(url).get_backend_name()
    except sqlalchemy.exc.ArgumentError:
        return ""


def shown(url: str) -> str:
    """``url`` as messages print it: with ``***`` in place of a password."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


def engine_kwargs(url: str) -> dict[str, Any]:
    """Keyword arguments for ``sqlalchemy.create_engine(url, ...)`` (see the module docstring)."""
    name = backend(url)
    if name == "sqlite":
        return {"connect_args": {"timeout": 60}}
    if name == "postgresql":
        query = sqlalchemy.engine.make_url(url).query
        connect = {} if "connect_timeout" in query else {"connect_timeout": CONNECT_TIMEOUT}
        return {"connect_args": connect, "pool_pre_ping": True}
    return {}


def cannot_open(url: str, err: BaseException) -> OptimlabError:
    """The one-line error for a storage that cannot be used: the URL (without its
    password) and the first line of the database's or the driver's reason."""
    if isinstance(err, ModuleNotFoundError):
        return OptimlabError(
            f"cannot open storage {shown(url)!r}: its database driver is not installed "
            f"({err.name}); for PostgreSQL: pip install 'optimlab[postgres]' (psycopg 3, "
            "URLs postgresql+psycopg://USER@HOST:PORT/DATABASE)"
        )
    reason = str(getattr(err, "orig", None) or err).strip().splitlines()
    return OptimlabError(
        f"cannot open storage {shown(url)!r}: {type(err).__name__}: "
        f"{reason[0] if reason else 'no reason given'}"
    )
