"""The postgres engine's view: what one search reads from PostgreSQL, in one repeatable-read transaction."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..analysis import idf
from ..highlight import analysed_otherwise
from ..types import AssistantError
from ..vectors import dot_rows
from . import pg_blocks
from .base import Filter, PassageRow, Scored
from .listing import ArticleQuery, row
from .pg_connect import database_error, vector_text, where_is
from .pg_map import PassageMap, generation_number

if TYPE_CHECKING:
    from .postgres import PostgresEngine

# PostgreSQL scores about 2.5 us a passage in a scan (FAISS's 16-bit scan: about 0.07 us): above this many passages
# (all, or those a filter admits) the HNSW index answers, with retrieval.hnsw_ef_search nodes visited.
EXACT_MAX = 5_000
_ARTICLE = "id, title, source, path, url, published"
_ARTICLE_A = "a.id, a.title, a.source, a.path, a.url, a.published"
EF_SEARCH = 512  # hnsw.ef_search each read starts with (retrieval.hnsw_ef_search's default); another is set when asked
ADMITTED_MAX = 50_000  # a filter admitting up to this many passages is read whole; past it, BM25's best are checked
# Terms' document frequencies with their postings blocks (binary): a term in no block has one row with no block.
POSTINGS = (
    "SELECT t.term, t.df, b.base, b.n, b.width, b.data FROM na_terms t LEFT JOIN na_blocks b "
    "ON b.term = t.term WHERE t.term = ANY(%s) AND t.df > 0"
)


def _compile(where: Filter | None) -> tuple[str, dict[str, Any]]:
    """A filter as SQL over na_articles `a` (True for none) and its parameters."""
    if where is None:
        return "true", {}
    parts, params = [], {}
    if where.article_ids is not None:
        parts.append("a.id = ANY(%(f_ids)s)")
        params["f_ids"] = sorted(where.article_ids)
    if where.sources is not None:
        parts.append("a.source = ANY(%(f_sources)s)")
        params["f_sources"] = sorted(where.sources)
    if where.published_from:
        parts.append("coalesce(left(a.published, 10), '') >= %(f_lo)s AND coalesce(a.published, '') <> ''")
        params["f_lo"] = where.published_from
    if where.published_to:
        parts.append("coalesce(a.published, '') <> '' AND left(a.published, %(f_hi_n)s) <= %(f_hi)s")
        params["f_hi"], params["f_hi_n"] = where.published_to, len(where.published_to)
    return " AND ".join(parts) or "true", params


class PostgresView:
    """The database as one search reads it: each search runs in one read-only snapshot (`reading`)."""

    def __init__(self, engine: PostgresEngine, meta: dict[str, Any], conn: Any = None) -> None:
        """A view of the state `meta` describes; `conn`: a writer's connection, inside its transaction."""
        self.engine = engine
        self.meta = meta
        self.generation: str = meta["generation"]
        self.location = where_is(engine.url)
        self._fixed = conn
        self._bound = threading.local()
        self.stale = False  # the database was rebuilt with other settings since this view was opened

    @contextlib.contextmanager
    def reading(self, terms: Sequence[str] = ()) -> Iterator[None]:
        """Run the block's queries in one repeatable-read transaction: one consistent state throughout. The view
        follows the database: each read sees the latest commit, and the view's generation and counts with it.
        `terms`' postings are read with the first terms asked about (one round trip for all)."""
        if self._fixed is not None or getattr(self._bound, "conn", None) is not None:
            yield
            return
        with self.engine.snapshot() as (conn, state):
            generation, articles, passages, total, model, chunking = state
            if (model, chunking) != (self.meta.get("model"), self.meta.get("chunking")):
                self.stale = True  # rebuilt with other settings: the next open checks them
            self.generation = f"pg-{generation:09d}"
            self.meta = {**self.meta, "generation": self.generation, "articles": articles, "passages": passages}
            stats = int(passages), (float(total) / passages if passages else 0.0)
            self._bound.conn, self._bound.cache = conn, {"df": {}, "articles": {}, "stats": stats, "wanted": terms}
            try:
                yield
            finally:
                self._bound.conn = self._bound.cache = None

    def _cache(self) -> dict[str, Any]:
        """What this read has already fetched (counts, document frequencies, articles); nothing outside a read."""
        return getattr(self._bound, "cache", None) or {"df": {}, "articles": {}}

    def _rows(self, sql: str, params: Any = None, binary: bool = False) -> list[tuple]:
        conn = self._fixed or getattr(self._bound, "conn", None)
        try:
            if conn is not None:
                return conn.execute(sql, params, binary=binary).fetchall()
            with self.engine.reader() as c:
                return c.execute(sql, params, binary=binary).fetchall()
        except AssistantError:
            raise
        except Exception as e:  # noqa: BLE001 - psycopg's errors: one line
            raise database_error(self.engine.url, e, "searching") from None

    def _vector(self, qvec: np.ndarray) -> str:
        """A question's vector as pgvector text, written once per read."""
        cache, key = self._cache(), np.asarray(qvec, np.float32).tobytes()
        if cache.get("vector", (None,))[0] != key:
            cache["vector"] = key, vector_text(qvec)
        return cache["vector"][1]

    def _stats(self) -> tuple[int, float]:
        """Passages and their average length (in BM25 terms)."""
        cache = self._cache()
        if "stats" not in cache:
            n, total = self._rows("SELECT passages, total_length FROM na_state")[0]
            cache["stats"] = int(n), (float(total) / n if n else 0.0)
        return cache["stats"]

    def _dfs(self, words: Sequence[str]) -> dict[str, int]:
        """Document frequencies of the terms that some passage holds (the read's terms, `reading(terms)`, are read
        whole at the first ask: their postings too)."""
        cache = self._cache()
        if cache.get("wanted"):
            self._postings(())
        known = cache["df"]
        missing = [t for t in dict.fromkeys(words) if t not in known]
        if missing:
            known.update(dict.fromkeys(missing, 0))
            known.update(self._rows("SELECT term, df FROM na_terms WHERE term = ANY(%s) AND df > 0", (missing,)))
        return {t: known[t] for t in words if known[t] > 0}

    @staticmethod
    def _scored(rows: list[tuple]) -> Scored:
        if not rows:
            return Scored.empty()
        return Scored(
            np.array([r[0] for r in rows], np.int64), [r[1] for r in rows], np.array([r[2] for r in rows], np.float32)
        )

    def _copy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The engine's copy of the vectors as this read holds them (ids, matrix, live rows), or None (the index is
        larger than pg_map.COPY_MAX or `index.exact_max_passages`, or the copy cannot be sure of this read's state)."""
        cache = self._cache()
        if "copy" not in cache:
            cache["copy"] = None
            if self._fixed is None:
                cache["copy"] = self.engine.vector_copy.serving(
                    generation_number(self.generation),
                    self._stats()[0],
                    self._dead(),
                    lambda after: self._rows(
                        "SELECT id, embedding FROM na_passages WHERE id > %s ORDER BY id", (after,), binary=True
                    ),
                )
        return cache["copy"]

    def _dense_copy(self, copy: tuple[np.ndarray, np.ndarray, np.ndarray], qvec: np.ndarray, k: int) -> Scored:
        """The k best cosines, every live passage of the copy scored (ties: the lower id first)."""
        ids, matrix, live = copy
        self._cache().pop("lexical_ids", None)  # dense_scores reads them off the copy too
        sims = np.where(live, dot_rows(matrix, np.asarray(qvec, np.float32)), -np.inf)
        k = min(int(k), int(live.sum()))
        if k <= 0:
            return Scored.empty()
        rows = np.argpartition(-sims, k - 1)[:k] if k < len(sims) else np.flatnonzero(live)
        rows = rows[np.lexsort((ids[rows], -sims[rows]))]
        best = ids[rows]
        return Scored(best, self._articles_of(best.tolist()), sims[rows].astype(np.float32))

    def dense_top(self, qvec: np.ndarray, k: int, where: Filter | None, ef_search: int) -> Scored:
        """The k best cosines: every passage scored in the engine's copy of the vectors (up to pg_map.COPY_MAX or
        `index.exact_max_passages`), else in the database up to EXACT_MAX (or `index.exact_max_passages` if lower),
        the HNSW index above."""
        if where is None:
            with self.reading():
                copy = self._copy()
                if copy is not None:
                    return self._dense_copy(copy, qvec, k)
        cond, params = _compile(where)
        params.update(q=self._vector(qvec), k=int(k))
        n, _ = self._stats()
        admitted = self._cache().get("admitted", {}).get(where)  # as BM25's filtered search read them
        small = where is not None and (
            len(admitted) <= EXACT_MAX
            if admitted is not None
            else self._rows(
                f"SELECT count(*) <= {EXACT_MAX} FROM (SELECT 1 FROM na_passages p JOIN na_articles a "
                f"ON a.id = p.article_id WHERE {cond} LIMIT {EXACT_MAX + 1}) AS admitted",
                params,
            )[0][0]
        )
        exact = n <= min(EXACT_MAX, self.engine.exact_max) or small
        distance = "p.embedding <#> %(q)s::vector"
        order = f"({distance}) + 0" if exact else distance  # "+ 0": an expression the HNSW index cannot serve
        sql = (
            f"SELECT p.id, p.article_id, (-(p.embedding <#> %(q)s::vector))::float4 FROM na_passages p "
            f"{'' if where is None else 'JOIN na_articles a ON a.id = p.article_id'} "
            f"WHERE {cond} ORDER BY {order} LIMIT %(k)s"
        )
        also = self._cache().pop("lexical_ids", None)
        if also:  # BM25's best of this read: their cosines in the same round trip (dense_scores asks for them next)
            sql = (
                f"SELECT 0, * FROM ({sql}) AS top UNION ALL SELECT 1, id, article_id, "
                "(-(embedding <#> %(q)s::vector))::float4 FROM na_passages WHERE id = ANY(%(also)s)"
            )
            params["also"] = also
        with self.reading():
            ef, cache = max(ef_search, k), self._cache()
            if not exact and cache.get("ef", EF_SEARCH) != ef:
                self._rows("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef),))
                cache["ef"] = ef
            rows = self._rows(sql, params)
            if also:
                cache["dense_of"] = (params["q"], {r[1]: r[3] for r in rows if r[0]})
                rows = [r[1:] for r in rows if not r[0]]
        return self._scored(sorted(rows, key=lambda r: (-r[2], r[0])))

    def dense_scores(self, qvec: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The cosine of each given passage."""
        if not len(ids):
            return np.zeros(0, np.float32)
        copy = self._copy() if "copy" in self._cache() else None  # as the dense search of this read found it
        if copy is not None:
            held, matrix, live = copy
            wanted = np.asarray(ids, np.int64)
            at = np.minimum(np.searchsorted(held, wanted), len(held) - 1)
            found = (held[at] == wanted) & live[at]
            return np.where(found, dot_rows(matrix[at], np.asarray(qvec, np.float32)), 0.0).astype(np.float32)
        vector, (scored, got) = self._vector(qvec), self._cache().get("dense_of", (None, {}))
        got = dict(got) if scored == vector else {}
        missing = [int(i) for i in ids if int(i) not in got]
        if missing:
            sql = "SELECT id, (-(embedding <#> %s::vector))::float4 FROM na_passages WHERE id = ANY(%s)"
            got.update(self._rows(sql, (vector, missing)))
        return np.array([got.get(int(i), 0.0) for i in ids], np.float32)

    def _postings(self, words: Sequence[str]) -> tuple[dict[str, pg_blocks.TermBlock], dict[str, int]]:
        """The postings of those of these terms that some passage holds (their document frequencies with them): one
        query for the terms not yet read in this read, and the read's own terms (`reading(terms)`) with them."""
        cache = self._cache()
        known, dfs = cache.setdefault("postings", {}), cache["df"]
        missing = [t for t in dict.fromkeys([*words, *cache.pop("wanted", ())]) if t not in known]
        if missing:
            self._keep_postings(cache, missing, self._rows(POSTINGS, (missing,), binary=True))
        return {t: known[t] for t in words if known.get(t) is not None}, {t: dfs[t] for t in words if dfs.get(t)}

    @staticmethod
    def _keep_postings(cache: dict[str, Any], terms: list[str], rows: list[tuple]) -> None:
        """Remember in a read's cache the document frequencies and postings (POSTINGS rows) of these terms."""
        known, dfs = cache.setdefault("postings", {}), cache["df"]
        dfs.update(dict.fromkeys(terms, 0))
        dfs.update((r[0], int(r[1])) for r in rows)
        known.update(dict.fromkeys(terms))
        known.update(pg_blocks.read(r[:1] + r[2:] for r in rows if r[2] is not None))

    def _dead(self) -> np.ndarray:
        """Removed passages that blocks still hold (sorted), kept by the engine from one generation to the next."""
        cache = self._cache()
        if "dead" not in cache:
            held = None if self._fixed is not None else self.engine.dead
            if held is None or held[0] != self.generation:
                ids = self._rows("SELECT passage_id FROM na_dead ORDER BY 1")
                held = (self.generation, np.array([r[0] for r in ids], np.int64))
                if self._fixed is None:
                    self.engine.dead = held
            cache["dead"] = held[1]
        return cache["dead"]

    def _query(self, words: Sequence[str]) -> dict[str, Any] | None:
        """Query terms with their IDFs and postings (those in no passage left out), and the average length."""
        words = list(dict.fromkeys(words))
        if not words:
            return None
        n, avg = self._stats()
        postings, df = self._postings(words)
        idfs = {t: float(idf(float(df[t]), n)) for t in words if t in df}
        if not idfs or n == 0:
            return None
        return {"idfs": idfs, "avg": avg, "postings": postings}

    def lexical_top(self, words: Sequence[str], k: int, where: Filter | None) -> Scored:
        """The k best BM25 scores, summed from the blocks of the query's terms (ties: the lower id first)."""
        query = self._query(words)
        if query is None:
            return Scored.empty()
        lo, scores = pg_blocks.sums(query["postings"], query["idfs"], query["avg"])
        dead = self._dead()
        dead = dead[(dead >= lo) & (dead < lo + len(scores))]
        scores[dead - lo] = 0
        if where is not None:
            return self._filtered_top(scores, lo, k, where)
        best = _best(scores, k)
        ids = [lo + int(i) for i in best]
        self._cache()["lexical_ids"] = ids
        return Scored(best + lo, self._articles_of(ids), scores[best])

    def _map(self) -> PassageMap | None:
        """The engine's passage map brought up to this read's state (None: the index is too large to map, or this
        is a writer's view)."""
        cache = self._cache()
        if "map" not in cache:
            held = self.engine.passage_map
            ok = self._fixed is None and held.synced(
                generation_number(self.generation),
                self._stats()[0],
                lambda after: self._rows("SELECT id, article_id FROM na_passages WHERE id > %s ORDER BY id", (after,)),
            )
            cache["map"] = held if ok else None
        return cache["map"]

    def _articles_of(self, ids: list[int]) -> list[str]:
        """The article of each live passage: from the passage map, else (a large index) asked of the database."""
        held = self._map()
        got = dict(zip(ids, held.articles_of(ids), strict=True)) if held is not None else {}
        missing = [i for i in ids if got.get(i) is None]
        if missing:
            got.update(self._rows("SELECT id, article_id FROM na_passages WHERE id = ANY(%s)", (missing,)))
        return [got[i] for i in ids]

    def _filtered_top(self, scores: np.ndarray, lo: int, k: int, where: Filter) -> Scored:
        """The k best that the filter admits: its passages read whole when few, else BM25's best checked in rounds
        (each eight times deeper) until k pass."""
        cond, params = _compile(where)
        join = "FROM na_passages p JOIN na_articles a ON a.id = p.article_id"
        rows = self._rows(f"SELECT p.id, p.article_id {join} WHERE {cond} LIMIT {ADMITTED_MAX + 1}", params)
        if len(rows) <= ADMITTED_MAX:
            self._cache().setdefault("admitted", {})[where] = rows  # the dense search counts them
            ids = np.array([r[0] for r in rows], np.int64)
            inside = (ids >= lo) & (ids < lo + len(scores))
            kept = np.zeros_like(scores)
            kept[ids[inside] - lo] = scores[ids[inside] - lo]
            best = _best(kept, k)
            found = dict(rows)
            return Scored(best + lo, [found[lo + int(i)] for i in best], kept[best])
        depth = max(8 * k, 256)
        while True:
            best = _best(scores, depth)
            sql = f"SELECT p.id, p.article_id {join} WHERE p.id = ANY(%(ids)s) AND {cond}"
            found = dict(self._rows(sql, {**params, "ids": [lo + int(i) for i in best]}))
            passed = np.array([i for i in best if lo + int(i) in found], np.int64)[:k]
            if len(passed) >= k or len(best) < depth:
                return Scored(passed + lo, [found[lo + int(i)] for i in passed], scores[passed])
            depth *= 8

    def lexical_scores(self, words: Sequence[str], ids: np.ndarray) -> np.ndarray:
        """The BM25 score of each given passage."""
        query = self._query(words) if len(ids) else None
        if query is None:
            return np.zeros(len(ids), np.float32)
        out = pg_blocks.scores_of(query["postings"], query["idfs"], query["avg"], np.asarray(ids, np.int64))
        out[np.isin(np.asarray(ids, np.int64), self._dead())] = 0
        return out

    def term_stats(self, words: Sequence[str], article_ids: Sequence[str]) -> dict[str, tuple[float, set[str]]]:
        """Each term's IDF and which of the given articles hold it (their live passages found in its postings)."""
        n, _ = self._stats()
        words = list(dict.fromkeys(words))
        held: dict[str, set[str]] = {t: set() for t in words}
        if article_ids:
            postings, df = self._postings(words)
            mapped = self._map()
            if mapped is not None:  # their passages from the map, less those removed
                ids = mapped.passages_of(article_ids)
                ids = ids[~np.isin(ids, self._dead())]
                of = mapped.articles_of(ids)
            else:
                sql = "SELECT id, article_id FROM na_passages WHERE article_id = ANY(%s) ORDER BY id"
                rows = self._rows(sql, (list(article_ids),))
                ids, of = np.array([r[0] for r in rows], np.int64), [r[1] for r in rows]
            for t, p in postings.items():
                hit, _ = p.at(ids)
                held[t] = {of[i] for i in np.flatnonzero(hit)}
        else:
            df = self._dfs(words)
        n = max(n, 1)
        return {t: (float(idf(float(df[t]), n)) if df.get(t) else float(idf(0.0, n)), held[t]) for t in words}

    def idf(self, term: str) -> float:
        """A stemmed term's IDF (0 when unknown)."""
        df = self._dfs([term]).get(term)
        return float(idf(float(df), self._stats()[0])) if df else 0.0

    def expand(self, prefix: str, limit: int) -> list[str]:
        """Indexed terms beginning with a prefix, the most common first."""
        known = self._cache().setdefault("expand", {})  # a search asks for the same names more than once
        if (prefix, limit) not in known:
            pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            rows = self._rows(
                "SELECT term FROM na_terms WHERE term LIKE %s AND df > 0 ORDER BY df DESC, term LIMIT %s",
                (pattern, int(limit)),
            )
            known[prefix, limit] = [r[0] for r in rows]
        return list(known[prefix, limit])

    def passages(self, ids: Sequence[int]) -> dict[int, PassageRow]:
        """Passages by id."""
        if not len(ids):
            return {}
        rows = self._rows(
            f"SELECT p.id, p.article_id, p.char_start, p.char_end, p.text, p.analysis, {_ARTICLE_A}"
            " FROM na_passages p JOIN na_articles a ON a.id = p.article_id WHERE p.id = ANY(%s)",
            ([int(i) for i in ids],),
        )
        articles = self._cache()["articles"]  # their articles too: a search cites them next
        articles.update((r[6], self._meta(r[6:])) for r in rows)
        if analysed_otherwise(self.meta):  # a search works it out again
            return {r[0]: (*r[1:5], None) for r in rows}
        return {r[0]: r[1:6] for r in rows}

    @staticmethod
    def _meta(row: tuple) -> dict[str, Any]:
        return dict(zip(("title", "source", "path", "url", "published"), row[1:], strict=True))

    def article(self, article_id: str) -> dict[str, Any] | None:
        """An article's metadata."""
        known = self._cache()["articles"]
        if article_id not in known:
            rows = self._rows(f"SELECT {_ARTICLE} FROM na_articles WHERE id = %s", (article_id,))
            known[article_id] = self._meta(rows[0]) if rows else None
        return known[article_id]

    def metas(self, article_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Several articles' metadata at once, by id (those not indexed left out): one query for those this read
        has not seen."""
        known = self._cache()["articles"]
        missing = [a for a in dict.fromkeys(article_ids) if a not in known]
        if missing:
            known.update(dict.fromkeys(missing))
            rows = self._rows(f"SELECT {_ARTICLE} FROM na_articles WHERE id = ANY(%s)", (missing,))
            known.update((r[0], self._meta(r)) for r in rows)
        return {a: known[a] for a in dict.fromkeys(article_ids) if known.get(a) is not None}

    def articles(self) -> list[dict[str, Any]]:
        """Every article's id and metadata."""
        return [{"id": r[0], **self._meta(r)} for r in self._rows(f"SELECT {_ARTICLE} FROM na_articles ORDER BY id")]

    def listing(self, query: ArticleQuery, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """A page of the articles the query admits, newest first, and how many it admits: three queries in one
        snapshot (the count, the page, the page's passage counts)."""
        with self.reading():
            lower = "lower(coalesce({}, '') COLLATE pg_c_utf8)" if self._unicode_lower() else "lower(coalesce({}, ''))"
            where, params = _compile(query.dates)
            for i, word in enumerate(query.words):
                where += f" AND strpos({lower.format('a.title')}, %(w{i})s) > 0"
                params[f"w{i}"] = word
            if query.source:
                where += f" AND strpos({lower.format('a.source')}, %(source)s) > 0"
                params["source"] = query.source
            total = self._rows(f"SELECT count(*) FROM na_articles a WHERE {where}", params)[0][0]
            rows = self._rows(
                f"SELECT {_ARTICLE_A} FROM na_articles a WHERE {where}"
                ' ORDER BY coalesce(a.published, \'\') COLLATE "C" DESC, a.id COLLATE "C"'
                " LIMIT %(limit)s OFFSET %(offset)s",
                {**params, "limit": int(limit), "offset": int(offset)},
            )
            ids = [r[0] for r in rows]
            sql = "SELECT article_id, count(*) FROM na_passages WHERE article_id = ANY(%s) GROUP BY article_id"
            counts = dict(self._rows(sql, (ids,))) if ids else {}
        return [row(r[0], self._meta(r), int(counts.get(r[0], 0))) for r in rows], int(total)

    def _unicode_lower(self) -> bool:
        """Whether this server lowers any letter's case in SQL as Python does (the pg_c_utf8 collation, PostgreSQL
        17 and later, in a UTF-8 database): without it, lower() follows the database's locale (ASCII only under C)."""
        known = self.engine.unicode_lower
        if known is None:
            sql = (
                "SELECT EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'pg_c_utf8'"
                " AND collencoding IN (-1, pg_char_to_encoding(getdatabaseencoding())))"
            )
            known = self.engine.unicode_lower = bool(self._rows(sql)[0][0])
        return known

    def article_text(self, article_id: str) -> str | None:
        """An article's cleaned text."""
        rows = self._rows("SELECT text FROM na_articles WHERE id = %s", (article_id,))
        return rows[0][0] if rows else None

    def shas(self, article_ids: Sequence[str] | None = None) -> dict[str, str]:
        """Content hashes of indexed articles."""
        if article_ids is None:
            return dict(self._rows("SELECT id, sha FROM na_articles"))
        return dict(self._rows("SELECT id, sha FROM na_articles WHERE id = ANY(%s)", (list(article_ids),)))

    def article_roots(self, article_ids: Sequence[str]) -> dict[str, str]:
        """The root each of these articles was read from."""
        return dict(self._rows("SELECT id, root FROM na_articles WHERE id = ANY(%s)", (list(article_ids),)))

    def roots(self) -> list[str]:
        """The folders and files the index was built from."""
        return [r[0] for r in self._rows("SELECT path FROM na_roots ORDER BY path")]

    def articles_under(self, roots: Sequence[str]) -> set[str]:
        """Ids of the articles read from these roots."""
        return {r[0] for r in self._rows("SELECT id FROM na_articles WHERE root = ANY(%s)", (list(roots),))}

    def paths_in_use(self, paths: Sequence[str], besides: Sequence[str]) -> set[str]:
        """Which of these paths an article other than `besides` comes from."""
        sql = "SELECT DISTINCT path FROM na_articles WHERE path = ANY(%s) AND NOT (id = ANY(%s))"
        return {r[0] for r in self._rows(sql, (list(paths), list(besides)))}

    def close(self) -> None:
        """Nothing to let go of: connections belong to the engine's pools."""


def _best(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k highest scores above 0, best first (ties: the lower position first)."""
    if k <= 0 or not len(scores):
        return np.zeros(0, np.int64)
    if k < len(scores):
        threshold = np.partition(scores, len(scores) - k)[len(scores) - k]
        candidates = np.flatnonzero(scores >= max(threshold, np.float32(1e-30)))
    else:
        candidates = np.flatnonzero(scores > 0)
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order][:k].astype(np.int64)
