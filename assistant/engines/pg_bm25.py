"""BM25 in PostgreSQL: exact scores summed from postings, and an exact top k that reads the rare terms first."""

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
READ_MAX = 20_000  # postings a term may have and still be read into the top-k search one by one
SUMMED_MAX = 50_000  # up to this many postings in all, one summing query is quicker (BBC: 2 ms against 5)


def summed(rows: Rows, query: dict[str, Any], k: int, cond: str, params: dict[str, Any], join: str) -> list[tuple]:
    """The k best (passage, article, score) by summing every posting of every term in SQL (the plain way)."""
    sql = _SUMMED.replace("\n", " ") + f"{join} WHERE {cond} GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT %(k)s"
    return rows(sql, {**params, **query, "k": int(k)})


def scores_of(rows: Rows, query: dict[str, Any], ids: list[int]) -> dict[int, float]:
    """The BM25 score of each given passage (those holding no query term left out)."""
    sql = _SUMMED + "WHERE po.passage_id = ANY(%(ids)s) GROUP BY 1, 2"
    return {r[0]: r[2] for r in rows(sql, {**query, "ids": ids})}


def top(rows: Rows, query: dict[str, Any], dfs: dict[str, int], k: int, summed_max: int = SUMMED_MAX) -> list[tuple]:
    """The exact k best (passage, article, score), reading whole postings only of the terms that can decide them.

    MaxScore: a term adds at most its IDF to a passage (the tf part is below 1). Terms are read rarest first; once
    the k-th best score so far is above what every term not yet read could add together, no passage without a
    read term can enter the top k, and the candidates only need their scores completed from the other terms'
    postings (looked up by passage). Common words ("said", "year") are then never read whole. When a term that
    must be read whole has over READ_MAX postings, or all terms have at most `summed_max` in all, everything is
    summed in SQL instead.
    """
    if sum(dfs.values()) <= summed_max:
        return summed(rows, query, k, "true", {}, "")
    order = sorted(range(len(query["terms"])), key=lambda i: -query["idfs"][i])
    terms = [query["terms"][i] for i in order]
    idfs = [query["idfs"][i] for i in order]
    partial: dict[int, list] = {}
    read = 0
    kth = 0.0
    while read < len(terms):
        if len(partial) >= k and kth > sum(idfs[read:]):
            break
        if dfs[terms[read]] > READ_MAX:
            return summed(rows, query, k, "true", {}, "")
        one = {"terms": [terms[read]], "idfs": [idfs[read]], "avg": query["avg"]}
        for pid, article, score in rows(_SUMMED + "GROUP BY 1, 2", one):
            partial.setdefault(pid, [article, 0.0])[1] += score
        read += 1
        if len(partial) >= k:
            kth = sorted((v[1] for v in partial.values()), reverse=True)[k - 1]
    rest = sum(idfs[read:])
    candidates = [pid for pid, (_, s) in partial.items() if s + rest >= kth]
    if read < len(terms) and candidates:
        more = {"terms": terms[read:], "idfs": idfs[read:], "avg": query["avg"]}
        for pid, score in scores_of(rows, more, candidates).items():
            partial[pid][1] += score
    best = sorted(((pid, a, s) for pid, (a, s) in partial.items()), key=lambda r: (-r[2], r[0]))
    return [r for r in best[:k] if r[2] > 0]
