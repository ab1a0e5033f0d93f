"""The index on disk: generations of (SQLite, FAISS, BM25) switched atomically by manifest.json."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .checksums import damaged, describe
from .chunking import indexed_text
from .highlight import ANALYSIS_VERSION, analyse
from .lexical import LexicalIndex
from .lock import writer_lock
from .types import Article, AssistantError, Passage
from .vectors import build_vector_index, flat_matrix, half_copy
from .vectors import kind as vector_kind

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


def rebuild_hint(index_dir: Path) -> str:
    """The command that rebuilds an index from its articles."""
    flag = "" if str(index_dir) == "index" else f" --index-dir {index_dir}"
    return f"assistant index --rebuild{flag} PATH..."


@dataclass
class Snapshot:
    """One loaded, consistent generation of the index, ready for search."""

    index_dir: Path
    manifest: dict[str, Any]
    db: sqlite3.Connection
    vectors: Any  # faiss.Index with passage ids
    lexical: LexicalIndex
    articles: dict[str, dict[str, str]]
    row_article: np.ndarray  # article index (into article_ids) of each lexical row
    article_ids: list[str]
    lock: threading.Lock
    flat: np.ndarray | None = None  # an exact index's vectors, row i = lexical row i (see vectors.flat_matrix)
    half: Any = None  # the flat rows in 16-bit floats, scanned first (see vectors.half_copy)
    analysed: bool = False  # whether passages carry their `highlight.analyse` output (indexes before it do not)

    @property
    def generation_dir(self) -> Path:
        """The folder of this generation."""
        return self.index_dir / self.manifest["generation"]

    def passages(self, ids: Sequence[int]) -> dict[int, tuple[str, int, int, str, str | None]]:
        """(article_id, char_start, char_end, text, analysis or None) for passage ids."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        analysis = "analysis" if self.analysed else "NULL"
        with self.lock:
            rows = self.db.execute(
                f"SELECT id, article_id, char_start, char_end, text, {analysis} FROM passages WHERE id IN ({marks})",
                [int(i) for i in ids],
            ).fetchall()
        return {r[0]: r[1:] for r in rows}

    def article_text(self, article_id: str) -> str | None:
        """The cleaned text of an article, as passages' spans refer to it."""
        with self.lock:
            row = self.db.execute("SELECT text FROM articles WHERE id = ?", (article_id,)).fetchone()
        return row[0] if row else None

    def article_shas(self) -> dict[str, str]:
        """Content hash of every indexed article."""
        with self.lock:
            return dict(self.db.execute("SELECT id, sha FROM articles").fetchall())

    def roots(self) -> list[str]:
        """The folders and files this index was built from."""
        with self.lock:
            return [r[0] for r in self.db.execute("SELECT path FROM roots ORDER BY path")]

    def article_roots(self) -> dict[str, str]:
        """The root (folder or file given) each indexed article was read from."""
        with self.lock:
            return dict(self.db.execute("SELECT id, root FROM articles").fetchall())

    def articles_under(self, roots: Sequence[str]) -> set[str]:
        """Ids of the articles that were read from any of these roots."""
        marks = ",".join("?" * len(roots))
        with self.lock:
            return {r[0] for r in self.db.execute(f"SELECT id FROM articles WHERE root IN ({marks})", list(roots))}

    def close(self) -> None:
        """Close the database connection."""
        self.db.close()


