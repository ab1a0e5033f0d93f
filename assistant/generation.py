"""Writing a generation of the embedded index: a new folder beside the old one, then the manifest switched to it."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .checksums import describe
from .chunking import indexed_text
from .highlight import ANALYSIS_VERSION, analyse, analysed_otherwise
from .lexical import LexicalIndex
from .quotes import find_quotes, passage_quotes
from .types import AssistantError
from .vectors import build_vector_index
from .vectors import kind as vector_kind

if TYPE_CHECKING:
    from .store import Snapshot
    from .writer import Change

FORMAT = 1
MANIFEST = "manifest.json"
SCHEMA = """
CREATE TABLE articles (id TEXT PRIMARY KEY, title TEXT, text TEXT, path TEXT, source TEXT, url TEXT,
                       published TEXT, sha TEXT, root TEXT, added REAL);
CREATE TABLE passages (id INTEGER PRIMARY KEY, article_id TEXT NOT NULL, seq INTEGER, char_start INTEGER,
                       char_end INTEGER, n_tokens INTEGER, text TEXT, vector BLOB, analysis TEXT);
CREATE INDEX passages_article ON passages(article_id);
CREATE TABLE roots (path TEXT PRIMARY KEY);
"""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old or the new content, never a part."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def write_generation(
    index_dir: Path, base: Snapshot | None, change: Change, exact_max: int = 100_000, neighbors: int = 32
) -> dict[str, Any]:
    """Write a new generation (base minus `change.remove` plus `change.add`, with its roots and meta) and switch
    to it atomically; the caller holds the writer lock.

    Vectors are searched exactly up to `exact_max` passages, by an HNSW graph of `neighbors` links above.
    A failure to write (a full disk) leaves the index as it was and is one line.
    """
    numbers = [int(p.name[4:]) for p in index_dir.glob("gen-*") if p.name[4:].isdigit()]
    name = f"gen-{max(numbers, default=0) + 1:06d}"
    for stale in index_dir.glob(".building-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = index_dir / f".building-{name}"
    try:
        vector_kind_, n_articles, n_passages, files = _build(tmp, base, change, exact_max, neighbors)
        os.rename(tmp, index_dir / name)
        _fsync_dir(index_dir)
        manifest = {
            "format": FORMAT,
            "generation": name,
            **change.meta,
            "analysis": ANALYSIS_VERSION,
            "vectors": vector_kind_,
            "articles": n_articles,
            "passages": n_passages,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": files,
        }
        write_atomic(index_dir / MANIFEST, json.dumps(manifest, indent=2).encode("utf-8"))
    except (OSError, sqlite3.Error, RuntimeError, MemoryError) as e:
        # A full disk, a folder that cannot be written: the manifest still names the last good generation.
        shutil.rmtree(tmp, ignore_errors=True)
        if (index_dir / name).exists() and _current(index_dir) != name:
            shutil.rmtree(index_dir / name, ignore_errors=True)
        reason = getattr(e, "strerror", None) or (str(e).splitlines() or [type(e).__name__])[0]
        raise AssistantError(
            f"could not write a new generation of the index in {index_dir}/ ({reason}); the index is as it was: "
            "free some space (or fix the folder) and run the same command again"
        ) from None
    for old in index_dir.glob("gen-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return manifest


def _current(index_dir: Path) -> str | None:
    """The generation the manifest names now, or None when it cannot be read."""
    try:
        return json.loads((index_dir / MANIFEST).read_text(encoding="utf-8")).get("generation")
    except (OSError, ValueError, AttributeError):
        return None


def _build(
    tmp: Path, base: Snapshot | None, change: Change, exact_max: int, neighbors: int
) -> tuple[str, int, int, dict[str, Any]]:
    """Write a generation's files into `tmp`: (vector index kind, articles, passages, file checksums)."""
    import faiss

    tmp.mkdir()
    db = sqlite3.connect(tmp / "index.sqlite")
    try:
        if base is not None:
            with base.lock:
                base.db.backup(db)
        else:
            db.executescript(SCHEMA)
        with db:
            if base is not None and analysed_otherwise(base.manifest):
                _analyse_all(db)  # an index from before passages were analysed, or analysed otherwise
            removed = _apply(db, change.remove, change.add, change.roots, change.root_of)
        meta = change.meta
        ids, vecs, texts = _all_passages(db, meta["dimension"], meta["chunking"].get("with_title", False))
        n_articles = db.execute("SELECT count(*) FROM articles").fetchone()[0]
    finally:
        db.close()
    added = sum(len(passages) for _, passages, _ in change.add)
    reuse = base.vectors if base is not None and removed == 0 else None
    index = build_vector_index(vecs, ids, exact_max, neighbors, reuse, added)
    faiss.write_index(index, str(tmp / "vectors.faiss"))
    LexicalIndex.build(texts, ids).save(tmp / "bm25")
    for f in tmp.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(tmp)
    return vector_kind(index), int(n_articles), int(len(ids)), describe(tmp)


