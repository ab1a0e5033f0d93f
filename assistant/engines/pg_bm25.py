"""BM25 in PostgreSQL: exact scores, summed from the postings of the query's terms with bm25s's formula."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..analysis import K1, B

Rows = Callable[[str, Any], list[tuple]]
FEW_POSTINGS = 20_000  # a passage's score is read off its terms' postings up to this many, probed in the key above
# BM25's tf part, as bm25s computes it (float8 throughout: numeric arithmetic would be several times slower)
_PART = f"po.tf / (po.tf + {K1}::float8 * ({1 - B}::float8 + {B}::float8 * po.length / %(avg)s::float8))"
_TERMS = "unnest(%(terms)s::text[], %(idfs)s::float8[]) AS q(term, idf)"
_SUM = f"sum(q.idf * {_PART})::float4"


def summed(rows: Rows, query: dict[str, Any], k: int, cond: str, params: dict[str, Any], join: str) -> list[tuple]:
    """The k best (passage, article, score) by summing every posting of every term in SQL. Grouped by passage
    alone (its article looked up for the k best only): grouping a million postings by a text column as well
    cost a third more."""
    sql = (
        f"WITH s AS (SELECT po.passage_id, {_SUM} AS score FROM na_postings po JOIN {_TERMS} ON q.term = po.term "
        f"{join} WHERE {cond} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %(k)s) "
        "SELECT s.passage_id, p.article_id, s.score FROM s JOIN na_passages p ON p.id = s.passage_id "
        "ORDER BY 3 DESC, 1"
    )
    return rows(sql, {**params, **query, "k": int(k)})


def scores_of(rows: Rows, query: dict[str, Any], ids: list[int]) -> dict[int, float]:
    """The BM25 score of each given passage (those holding no query term left out): read off the terms' postings
    when they are few, else probed in the primary key passage by passage (a few probes instead of a long scan)."""
    if sum(query["dfs"]) <= FEW_POSTINGS:
        sql = f"SELECT po.passage_id, {_SUM} FROM na_postings po JOIN {_TERMS} ON q.term = po.term "
        sql += "WHERE po.passage_id = ANY(%(ids)s) GROUP BY 1"
    else:
        sql = (
            f"SELECT p.id, {_SUM} FROM na_passages p CROSS JOIN {_TERMS} JOIN na_postings po "
            "ON po.article_id = p.article_id AND po.term = q.term AND po.passage_id = p.id "
            "WHERE p.id = ANY(%(ids)s) GROUP BY 1"
        )
    return dict(rows(sql, {**query, "ids": ids}))
