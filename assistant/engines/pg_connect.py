"""PostgreSQL connections for the postgres engine: the schema, pooled connections, vectors, one-line errors."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..config import redact
from ..types import AssistantError

SCHEMA_VERSION = 2  # 1: postings a row each (na_postings); 2: postings in blocks (na_blocks, na_dead)
LOCK_KEY = 7_130_512_019  # pg_advisory_xact_lock key: one writer at a time per database

# Every table that holds an article's rows carries its id (`article_id`, the articles' `id`), and every key starts
# with it: on Citus these tables are distributed by it and co-located, so an article and its passages live on one
# shard. Postings are one row per term and write (a block, see pg_blocks), keyed by the term: on Citus distributed
# by it, so a term's blocks live on one shard. Block data is stored uncompressed (EXTERNAL): read often, whole.
# na_dead, na_terms, na_state, na_meta and na_roots are small: Citus reference tables.
DDL_BLOCKS = """
CREATE SEQUENCE na_block_ids;
CREATE TABLE na_blocks (term text NOT NULL, block bigint NOT NULL DEFAULT nextval('na_block_ids'),
                        base bigint NOT NULL, n int NOT NULL, width smallint NOT NULL, data bytea NOT NULL,
                        PRIMARY KEY (term, block));
ALTER TABLE na_blocks ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE UNIQUE INDEX na_blocks_block ON na_blocks (block);
CREATE TABLE na_dead (passage_id bigint PRIMARY KEY);
"""
DDL = """
CREATE TABLE na_meta (key text PRIMARY KEY, value jsonb NOT NULL);
CREATE TABLE na_state (one boolean PRIMARY KEY DEFAULT true CHECK (one), generation bigint NOT NULL,
                       articles bigint NOT NULL, passages bigint NOT NULL, total_length bigint NOT NULL);
CREATE TABLE na_articles (id text PRIMARY KEY, title text, text text, path text, source text, url text,
                          published text, sha text NOT NULL, root text, added double precision);
CREATE INDEX na_articles_root ON na_articles (root);
CREATE INDEX na_articles_path ON na_articles (path);
CREATE SEQUENCE na_passage_ids;
CREATE TABLE na_passages (article_id text NOT NULL, id bigint NOT NULL, seq int, char_start int, char_end int,
                          n_tokens int, length int NOT NULL, text text, analysis text,
                          embedding vector({dim}) NOT NULL, PRIMARY KEY (article_id, id));
CREATE INDEX na_passages_id ON na_passages (id) INCLUDE (article_id);  -- an article looked up from the index alone
CREATE INDEX na_passages_hnsw ON na_passages USING hnsw (embedding vector_ip_ops)
  WITH (m = {m}, ef_construction = {ef_construction});
{blocks}CREATE TABLE na_terms (term text PRIMARY KEY, df bigint NOT NULL);
CREATE TABLE na_roots (path text PRIMARY KEY);
INSERT INTO na_state VALUES (true, 0, 0, 0, 0);
"""
DDL = DDL.replace("{blocks}", DDL_BLOCKS)
TABLES = (
    "na_postings",
    "na_blocks",
    "na_dead",
    "na_passages",
    "na_articles",
    "na_terms",
    "na_roots",
    "na_state",
    "na_meta",
)


class NoIndex(AssistantError):
    """The database holds no index (yet)."""


def where_is(url: str) -> str:
    """A database URL as messages show it: without its password."""
    return redact(url)


def connect_error(url: str, e: Exception, what: str = "PostgreSQL") -> AssistantError:
    """A failed connection as one line saying what is wrong and what to do (the password never shown)."""
    text = " ".join(str(e).split())
    if "password authentication failed" in text or "no password supplied" in text:
        why = "the password (or user) in the connection string is wrong; fix index.url / ASSISTANT_INDEX_URL"
    elif "does not exist" in text and "database" in text:
        why = "that database does not exist; create it (createdb NAME) or fix the URL"
    elif "refused" in text or "timeout" in text.lower() or "could not translate" in text or "No route" in text:
        why = "the server is not answering; start it, or fix the host and port"
    else:
        why = text.rsplit("FATAL:", 1)[-1].strip()[:200]
    return AssistantError(f"cannot connect to {what} at {where_is(url)}: {why}")


def database_error(url: str, e: Exception, doing: str) -> AssistantError:
    """A failed statement as one line (a lost connection reads as a connection problem)."""
    import psycopg

    if isinstance(e, psycopg.OperationalError):
        return connect_error(url, e)
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return AssistantError(f"PostgreSQL at {where_is(url)} failed while {doing}: {redact(first)}")


def vector_text(vec: np.ndarray) -> str:
    """A vector as pgvector's text form (float32 values round-trip exactly)."""
    return "[" + ",".join(map(repr, np.asarray(vec, np.float32).tolist())) + "]"


class Pool:
    """Open connections to one server, kept for reuse by any thread; a broken one is dropped."""

    def __init__(self, url: str, connect_timeout: int = 5) -> None:
        """Connections to `url`, made when first needed."""
        self.url = url
        self.connect_timeout = connect_timeout
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    def _connect(self) -> Any:
        import psycopg

        try:
            conn = psycopg.connect(self.url, connect_timeout=self.connect_timeout, autocommit=True)
        except psycopg.Error as e:
            raise connect_error(self.url, e) from None
        return conn

    def acquire(self, ping: bool = True, fresh: bool = False) -> Any:
        """A live connection: an idle one (that still answers, with `ping`), else (or with `fresh`) a new one; a
        one-line error when it cannot connect."""
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle and not fresh else None
            if conn is None:
                return self._connect()
            if not ping:
                return conn
            try:
                conn.execute("SELECT 1")  # a server that went away since: find out now, not mid-search
                return conn
            except Exception:  # noqa: BLE001 - a broken connection: drop it and try the next
                conn.close()

    def release(self, conn: Any) -> None:
        """Give a connection back for reuse (closed instead when broken or left inside a transaction)."""
        if conn.closed or conn.info.transaction_status != 0:  # 0: idle, no transaction left open
            conn.close()
            return
        with self._lock:
            self._idle.append(conn)

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        """A connection for the duration of the block (autocommit unless the block opens a transaction)."""
        conn = self.acquire()
        with self.lent(conn):
            yield conn

    @contextlib.contextmanager
    def lent(self, conn: Any) -> Iterator[None]:
        """Give an acquired connection back after the block; close it instead if the block failed."""
        try:
            yield
        except BaseException:
            conn.close()  # its state is unknown: do not reuse it
            raise
        self.release(conn)

    def close(self) -> None:
        """Close the idle connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
