"""The index on disk: generations of (SQLite, FAISS, BM25) switched atomically by manifest.json."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .checksums import damaged
from .generation import FORMAT, MANIFEST
from .highlight import analysed_otherwise
from .lexical import LexicalIndex
from .lock import writer_lock
from .types import AssistantError
from .vectors import flat_matrix, half_copy


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

    def article_shas(self, ids: Sequence[str] | None = None) -> dict[str, str]:
        """Content hash of every indexed article, or of those of `ids` that are indexed."""
        return self._by_id("sha", ids)

    def _by_id(self, column: str, ids: Sequence[str] | None) -> dict[str, str]:
        """id -> column of every article, or of the given ones (looked up by key, 500 at a time)."""
        with self.lock:
            if ids is None:
                return dict(self.db.execute(f"SELECT id, {column} FROM articles").fetchall())
            out: dict[str, str] = {}
            for at in range(0, len(ids), 500):
                part = list(ids[at : at + 500])
                sql = f"SELECT id, {column} FROM articles WHERE id IN ({','.join('?' * len(part))})"
                out.update(self.db.execute(sql, part).fetchall())
            return out

    def roots(self) -> list[str]:
        """The folders and files this index was built from."""
        with self.lock:
            return [r[0] for r in self.db.execute("SELECT path FROM roots ORDER BY path")]

    def article_roots(self, ids: Sequence[str] | None = None) -> dict[str, str]:
        """The root (folder or file given) each indexed article (or each of `ids` that is) was read from."""
        return self._by_id("root", ids)

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

    def _open(self, manifest: dict[str, Any], full: bool = False) -> Snapshot:
        import faiss

        gen = self.dir / manifest["generation"]
        hint = rebuild_hint(self.dir)
        problem = self.verify(manifest, full)
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
            "analysis" in columns and not analysed_otherwise(manifest),
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
        snap = self._open(manifest, full)
        try:
            if full:
                with snap.lock:
                    verdict = snap.db.execute("PRAGMA integrity_check").fetchone()[0]
                if verdict != "ok":
                    hint = rebuild_hint(self.dir)
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
