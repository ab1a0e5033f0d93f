"""Hybrid search: dense and BM25 candidates from an engine's view, fused, floored, highlighted and de-duplicated."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .analysis import named_terms, query_terms, terms
from .config import RETRIEVAL_METHODS, RetrievalSettings
from .embedding import Embedder
from .engines.base import Filter, Scored, View
from .highlight import (
    best_sentence,
    overlaps,
    plain_words,
    shared_runs,
    shingles,
    stored_quotes,
    stored_sentences,
    stored_words,
)
from .quotes import article_quotes, passage_quotes
from .speech import SAID_MATCH, quote_match, said_by
from .speech import read as read_speech
from .types import AssistantError, Citation, Hit, Quote

__all__ = ["rank", "rank_articles", "said_first", "search", "searchable"]
PREFIX_MIN = 5  # a name no passage holds is looked up as the start of indexed terms from this length
PREFIX_TERMS = 3  # at most this many indexed terms stand in for it
SAID_SHARE_WEIGHT = 0.5  # among those, a passage gains by the share of it that is the speaker's words
_ENCODING = ThreadPoolExecutor(max_workers=4, thread_name_prefix="encode-question")  # see `candidates`


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


def candidates(
    view: View, encoded: Future[np.ndarray], question: str, n: int, where: Filter | None, ef_search: int = 128
) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """Passage ids from both retrievers (n from each), with their articles, cosine and BM25 scores.

    `encoded` is the question's embedding (encoder.encode([question])) under way on another thread while the engine
    ranks by BM25 (a database works on the other core meanwhile), inside the caller's read.
    """
    words = spelled(view, query_terms(question), named_terms(question))
    lexical_top = view.lexical_top(words, n, where)
    qvec = encoded.result()[0]
    dense_top = view.dense_top(qvec, n, where, ef_search)
    article_of = dict(zip(dense_top.ids.tolist(), dense_top.articles, strict=True))
    article_of.update(zip(lexical_top.ids.tolist(), lexical_top.articles, strict=True))
    pids = np.array(sorted(article_of), dtype=np.int64)
    dense = _scores(pids, dense_top, lambda ids: view.dense_scores(qvec, ids))
    lexical = _scores(pids, lexical_top, lambda ids: view.lexical_scores(words, ids))
    return pids, [article_of[p] for p in pids.tolist()], dense, lexical


def _scores(pids: np.ndarray, known: Scored, score: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Each passage's score: as a retriever's top list gave it, else asked of the engine (only those)."""
    given = dict(zip(known.ids.tolist(), known.scores.tolist(), strict=True))
    missing = np.array([p for p in pids.tolist() if p not in given], dtype=np.int64)
    given.update(zip(missing.tolist(), score(missing).tolist(), strict=True))
    return np.array([given[p] for p in pids.tolist()], dtype=np.float32)


def spelled(view: View, words: Sequence[str], names: set[str]) -> list[str]:
    """The words, each name (of `names`: `analysis.named_terms`) that no passage holds and of at least PREFIX_MIN
    letters replaced by the indexed terms it begins (up to PREFIX_TERMS, the commonest): "Buryat" finds
    "Buryatia". Other words, and a name no indexed term begins, stay as they are (a term in no passage)."""
    out: list[str] = []
    for w in words:
        if w in names and len(w) >= PREFIX_MIN and view.idf(w) == 0:
            out += view.expand(w, PREFIX_TERMS) or [w]
        else:
            out.append(w)
    return list(dict.fromkeys(out))


def coverage(view: View, question: str, articles: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """For each passage (by its article): the share of the question's IDF weight that its article contains, over
    all the question's terms and over its names and numbers only (1.0 when it has none). A term in no passage
    weighs most."""
    named = named_terms(question)
    everything, names = set(spelled(view, terms(question), named)), set(spelled(view, sorted(named), named))
    stats = view.term_stats(sorted(everything | names), sorted(set(articles)))
    out = []
    for group in (everything, names):
        if not group:
            out.append(np.ones(len(articles)))
            continue
        have = np.zeros(len(articles))
        total = 0.0
        for t in group:
            weight, holders = stats[t]
            total += weight
            if holders:
                have += weight * np.fromiter((a in holders for a in articles), dtype=bool, count=len(articles))
        out.append(have / total)
    return out[0], out[1]


def evidence(view: View, settings: RetrievalSettings, r: Ranking, n: int) -> np.ndarray:
    """Relevance evidence of the first n passages of a ranking, which the floor `min_score` applies to:
    cosine + coverage_weight * article coverage of the question + names_weight * coverage of its names."""
    everything, names = coverage(view, r.query, r.articles[:n])
    return r.dense[:n] + settings.coverage_weight * everything + settings.names_weight * names


def _quotes(view: View, article_id: str, start: int, end: int, stored: str | None) -> tuple[Quote, ...]:
    """A passage's quotations: stored with it, or (an index analysed before they were) found in its article."""
    if stored is not None:
        return tuple(stored_quotes(stored))
    text = view.article_text(article_id)
    return tuple(passage_quotes(article_quotes(text), start, end)) if text else ()


def said_first(question: str, hits: list[Hit]) -> list[Hit]:
    """For a question about what someone said (speech.read), the passages holding a quotation that answers it
    come first: by the speaker asked about, on the rest of the question; the closest match to the rest of the
    question first, then those where more of the passage is that speaker's words; the rest keep their order."""
    asked = read_speech(question)
    if asked is None:
        return hits
    graded = []
    for at, h in enumerate(hits):
        best = max((quote_match(asked, q, h.text) for q in h.quotes), default=0.0)
        if best >= SAID_MATCH:
            said = sum(q.end - q.start for q in h.quotes if said_by(asked, q, h.text))
            graded.append((0, -round(best, 6), -(h.score + SAID_SHARE_WEIGHT * said / max(1, len(h.text))), at))
        else:
            graded.append((1, 0.0, 0.0, at))
    return [hits[at] for *_, at in sorted(graded)]


def citation(view: View, article_id: str, start: int, end: int) -> Citation:
    """A citation of a span of an article, with the article's title, source, file, date and web address."""
    meta = view.article(article_id) or {}
    source, path, published = meta.get("source") or "", meta.get("path") or "", meta.get("published") or ""
    return Citation(article_id, meta["title"], source, path, start, end, published, meta.get("url") or "")


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
    view: View,
    encoder: Embedder,
    settings: RetrievalSettings,
    question: str,
    k: int = 10,
    filters: Mapping[str, Any] | None = None,
    matched: list[str] | None = None,
) -> list[Hit]:
    """The k best passages for a question, or [] when nothing clears the relevance floor (or the question has no
    words to search for: "what did", "???", emoji, only stop words). A `matched` list given is filled with the
    articles of every candidate passage that clears the floor the hits cleared, best first (a timeline's)."""
    if not searchable(question):
        return []
    encoded = _ENCODING.submit(encoder.encode, [question.strip()])  # while a database's read begins
    with view.reading(terms(question)):
        return _search(view, encoder, settings, question, k, filters, matched, encoded)


