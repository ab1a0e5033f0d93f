"""The postgres engine: passages, pgvector vectors and exact BM25 postings in PostgreSQL, behind the contract."""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..generation import MERGE_FACTOR
from ..highlight import ANALYSIS_VERSION, analysed_otherwise
from ..types import AssistantError
from ..vectors import EF_CONSTRUCTION  # the embedded engine's graph quality
from .pg_connect import (
    DDL,
    DDL_BLOCKS,
    LOCK_KEY,
    SCHEMA_VERSION,
    TABLES,
    NoIndex,
    Pool,
    connect_error,
    database_error,
    where_is,
)
from .pg_map import COPY_MAX, PassageMap, VectorCopy
from .pg_view import EF_SEARCH, PostgresView

log = logging.getLogger("assistant")
RETRY_REPLICA_S = 30  # a replica that failed is tried again after this many seconds
_BEGIN_READ = (
    "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL work_mem = '64MB'; "
    # pgvector's planner prices a large ef_search above a scan and would scan: where the index serves, use it
    f"SET LOCAL enable_seqscan = off; SET LOCAL hnsw.ef_search = {EF_SEARCH}; "
    "SET LOCAL hnsw.iterative_scan = relaxed_order; "
    "SELECT generation, articles, passages, total_length, "
    "(SELECT value FROM na_meta WHERE key = 'model'), (SELECT value FROM na_meta WHERE key = 'chunking') FROM na_state"
)


