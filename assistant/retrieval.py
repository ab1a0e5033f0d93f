"""Hybrid search: dense (FAISS) and BM25 candidates fused, floored, highlighted and de-duplicated."""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import RETRIEVAL_METHODS, RetrievalSettings
from .embedding import Embedder
from .highlight import best_sentence, overlaps, plain_words, shared_runs, shingles, stored_sentences, stored_words
from .lexical import named_terms, query_terms, terms
from .store import Snapshot
from .types import AssistantError, Citation, Hit
from .vectors import HALF_ERROR, dot_rows, scan, search_params

FILTER_KEYS = ("article_id", "source", "published_from", "published_to")


FILTERED_EXACT_MAX = 50_000  # filtered searches over at most this many passages score them all exactly


def _as_set(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, Sequence | set | frozenset):
        return {str(v) for v in value}
    raise AssistantError(f"filter value {value!r} must be a string or a list of strings")


_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def check_date(value: Any, name: str) -> str:
    """A date filter's value as 'YYYY', 'YYYY-MM' or 'YYYY-MM-DD' ('' when not given); else a one-line error."""
    if value is None or value == "":
        return ""
    text = value.strip() if isinstance(value, str) else ""
    try:
        ok = bool(_DATE.match(text)) and bool(datetime.date.fromisoformat((text + "-01-01")[:10]))
    except ValueError:
        ok = False
    if not ok:
        raise AssistantError(f"filter {name} = {value!r} is not a date; use YYYY-MM-DD (or YYYY-MM, YYYY)")
    return text


def allowed_articles(snapshot: Snapshot, filters: Mapping[str, Any] | None) -> np.ndarray | None:
    """Indices (into snapshot.article_ids) of the articles the filters allow; None for all."""
    if not filters:
        return None
    unknown = set(filters) - set(FILTER_KEYS)
    if unknown:
        raise AssistantError(f"unknown filter {sorted(unknown)[0]!r}; filters are {', '.join(FILTER_KEYS)}")
    ids = _as_set(filters["article_id"]) if "article_id" in filters else None
    sources = _as_set(filters["source"]) if "source" in filters else None
    lo, hi = (check_date(filters.get(key), key) for key in ("published_from", "published_to"))
    keep = []
    for i, aid in enumerate(snapshot.article_ids):
        meta = snapshot.articles[aid]
        date = (meta.get("published") or "")[:10]
        if ids is not None and aid not in ids:
            continue
        if sources is not None and meta.get("source") not in sources:
            continue
        # "published_to 2005-03" takes all of March: compare as many characters as the bound has
        if (lo and (not date or date < lo)) or (hi and (not date or date[: len(hi)] > hi)):
            continue
        keep.append(i)
    return np.array(keep, dtype=np.int64)


def searchable(question: str) -> bool:
    """Whether a question has any word that says what it is about (not only asking words, stop words, symbols).

    Without one, every passage's evidence would be its cosine alone and unrelated passages would pass the floor.
    """
    return bool(query_terms(question))


def scaled(x: np.ndarray, top: int) -> np.ndarray:
    """Min-max scaling anchored on the `top` best scores: the best is 1, the top-th best 0 (lower goes below 0)."""
    if not len(x):
        return x
    best = np.sort(x)[::-1][: max(1, top)]
    span = float(best[0] - best[-1])
    return (x - best[-1]) / span if span > 1e-12 else np.where(x > 0, 1.0, 0.0)


def _half_top(snapshot: Snapshot, qvec: np.ndarray, k: int) -> np.ndarray | None:
    """Rows of the k best cosines of an exact index, found by scanning its 16-bit copy for 2k and scoring those
    exactly; None when that cannot be sure of them (a row left out might be within HALF_ERROR of the k-th)."""
    if snapshot.half is None or 2 * k >= len(snapshot.flat):
        return None
    near, rows = scan(snapshot.half, qvec, 2 * k)
    exact = dot_rows(snapshot.flat[rows], qvec)
    best = np.argpartition(-exact, k - 1)[:k]
    if near[-1] + HALF_ERROR >= exact[best].min():
        return None
    return rows[best]


