"""Vectors of articles embedded by an index run that has not finished: a rerun resumes instead of re-embedding."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .types import Article, AssistantError, Passage

FILE = "staging.sqlite"  # inside the index folder, beside the generations
USERS = ".staging.lock"  # every run using the staging file holds a shared lock on this; the last one may delete it
log = logging.getLogger("assistant")


class Staging:
    """Per-article vectors kept on disk (committed as they are made) until the run that needs them commits.

    Several runs may stage at once (SQLite serialises their writes). A damaged staging file is moved aside with a
    warning, never left to stop every later run; a full disk is one line.
    """

    def __init__(self, index_dir: Path, meta: dict[str, Any]) -> None:
        """Open (or create) the staging file for an index made with `meta` (model, dimension, chunking)."""
        self.path = index_dir / FILE
        self.setup = json.dumps(meta, sort_keys=True)
        self.dimension = int(meta["dimension"])
        index_dir.mkdir(parents=True, exist_ok=True)
        self._users = os.open(index_dir / USERS, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._users, fcntl.LOCK_SH)
        try:
            self.db = self._connect()
        except BaseException:
            os.close(self._users)
            raise

    def _connect(self) -> sqlite3.Connection:
        create = (
            "CREATE TABLE IF NOT EXISTS staged (article_id TEXT PRIMARY KEY, sha TEXT, setup TEXT, "
            "passages INTEGER, vectors BLOB)"
        )
        for attempt in (1, 2):
            db = sqlite3.connect(self.path, timeout=60)
            try:
                with self._writing():
                    db.execute(create)
                    db.execute("SELECT count(*) FROM staged").fetchone()
                    db.commit()
                return db
            except sqlite3.DatabaseError as e:
                db.close()
                if attempt == 2 or "locked" in str(e):
                    raise AssistantError(f"cannot use {self.path} ({e}); delete it and run again") from None
                aside = self.path.with_name(f"{FILE}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
                os.replace(self.path, aside)
                log.warning("%s was damaged (%s); moved it to %s and started afresh", self.path, e, aside.name)
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Turn a failed write to the staging file (a full disk) into one line; the index itself is untouched."""
        try:
            yield
        except sqlite3.OperationalError as e:
            if "locked" in str(e):
                raise
            raise AssistantError(
                f"cannot write {self.path} ({e}); the index is as it was: free some space and run the command again"
            ) from None

    def load(self, chunked: Sequence[tuple[Article, Sequence[Passage]]]) -> dict[str, np.ndarray]:
        """Vectors staged for these articles, where content, model, chunking and passage count all match."""
        found: dict[str, np.ndarray] = {}
        for article, passages in chunked:
            try:
                row = self.db.execute(
                    "SELECT sha, setup, passages, vectors FROM staged WHERE article_id = ?", (article.id,)
                ).fetchone()
            except sqlite3.DatabaseError as e:  # damaged after it opened: embed again rather than stop
                log.warning("cannot read %s (%s); embedding everything again", self.path, e)
                return {}
            if row and row[0] == article.sha and row[1] == self.setup and row[2] == len(passages):
                vectors = np.frombuffer(row[3], dtype=np.float32)
                if vectors.size == len(passages) * self.dimension:
                    found[article.id] = vectors.reshape(len(passages), self.dimension)
        return found

    def keep(self, done: Sequence[tuple[Article, np.ndarray]]) -> None:
        """Store freshly embedded articles; they survive an interruption from here on."""
        with self._writing(), self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO staged VALUES (?,?,?,?,?)",
                [
                    (a.id, a.sha, self.setup, len(v), np.ascontiguousarray(v, dtype=np.float32).tobytes())
                    for a, v in done
                ],
            )

    def forget(self, article_ids: Sequence[str]) -> None:
        """Drop articles that are now in the index (a failure only leaves them staged: they are checked on use)."""
        try:
            with self.db:
                self.db.executemany("DELETE FROM staged WHERE article_id = ?", [(a,) for a in article_ids])
        except sqlite3.Error as e:
            log.warning("could not clear %s (%s); it is checked before use, so it does no harm", self.path, e)

    def count(self) -> int:
        """How many articles are staged."""
        try:
            return int(self.db.execute("SELECT count(*) FROM staged").fetchone()[0])
        except sqlite3.Error:
            return -1

    def close(self) -> None:
        """Close the file, and delete it when nothing is staged any more and no other run is using it."""
        empty = self.count() == 0
        self.db.close()
        try:
            if empty:
                try:
                    fcntl.flock(self._users, fcntl.LOCK_EX | fcntl.LOCK_NB)  # no other run holds it
                except BlockingIOError:
                    return
                for suffix in ("", "-journal", "-wal", "-shm"):
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        finally:
            os.close(self._users)
