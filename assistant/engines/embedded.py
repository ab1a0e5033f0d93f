"""The embedded engine: generations of SQLite, FAISS and bm25s files in a folder (store.py), behind the contract."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..generation import write_generation
from ..store import Snapshot, Store, rebuild_hint
from ..vectors import HALF_ERROR, dot_rows, scan, search_params
from .base import Filter, PassageRow, Scored

FILTERED_EXACT_MAX = 50_000  # filtered searches of a graph over at most this many passages score them all exactly


class EmbeddedView:
    """One loaded generation: FAISS for cosines, bm25s for BM25, SQLite for passages and articles."""

    def __init__(self, snap: Snapshot) -> None:
        """Wrap a loaded generation."""
        self.snap = snap
        self.generation: str = snap.manifest["generation"]
        self.meta: dict[str, Any] = snap.manifest
        self.location = f"{snap.index_dir}/"
        self._position = {a: i for i, a in enumerate(snap.article_ids)}
        self._memo = threading.local()  # the last full score array per thread: top-k and scores-for-ids share it
        self.stamp: Any = None  # the manifest file's identity when opened (EmbeddedEngine.changed)

    def reading(self) -> contextlib.AbstractContextManager[None]:
        """Nothing to do: a loaded generation never changes."""
        return contextlib.nullcontext()

    # -- filters and rows -------------------------------------------------------------------------------
    def _row_mask(self, where: Filter | None) -> np.ndarray | None:
        """Which rows (passages in id order) a filter admits; None for all."""
        if where is None:
            return None
        snap = self.snap
        allowed = [i for i, a in enumerate(snap.article_ids) if where.admits(a, snap.articles[a])]
        return np.isin(snap.row_article, np.array(allowed, dtype=np.int64))

    def _rows(self, ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.snap.lexical.ids, ids)

    def _articles_of(self, rows: np.ndarray) -> list[str]:
        article_ids = self.snap.article_ids
        return [article_ids[i] for i in self.snap.row_article[rows]]

    def _scored(self, rows: np.ndarray, scores: np.ndarray) -> Scored:
        order = np.argsort(-scores, kind="stable")
        rows, scores = rows[order], scores[order]
        return Scored(self.snap.lexical.ids[rows], self._articles_of(rows), scores.astype(np.float32))

    def _memoized(self, key: tuple, compute: Any) -> np.ndarray:
        memo = getattr(self._memo, "value", None)
        if memo is None or memo[0] != key:
            memo = (key, compute())
            self._memo.value = memo
        return memo[1]

    # -- dense ------------------------------------------------------------------------------------------
    def _all_cosines(self, qvec: np.ndarray) -> np.ndarray:
        return self._memoized(("dense", qvec.tobytes()), lambda: dot_rows(self.snap.flat, qvec))

    def _half_top(self, qvec: np.ndarray, k: int) -> np.ndarray | None:
        """Rows of the k best cosines of an exact index, found by scanning its 16-bit copy for 2k and scoring
        those exactly; None when that cannot be sure of them (a row left out might be within HALF_ERROR)."""
        snap = self.snap
        if snap.half is None or 2 * k >= len(snap.flat):
            return None
        near, rows = scan(snap.half, qvec, 2 * k)
        exact = dot_rows(snap.flat[rows], qvec)
        best = np.argpartition(-exact, k - 1)[:k]
        if near[-1] + HALF_ERROR >= exact[best].min():
            return None
        return rows[best]

    def dense_top(self, qvec: np.ndarray, k: int, where: Filter | None, ef_search: int) -> Scored:
        """The k passages with the highest cosine: exact (a 16-bit scan first) or by the HNSW graph."""
        import faiss

        snap = self.snap
        total = len(snap.lexical.ids)
        mask = self._row_mask(where)
        k = min(k, total)
        if k == 0 or (mask is not None and not mask.any()):
            return Scored.empty()
        if snap.flat is not None:
            if mask is None and (rows := self._half_top(qvec, k)) is not None:
                return self._scored(rows, dot_rows(snap.flat[rows], qvec))
            sims = self._all_cosines(qvec)
            if mask is not None:
                sims = np.where(mask, sims, -np.inf)
            rows = np.argpartition(-sims, k - 1)[:k] if k < total else np.arange(total)
            rows = rows[np.isfinite(sims[rows])]
            return self._scored(rows, sims[rows])
        if mask is not None and mask.sum() <= FILTERED_EXACT_MAX:
            # A graph visits few of a small allowed set: score those passages exactly instead.
            rows = np.flatnonzero(mask)
            sims = dot_rows(snap.vectors.reconstruct_batch(snap.lexical.ids[rows]), qvec)
            best = np.argsort(-sims)[:k]
            return self._scored(rows[best], sims[best])
        selector = None if mask is None else faiss.IDSelectorBatch(snap.lexical.ids[mask])
        sims, ids = scan(snap.vectors, qvec, k, search_params(snap.vectors, selector, ef_search))
        keep = ids >= 0
        return self._scored(self._rows(ids[keep]), sims[keep])

    def dense_scores(self, qvec: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The cosine of each given passage (read off the exact matrix, or rebuilt from the graph's vectors)."""
        snap = self.snap
        if not len(ids):
            return np.zeros(0, np.float32)
        if snap.flat is not None:
            memo = getattr(self._memo, "value", None)
            if memo is not None and memo[0] == ("dense", qvec.tobytes()):
                return memo[1][self._rows(ids)].astype(np.float32)
            return dot_rows(snap.flat[self._rows(ids)], qvec).astype(np.float32)
        return dot_rows(snap.vectors.reconstruct_batch(ids), qvec).astype(np.float32)

    # -- lexical ----------------------------------------------------------------------------------------
    def _bm25(self, terms: Sequence[str], mask: np.ndarray | None) -> np.ndarray:
        key = ("bm25", tuple(terms), None if mask is None else mask.tobytes())
        weights = None if mask is None else mask.astype(np.float32)
        return self._memoized(key, lambda: self.snap.lexical.scores(terms, weights))

    def lexical_top(self, terms: Sequence[str], k: int, where: Filter | None) -> Scored:
        """The k passages with the highest BM25 score above 0 (bm25s over every row)."""
        total = len(self.snap.lexical.ids)
        mask = self._row_mask(where)
        if not total or not terms or (mask is not None and not mask.any()):
            return Scored.empty()
        scores = self._bm25(terms, mask)
        k = min(k, total)
        rows = np.argpartition(-scores, k - 1)[:k] if k < total else np.arange(total)
        rows = rows[scores[rows] > 0]
        return self._scored(rows, scores[rows])

    def lexical_scores(self, terms: Sequence[str], ids: np.ndarray) -> np.ndarray:
        """The BM25 score of each given passage."""
        if not len(ids) or not terms:
            return np.zeros(len(ids), np.float32)
        return self._bm25(terms, None)[self._rows(ids)].astype(np.float32)

    def term_stats(self, terms: Sequence[str], article_ids: Sequence[str]) -> dict[str, tuple[float, set[str]]]:
        """Each term's IDF and which of the given articles hold it (read off the BM25 postings)."""
        lex, snap = self.snap.lexical, self.snap
        wanted = {self._position[a] for a in article_ids if a in self._position}
        out = {}
        for t in terms:
            rows = lex.rows_with(t)
            if not len(rows):
                out[t] = (lex.max_idf, set())
                continue
            held = set(np.unique(snap.row_article[rows]).tolist()) & wanted
            out[t] = (lex.idf(t), {snap.article_ids[i] for i in held})
        return out

    def idf(self, term: str) -> float:
        """A stemmed term's IDF (0 when unknown)."""
        return self.snap.lexical.idf(term)

    def expand(self, prefix: str, limit: int) -> list[str]:
        """Indexed terms beginning with a prefix, the most common first."""
        return self.snap.lexical.starting_with(prefix, limit)

    # -- rows -------------------------------------------------------------------------------------------
    def passages(self, ids: Sequence[int]) -> dict[int, PassageRow]:
        """Passages by id, from SQLite."""
        return self.snap.passages(ids)

    def article(self, article_id: str) -> dict[str, Any] | None:
        """An article's metadata."""
        return self.snap.articles.get(article_id)

    def articles(self) -> list[dict[str, Any]]:
        """Every article's id and metadata."""
        return [{"id": a, **self.snap.articles[a]} for a in self.snap.article_ids]

    def article_text(self, article_id: str) -> str | None:
        """An article's cleaned text."""
        return self.snap.article_text(article_id)

    def shas(self, article_ids: Sequence[str] | None = None) -> dict[str, str]:
        """Content hashes of indexed articles."""
        return self.snap.article_shas(None if article_ids is None else list(article_ids))

    def article_roots(self, article_ids: Sequence[str]) -> dict[str, str]:
        """The root each of these articles was read from."""
        return self.snap.article_roots(list(article_ids))

    def roots(self) -> list[str]:
        """The folders and files the index was built from."""
        return self.snap.roots()

    def articles_under(self, roots: Sequence[str]) -> set[str]:
        """Ids of the articles read from these roots."""
        return self.snap.articles_under(roots)

    def paths_in_use(self, paths: Sequence[str], besides: Sequence[str]) -> set[str]:
        """Which of these paths an article other than `besides` comes from."""
        skip, wanted = set(besides), set(paths)
        return {m.get("path") for a, m in self.snap.articles.items() if a not in skip and m.get("path") in wanted}

    def close(self) -> None:
        """Close the generation's database."""
        self.snap.close()