def _search(
    view: View,
    encoder: Embedder,
    settings: RetrievalSettings,
    question: str,
    k: int,
    filters: Mapping[str, Any] | None,
    matched: list[str] | None,
    encoded: Future[np.ndarray],
) -> list[Hit]:
    r = rank(view, encoder, settings, question, settings.candidates, filters, encoded)
    n = min(len(r.ids), max(3 * k, 10))
    every = evidence(view, settings, r, n if matched is None else len(r.ids))
    strength = every[:n]
    confidence, floor = "strong", settings.min_score
    order = np.flatnonzero(strength >= floor)
    if not len(order):  # nothing clears the floor: what comes close is shown, as such
        confidence, floor = "weak", settings.weak_score
        order = np.flatnonzero(strength >= floor)[:k]
    if matched is not None and len(order):
        matched.extend(dict.fromkeys(r.articles[i] for i in np.flatnonzero(every >= floor)))
    rows = view.passages([int(r.ids[i]) for i in order])
    hits = []
    for i in order:
        pid = int(r.ids[i])
        article_id, start, end, text, stored = rows[pid]
        hits.append(
            Hit(
                passage_id=pid,
                text=text,
                score=float(r.fused[i]),
                citations=(citation(view, article_id, start, end),),
                dense=float(r.dense[i]),
                lexical=float(r.lexical[i]),
                evidence=float(strength[i]),
                quotes=_quotes(view, article_id, start, end, stored),
                confidence=confidence,
            )
        )
    hits = said_first(r.query, hits)
    spans: dict[int, tuple[int, int] | None] = {}

    def answer(hit: Hit) -> tuple[int, int] | None:
        if hit.passage_id not in spans:
            stored = rows[hit.passage_id][4]
            sentences = None if stored is None else stored_sentences(stored)
            spans[hit.passage_id] = best_sentence(r.query, hit.text, view.idf, sentences)
        return spans[hit.passage_id]

    def words_of(hit: Hit) -> list[str]:
        stored = rows[hit.passage_id][4]
        return plain_words(hit.text) if stored is None else stored_words(stored)

    return [dataclasses.replace(h, highlight=answer(h)) for h in collapse(hits, settings, answer, words_of)[:k]]


@dataclass(frozen=True)
class Ranking:
    """Candidate passages, best first: ids with their articles, fused, cosine and BM25 scores, and the query text."""

    query: str
    ids: np.ndarray
    articles: list[str]
    fused: np.ndarray
    dense: np.ndarray
    lexical: np.ndarray


def rank(
    view: View,
    encoder: Embedder,
    settings: RetrievalSettings,
    question: str,
    depth: int,
    filters: Mapping[str, Any] | None = None,
    encoded: Future[np.ndarray] | None = None,
) -> Ranking:
    """Up to `depth` candidates from each retriever, fused by `settings.method` and sorted (no floor). `encoded`:
    the question's embedding already under way (encoder.encode([question]))."""
    question = question.strip()
    if not question:
        raise AssistantError("the question is empty")
    if settings.method not in RETRIEVAL_METHODS:
        raise AssistantError(f"retrieval.method is '{settings.method}'; use one of {', '.join(RETRIEVAL_METHODS)}")
    where = Filter.parse(filters)
    with view.reading():
        pids, articles, dense, lexical = candidates(
            view,
            encoded if encoded is not None else _ENCODING.submit(encoder.encode, [question]),
            question,
            max(depth, settings.candidates),
            where,
            settings.hnsw_ef_search,
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
    ranked = [articles[i] for i in order]
    return Ranking(question, pids[order], ranked, fused[order], dense[order], lexical[order])


def rank_articles(ranking: Ranking, k: int) -> list[tuple[str, float]]:
    """Articles in order of their best passage in a ranking, with that passage's fused score."""
    best: dict[str, float] = {}
    for article_id, score in zip(ranking.articles, ranking.fused.tolist(), strict=True):
        best.setdefault(article_id, float(score))  # the ranking is sorted: an article's first passage is its best
        if len(best) == k:
            break
    return list(best.items())
