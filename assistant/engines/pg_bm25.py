"""BM25 in PostgreSQL: exact scores from the postings of the query's terms, with bm25s's formula.

Two ways to the k best, both exact. `summed` adds up every posting of every query term: cost grows with the
terms' document frequencies. `top` (Fagin's threshold algorithm over impact-ordered postings) reads each term's
postings best first, `m` at a time: a passage in none of those lists can score at most the sum, over the terms
whose lists go on, of idf x the bound of the last impact read; once the k-th best score found is above that, no
unread passage can enter, and the k best are exact. Rounds read 8x deeper until they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..analysis import K1, B

Rows = Callable[[str, Any], list[tuple]]
PLAIN_MAX = 20_000  # postings summed the plain way; more (summed over the query's terms) go through `top`
FIRST_DEPTH = 256  # postings of each term the first round of `top` reads; each further round 8x more
# BM25's tf part, as bm25s computes it (float8 throughout: numeric arithmetic would be several times slower)
_PART = f"po.tf / (po.tf + {K1}::float8 * ({1 - B}::float8 + {B}::float8 * po.length / %(avg)s::float8))"
_TERMS = "unnest(%(terms)s::text[], %(idfs)s::float8[]) AS q(term, idf)"
_SUMMED = (
    f"SELECT po.passage_id, any_value(po.article_id), sum(q.idf * {_PART})::float4 AS score "
    f"FROM na_postings po JOIN {_TERMS} ON q.term = po.term "
)
# One round of `top`. lists: each term's `m` best postings by impact. open: each term's bound for what its list
# has not read (0 when it read them all). cand: every passage in a list, with what its lists give (lo) and the most
# it could have (hi). The passages whose hi reaches the k-th best lo are scored exactly from the primary key.
_ROUND = f"""
WITH q AS MATERIALIZED (SELECT * FROM {_TERMS}),
lists AS MATERIALIZED (
  SELECT q.term, q.idf, x.* FROM q CROSS JOIN LATERAL (
    SELECT passage_id, article_id, tf, length, impact FROM na_postings po WHERE po.term = q.term
    ORDER BY impact DESC LIMIT %(m)s) x),
open AS MATERIALIZED (
  SELECT term, CASE WHEN count(*) < %(m)s THEN 0::float8 ELSE any_value(idf) * CASE
    WHEN (1 - %(rho)s::float8) / min(impact) + %(rc)s::float8 <= 1 THEN 1::float8
    ELSE 1 / ((1 - %(rho)s::float8) / min(impact) + %(rc)s::float8) END END AS bound
  FROM lists GROUP BY term),
cand AS MATERIALIZED (
  SELECT po.passage_id, any_value(po.article_id) AS article_id, sum(po.idf * {_PART}) AS lo,
    sum(po.idf * {_PART} - o.bound) + (SELECT sum(bound) FROM open) AS hi
  FROM lists po JOIN open o ON o.term = po.term GROUP BY 1),
kth AS (SELECT coalesce((SELECT lo FROM cand ORDER BY lo DESC OFFSET %(k)s - 1 LIMIT 1), '-Infinity') AS lo),
best AS (
  SELECT c.passage_id, c.article_id, sum(q.idf * {_PART})::float4 AS score
  FROM cand c CROSS JOIN q JOIN na_postings po
    ON po.article_id = c.article_id AND po.term = q.term AND po.passage_id = c.passage_id
  WHERE c.hi >= (SELECT lo FROM kth) - 1e-6 * abs((SELECT lo FROM kth))
  GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT %(k)s)
SELECT passage_id, article_id, score::float8 FROM best
UNION ALL SELECT NULL, NULL, (SELECT sum(bound) FROM open)
"""


def summed(rows: Rows, query: dict[str, Any], k: int, cond: str, params: dict[str, Any], join: str) -> list[tuple]:
    """The k best (passage, article, score) by summing every posting of every term in SQL (the plain way)."""
    sql = _SUMMED + f"{join} WHERE {cond} GROUP BY 1 ORDER BY 3 DESC, 1 LIMIT %(k)s"
    return rows(sql, {**params, **query, "k": int(k)})


def top(rows: Rows, query: dict[str, Any], k: int, reference: float) -> list[tuple]:
    """The k best (passage, article, score) over the whole index by the threshold algorithm: the same as `summed`.

    `reference`: the length the stored impacts were computed at. An impact s read at that length bounds the
    tf part at today's average length: tf/(tf + a + c*len/avg) <= 1 / ((1 - rho)/s + rho*e), rho = 1 - ref/avg,
    e = 1 (rho >= 0) or 1 + a (rho < 0), a = K1 (1 - B) (from 1/f = 1 + a/tf + (c len/tf)/avg and tf >= 1).
    """
    rho = 1.0 - reference / max(query["avg"], 1e-9)
    rc = rho * (1.0 if rho >= 0 else 1.0 + K1 * (1 - B))
    depth, deepest = FIRST_DEPTH, max(query["dfs"])
    while True:
        got = rows(_ROUND, {**query, "k": int(k), "m": depth, "rho": rho, "rc": rc})
        hits, unread = [r for r in got if r[0] is not None], float(got[-1][2] or 0.0)
        if depth >= deepest or (len(hits) == k and hits[-1][2] > unread * (1 + 1e-6) + 1e-9):
            return [(int(p), a, float(s)) for p, a, s in hits]
        depth *= 8


def scores_of(rows: Rows, query: dict[str, Any], ids: list[int]) -> dict[int, float]:
    """The BM25 score of each given passage (those holding no query term left out): read off the terms' postings
    when they are few (PLAIN_MAX), else probed in the primary key, passage by passage."""
    if sum(query["dfs"]) <= PLAIN_MAX:
        sql = _SUMMED + "WHERE po.passage_id = ANY(%(ids)s) GROUP BY 1"
    else:
        sql = (
            f"SELECT p.id, NULL, sum(q.idf * {_PART})::float4 FROM na_passages p CROSS JOIN {_TERMS} "
            "JOIN na_postings po ON po.article_id = p.article_id AND po.term = q.term AND po.passage_id = p.id "
            "WHERE p.id = ANY(%(ids)s) GROUP BY 1"
        )
    return {r[0]: r[2] for r in rows(sql, {**query, "ids": ids})}
