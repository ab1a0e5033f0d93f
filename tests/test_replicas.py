"""Scale out for real: a PostgreSQL primary and a streaming read replica, searches on the replica, either going away."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant import Assistant, pgserver
from assistant.types import AssistantError

from .conftest import engine_settings, server_folder
from .fakes import HashEmbedder

LAG_S = 5.0  # a write is searchable on the replica within this (measured here: well under a second)


@pytest.fixture
def cluster() -> Iterator[tuple[pgserver.Server, pgserver.Server]]:
    """A primary and its streaming replica of its own (the tests stop them)."""
    with server_folder() as folder:
        primary = pgserver.start(folder / "primary", password="pw-replica-test")
        yield primary, pgserver.replica(primary, folder / "replica")


def _seeded(tmp_path: Path, seeds: Path, primary: pgserver.Server, replica: pgserver.Server) -> tuple[Assistant, ...]:
    """A writer on the primary that has indexed the seeds, and a reader on the replica that sees them."""
    writer = Assistant(engine_settings("postgres", tmp_path / "w", primary.url), embedder=HashEmbedder())
    settings = engine_settings("postgres", tmp_path / "r", primary.url).replace("index", read_urls=[replica.url])
    reader = Assistant(settings, embedder=HashEmbedder())
    writer.add([seeds])
    _until(lambda: reader.engine.exists() and len(_ids(reader)) == 5)
    return writer, reader


def _until(check, limit: float = LAG_S) -> float:  # noqa: ANN001
    """Seconds until `check()` is true (fails past `limit`)."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < limit, f"not seen within {limit} s"
        time.sleep(0.01)
    return time.monotonic() - start


def _ferry(folder: Path, name: str = "ferry.txt") -> Path:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text("Ferry strike\n\nThe island ferry crews walked out on Monday over pay.")
    return folder


def _ids(a: Assistant) -> set[str]:
    return {x["id"] for x in a.articles()}


def test_searches_go_to_the_replica_and_see_a_write_within_the_lag(tmp_path, seeds_copy, cluster):
    primary, replica = cluster
    writer, reader = _seeded(tmp_path, seeds_copy, primary, replica)
    with reader.engine.reader() as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]  # the reader reads the replica
    before = reader.search("ferry crews walked out", k=3)
    writer.add([_ferry(tmp_path / "extra")])
    lag = _until(lambda: "ferry.txt" in {h.citations[0].article_id for h in reader.search("ferry crews", k=3)})
    print(f"write visible on the replica after {lag * 1000:.0f} ms")
    assert all(h.citations[0].article_id != "ferry.txt" for h in before)
    with pytest.raises(AssistantError, match="read-only|cannot connect"):  # nothing writes through a replica
        Assistant(engine_settings("postgres", tmp_path / "x", replica.url), embedder=HashEmbedder()).remove(
            ["ferry.txt"]
        )


def test_the_replica_going_away_sends_searches_to_the_primary_with_a_warning(tmp_path, seeds_copy, cluster, caplog):
    primary, replica = cluster
    writer, reader = _seeded(tmp_path, seeds_copy, primary, replica)
    expected = [h.citations[0] for h in reader.search("What did Zelensky say to Russians?", k=5)]
    replica.kill()
    with caplog.at_level(logging.WARNING, logger="assistant"):
        hits = reader.search("What did Zelensky say to Russians?", k=5)
    assert [h.citations[0] for h in hits] == expected
    assert any("searching the primary" in r.getMessage() for r in caplog.records)
    assert all(replica.password not in r.getMessage() for r in caplog.records)  # the URL is shown without it


def test_the_primary_going_away_leaves_searches_on_the_replica_and_writes_fail_in_one_line(
    tmp_path, seeds_copy, cluster
):
    primary, replica = cluster
    writer, reader = _seeded(tmp_path, seeds_copy, primary, replica)
    expected = [h.citations[0] for h in reader.search("prisoner swap Medvedchuk", k=5)]
    primary.kill()
    assert [h.citations[0] for h in reader.search("prisoner swap Medvedchuk", k=5)] == expected
    with pytest.raises(AssistantError) as failed:
        reader.add([_ferry(tmp_path / "extra")])
    message = str(failed.value)
    assert "\n" not in message and "cannot connect" in message and primary.password not in message
    restarted = pgserver.start(primary.data)
    assert restarted.port == primary.port
    assert _ids(writer) == _ids(reader) and "ferry.txt" not in _ids(writer)  # nothing half-written
    assert writer.check(full=True)["ok"]