def candidates(
    snapshot: Snapshot, qvec: np.ndarray, question: str, n: int, allowed: np.ndarray | None, ef_search: int = 128
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Passage ids from both retrievers (n from each), with their cosine and BM25 scores."""
    import faiss

    lex = snapshot.lexical
    total = len(lex.ids)
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32)
    row_mask = None if allowed is None else np.isin(snapshot.row_article, allowed)
    k = min(n, total)
    sims = None
    if snapshot.flat is not None and row_mask is None and (rows := _half_top(snapshot, qvec, k)) is not None:
        dense_ids = lex.ids[rows]
    elif snapshot.flat is not None:  # exact: every passage scored, rows aligned with the BM25 rows
        sims = dot_rows(snapshot.flat, qvec)
        if row_mask is not None:
            sims = np.where(row_mask, sims, -np.inf)
        rows = np.argpartition(-sims, k - 1)[:k] if k < total else np.arange(total)
        dense_ids = lex.ids[rows[np.isfinite(sims[rows])]]
    elif row_mask is not None and row_mask.sum() <= FILTERED_EXACT_MAX:
        # A graph visits few of a small allowed set: score those passages exactly instead.
        allowed_ids = lex.ids[row_mask]
        dense_ids = allowed_ids[np.argsort(-dot_rows(snapshot.vectors.reconstruct_batch(allowed_ids), qvec))[:k]]
    else:
        selector = None if row_mask is None else faiss.IDSelectorBatch(lex.ids[row_mask])
        _, ids = scan(snapshot.vectors, qvec, k, search_params(snapshot.vectors, selector, ef_search))
        dense_ids = ids[ids >= 0]
    bm25 = lex.scores(question, None if row_mask is None else row_mask.astype(np.float32))
    top_rows = np.argpartition(-bm25, k - 1)[:k] if k < total else np.arange(total)
    top_rows = top_rows[bm25[top_rows] > 0]
    pids = np.unique(np.concatenate([dense_ids, lex.ids[top_rows]]))
    at = np.searchsorted(lex.ids, pids)
    if sims is not None:
        dense = sims[at]
    elif snapshot.flat is not None:
        dense = dot_rows(snapshot.flat[at], qvec)
    else:
        dense = dot_rows(snapshot.vectors.reconstruct_batch(pids), qvec) if len(pids) else np.zeros(0, np.float32)
    lexical = bm25[at]
    return pids, dense.astype(np.float32), lexical.astype(np.float32)


def coverage(snapshot: Snapshot, question: str, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each passage id: the share of the question's IDF weight that its article contains, over all the
    question's terms and over its names and numbers only (1.0 when it has none). A term in no passage weighs most."""
    lex = snapshot.lexical
    arts = snapshot.row_article[np.searchsorted(lex.ids, ids)]
    out = []
    for group in (set(terms(question)), named_terms(question)):
        if not group:
            out.append(np.ones(len(ids)))
            continue
        have = np.zeros(len(ids))
        total = 0.0
        holds = np.zeros(len(snapshot.article_ids), dtype=bool)
        for t in group:
            rows = lex.rows_with(t)
            weight = lex.idf(t) if len(rows) else lex.max_idf
            total += weight
            if len(rows):
                holds[:] = False
                holds[snapshot.row_article[rows]] = True
                have += weight * holds[arts]
        out.append(have / total)
    return out[0], out[1]


def evidence(snapshot: Snapshot, settings: RetrievalSettings, r: Ranking, n: int) -> np.ndarray:
    """Relevance evidence of the first n passages of a ranking, which the floor `min_score` applies to:
    cosine + coverage_weight * article coverage of the question + names_weight * coverage of its names."""
    ids = r.ids[:n]
    everything, names = coverage(snapshot, r.query, ids)
    return r.dense[:n] + settings.coverage_weight * everything + settings.names_weight * names


def _citation(snapshot: Snapshot, article_id: str, start: int, end: int) -> Citation:
    meta = snapshot.articles[article_id]
    return Citation(article_id, meta["title"], meta.get("source") or "", meta.get("path") or "", start, end)


def _shared_runs(g: Hit, h: Hit, size: int) -> list[tuple[int, tuple[int, int], tuple[int, int]]]:
    """Runs of at least `size` words two hits share, with their spans in each (see `shared_runs`).

    Neighbouring passages of one article share the sentences they overlap by: that run is read off their
    spans, without comparing the texts word by word.
    """
    a, b = g.citations[0], h.citations[0]
    if a.article_id == b.article_id:
        lo, hi = max(a.char_start, b.char_start), min(a.char_end, b.char_end)
        if lo < hi:
            n = len(plain_words(g.text[lo - a.char_start : hi - a.char_start]))
            if n < size:
                return []
            return [(n, (lo - a.char_start, hi - a.char_start), (lo - b.char_start, hi - b.char_start))]
    return shared_runs(g.text, h.text, size)


def collapse(
    hits: list[Hit],
    settings: RetrievalSettings,
    answer: Callable[[Hit], tuple[int, int] | None] | None = None,
    words_of: Callable[[Hit], list[str]] | None = None,
) -> list[Hit]:
    """Fold near-duplicate passages into the best-ranked one, which then cites every article.

    `answer` gives a hit's answering sentence (default: its highlight); it is asked only of hits sharing text.
    `words_of` gives a hit's `plain_words` (default: read off its text).
    """
    answer = answer or (lambda hit: hit.highlight)
    words_of = words_of or (lambda hit: plain_words(hit.text))
    size = settings.duplicate_min_words
    kept: list[Hit] = []
    kept_words: list[tuple[int, set[tuple[str, ...]]]] = []
    for h in hits:
        words = words_of(h)
        runs_of = shingles(words, size)
        for i, g in enumerate(kept):
            g_count, g_runs = kept_words[i]
            if runs_of.isdisjoint(g_runs):
                continue  # no run of `size` words in common: not the same text
            runs = _shared_runs(g, h, size)
            if not runs:
                continue
            shorter = min(g_count, len(words))
            same_text = sum(r[0] for r in runs) >= settings.duplicate_overlap * shorter
            same_answer = any(overlaps(answer(g), sg) and overlaps(answer(h), sh) for _, sg, sh in runs)
            if same_text or same_answer:
                cited = {c.article_id for c in g.citations}
                extra = tuple(c for c in h.citations if c.article_id not in cited)
                kept[i] = dataclasses.replace(g, citations=g.citations + extra)
                break
        else:
            kept.append(h)
            kept_words.append((len(words), runs_of))
    return kept


def search(
    snapshot: Snapshot,
    encoder: Embedder,
    settings: RetrievalSettings,
    question: str,
    k: int = 10,
    filters: Mapping[str, Any] | None = None,
) -> list[Hit]:
    """The k best passages for a question, or [] when nothing clears the relevance floor (or the question has no
    words to search for: "what did", "???", emoji, only stop words)."""
    if not searchable(question):
        return []
    r = rank(snapshot, encoder, settings, question, settings.candidates, filters)
    n = min(len(r.ids), max(3 * k, 10))
    strength = evidence(snapshot, settings, r, n)
    order = np.flatnonzero(strength >= settings.min_score)
    rows = snapshot.passages([int(r.ids[i]) for i in order])
    hits = []
    for i in order:
        pid = int(r.ids[i])
        article_id, start, end, text, _ = rows[pid]
        hits.append(
            Hit(
                passage_id=pid,
                text=text,
                score=float(r.fused[i]),
                citations=(_citation(snapshot, article_id, start, end),),
                dense=float(r.dense[i]),
                lexical=float(r.lexical[i]),
                evidence=float(strength[i]),
            )
        )
    spans: dict[int, tuple[int, int] | None] = {}

    def answer(hit: Hit) -> tuple[int, int] | None:
        if hit.passage_id not in spans:
            stored = rows[hit.passage_id][4]
            sentences = None if stored is None else stored_sentences(stored)
            spans[hit.passage_id] = best_sentence(r.query, hit.text, snapshot.lexical.idf, sentences)
        return spans[hit.passage_id]

    def words_of(hit: Hit) -> list[str]:
        stored = rows[hit.passage_id][4]
        return plain_words(hit.text) if stored is None else stored_words(stored)

    return [dataclasses.replace(h, highlight=answer(h)) for h in collapse(hits, settings, answer, words_of)[:k]]


@dataclass(frozen=True)
class Ranking:
    """Candidate passages, best first: ids with their fused, cosine and BM25 scores, and the query text."""

    query: str
    ids: np.ndarray
    fused: np.ndarray
    dense: np.ndarray
    lexical: np.ndarray


def rank(
    snapshot: Snapshot,
    encoder: Embedder,
    settings: RetrievalSettings,
    question: str,
    depth: int,
    filters: Mapping[str, Any] | None = None,
) -> Ranking:
    """Up to `depth` candidates from each retriever, fused by `settings.method` and sorted (no floor)."""
    question = question.strip()
    if not question:
        raise AssistantError("the question is empty")
    if settings.method not in RETRIEVAL_METHODS:
        raise AssistantError(f"retrieval.method is '{settings.method}'; use one of {', '.join(RETRIEVAL_METHODS)}")
    empty = np.zeros(0, np.float32)
    allowed = allowed_articles(snapshot, filters)
    if allowed is not None and len(allowed) == 0:
        return Ranking(question, np.zeros(0, np.int64), empty, empty, empty)
    qvec = encoder.encode([question])[0]
    pids, dense, lexical = candidates(
        snapshot, qvec, question, max(depth, settings.candidates), allowed, settings.hnsw_ef_search
    )
    top = settings.candidates
    if settings.method == "dense":
        fused = dense.astype(np.float64)
    elif settings.method == "bm25":
        fused = lexical.astype(np.float64)
    else:
        w = settings.dense_weight
        fused = w * scaled(dense, top) + (1 - w) * scaled(lexical, top)
    order = np.argsort(-fused, kind="stable")
    return Ranking(question, pids[order], fused[order], dense[order], lexical[order])


def rank_articles(ranking: Ranking, snapshot: Snapshot, k: int) -> list[tuple[str, float]]:
    """Articles in order of their best passage in a ranking, with that passage's fused score."""
    rows = np.searchsorted(snapshot.lexical.ids, ranking.ids)
    articles, first = np.unique(snapshot.row_article[rows], return_index=True)
    best = np.argsort(first, kind="stable")[:k]  # ranking is sorted: an article's first passage is its best
    return [(snapshot.article_ids[articles[i]], float(ranking.fused[first[i]])) for i in best]
