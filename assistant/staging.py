"""Vectors of articles embedded by an index run that has not finished: a rerun resumes instead of re-embedding."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .types import Article, Passage

FILE = "staging.sqlite"  # inside the index folder, beside the generations


class Staging:
    """Per-article vectors kept on disk (committed as they are made) until the run that needs them commits."""

    def __init__(self, index_dir: Path, meta: dict[str, Any]) -> None:
        """Open (or create) the staging file for an index made with `meta` (model, dimension, chunking)."""
        self.path = index_dir / FILE
        self.setup = json.dumps(meta, sort_keys=True)
        self.dimension = int(meta["dimension"])
        self.db = sqlite3.connect(self.path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS staged (article_id TEXT PRIMARY KEY, sha TEXT, setup TEXT, "
            "passages INTEGER, vectors BLOB)"
        )
        self.db.commit()

    def load(self, chunked: Sequence[tuple[Article, Sequence[Passage]]]) -> dict[str, np.ndarray]:
        """Vectors staged for these articles, where content, model, chunking and passage count all match."""
        found: dict[str, np.ndarray] = {}
        for article, passages in chunked:
            row = self.db.execute(
                "SELECT sha, setup, passages, vectors FROM staged WHERE article_id = ?", (article.id,)
            ).fetchone()
            if row and row[0] == article.sha and row[1] == self.setup and row[2] == len(passages):
                vectors = np.frombuffer(row[3], dtype=np.float32)
                if vectors.size == len(passages) * self.dimension:
                    found[article.id] = vectors.reshape(len(passages), self.dimension)
        return found

    def keep(self, done: Sequence[tuple[Article, np.ndarray]]) -> None:
        """Store freshly embedded articles; they survive an interruption from here on."""
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO staged VALUES (?,?,?,?,?)",
                [
                    (a.id, a.sha, self.setup, len(v), np.ascontiguousarray(v, dtype=np.float32).tobytes())
                    for a, v in done
                ],
            )

    def forget(self, article_ids: Sequence[str]) -> None:
        """Drop articles that are now in the index."""
        with self.db:
            self.db.executemany("DELETE FROM staged WHERE article_id = ?", [(a,) for a in article_ids])

    def count(self) -> int:
        """How many articles are staged."""
        return int(self.db.execute("SELECT count(*) FROM staged").fetchone()[0])

    def close(self) -> None:
        """Close the file, and delete it when nothing is staged any more."""
        empty = self.count() == 0
        self.db.close()
        if empty:
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