def _apply(
    db: sqlite3.Connection, remove: Sequence[str], add: Sequence[Any], roots: Sequence[str], root_of: dict[str, str]
) -> int:
    """Delete the removed and replaced articles, insert the added ones; returns how many passages went."""
    gone = list(remove) + [a.id for a, _, _ in add]
    removed = 0
    for i in range(0, len(gone), 500):
        part = gone[i : i + 500]
        marks = ",".join("?" * len(part))
        removed += db.execute(f"DELETE FROM passages WHERE article_id IN ({marks})", part).rowcount
        db.execute(f"DELETE FROM articles WHERE id IN ({marks})", part)
    now = time.time()
    for art, passages, vectors in add:
        quotes = find_quotes(art.text)
        db.execute(
            "INSERT INTO articles VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                art.id,
                art.title,
                art.text,
                art.path,
                art.source,
                art.url,
                art.published,
                art.sha,
                root_of.get(art.id, ""),
                now,
            ),
        )
        db.executemany(
            "INSERT INTO passages (article_id, seq, char_start, char_end, n_tokens, text, vector, analysis) "
            "VALUES (?,?,?,?,?,?,?,?)",
            [
                (
                    p.article_id,
                    p.seq,
                    p.char_start,
                    p.char_end,
                    p.n_tokens,
                    p.text,
                    v.tobytes(),
                    analyse(p.text, passage_quotes(quotes, p.char_start, p.char_end)),
                )
                for p, v in zip(passages, vectors, strict=True)
            ],
        )
    db.executemany("INSERT OR IGNORE INTO roots VALUES (?)", [(r,) for r in roots])
    return removed


def _analyse_all(db: sqlite3.Connection) -> None:
    """Store every passage's `analyse` output, its quotations found over its article (adding the column to an index
    from before it)."""
    if "analysis" not in {r[1] for r in db.execute("PRAGMA table_info(passages)")}:
        db.execute("ALTER TABLE passages ADD COLUMN analysis TEXT")
    for article_id, text in db.execute("SELECT id, text FROM articles").fetchall():
        quotes = find_quotes(text)
        rows = db.execute("SELECT id, char_start, char_end, text FROM passages WHERE article_id = ?", (article_id,))
        db.executemany(
            "UPDATE passages SET analysis = ? WHERE id = ?",
            [(analyse(t, passage_quotes(quotes, s, e)), pid) for pid, s, e, t in rows.fetchall()],
        )


def _all_passages(db: sqlite3.Connection, dim: int, with_title: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rows = db.execute(
        "SELECT p.id, p.vector, a.title, p.text FROM passages p JOIN articles a ON a.id = p.article_id ORDER BY p.id"
    ).fetchall()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
    return ids, np.ascontiguousarray(vecs), [indexed_text(r[2], r[3], with_title) for r in rows]
