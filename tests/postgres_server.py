"""A throw-away PostgreSQL server for the tests that need one.

The ``postgres_server`` fixture (one per test session) finds Debian's server programs
(``/usr/lib/postgresql/<version>/bin``, package ``postgresql``), makes a cluster with
``initdb`` in a new temporary directory and starts it with ``pg_ctl``, listening on
127.0.0.1 at a free port and on a Unix socket in that directory. PostgreSQL refuses to
run as root, so under root the cluster belongs to the unprivileged user ``nobody``. The
superuser logs in through the socket only; the tests connect over TCP as the role
``optimlab`` with a password, as workers on other machines would. At the end of the
session the server stops (``pg_ctl stop -m fast``) and the directory is removed.

``postgres_url`` gives each test a database of its own (SQLAlchemy URL, psycopg 3).
The tests skip, with the reason, where the server programs or the driver are missing.

``OPTIMLAB_TEST_POSTGRES_URL`` overrides the server: a URL of an existing database whose
role may create databases (``CREATE ROLE ... CREATEDB``); each test's database is made
there, beside it, and dropped after the test.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

OVERRIDE = "OPTIMLAB_TEST_POSTGRES_URL"
ROLE = "optimlab"
UNPRIVILEGED = "nobody"


def find_bindir() -> Path | None:
    """The newest Debian PostgreSQL server's programs, or None."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found = [d for d in found if (d / "pg_ctl").exists() and (d / "postgres").exists()]
    return max(found, key=lambda d: int(d.parent.name), default=None) if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A running server (or the override's): ``database()`` makes a fresh database."""

    def __init__(self, admin_url: str, user_url: str) -> None:
        import sqlalchemy

        # admin: creates and drops the tests' databases; user: the URL the tests get
        self.admin = sqlalchemy.create_engine(
            admin_url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool
        )
        self.user_url = sqlalchemy.engine.make_url(user_url)

    def database(self) -> str:
        """A new, empty database; its SQLAlchemy URL (password included)."""
        import sqlalchemy

        name = f"test_{secrets.token_hex(6)}"
        owner = self.user_url.username
        with self.admin.connect() as db:
            db.execute(sqlalchemy.text(f'CREATE DATABASE {name} OWNER "{owner}"'))
        return self.user_url.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        import sqlalchemy

        name = sqlalchemy.engine.make_url(url).database
        with self.admin.connect() as db:  # FORCE: a test's killed process may hold it
            db.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


class _Cluster:
    """A cluster of its own in ``root``, run as ``user`` (None: as this process)."""

    def __init__(self, bindir: Path, root: Path, user: pwd.struct_passwd | None) -> None:
        self.bindir, self.root, self.user = bindir, root, user
        self.data, self.log = root / "data", root / "server.log"
        self.port = 0

    def run(self, *cmd: str) -> None:
        ids = {}
        if self.user is not None:
            ids = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        proc = subprocess.run(
            [str(self.bindir / cmd[0]), *cmd[1:]],
            cwd=self.root,
            env={**os.environ, "HOME": str(self.root), "LC_ALL": "C"},
            capture_output=True,
            text=True,
            timeout=120,
            **ids,
        )
        if proc.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{cmd[0]} failed:\n{proc.stdout}{proc.stderr}{log}")

    def init(self) -> None:
        self.run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-E", "UTF8", "--no-locale",
            "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--no-instructions",
        )  # fmt: skip

    def start(self) -> None:
        """Start on a free port (another, if something took the one it found)."""
        for attempt in range(3):
            self.port = _free_port()
            options = " ".join(
                f"-c {o}"
                for o in (
                    "listen_addresses=127.0.0.1",
                    f"port={self.port}",
                    f"unix_socket_directories={self.root}",
                    "fsync=off",  # a throw-away cluster: speed over durability
                    "synchronous_commit=off",
                    "full_page_writes=off",
                )
            )
            try:
                self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                         "-w", "-t", "60", "start")  # fmt: skip
                return
            except RuntimeError:
                if attempt == 2:
                    raise

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


def _start_cluster(bindir: Path) -> tuple[_Cluster, PostgresServer]:
    user = pwd.getpwnam(UNPRIVILEGED) if os.geteuid() == 0 else None
    # not pytest's tmp_path: its parents are private to root, and the server runs as nobody
    root = Path(tempfile.mkdtemp(prefix="optimlab-pg-", dir="/tmp"))
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
    cluster = _Cluster(bindir, root, user)
    try:
        cluster.init()
        cluster.start()
        admin = f"postgresql+psycopg://postgres@/postgres?host={root}&port={cluster.port}"
        password = secrets.token_urlsafe(16)
        server = PostgresServer(
            admin, f"postgresql+psycopg://{ROLE}:{password}@127.0.0.1:{cluster.port}/postgres"
        )
        import sqlalchemy

        with server.admin.connect() as db:
            db.execute(sqlalchemy.text(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{password}'"))
    except BaseException:
        _remove(cluster)
        raise
    return cluster, server


def _remove(cluster: _Cluster) -> None:
    try:
        if (cluster.data / "postmaster.pid").exists():
            cluster.stop()
    finally:
        shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        import psycopg  # noqa: F401 - the driver the URLs name
    except ImportError:
        pytest.skip("psycopg is not installed (pip install -e '.[postgres]')")
    override = os.environ.get(OVERRIDE)
    if override:
        yield PostgresServer(override, override)
        return
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL's server programs are missing (/usr/lib/postgresql/*/bin; Debian: "
            f"apt-get install postgresql), and {OVERRIDE} is not set"
        )
    cluster, server = _start_cluster(bindir)
    try:
        yield server
    finally:
        server.admin.dispose()
        _remove(cluster)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A database of this test's own on the session's PostgreSQL server."""
    url = postgres_server.database()
    yield url
    postgres_server.drop(url)
