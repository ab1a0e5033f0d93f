"""What following has seen: per URL (validators, content hash, article id) and per source (the last poll's outcome),
in a small SQLite file of its own in the index folder, each poll's changes committed in one transaction."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any

from ..types import AssistantError

FILE = "follow.sqlite"  # in the index folder (both engines), beside staging.sqlite and uploads/
SCHEMA = """
CREATE TABLE IF NOT EXISTS urls (url TEXT PRIMARY KEY, etag TEXT, last_modified TEXT, text_hash TEXT,
    article_id TEXT, fingerprint TEXT, last_seen TEXT);
CREATE INDEX IF NOT EXISTS urls_by_hash ON urls (text_hash);
CREATE TABLE IF NOT EXISTS sources (target TEXT PRIMARY KEY, kind TEXT, last_poll TEXT, added INTEGER,
    updated INTEGER, last_error TEXT, next_poll TEXT, etag TEXT, last_modified TEXT);
CREATE TABLE IF NOT EXISTS failures (url TEXT PRIMARY KEY, at TEXT, count INTEGER);
"""


@dataclass
class UrlState:
    """What the last successful fetch of a URL gave."""

    url: str
    etag: str = ""
    last_modified: str = ""
    text_hash: str = ""  # of the article's words: the same text at another URL is not indexed twice
    article_id: str = ""  # the article it is indexed as (another URL's, when its text was the same)
    fingerprint: str = ""  # of its feed item or sitemap entry: a change means fetch the page again
    last_seen: str = ""


@dataclass
class SourceState:
    """A followed target and its last poll: what it is, what it added and updated, its error, the next poll."""

    target: str
    kind: str = ""
    last_poll: str = ""
    added: int = 0
    updated: int = 0
    last_error: str = ""
    next_poll: str = ""
    etag: str = ""
    last_modified: str = ""

    def public(self) -> dict[str, Any]:
        """The fields a face shows (validators left out)."""
        return {k: v for k, v in vars(self).items() if k not in ("etag", "last_modified")}


def stamp(at: float | None = None) -> str:
    """A UTC time as ISO 8601 ('2026-12-03T14:50:00Z')."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if at is None else at))


class FollowState:
    """The follow state of one index folder."""

    def __init__(self, folder: Path) -> None:
        """Open (or create) the state file in the index folder."""
        self.path = Path(folder) / FILE
        with self._errors("open"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(SCHEMA)

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """A failing state file (a full disk, damage) as one line naming it."""
        try:
            yield
        except sqlite3.Error as e:
            raise AssistantError(f"cannot {doing} {self.path} ({e}); free some space, or delete the file") from None
        except OSError as e:
            raise AssistantError(f"cannot {doing} {self.path} ({e.strerror or e})") from None

    def url(self, url: str) -> UrlState | None:
        """What is known of a URL."""
        row = self.db.execute("SELECT * FROM urls WHERE url = ?", (url,)).fetchone()
        return UrlState(*row) if row else None

    def same_text(self, text_hash: str, besides: str) -> UrlState | None:
        """Another URL whose article had this text, if any."""
        row = self.db.execute(
            "SELECT * FROM urls WHERE text_hash = ? AND url != ? AND article_id != '' LIMIT 1", (text_hash, besides)
        ).fetchone()
        return UrlState(*row) if row else None

    def source(self, target: str) -> SourceState:
        """A target's state (a blank one when it was never polled)."""
        row = self.db.execute("SELECT * FROM sources WHERE target = ?", (target,)).fetchone()
        return SourceState(*row) if row else SourceState(target)

    def failures(self, urls: Sequence[str]) -> dict[str, tuple[str, int]]:
        """For each of these URLs whose page could not be read at its last try: when that was, and how many tries
        in a row failed."""
        wanted = set(urls)  # one read of the table (a few rows), not a query per entry of a feed of thousands
        rows = self.db.execute("SELECT url, at, count FROM failures").fetchall()
        return {url: (str(at), int(count)) for url, at, count in rows if url in wanted}

    def save(
        self, urls: Sequence[UrlState], sources: Sequence[SourceState], failed: Sequence[str] = (), at: str = ""
    ) -> None:
        """Record a poll: every URL and source state, and the URLs whose page failed at `at` (a URL read since is
        no longer one), in one transaction (all or nothing)."""
        with self._errors("write"), self.db:
            for table, rows in (("urls", urls), ("sources", sources)):
                if rows:
                    marks = ",".join("?" * len(fields(rows[0])))
                    self.db.executemany(f"INSERT OR REPLACE INTO {table} VALUES ({marks})", [astuple(r) for r in rows])
            self.db.executemany("DELETE FROM failures WHERE url = ?", [(u.url,) for u in urls])
            self.db.executemany(
                "INSERT INTO failures VALUES (?, ?, 1) ON CONFLICT (url) DO UPDATE SET at = excluded.at, "
                "count = count + 1",
                [(url, at or stamp()) for url in dict.fromkeys(failed)],
            )

    def close(self) -> None:
        """Close the file."""
        self.db.close()


def followed(folder: Path) -> list[dict[str, Any]]:
    """Every followed source's last poll, as plain data, from the state file of an index folder ([] when none)."""
    path = Path(folder) / FILE
    if not path.exists():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
            rows = db.execute("SELECT * FROM sources ORDER BY target").fetchall()
    except sqlite3.Error as e:
        raise AssistantError(f"cannot read {path} ({e}); delete it to start following afresh") from None
    return [SourceState(*row).public() for row in rows]