class PostgresEngine:
    """An index in a PostgreSQL database with pgvector: writes to the primary, searches to a replica if given."""

    def __init__(
        self,
        url: str,
        read_urls: Sequence[str] = (),
        exact_max: int = 100_000,
        neighbors: int = 32,
        merge_factor: int = MERGE_FACTOR,
    ) -> None:
        """An engine over the database at `url` (the primary) and its read replicas; each term's postings blocks
        merged by `merge_factor` (the log merge policy)."""
        self.url = url
        self.merge_factor = merge_factor
        self.dead: tuple[str, Any] | None = None  # (generation, removed passages blocks still hold): PostgresView
        self.passage_map = PassageMap()  # each passage's article, kept between reads: PostgresView
        self.vector_copy = VectorCopy(min(COPY_MAX, exact_max))  # the vectors of a small index: PostgresView
        self.unicode_lower: bool | None = None  # whether SQL's lower() can agree with Python's (PostgresView.listing)
        self.location = where_is(url)
        self.exact_max = exact_max
        self.neighbors = neighbors
        self._primary = Pool(url)
        self._replicas = [Pool(u) for u in read_urls]
        self._down: dict[str, float] = {}  # replica URL -> when it last failed
        self._tx = threading.local()

    # -- connections ------------------------------------------------------------------------------------
    def _read_pools(self) -> Iterator[Pool]:
        """The replicas that did not fail a moment ago (no search waits for them again), then the primary."""
        now = time.monotonic()
        yield from (p for p in self._replicas if now - self._down.get(p.url, -1e9) >= RETRY_REPLICA_S)
        yield self._primary

    @contextlib.contextmanager
    def _first_answering(self, begin: Callable[[Pool], tuple[Any, Any]]) -> Iterator[tuple[Any, Any]]:
        """`begin(pool)` on the first replica where it succeeds, else on the primary (a replica that fails is
        warned about and skipped for RETRY_REPLICA_S); its (connection, result) for the block."""
        for pool in self._read_pools():
            try:
                conn, got = begin(pool)
            except NoIndex:
                raise
            except AssistantError as problem:
                if pool is self._primary:
                    raise
                self._down[pool.url] = time.monotonic()
                log.warning("%s; searching the primary instead", problem)
                continue
            with pool.lent(conn):
                yield conn, got
            return

    @contextlib.contextmanager
    def reader(self) -> Iterator[Any]:
        """A connection for searching: the first replica that answers, else the primary (with a warning)."""
        with self._first_answering(lambda pool: (pool.acquire(), None)) as (conn, _):
            yield conn

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[tuple[Any, tuple]]:
        """A read-only repeatable-read transaction on the first replica that answers (else the primary, with a
        warning), and the index's state row as that transaction sees it; one round trip to begin."""
        with self._first_answering(_begin_read) as (conn, state):
            try:
                yield conn, state
            finally:
                if not conn.closed:
                    conn.execute("COMMIT")

    def _state(self, conn: Any, upgrading: bool = False) -> dict[str, Any] | None:
        """The meta and counts of the index in a database (None: no index there); schema checked (`upgrading`:
        schema 1 let through)."""
        exists = conn.execute("SELECT to_regclass('na_meta') IS NOT NULL").fetchone()[0]
        if not exists:
            return None
        meta = dict(conn.execute("SELECT key, value FROM na_meta").fetchall())
        if meta.get("schema") != SCHEMA_VERSION and not (upgrading and meta.get("schema") == 1):
            if meta.get("schema") == 1:
                raise AssistantError(
                    f"the index in {self.location} has schema 1 (an earlier version's), this version reads "
                    f"{SCHEMA_VERSION}; upgrade it with: assistant index --optimize (nothing is embedded again)"
                )
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
            return self._state(conn, upgrading=True) is not None

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

    def optimize(self, exact_max: int, neighbors: int, progress: bool = False) -> dict[str, Any]:
        """Merge each term's postings blocks into one (removed passages dropped; an index of schema 1 upgraded to
        blocks), in one write; then VACUUM ANALYZE the tables (dead rows reclaimed, planner statistics fresh)."""
        from . import pg_blocks

        with self.writing():
            conn = self._tx.conn
            try:
                meta = self._state(conn, upgrading=True)
                if meta is None:
                    raise AssistantError(
                        f"no index in {self.location}; build one with: assistant index PATH (e.g. seeds/)"
                    )
                if meta.get("schema") == 1:
                    _upgrade(conn)
                pg_blocks.compact(conn)
            except AssistantError:
                raise
            except Exception as e:  # noqa: BLE001 - psycopg's errors: one line, nothing written
                raise database_error(self.url, e, "optimizing (nothing was written)") from None
        try:
            with self._primary.connection() as conn:
                for table in ("na_articles", "na_passages", "na_blocks", "na_dead", "na_terms"):
                    conn.execute(f"VACUUM (ANALYZE) {table}")
                meta = self._state(conn)
        except AssistantError:
            raise
        except Exception as e:  # noqa: BLE001 - psycopg's errors: one line
            raise database_error(self.url, e, "optimizing") from None
        return meta

    @contextlib.contextmanager
    def latest(self, base: PostgresView | None) -> Iterator[PostgresView | None]:
        """The state to build on, read inside the writer's transaction (after the lock: the latest commit)."""
        conn = self._tx.conn
        meta = self._state(conn)
        yield None if meta is None else PostgresView(self, meta, conn)

    def commit(
        self, latest: PostgresView | None, change: Any, exact_max: int, neighbors: int, progress: bool = False
    ) -> dict[str, Any]:
        """Apply the change in the writer's transaction; it commits when `writing` ends."""
        from .pg_write import apply_change, reanalyse

        conn = self._tx.conn
        try:
            if latest is None:
                _create(conn, change.meta, neighbors)
            elif analysed_otherwise(latest.meta):
                reanalyse(conn)  # analysed by an earlier version: once, with this write
            apply_change(conn, change, change.meta["chunking"].get("with_title", False), self.merge_factor)
            meta = self._state(conn)
        except AssistantError:
            raise
        except Exception as e:  # noqa: BLE001
            raise database_error(self.url, e, "writing (nothing was written)") from None
        return meta

    def check(self, full: bool = False) -> dict[str, Any]:
        """Check that the counts the index keeps agree with its rows (`full`: the BM25 statistics too)."""
        from .pg_write import check_counts

        with self._primary.connection() as conn, conn.transaction():  # one snapshot for every count
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
            raise NoIndex(f"no index in {where_is(pool.url)}; build one with: assistant index PATH") from None
        except psycopg.OperationalError as e:
            conn.close()
            if fresh:
                raise connect_error(pool.url, e) from None
    raise AssertionError("unreachable")


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
    # A rebuilt index goes on from the last generation and passage id: a reader never sees one generation number
    # twice, and a passage id never names two passages (searchers remember a passage's article by its id).
    generation = last_id = 0
    if conn.execute("SELECT to_regclass('na_state') IS NOT NULL").fetchone()[0]:
        generation = conn.execute("SELECT coalesce(max(generation), 0) FROM na_state").fetchone()[0]
    if conn.execute("SELECT to_regclass('na_passage_ids') IS NOT NULL").fetchone()[0]:
        last_id = conn.execute("SELECT last_value FROM na_passage_ids").fetchone()[0]
    for table in TABLES:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute("DROP SEQUENCE IF EXISTS na_passage_ids")
    conn.execute("DROP SEQUENCE IF EXISTS na_block_ids")
    conn.execute(DDL.format(dim=int(meta["dimension"]), m=int(neighbors), ef_construction=EF_CONSTRUCTION))
    conn.execute("UPDATE na_state SET generation = %s", (generation,))
    if last_id:
        conn.execute("SELECT setval('na_passage_ids', %s)", (last_id,))
    values = {"schema": SCHEMA_VERSION, "analysis": ANALYSIS_VERSION, "vectors": f"hnsw{neighbors}"}
    values.update({k: meta[k] for k in ("model", "dimension", "chunking")})
    for key, value in values.items():
        conn.execute("INSERT INTO na_meta VALUES (%s, %s)", (key, Jsonb(value)))


def _upgrade(conn: Any) -> None:
    """Schema 1 to 2 in the writer's transaction: postings rows become blocks (nothing embedded again)."""
    from psycopg.types.json import Jsonb

    from . import pg_blocks

    conn.execute(DDL_BLOCKS)
    pg_blocks.upgrade(conn)
    conn.execute("UPDATE na_meta SET value = %s WHERE key = 'schema'", (Jsonb(SCHEMA_VERSION),))
