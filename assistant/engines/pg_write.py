"""Writing to the postgres engine: one change applied in the writer's transaction, and the consistency check."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import numpy as np

from ..analysis import terms
from ..chunking import indexed_text
from ..generation import MERGE_FACTOR
from ..highlight import analyse_article, spans
from . import pg_blocks
from .pg_blocks import TermBlock
from .pg_connect import vector_text


def apply_change(conn: Any, change: Any, with_title: bool, merge_factor: int = MERGE_FACTOR) -> None:
    """Delete the removed and replaced articles, insert the added ones, keep the BM25 statistics and the state's
    counts in step; every statement touches only the articles changed and the blocks of the terms they hold (cost
    independent of the index's size, merges aside: each term's blocks by the log merge policy)."""
    gone = list(change.remove) + [a.id for a, _, _ in change.add]
    removed_articles = removed_passages = removed_length = 0
    touched: list[str] = []
    if gone:
        rows = conn.execute(
            "DELETE FROM na_passages p USING na_articles a WHERE a.id = p.article_id AND p.article_id = ANY(%s) "
            "RETURNING p.id, p.length, a.title, p.text",
            (gone,),
        ).fetchall()
        held: Counter[str] = Counter()
        for _, _, title, text in rows:  # the terms each passage was indexed with: its document frequencies go down
            held.update(set(terms(indexed_text(title or "", text or "", with_title))))
        removed_passages, removed_length = len(rows), sum(r[1] for r in rows)
        if rows:
            conn.execute("INSERT INTO na_dead SELECT unnest(%s::bigint[])", ([r[0] for r in rows],))
        touched = [
            r[0]
            for r in conn.execute(
                "UPDATE na_terms t SET df = t.df - c.n FROM unnest(%s::text[], %s::bigint[]) AS c(term, n) "
                "WHERE t.term = c.term RETURNING t.term",
                (list(held), list(held.values())),
            )
        ]
        removed_articles = conn.execute("DELETE FROM na_articles WHERE id = ANY(%s)", (gone,)).rowcount
    n_passages = sum(len(ps) for _, ps, _ in change.add)
    ids = [r[0] for r in conn.execute("SELECT nextval('na_passage_ids') FROM generate_series(1, %s)", (n_passages,))]
    added_length = 0
    now = time.time()
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO na_articles VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (a.id, a.title, a.text, a.path, a.source, a.url, a.published, a.sha, change.root_of.get(a.id, ""), now)
                for a, _, _ in change.add
            ],
        )
    at = 0
    postings: dict[str, list[tuple[int, int, int]]] = {}
    sql = "COPY na_passages (article_id, id, seq, char_start, char_end, n_tokens, length, text, analysis, embedding)"
    with conn.cursor().copy(sql + " FROM STDIN") as passages:  # one COPY at a time on a connection
        for article, ps, vectors in change.add:
            analyses = change.analysed.get(article.id) or analyse_article(article.text, spans(ps))
            for p, vec, analysis in zip(ps, vectors, analyses, strict=True):
                pid = ids[at]
                at += 1
                words = terms(indexed_text(article.title, p.text, with_title))
                added_length += len(words)
                passages.write_row(
                    (article.id, pid, p.seq, p.char_start, p.char_end, p.n_tokens, len(words), p.text,
                     analysis, vector_text(vec))
                )  # fmt: skip
                for term, tf in Counter(words).items():
                    postings.setdefault(term, []).append((pid, tf, len(words)))
    blocks = {
        t: TermBlock(*(np.array(col, np.int64) for col in zip(*rows, strict=True))) for t, rows in postings.items()
    }
    pg_blocks.copy_blocks(conn, blocks.items())
    if blocks:
        conn.execute(
            "INSERT INTO na_terms SELECT * FROM unnest(%s::text[], %s::bigint[]) "
            "ON CONFLICT (term) DO UPDATE SET df = na_terms.df + excluded.df",
            (list(blocks), [len(p.ids) for p in blocks.values()]),
        )
        pg_blocks.merge_terms(conn, list(blocks), merge_factor)
    if touched:
        conn.execute("DELETE FROM na_terms WHERE term = ANY(%s) AND df <= 0", (touched,))
    conn.execute(
        "UPDATE na_state SET generation = generation + 1, articles = articles + %s, passages = passages + %s, "
        "total_length = total_length + %s",
        (len(change.add) - removed_articles, n_passages - removed_passages, added_length - removed_length),
    )
    if change.roots:
        conn.execute("INSERT INTO na_roots SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING", (list(change.roots),))


def check_counts(conn: Any, full: bool) -> str | None:
    """What disagrees between the counts the index keeps and its rows (None: nothing); `full` also recounts every
    term's document frequency and the total passage length from the postings."""
    articles, passages, total = conn.execute("SELECT articles, passages, total_length FROM na_state").fetchone()
    have = conn.execute("SELECT (SELECT count(*) FROM na_articles), (SELECT count(*) FROM na_passages)").fetchone()
    if (articles, passages) != have:
        return f"the state counts {articles} articles and {passages} passages, the tables hold {have[0]} and {have[1]}"
    if not full:
        return None
    length = conn.execute("SELECT coalesce(sum(length), 0) FROM na_passages").fetchone()[0]
    if length != total:
        return f"the passages' total length is {length}, the state says {total}"
    dead = pg_blocks.dead_ids(conn)
    counted: Counter[str] = Counter()
    with conn.cursor(name="na_check", binary=True) as cur:  # server-side: every block, a batch at a time
        cur.execute("SELECT term, base, n, width, data FROM na_blocks")
        for term, base, n, width, data in cur:
            ids = TermBlock.decode(base, n, width, data).ids
            counted[term] += n - (int(np.isin(ids, dead, assume_unique=True).sum()) if len(dead) else 0)
    kept = dict(conn.execute("SELECT term, df FROM na_terms").fetchall())
    wrong = sum(1 for t in set(kept) | {t for t, n in counted.items() if n} if kept.get(t, 0) != counted.get(t, 0))
    return f"{wrong} terms' document frequencies disagree with the postings" if wrong else None


def reanalyse(conn: Any) -> None:
    """Store every passage's `analyse` output again, its quotations found over its article (an index analysed by
    an earlier version), in the writer's transaction; then the meta says this version's."""
    from psycopg.types.json import Jsonb

    from ..highlight import ANALYSIS_VERSION

    with conn.cursor(name="na_reanalyse") as articles:  # server-side: an archive's articles are not all in memory
        articles.execute("SELECT id, text FROM na_articles")
        for article_id, text in articles:
            rows = conn.execute(
                "SELECT id, text, char_start, char_end FROM na_passages WHERE article_id = %s", (article_id,)
            ).fetchall()
            analyses = analyse_article(text, [row[1:] for row in rows])
            conn.cursor().executemany(
                "UPDATE na_passages SET analysis = %s WHERE article_id = %s AND id = %s",
                [(analysis, article_id, row[0]) for analysis, row in zip(analyses, rows, strict=True)],
            )
    conn.execute("UPDATE na_meta SET value = %s WHERE key = 'analysis'", (Jsonb(ANALYSIS_VERSION),))
