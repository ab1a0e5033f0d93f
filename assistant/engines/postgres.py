"""The postgres engine: passages, pgvector vectors and exact BM25 postings in PostgreSQL, behind the contract."""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..analysis import idf
from ..highlight import ANALYSIS_VERSION
from ..types import AssistantError
from . import pg_bm25
from .base import Filter, PassageRow, Scored
from .pg_connect import (
    DDL,
    LOCK_KEY,
    SCHEMA_VERSION,
    TABLES,
    Pool,
    connect_error,
    database_error,
    vector_text,
    where_is,
)

log = logging.getLogger("assistant")
RETRY_REPLICA_S = 30  # a replica that failed is tried again after this many seconds
# PostgreSQL scores about 2.5 us a passage in a scan (FAISS's 16-bit scan: about 0.07 us): above this many passages
# (all, or those a filter admits) the HNSW index answers, with retrieval.hnsw_ef_search nodes visited.
EXACT_MAX = 5_000
_ARTICLE = "id, title, source, path, url, published"
_ARTICLE_A = "a.id, a.title, a.source, a.path, a.url, a.published"
EF_SEARCH = 512  # hnsw.ef_search each read starts with (retrieval.hnsw_ef_search's default); another is set when asked
_BEGIN_READ = (
    "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL work_mem = '64MB'; "
    # pgvector's planner prices a large ef_search above a scan and would scan: where the index serves, use it
    f"SET LOCAL enable_seqscan = off; SET LOCAL hnsw.ef_search = {EF_SEARCH}; "
    "SET LOCAL hnsw.iterative_scan = relaxed_order; "
    "SELECT generation, articles, passages, total_length, "
    "(SELECT value FROM na_meta WHERE key = 'model'), (SELECT value FROM na_meta WHERE key = 'chunking') FROM na_state"
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
    def reading(self) -> Iterator[None]:
        """Run the block's queries in one repeatable-read transaction: one consistent state throughout. The view
        follows the database: each read sees the latest commit, and the view's generation and counts with it."""
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
            self._bound.conn, self._bound.cache = conn, {"df": {}, "articles": {}, "stats": stats}
            try:
                yield
            finally:
                self._bound.conn = self._bound.cache = None

    def _cache(self) -> dict[str, Any]:
        """What this read has already fetched (counts, document frequencies, articles); nothing outside a read."""
        return getattr(self._bound, "cache", None) or {"df": {}, "articles": {}}

    def _rows(self, sql: str, params: Any = None) -> list[tuple]:
        conn = self._fixed or getattr(self._bound, "conn", None)
        try:
            if conn is not None:
                return conn.execute(sql, params).fetchall()
            with self.engine.reader() as c:
                return c.execute(sql, params).fetchall()
        except AssistantError:
            raise
        except Exception as e:  # noqa: BLE001 - psycopg's errors: one line
            raise database_error(self.engine.url, e, "searching") from None

    def _stats(self) -> tuple[int, float]:
        """Passages and their average length (in BM25 terms)."""
        cache = self._cache()
        if "stats" not in cache:
            n, total = self._rows("SELECT passages, total_length FROM na_state")[0]
            cache["stats"] = int(n), (float(total) / n if n else 0.0)
        return cache["stats"]

    def _dfs(self, words: Sequence[str]) -> dict[str, int]:
        """Document frequencies of the terms that some passage holds."""
        known = self._cache()["df"]
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

    def dense_top(self, qvec: np.ndarray, k: int, where: Filter | None, ef_search: int) -> Scored:
        """The k best cosines: every passage scored up to EXACT_MAX (or `index.exact_max_passages` if lower), the
        HNSW index above."""
        cond, params = _compile(where)
        params.update(q=vector_text(qvec), k=int(k))
        n, _ = self._stats()
        small = (
            where is not None
            and self._rows(
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
        if not exact:
            with self.reading():
                ef, cache = max(ef_search, k), self._cache()
                if cache.get("ef", EF_SEARCH) != ef:
                    self._rows("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef),))
                    cache["ef"] = ef
                rows = self._rows(sql, params)
            return self._scored(sorted(rows, key=lambda r: -r[2]))
        return self._scored(self._rows(sql, params))

    def dense_scores(self, qvec: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The cosine of each given passage."""
        if not len(ids):
            return np.zeros(0, np.float32)
        rows = self._rows(
            "SELECT id, (-(embedding <#> %s::vector))::float4 FROM na_passages WHERE id = ANY(%s)",
            (vector_text(qvec), [int(i) for i in ids]),
        )
        got = dict(rows)
        return np.array([got.get(int(i), 0.0) for i in ids], np.float32)

    def _query(self, words: Sequence[str]) -> dict[str, Any] | None:
        """Query terms with their IDFs (those in no passage left out), and the average passage length."""
        words = list(dict.fromkeys(words))
        if not words:
            return None
        n, avg = self._stats()
        df = self._dfs(words)
        found = [t for t in words if t in df]
        if not found or n == 0:
            return None
        return {"terms": found, "idfs": [float(idf(float(df[t]), n)) for t in found], "avg": avg}

    def lexical_top(self, words: Sequence[str], k: int, where: Filter | None) -> Scored:
        """The k best BM25 scores, summed from the postings of the query's terms."""
        query = self._query(words)
        if query is None:
            return Scored.empty()
        cond, params = _compile(where)
        join = "" if where is None else "JOIN na_articles a ON a.id = po.article_id"
        return self._scored(pg_bm25.summed(self._rows, query, k, cond, params, join))

    def lexical_scores(self, words: Sequence[str], ids: np.ndarray) -> np.ndarray:
        """The BM25 score of each given passage."""
        query = self._query(words) if len(ids) else None
        if query is None:
            return np.zeros(len(ids), np.float32)
        got = pg_bm25.scores_of(self._rows, query, [int(i) for i in ids])
        return np.array([got.get(int(i), 0.0) for i in ids], np.float32)

    def term_stats(self, words: Sequence[str], article_ids: Sequence[str]) -> dict[str, tuple[float, set[str]]]:
        """Each term's IDF and which of the given articles hold it."""
        n, _ = self._stats()
        words = list(dict.fromkeys(words))
        df = self._dfs(words)
        held: dict[str, set[str]] = {t: set() for t in words}
        if df and article_ids:
            sql = "SELECT DISTINCT term, article_id FROM na_postings WHERE term = ANY(%s) AND article_id = ANY(%s)"
            for term, article_id in self._rows(sql, (list(df), list(article_ids))):
                held[term].add(article_id)
        n = max(n, 1)
        return {t: (float(idf(float(df[t]), n)) if t in df else float(idf(0.0, n)), held[t]) for t in words}

    def idf(self, term: str) -> float:
        """A stemmed term's IDF (0 when unknown)."""
        df = self._dfs([term]).get(term)
        return float(idf(float(df), self._stats()[0])) if df else 0.0

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

    def articles(self) -> list[dict[str, Any]]:
        """Every article's id and metadata."""
        return [{"id": r[0], **self._meta(r)} for r in self._rows(f"SELECT {_ARTICLE} FROM na_articles ORDER BY id")]

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


class PostgresEngine:
    """An index in a PostgreSQL database with pgvector: writes to the primary, searches to a replica if given."""

    def __init__(self, url: str, read_urls: Sequence[str] = (), exact_max: int = 100_000, neighbors: int = 32) -> None:
        """An engine over the database at `url` (the primary) and its read replicas."""
        self.url = url
        self.location = where_is(url)
        self.exact_max = exact_max
        self.neighbors = neighbors
        self._primary = Pool(url)
        self._replicas = [Pool(u) for u in read_urls]
        self._down: dict[str, float] = {}  # replica URL -> when it last failed
        self._tx = threading.local()

    # -- connections ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def reader(self) -> Iterator[Any]:
        """A connection for searching: the first replica that answers, else the primary (with a warning)."""
        for pool in self._replicas:
            if time.monotonic() - self._down.get(pool.url, -1e9) < RETRY_REPLICA_S:
                continue  # failed a moment ago: do not make every search wait for it
            try:
                conn = pool.acquire()
            except AssistantError as e:
                self._down[pool.url] = time.monotonic()
                log.warning("%s; searching the primary instead", e)
                continue
            with _returned(pool, conn):
                yield conn
            return
        with self._primary.connection() as conn:
            yield conn

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[tuple[Any, tuple]]:
        """A read-only repeatable-read transaction on the first replica that answers (else the primary, with a
        warning), and the index's state row as that transaction sees it; one round trip to begin."""
        for pool in [*self._replicas, self._primary]:
            primary = pool is self._primary
            if not primary and time.monotonic() - self._down.get(pool.url, -1e9) < RETRY_REPLICA_S:
                continue  # failed a moment ago: do not make every search wait for it
            try:
                conn, state = _begin_read(pool)
            except AssistantError as problem:
                if primary or problem.args[0].startswith("no index in"):
                    raise
                self._down[pool.url] = time.monotonic()
                log.warning("%s; searching the primary instead", problem)
                continue
            with _returned(pool, conn):
                try:
                    yield conn, state
                finally:
                    if not conn.closed:
                        conn.execute("COMMIT")
            return

    def _state(self, conn: Any) -> dict[str, Any] | None:
        """The meta and counts of the index in a database (None: no index there); schema checked."""
        exists = conn.execute("SELECT to_regclass('na_meta') IS NOT NULL").fetchone()[0]
        if not exists:
            return None
        meta = dict(conn.execute("SELECT key, value FROM na_meta").fetchall())
        if meta.get("schema") != SCHEMA_VERSION:
            raise AssistantError(
                f"the index in {self.location} has schema {meta.get('schema')}, this version reads "
                f"{SCHEMA_VERSION}; rebuild it with: {self.rebuild_hint()}"
            )
        gen, articles, passages = conn.execute("SELECT generation, articles, passages FROM na_state").fetchone()
        meta.update(generation=f"pg-{gen:09d}", articles=int(articles), passages=int(passages))
        return meta

    def exists(self) -> bool:
        """Whether the database holds an index."""
        with self.reader() as conn:
            return self._state(conn) is not None

    def open(self) -> PostgresView:
        """A view of the current state; one line when there is no index or the database cannot be reached."""
        with self.reader() as conn:
            meta = self._state(conn)
        if meta is None:
            raise AssistantError(f"no index in {self.location}; build one with: assistant index PATH (e.g. seeds/)")
        return PostgresView(self, meta)

    def changed(self, view: PostgresView) -> bool:
        """Whether the view must be opened again: only after a rebuild with other settings (a view follows every
        other write by itself, see PostgresView.reading); no query."""
        return view.stale

    # -- writing ----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self, wait_s: float | None = None) -> Iterator[float]:
        """One transaction on the primary holding the database's writer lock (an advisory lock) until it ends."""
        if getattr(self._tx, "conn", None) is not None:
            yield 0.0  # this thread already writes (a rebuild holds the lock from its start)
            return
        start = time.monotonic()
        try:
            with self._primary.connection() as conn, conn.transaction():
                said = False
                while not conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (LOCK_KEY,)).fetchone()[0]:
                    if wait_s is not None and time.monotonic() - start > wait_s:
                        raise AssistantError(f"another writer held {self.location} for over {wait_s:.0f} s")
                    if not said:
                        log.warning("waiting for another writer on %s…", self.location)
                        said = True
                    time.sleep(0.05 + random.random() * 0.1)
                self._tx.conn = conn
                try:
                    yield time.monotonic() - start
                finally:
                    self._tx.conn = None
        except AssistantError:
            raise
        except Exception as e:  # noqa: BLE001 - psycopg's errors: one line, nothing written
            raise database_error(self.url, e, "writing (nothing was written)") from None

    @contextlib.contextmanager
    def latest(self, base: PostgresView | None) -> Iterator[PostgresView | None]:
        """The state to build on, read inside the writer's transaction (after the lock: the latest commit)."""
        conn = self._tx.conn
        meta = self._state(conn)
        yield None if meta is None else PostgresView(self, meta, conn)

    def commit(self, latest: PostgresView | None, change: Any, exact_max: int, neighbors: int) -> dict[str, Any]:
        """Apply the change in the writer's transaction; it commits when `writing` ends."""
        from .pg_write import apply_change

        conn = self._tx.conn
        try:
            if latest is None:
                _create(conn, change.meta, neighbors)
            apply_change(conn, change, change.meta["chunking"].get("with_title", False))
            meta = self._state(conn)
        except AssistantError:
            raise
        except Exception as e:  # noqa: BLE001
            raise database_error(self.url, e, "writing (nothing was written)") from None
        return meta

    def check(self, full: bool = False) -> dict[str, Any]:
        """Check that the counts the index keeps agree with its rows (`full`: the BM25 statistics too)."""
        from .pg_write import check_counts

        with self._primary.connection() as conn:
            meta = self._state(conn)
            if meta is None:
                raise AssistantError(f"no index in {self.location}; build one with: assistant index PATH")
            problem = check_counts(conn, full)
        if problem:
            raise AssistantError(f"index in {self.location} is inconsistent: {problem}; {self.rebuild_hint()}")
        message = (
            f"index in {self.location} is sound: {meta['generation']}, {meta['articles']} articles, "
            f"{meta['passages']} passages; counts agree{' (and every term statistic)' if full else ''}"
        )
        return {"ok": True, "generation": meta["generation"], "full": full, "message": message}

    def rebuild_hint(self) -> str:
        """The command that rebuilds this index."""
        return "assistant index --rebuild PATH..."


def _begin_read(pool: Pool) -> tuple[Any, tuple]:
    """Begin a read on a pooled connection (or, when that one has gone stale, a new one): (connection, state row)."""
    import psycopg

    for fresh in (False, True):
        conn = pool.acquire(ping=False) if not fresh else pool.acquire(ping=False, fresh=True)
        try:
            cursor = conn.execute(_BEGIN_READ)
            while cursor.nextset():
                pass  # to the last statement's rows: the state
            return conn, cursor.fetchone()
        except psycopg.errors.UndefinedTable:
            conn.close()
            raise AssistantError(f"no index in {where_is(pool.url)}; build one with: assistant index PATH") from None
        except psycopg.OperationalError as e:
            conn.close()
            if fresh:
                raise connect_error(pool.url, e) from None
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _returned(pool: Pool, conn: Any) -> Iterator[None]:
    """Give the connection back to its pool after the block (closed if the block failed)."""
    try:
        yield
    except BaseException:
        conn.close()
        raise
    pool.release(conn)


def _create(conn: Any, meta: dict[str, Any], neighbors: int) -> None:
    """(Re)create the tables, in the writer's transaction, for vectors of the meta's dimension."""
    from psycopg.types.json import Jsonb

    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except Exception as e:  # noqa: BLE001
        text = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "not available" in text or "could not open extension control file" in text:
            raise AssistantError(
                "this PostgreSQL server has no pgvector extension; install pgvector on it (managed services have it)"
            ) from None
        raise AssistantError(
            f"could not enable pgvector ({text}); ask the database owner to run: CREATE EXTENSION vector"
        ) from None
    for table in TABLES:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute("DROP SEQUENCE IF EXISTS na_passage_ids")
    conn.execute(DDL.format(dim=int(meta["dimension"]), m=int(neighbors)))
    values = {"schema": SCHEMA_VERSION, "analysis": ANALYSIS_VERSION, "vectors": f"hnsw{neighbors}"}
    values.update({k: meta[k] for k in ("model", "dimension", "chunking")})
    for key, value in values.items():
        conn.execute("INSERT INTO na_meta VALUES (%s, %s)", (key, Jsonb(value)))