class EmbeddedEngine:
    """The default engine: an index folder on this machine; one writer at a time (a lock file), atomic switches."""

    def __init__(self, index_dir: str | Path) -> None:
        """An engine over an index folder (it need not exist yet)."""
        self.store = Store(index_dir)
        self.location = f"{self.store.dir}/"

    def exists(self) -> bool:
        """Whether an index folder is there."""
        return self.store.exists()

    def open(self) -> EmbeddedView:
        """The current generation."""
        stamp = self.store.stamp()
        view = EmbeddedView(self.store.open())
        view.stamp = stamp
        return view

    def changed(self, view: EmbeddedView) -> bool:
        """Whether the manifest file was replaced since the view was opened (a stat, no read)."""
        return self.store.stamp() != view.stamp

    def writing(self, wait_s: float | None = None) -> contextlib.AbstractContextManager[float]:
        """The folder's writer lock."""
        return self.store.writing(wait_s)

    @contextlib.contextmanager
    def latest(self, base: EmbeddedView | None) -> Iterator[EmbeddedView | None]:
        """The generation to build on: `base` when it is still current, else the current one (None: no index)."""
        if not self.store.exists():
            yield None
            return
        if base is not None and base.meta == self.store.manifest():
            yield base
            return
        view = self.open()
        try:
            yield view
        finally:
            view.close()

    def commit(self, latest: EmbeddedView | None, change: Any, exact_max: int, neighbors: int) -> dict[str, Any]:
        """Write a new generation and switch the manifest to it."""
        return write_generation(self.store.dir, None if latest is None else latest.snap, change, exact_max, neighbors)

    def check(self, full: bool = False) -> dict[str, Any]:
        """Checksums and agreement of the current generation's files."""
        return self.store.check(full)

    def rebuild_hint(self) -> str:
        """The command that rebuilds this index."""
        return rebuild_hint(self.store.dir)
