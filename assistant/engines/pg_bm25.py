"""BM25 in PostgreSQL: exact scores, summed from the postings of the query's terms with bm25s's formula."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..analysis import K1, B

Rows = Callable[[str, Any], list[tuple]]
_PART = f"po.tf / (po.tf + {K1} * (1 - {B} + {B} * po.length / %(avg)s::float8))"  # BM25's tf part, as bm25s
_SUMMED = f"""
SELECT po.passage_id, po.article_id, sum(q.idf * {_PART})::float4 AS score
FROM na_postings po JOIN unnest(%(terms)s::text[], %(idfs)s::float8[]) AS q(term, idf) ON q.term = po.term
"""


def summed(rows: Rows, query: dict[str, Any], k: int, cond: str, params: dict[str, Any], join: str) -> list[tuple]:
    """The k best (passage, article, score) by summing every posting of every term in SQL (the plain way)."""
    sql = _SUMMED.replace("\n", " ") + f"{join} WHERE {cond} GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT %(k)s"
    return rows(sql, {**params, **query, "k": int(k)})


def scores_of(rows: Rows, query: dict[str, Any], ids: list[int]) -> dict[int, float]:
    """The BM25 score of each given passage (those holding no query term left out)."""
    sql = _SUMMED + "WHERE po.passage_id = ANY(%(ids)s) GROUP BY 1, 2"
    return {r[0]: r[2] for r in rows(sql, {**query, "ids": ids})}
