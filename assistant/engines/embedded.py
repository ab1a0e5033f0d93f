"""The embedded engine: segments of SQLite, vectors and BM25 postings in a folder (store.py), behind the contract."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis import idf
from ..generation import FORMAT, MERGE_FACTOR, collect, write_generation
from ..highlight import analysed_otherwise
from ..segment import Segment
from ..store import Snapshot, Store, rebuild_hint
from ..vectors import HALF_ERROR, dot_rows, scan, search_params
from .base import Filter, PassageRow, Scored
from .listing import ArticleQuery, newest_first, row

MASKS_KEPT = 16  # a view keeps the rows of this many filters (a question's dates make one a search)
FILTERED_EXACT_MAX = 50_000  # filtered searches of a graph over at most this many passages score them all exactly


class EmbeddedView:
    """One loaded state: per segment FAISS or a matrix for cosines, postings for BM25, SQLite for passages and
    articles; results merged over segments as one index of every live passage would give them."""

    def __init__(self, snap: Snapshot) -> None:
        """Wrap a loaded state."""
        self.snap = snap
        self.generation: str = snap.manifest["generation"]
        self.meta: dict[str, Any] = snap.manifest
        self.location = f"{snap.index_dir}/"
        self._memo = threading.local()  # the last full score arrays per thread: top-k and scores-for-ids share them
        self._df: dict[str, int] = {}
        self._norms: dict[int, np.ndarray] = {}
        self._masks: dict[Filter, list[np.ndarray | None]] = {}  # the last filters' rows (a date read in a question)
        self._lock = threading.Lock()
        self.stamp: Any = None  # the manifest file's identity when opened (EmbeddedEngine.changed)
        self._newest: list[tuple[str, Any]] | None = None  # every article newest first, sorted once (listing)

    def reading(self, terms: Sequence[str] = ()) -> contextlib.AbstractContextManager[None]:
        """Nothing to do: a loaded state never changes (and every term's postings are at hand)."""
        return contextlib.nullcontext()

    # -- filters and merging ----------------------------------------------------------------------------
    def _allowed(self, where: Filter | None) -> list[np.ndarray | None]:
        """Per segment, the rows that are live and that a filter admits (None: every row)."""
        if where is None:
            return [seg.live for seg in self.snap.segments]
        cached = self._masks.get(where)
        if cached is not None:
            return cached
        meta = self.snap.all_meta()
        out = []
        for seg in self.snap.segments:
            codes = [i for i, a in enumerate(seg.article_ids) if a in meta and where.admits(a, meta[a])]
            out.append(seg.mask(np.isin(np.asarray(seg.row_article), np.array(codes, dtype=np.int64))))
        with self._lock:
            if len(self._masks) >= MASKS_KEPT:
                self._masks.pop(next(iter(self._masks)))  # the oldest goes
            self._masks[where] = out
        return out

    def _merged(self, parts: list[tuple[Segment, np.ndarray, np.ndarray]], k: int) -> Scored:
        """The k best of each segment's (rows, scores), best first; ties in passage id order."""
        parts = [(seg, rows, scores) for seg, rows, scores in parts if len(rows)]
        if not parts:
            return Scored.empty()
        parts = [(seg, rows[order], scores[order]) for seg, rows, scores in parts for order in [np.argsort(rows)]]
        ids = np.concatenate([seg.ids[rows] for seg, rows, _ in parts])
        scores = np.concatenate([scores for _, _, scores in parts]).astype(np.float32)
        arts = [seg.article_ids[c] for seg, rows, _ in parts for c in seg.row_article[rows]]
        order = np.argsort(-scores, kind="stable")[:k]
        return Scored(ids[order], [arts[i] for i in order], scores[order])

    def _memoized(self, key: tuple, compute: Any) -> Any:
        memo = getattr(self._memo, "value", None)
        if memo is None or memo[0] != key:
            memo = (key, compute())
            self._memo.value = memo
        return memo[1]

    # -- dense ------------------------------------------------------------------------------------------
    def dense_top(self, qvec: np.ndarray, k: int, where: Filter | None, ef_search: int) -> Scored:
        """The k passages with the highest cosine: exact in matrix segments (a 16-bit scan first), by the HNSW
        graph in graph segments."""
        parts = []
        for seg, mask in zip(self.snap.segments, self._allowed(where), strict=True):
            rows, sims = _dense_segment(seg, qvec, k, mask, ef_search)
            parts.append((seg, rows, sims))
        return self._merged(parts, k)

    def dense_scores(self, qvec: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The cosine of each given passage."""
        out = np.zeros(len(ids), np.float32)
        for seg, at, rows in self.snap.locate(ids):
            out[at] = dot_rows(seg.matrix[rows], qvec)
        return out

    # -- lexical ----------------------------------------------------------------------------------------
    def _df_of(self, term: str) -> int:
        """How many live passages hold a term."""
        with self._lock:
            if term not in self._df:
                n = 0
                for seg in self.snap.segments:
                    rows, _ = seg.postings.holding(term)
                    n += int(seg.live[rows].sum()) if seg.live is not None else len(rows)
                self._df[term] = n
            return self._df[term]

    def _weighted(self, terms: Sequence[str]) -> list[tuple[str, float]]:
        n = self.snap.count
        return [(t, float(idf(df, n))) for t in terms if (df := self._df_of(t))]

    def _bm25(self, terms: Sequence[str]) -> list[np.ndarray]:
        """Every row's BM25 score, per segment (deleted rows too; callers mask them)."""

        def compute() -> list[np.ndarray]:
            weighted = self._weighted(terms)
            out = []
            for i, seg in enumerate(self.snap.segments):
                scores = np.zeros(len(seg.ids), np.float32)
                if weighted:
                    with self._lock:
                        if i not in self._norms:
                            self._norms[i] = seg.postings.norms(self.snap.avg_length)
                    seg.postings.scores(weighted, self._norms[i], scores)
                out.append(scores)
            return out

        return self._memoized(("bm25", tuple(terms)), compute)

    def lexical_top(self, terms: Sequence[str], k: int, where: Filter | None) -> Scored:
        """The k passages with the highest BM25 score above 0."""
        if not self.snap.count or not terms:
            return Scored.empty()
        parts = []
        for seg, scores, mask in zip(self.snap.segments, self._bm25(terms), self._allowed(where), strict=True):
            if mask is not None:
                scores = np.where(mask, scores, 0)
            kk = min(k, len(scores))
            rows = np.argpartition(-scores, kk - 1)[:kk] if kk < len(scores) else np.arange(len(scores))
            rows = rows[scores[rows] > 0]
            parts.append((seg, rows, scores[rows]))
        return self._merged(parts, k)

    def lexical_scores(self, terms: Sequence[str], ids: np.ndarray) -> np.ndarray:
        """The BM25 score of each given passage."""
        out = np.zeros(len(ids), np.float32)
        if not len(ids) or not terms:
            return out
        per_segment = dict(zip(map(id, self.snap.segments), self._bm25(terms), strict=True))
        for seg, at, rows in self.snap.locate(ids):
            out[at] = per_segment[id(seg)][rows]
        return out

    def term_stats(self, terms: Sequence[str], article_ids: Sequence[str]) -> dict[str, tuple[float, set[str]]]:
        """Each term's IDF and which of the given articles hold it (read off the postings)."""
        n = self.snap.count
        wanted_codes = [seg.codes(article_ids) for seg in self.snap.segments]
        out = {}
        for t in terms:
            df = self._df_of(t)
            if not df:
                out[t] = (float(idf(0.0, n)), set())
                continue
            held: set[str] = set()
            for seg, codes in zip(self.snap.segments, wanted_codes, strict=True):
                if not len(codes):
                    continue
                rows, _ = seg.postings.holding(t)  # ascending: an article holds the term if one falls in its rows
                starts, ends = seg.spans
                hit = np.searchsorted(rows, ends[codes]) > np.searchsorted(rows, starts[codes])
                held.update(seg.article_ids[c] for c in codes[hit & (starts[codes] >= 0)])
            out[t] = (float(idf(df, n)), held)
        return out

    def idf(self, term: str) -> float:
        """A stemmed term's IDF (0 when no live passage holds it)."""
        df = self._df_of(term)
        return float(idf(df, self.snap.count)) if df else 0.0

    def expand(self, prefix: str, limit: int) -> list[str]:
        """Indexed terms beginning with a prefix, the most common first."""
        found = {t for seg in self.snap.segments for t in seg.postings.starting_with(prefix)}
        counted = [(t, self._df_of(t)) for t in found]
        return [t for t, df in sorted(counted, key=lambda x: (-x[1], x[0])) if df][:limit]

    # -- rows -------------------------------------------------------------------------------------------
    def passages(self, ids: Sequence[int]) -> dict[int, PassageRow]:
        """Passages by id, from the segments' SQLite."""
        return self.snap.passages(ids)

    def article(self, article_id: str) -> dict[str, Any] | None:
        """An article's metadata."""
        return self.snap.article_meta(article_id)

    def metas(self, article_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Several articles' metadata at once, by id (those not indexed left out)."""
        found = {a: self.snap.article_meta(a) for a in dict.fromkeys(article_ids)}
        return {a: m for a, m in found.items() if m is not None}

    def articles(self) -> list[dict[str, Any]]:
        """Every article's id and metadata."""
        return [{"id": a, **m} for a, m in self.snap.all_meta().items()]

    def listing(self, query: ArticleQuery, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """A page of the articles the query admits, newest first, and how many it admits: a scan of the metadata
        (read and sorted once per view; 0.15 s at 100,000 articles, none without a search); passages counted for the
        page's articles only."""
        with self._lock:
            if self._newest is None:
                self._newest = newest_first(self.snap.all_meta().items())
        admitted = self._newest if query.everything else [(a, m) for a, m in self._newest if query.admits(a, m)]
        page = admitted[offset : offset + limit]
        counts: dict[str, int] = {}
        where = self.snap.where()
        for i in {where[a] for a, _ in page}:
            mine = [a for a, _ in page if where[a] == i]
            sql = f"SELECT article_id, count(*) FROM passages WHERE article_id IN ({','.join('?' * len(mine))})"
            counts.update(self.snap.segments[i].query(sql + " GROUP BY article_id", mine))
        return [row(a, m, counts.get(a, 0)) for a, m in page], len(admitted)

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
        return {m.get("path") for a, m in self.snap.all_meta().items() if a not in skip and m.get("path") in wanted}

    def close(self) -> None:
        """Close the segments' databases."""
        self.snap.close()


def _half_top(seg: Segment, qvec: np.ndarray, k: int) -> np.ndarray | None:
    """Rows of the k best cosines of a matrix segment, found by scanning its 16-bit copy for 2k and scoring those
    exactly; None when that cannot be sure of them (a row left out might be within HALF_ERROR)."""
    if seg.half is None or 2 * k >= len(seg.ids):
        return None
    near, rows = scan(seg.half, qvec, 2 * k)
    exact = dot_rows(seg.matrix[rows], qvec)
    best = np.argpartition(-exact, k - 1)[:k]
    if near[-1] + HALF_ERROR >= exact[best].min():
        return None
    return rows[best]


def _dense_segment(
    seg: Segment, qvec: np.ndarray, k: int, mask: np.ndarray | None, ef_search: int
) -> tuple[np.ndarray, np.ndarray]:
    """One segment's k best (rows, cosines) among the rows `mask` allows (None: all)."""
    import faiss

    total = len(seg.ids)
    k = min(k, total)
    if k == 0 or (mask is not None and not mask.any()):
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    if seg.graph is None:
        if mask is None and (rows := _half_top(seg, qvec, k)) is not None:
            return rows, dot_rows(np.asarray(seg.matrix[rows]), qvec)
        sims = dot_rows(np.asarray(seg.matrix), qvec)
        if mask is not None:
            sims = np.where(mask, sims, -np.inf)
        rows = np.argpartition(-sims, k - 1)[:k] if k < total else np.arange(total)
        rows = rows[np.isfinite(sims[rows])]
        return rows, sims[rows]
    if mask is not None and mask.sum() <= FILTERED_EXACT_MAX:
        # A graph visits few of a small allowed set: score those passages exactly instead.
        rows = np.flatnonzero(mask)
        sims = dot_rows(np.asarray(seg.matrix[rows]), qvec)
        best = np.argsort(-sims)[:k]
        return rows[best], sims[best]
    selector = None
    if mask is not None:
        bits = np.packbits(mask.astype(np.uint8), bitorder="little")
        selector = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
    sims, rows = scan(seg.graph, qvec, k, search_params(seg.graph, selector, ef_search))
    keep = rows >= 0
    return rows[keep], sims[keep]


class EmbeddedEngine:
    """The default engine: an index folder on this machine; one writer at a time (a lock file), atomic switches."""

    def __init__(self, index_dir: str | Path, merge_factor: int = MERGE_FACTOR) -> None:
        """An engine over an index folder (it need not exist yet); writes merge segments by `merge_factor`."""
        self.store = Store(index_dir)
        self.merge_factor = merge_factor
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

    def commit(
        self,
        latest: EmbeddedView | None,
        change: Any,
        exact_max: int,
        neighbors: int,
        progress: bool = False,
        optimize: bool = False,
    ) -> dict[str, Any]:
        """Write the change (a new segment, deletion files, merges by the size rule; with `optimize`, every segment
        merged into one) and switch the manifest to it."""
        snap = None if latest is None else latest.snap
        return write_generation(
            self.store.dir, snap, change, exact_max, neighbors, self.merge_factor, optimize, progress
        )

    def optimize(self, exact_max: int, neighbors: int, progress: bool = False) -> dict[str, Any]:
        """Merge every segment into one, dropping deleted passages (nothing to do when there is one, whole)."""
        from ..writer import Change
        from .base import META_KEYS

        with self.writing(), self.latest(None) as latest:
            if latest is None:
                self.open()  # "no index in ...; build one with ..."
            meta = latest.meta
            entries = meta.get("segments") or []
            whole = len(entries) == 1 and not entries[0].get("deleted") and meta.get("format") == FORMAT
            if whole and not analysed_otherwise(meta):
                collect(self.store.dir, meta)  # what a write killed after its switch left
                return meta
            change = Change(meta={k: meta[k] for k in META_KEYS})
            return self.commit(latest, change, exact_max, neighbors, progress, optimize=True)

    def check(self, full: bool = False) -> dict[str, Any]:
        """Checksums and agreement of the current generation's files."""
        return self.store.check(full)

    def rebuild_hint(self) -> str:
        """The command that rebuilds this index."""
        return rebuild_hint(self.store.dir)