class Store:
    """An index folder: `manifest.json` names the current generation folder; writers take a lock."""

    def __init__(self, index_dir: str | Path) -> None:
        """Point at an index folder (it need not exist yet)."""
        self.dir = Path(index_dir)

    def exists(self) -> bool:
        """Whether an index (complete or damaged) is there."""
        return (self.dir / MANIFEST).exists() or any(self.dir.glob("gen-*"))

    def stamp(self) -> tuple[int, int] | None:
        """Identity of the current manifest file (inode, mtime): it changes whenever a writer switches generations."""
        try:
            st = os.stat(self.dir / MANIFEST)
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns

    def manifest(self) -> dict[str, Any]:
        """The manifest, or a one-line error saying what is wrong with it."""
        path = self.dir / MANIFEST
        if not path.exists():
            if not self.exists():
                raise AssistantError(f"no index in {self.dir}/; build one with: assistant index PATH (e.g. seeds/)")
            raise AssistantError(f"{path} is missing; rebuild with: {rebuild_hint(self.dir)}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            gen = data["generation"]
        except (ValueError, KeyError, TypeError):
            raise AssistantError(f"{path} is damaged; rebuild with: {rebuild_hint(self.dir)}") from None
        if data.get("format") != FORMAT:
            raise AssistantError(
                f"index in {self.dir}/ has format {data.get('format')}, this version reads {FORMAT}; "
                f"rebuild with: {rebuild_hint(self.dir)}"
            )
        if not isinstance(gen, str) or "/" in gen or not (self.dir / gen).is_dir():
            raise AssistantError(f"{path} names a missing generation; rebuild with: {rebuild_hint(self.dir)}")
        return data

    def open(self) -> Snapshot:
        """Load the current generation, checking that its parts agree."""
        manifest = self.manifest()
        for _ in range(3):
            try:
                return self._open(manifest)
            except AssistantError:
                # A writer may have switched generations and removed this one while we read it.
                fresh = self.manifest()
                if fresh["generation"] == manifest["generation"]:
                    raise
                manifest = fresh
        return self._open(manifest)

    def _open(self, manifest: dict[str, Any]) -> Snapshot:
        import faiss

        gen = self.dir / manifest["generation"]
        hint = rebuild_hint(self.dir)
        problem = self.verify(manifest)
        if problem:
            raise AssistantError(f"index in {self.dir}/ is damaged: {problem}; rebuild with: {hint}")
        try:
            db = sqlite3.connect(f"file:{gen / 'index.sqlite'}?mode=ro", uri=True, check_same_thread=False)
            n_pass = db.execute("SELECT count(*) FROM passages").fetchone()[0]
            rows = db.execute("SELECT id, title, source, path, url, published FROM articles ORDER BY id").fetchall()
            pid_art = db.execute("SELECT id, article_id FROM passages ORDER BY id").fetchall()
            columns = {r[1] for r in db.execute("PRAGMA table_info(passages)")}
        except sqlite3.Error as e:
            raise AssistantError(f"index database in {gen} is damaged ({e}); rebuild with: {hint}") from None
        try:
            vectors = faiss.read_index(str(gen / "vectors.faiss"))
        except RuntimeError:
            raise AssistantError(f"vector file in {gen} is damaged or missing; rebuild with: {hint}") from None
        try:
            lexical = LexicalIndex.load(gen / "bm25")
        except (OSError, ValueError, KeyError) as e:
            raise AssistantError(f"BM25 index in {gen} is damaged ({type(e).__name__}); rebuild with: {hint}") from None
        counts = {
            "database": n_pass,
            "vectors": vectors.ntotal,
            "bm25": len(lexical.ids),
            "manifest": manifest.get("passages"),
        }
        if len(set(counts.values())) != 1:
            raise AssistantError(
                f"index in {self.dir}/ is inconsistent (passage counts {counts}); rebuild with: {hint}"
            )
        articles = {r[0]: {"title": r[1], "source": r[2], "path": r[3], "url": r[4], "published": r[5]} for r in rows}
        article_ids = [r[0] for r in rows]
        position = {a: i for i, a in enumerate(article_ids)}
        row_article = np.array([position[a] for _, a in pid_art], dtype=np.int64)
        if not np.array_equal(lexical.ids, np.array([p for p, _ in pid_art], dtype=np.int64)):
            raise AssistantError(f"BM25 index in {gen} does not match the passages; rebuild with: {hint}")
        flat = flat_matrix(vectors)
        if flat is not None and not np.array_equal(flat[1], lexical.ids):
            raise AssistantError(f"vector file in {gen} does not match the passages; rebuild with: {hint}")
        return Snapshot(
            self.dir,
            manifest,
            db,
            vectors,
            lexical,
            articles,
            row_article,
            article_ids,
            threading.Lock(),
            None if flat is None else flat[0],
            None if flat is None else half_copy(flat[0]),
            "analysis" in columns and manifest.get("analysis") == ANALYSIS_VERSION,
        )

    def verify(self, manifest: dict[str, Any], full: bool = False) -> str | None:
        """What is wrong with a generation's files against the checksums in its manifest (None: all match; an index
        written before checksums were kept has none to check). Cheap unless `full` (see checksums.damaged)."""
        files = manifest.get("files")
        if not isinstance(files, dict):
            return None
        return damaged(self.dir / manifest["generation"], files, full)

    def check(self, full: bool = False) -> dict[str, Any]:
        """Check the current generation (its checksums, cheaply or `full`; its parts' agreement; with `full` also
        SQLite's integrity check); a one-line error naming what is wrong, else a summary."""
        manifest = self.manifest()
        problem = self.verify(manifest, full)
        hint = rebuild_hint(self.dir)
        if problem:
            raise AssistantError(f"index in {self.dir}/ is damaged: {problem}; rebuild with: {hint}")
        snap = self._open(manifest)
        try:
            if full:
                with snap.lock:
                    verdict = snap.db.execute("PRAGMA integrity_check").fetchone()[0]
                if verdict != "ok":
                    raise AssistantError(f"index database in {snap.generation_dir} is damaged ({verdict}); {hint}")
        finally:
            snap.close()
        files = manifest.get("files")
        how = "every byte" if full else "sizes, whole hashes up to 32 MB, samples of larger files"
        checked = (
            f"{len(files)} files match their checksums ({how})"
            if isinstance(files, dict)
            else "written before checksums were kept (the next write adds them)"
        )
        message = (
            f"index in {self.dir}/ is sound: {manifest['generation']}, {manifest.get('articles')} articles, "
            f"{manifest.get('passages')} passages; {checked}"
        )
        return {"ok": True, "generation": manifest["generation"], "full": full, "message": message}

    @contextlib.contextmanager
    def writing(self, wait_s: float | None = None) -> Iterator[float]:
        """Hold the writer lock (one writer at a time per folder); wait for another writer, saying so, up to `wait_s`
        seconds (None: as long as it takes). Yields the seconds waited."""
        with writer_lock(self.dir, wait_s) as waited:
            yield waited

    def commit(
        self,
        base: Snapshot | None,
        remove: Sequence[str],
        add: Sequence[tuple[Article, Sequence[Passage], np.ndarray]],
        roots: Sequence[str],
        root_of: dict[str, str],
        meta: dict[str, Any],
        exact_max: int = 100_000,
        neighbors: int = 32,
    ) -> dict[str, Any]:
        """Write a new generation (base minus `remove` plus `add`) and switch to it atomically.

        Vectors are searched exactly up to `exact_max` passages, by an HNSW graph of `neighbors` links above.
        A failure to write (a full disk) leaves the index as it was and is one line.
        """
        numbers = [int(p.name[4:]) for p in self.dir.glob("gen-*") if p.name[4:].isdigit()]
        name = f"gen-{max(numbers, default=0) + 1:06d}"
        for stale in self.dir.glob(".building-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = self.dir / f".building-{name}"
        try:
            vector_kind_, n_articles, n_passages, files = self._build(
                tmp, base, remove, add, roots, root_of, meta, exact_max, neighbors
            )
            os.rename(tmp, self.dir / name)
            _fsync_dir(self.dir)
            manifest = {
                "format": FORMAT,
                "generation": name,
                **meta,
                "analysis": ANALYSIS_VERSION,
                "vectors": vector_kind_,
                "articles": n_articles,
                "passages": n_passages,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "files": files,
            }
            write_atomic(self.dir / MANIFEST, json.dumps(manifest, indent=2).encode("utf-8"))
        except (OSError, sqlite3.Error, RuntimeError, MemoryError) as e:
            # A full disk, a folder that cannot be written: the manifest still names the last good generation.
            shutil.rmtree(tmp, ignore_errors=True)
            if (self.dir / name).exists() and self._current() != name:
                shutil.rmtree(self.dir / name, ignore_errors=True)
            reason = getattr(e, "strerror", None) or (str(e).splitlines() or [type(e).__name__])[0]
            raise AssistantError(
                f"could not write a new generation of the index in {self.dir}/ ({reason}); the index is as it was: "
                "free some space (or fix the folder) and run the same command again"
            ) from None
        for old in self.dir.glob("gen-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        return manifest

    def _current(self) -> str | None:
        """The generation the manifest names now, or None when it cannot be read."""
        try:
            return json.loads((self.dir / MANIFEST).read_text(encoding="utf-8")).get("generation")
        except (OSError, ValueError, AttributeError):
            return None

    def _build(
        self,
        tmp: Path,
        base: Snapshot | None,
        remove: Sequence[str],
        add: Sequence[tuple[Article, Sequence[Passage], np.ndarray]],
        roots: Sequence[str],
        root_of: dict[str, str],
        meta: dict[str, Any],
        exact_max: int,
        neighbors: int,
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
                if base is not None and base.manifest.get("analysis") != ANALYSIS_VERSION:
                    self._analyse_all(db)  # an index from before passages were analysed, or analysed otherwise
                removed = self._apply(db, remove, add, roots, root_of)
            ids, vecs, texts = self._all_passages(db, meta["dimension"], meta["chunking"].get("with_title", False))
            n_articles = db.execute("SELECT count(*) FROM articles").fetchone()[0]
        finally:
            db.close()
        added = sum(len(passages) for _, passages, _ in add)
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

    @staticmethod
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
                    (p.article_id, p.seq, p.char_start, p.char_end, p.n_tokens, p.text, v.tobytes(), analyse(p.text))
                    for p, v in zip(passages, vectors, strict=True)
                ],
            )
        db.executemany("INSERT OR IGNORE INTO roots VALUES (?)", [(r,) for r in roots])
        return removed

    @staticmethod
    def _analyse_all(db: sqlite3.Connection) -> None:
        """Store every passage's `analyse` output (adding the column to an index from before it)."""
        if "analysis" not in {r[1] for r in db.execute("PRAGMA table_info(passages)")}:
            db.execute("ALTER TABLE passages ADD COLUMN analysis TEXT")
        last = -1
        page = "SELECT id, text FROM passages WHERE id > ? ORDER BY id LIMIT 5000"
        while rows := db.execute(page, (last,)).fetchall():
            db.executemany("UPDATE passages SET analysis = ? WHERE id = ?", [(analyse(t), pid) for pid, t in rows])
            last = rows[-1][0]

    @staticmethod
    def _all_passages(db: sqlite3.Connection, dim: int, with_title: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
        rows = db.execute(
            "SELECT p.id, p.vector, a.title, p.text FROM passages p "
            "JOIN articles a ON a.id = p.article_id ORDER BY p.id"
        ).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
        return ids, np.ascontiguousarray(vecs), [indexed_text(r[2], r[3], with_title) for r in rows]
