"""The index on disk: segments (SQLite, vectors, BM25 postings) named all at once by manifest.json."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .checksums import damaged
from .generation import MANIFEST, READS
from .highlight import analysed_otherwise
from .lock import writer_lock
from .segment import Segment
from .types import AssistantError


def segment_entries(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The segments a manifest names; a format-1 manifest's generation folder is read as one segment."""
    if manifest.get("format") == 1:
        gen = manifest["generation"]
        return [{"name": gen, "legacy": True, "passages": manifest.get("passages"), "files": manifest.get("files")}]
    entries = manifest["segments"]
    if not isinstance(entries, list):
        raise TypeError("segments")
    return entries


def rebuild_hint(index_dir: Path) -> str:
    """The command that rebuilds an index from its articles."""
    flag = "" if str(index_dir) == "index" else f" --index-dir {index_dir}"
    return f"assistant index --rebuild{flag} PATH..."


class Snapshot:
    """One loaded, consistent state of the index (the segments its manifest names), ready for search."""

    def __init__(self, index_dir: Path, manifest: dict[str, Any], segments: list[Segment]) -> None:
        """Wrap loaded segments (in id order) and the whole index's BM25 statistics."""
        self.index_dir, self.manifest, self.segments = index_dir, manifest, segments
        self.firsts = np.array([int(s.ids[0]) if len(s.ids) else 0 for s in segments], dtype=np.int64)
        self.count = sum(s.count for s in segments)
        total = sum(
            float(np.asarray(s.postings.lengths, dtype=np.float64)[s.live].sum())
            if s.live is not None
            else float(np.asarray(s.postings.lengths, dtype=np.float64).sum())
            for s in segments
        )
        self.avg_length = total / max(self.count, 1)
        self.analysed = not analysed_otherwise(manifest)
        self._where: dict[str, int] | None = None
        self._meta: dict[str, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def where(self) -> dict[str, int]:
        """Each live article's segment (its position in `segments`)."""
        with self._lock:
            if self._where is None:
                self._where = {a: i for i, s in enumerate(self.segments) for a in s.articles_live()}
            return self._where

    def holder(self, article_id: str) -> Segment | None:
        """The segment that holds a live article."""
        i = self.where().get(article_id)
        return None if i is None else self.segments[i]

    def locate(self, ids: np.ndarray) -> list[tuple[Segment, np.ndarray, np.ndarray]]:
        """Passage ids by segment: (segment, positions in `ids`, rows in the segment)."""
        ids = np.asarray(ids, dtype=np.int64)
        which = np.searchsorted(self.firsts, ids, side="right") - 1
        out = []
        for i in np.unique(which):
            at = np.flatnonzero(which == i)
            seg = self.segments[int(i)]
            out.append((seg, at, np.searchsorted(seg.ids, ids[at])))
        return out

    def passages(self, ids: Sequence[int]) -> dict[int, tuple[str, int, int, str, str | None]]:
        """(article_id, char_start, char_end, text, analysis or None) for passage ids."""
        out: dict[int, tuple[str, int, int, str, str | None]] = {}
        analysis = "analysis" if self.analysed else "NULL"
        for seg, at, _ in self.locate(np.asarray(list(ids), dtype=np.int64)):
            wanted = [int(i) for i in np.asarray(list(ids), dtype=np.int64)[at]]
            marks = ",".join("?" * len(wanted))
            sql = f"SELECT id, article_id, char_start, char_end, text, {analysis} FROM passages WHERE id IN ({marks})"
            out.update((r[0], r[1:]) for r in seg.query(sql, wanted))
        return out

    def article_text(self, article_id: str) -> str | None:
        """The cleaned text of an article, as passages' spans refer to it."""
        seg = self.holder(article_id)
        rows = seg.query("SELECT text FROM articles WHERE id = ?", (article_id,)) if seg is not None else []
        return rows[0][0] if rows else None

    def article_meta(self, article_id: str) -> dict[str, Any] | None:
        """An article's title, source, path, url and published date."""
        seg = self.holder(article_id)
        if seg is None:
            return None
        rows = seg.query("SELECT title, source, path, url, published FROM articles WHERE id = ?", (article_id,))
        return dict(zip(("title", "source", "path", "url", "published"), rows[0], strict=True)) if rows else None

    def all_meta(self) -> dict[str, dict[str, Any]]:
        """Every live article's metadata, by id (in id order); read once, on first use."""
        with self._lock:
            if self._meta is None:
                meta = {}
                for seg in self.segments:
                    for r in seg.query("SELECT id, title, source, path, url, published FROM articles"):
                        if r[0] not in seg.deleted:
                            meta[r[0]] = dict(zip(("title", "source", "path", "url", "published"), r[1:], strict=True))
                self._meta = dict(sorted(meta.items()))
            return self._meta

    def article_shas(self, ids: Sequence[str] | None = None) -> dict[str, str]:
        """Content hash of every indexed article, or of those of `ids` that are indexed."""
        return self._by_id("sha", ids)

    def article_roots(self, ids: Sequence[str] | None = None) -> dict[str, str]:
        """The root (folder or file given) each indexed article (or each of `ids` that is) was read from."""
        return self._by_id("root", ids)

    def _by_id(self, column: str, ids: Sequence[str] | None) -> dict[str, str]:
        """id -> column of every live article, or of the given ones (looked up by key, 500 at a time)."""
        out: dict[str, str] = {}
        for seg in self.segments:
            if ids is None:
                rows = seg.query(f"SELECT id, {column} FROM articles")
            else:
                mine = sorted(set(ids) & seg.article_set())
                rows = []
                for at in range(0, len(mine), 500):
                    part = mine[at : at + 500]
                    rows += seg.query(
                        f"SELECT id, {column} FROM articles WHERE id IN ({','.join('?' * len(part))})", part
                    )
            out.update((a, v) for a, v in rows if a not in seg.deleted)
        return out

    def roots(self) -> list[str]:
        """The folders and files this index was built from."""
        if self.manifest.get("format") == 1 and self.segments:
            return [r[0] for r in self.segments[0].query("SELECT path FROM roots ORDER BY path")]
        return sorted(self.manifest.get("roots") or [])

    def articles_under(self, roots: Sequence[str]) -> set[str]:
        """Ids of the articles that were read from any of these roots."""
        marks = ",".join("?" * len(roots))
        found: set[str] = set()
        for seg in self.segments:
            rows = seg.query(f"SELECT id FROM articles WHERE root IN ({marks})", list(roots))
            found.update(r[0] for r in rows if r[0] not in seg.deleted)
        return found

    def close(self) -> None:
        """Close every segment's database."""
        for seg in self.segments:
            seg.close()


class Store:
    """An index folder: `manifest.json` names the current generation folder; writers take a lock."""

    def __init__(self, index_dir: str | Path) -> None:
        """Point at an index folder (it need not exist yet)."""
        self.dir = Path(index_dir)

    def exists(self) -> bool:
        """Whether an index (complete or damaged) is there."""
        return (self.dir / MANIFEST).exists() or any(self.dir.glob("gen-*")) or any(self.dir.glob("seg-*"))

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
        if data.get("format") not in READS:
            raise AssistantError(
                f"index in {self.dir}/ has format {data.get('format')}, this version reads {READS[-1]}; "
                f"rebuild with: {rebuild_hint(self.dir)}"
            )
        try:
            names = [s["name"] for s in segment_entries(data)]
        except (KeyError, TypeError):
            raise AssistantError(f"{path} is damaged; rebuild with: {rebuild_hint(self.dir)}") from None
        if not isinstance(gen, str) or any(not isinstance(n, str) or "/" in n or n.startswith(".") for n in names):
            raise AssistantError(f"{path} is damaged; rebuild with: {rebuild_hint(self.dir)}")
        if any(not (self.dir / n).is_dir() for n in names):
            raise AssistantError(f"{path} names a missing segment; rebuild with: {rebuild_hint(self.dir)}")
        return data

    def open(self) -> Snapshot:
        """Load the current generation, checking that its parts agree."""
        manifest = self.manifest()
        for _ in range(3):
            try:
                return self._open(manifest)
            except AssistantError:
                # A writer may have switched generations and removed a segment of this one while we read it.
                fresh = self.manifest()
                if fresh["generation"] == manifest["generation"]:
                    raise
                manifest = fresh
        return self._open(manifest)

    def _open(self, manifest: dict[str, Any], full: bool = False) -> Snapshot:
        hint = rebuild_hint(self.dir)
        problem = self.verify(manifest, full)
        if problem:
            raise AssistantError(f"index in {self.dir}/ is damaged: {problem}; rebuild with: {hint}")
        with_title = bool((manifest.get("chunking") or {}).get("with_title", False))
        segments: list[Segment] = []
        try:
            for info in segment_entries(manifest):
                info = {**info, "dimension": manifest.get("dimension")}  # where a graph file's vectors begin
                segments.append(Segment(self.dir / info["name"], info, with_title))
        except AssistantError as e:
            for seg in segments:
                seg.close()
            raise AssistantError(f"index in {self.dir}/ is damaged: {e}; rebuild with: {hint}") from None
        except (sqlite3.Error, OSError, ValueError, KeyError, RuntimeError) as e:
            for seg in segments:
                seg.close()
            what = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
            raise AssistantError(f"index in {self.dir}/ is damaged ({what}); rebuild with: {hint}") from None
        snap = Snapshot(self.dir, manifest, segments)
        if manifest.get("passages") is not None and snap.count != manifest["passages"]:
            snap.close()
            raise AssistantError(
                f"index in {self.dir}/ is inconsistent ({snap.count} passages, the manifest says "
                f"{manifest['passages']}); rebuild with: {hint}"
            )
        return snap

    def verify(self, manifest: dict[str, Any], full: bool = False) -> str | None:
        """What is wrong with the index's files against the checksums in its manifest (None: all match; an index
        written before checksums were kept has none to check). Cheap unless `full` (see checksums.damaged)."""
        for info in segment_entries(manifest):
            folder = self.dir / info["name"]
            if not folder.is_dir():
                return f"{info['name']}/ is missing"
            files = info.get("files")
            problem = damaged(folder, files, full) if isinstance(files, dict) else None
            if problem:
                return f"{info['name']}/{problem}"
            gone = info.get("deleted")
            if gone:
                try:
                    data = (folder / gone["file"]).read_bytes()
                except OSError:
                    return f"{info['name']}/{gone['file']} is missing"
                if hashlib.sha256(data).hexdigest() != gone.get("sha256"):
                    return f"{info['name']}/{gone['file']} does not match its checksum"
        return None

    def check(self, full: bool = False) -> dict[str, Any]:
        """Check the index (its checksums, cheaply or `full`; its parts' agreement; with `full` also SQLite's
        integrity check of every segment); a one-line error naming what is wrong, else a summary."""
        manifest = self.manifest()
        snap = self._open(manifest, full)
        try:
            for seg in snap.segments if full else []:
                verdict = seg.query("PRAGMA integrity_check")[0][0]
                if verdict != "ok":
                    hint = rebuild_hint(self.dir)
                    raise AssistantError(f"index database in {seg.folder} is damaged ({verdict}); {hint}")
        finally:
            snap.close()
        entries = segment_entries(manifest)
        n_files = sum(len(e["files"]) for e in entries if isinstance(e.get("files"), dict))
        how = "every byte" if full else "sizes, whole hashes up to 32 MB, samples of larger files"
        checked = (
            f"{n_files} files match their checksums ({how})"
            if all(isinstance(e.get("files"), dict) for e in entries)
            else "written before checksums were kept (the next write adds them)"
        )
        message = (
            f"index in {self.dir}/ is sound: {manifest['generation']}, {len(entries)} segment(s), "
            f"{manifest.get('articles')} articles, {manifest.get('passages')} passages; {checked}"
        )
        return {"ok": True, "generation": manifest["generation"], "full": full, "message": message}

    @contextlib.contextmanager
    def writing(self, wait_s: float | None = None) -> Iterator[float]:
        """Hold the writer lock (one writer at a time per folder); wait for another writer, saying so, up to `wait_s`
        seconds (None: as long as it takes). Yields the seconds waited."""
        with writer_lock(self.dir, wait_s) as waited:
            yield waited
