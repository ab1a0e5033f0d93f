"""Speakers as a way in: every quotation by a person across the archive, ranked by relevance to a topic, each
cited, the same words in several articles (another outlet's copy of a wire story) collapsed into one."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from .analysis import query_terms, terms
from .config import RetrievalSettings
from .embedding import Embedder
from .engines.base import Filter, View
from .highlight import shingles
from .quotes import around, article_quotes, speaker_matches
from .retrieval import citation, rank, rank_articles
from .speakers import fold
from .types import AssistantError, Quote, Said

MAX_ARTICLES = 400  # articles read for one call: those naming the speaker, or best matching the topic
NAMING_PASSAGES = 4000  # passages naming the speaker that are looked at (by BM25 of the name)
ENCODED = 300  # quotations embedded to rank them by meaning (the rest by their words alone)
SAME_RUNS = 0.6  # share of three-word runs two quotations in different articles share to be shown as one
MEANING_WEIGHT = 0.6  # a quotation's relevance: this much cosine to the topic, the rest the share of its words


def find_said(
    view: View,
    encoder: Embedder,
    settings: RetrievalSettings,
    speaker: str | None = None,
    about: str | None = None,
    k: int = 20,
    filters: Mapping[str, Any] | None = None,
) -> list[Said]:
    """Quotations by `speaker` (every one the archive holds; any speaker's when None), ranked by relevance to
    `about` (newest first without it), at most k, duplicates collapsed."""
    speaker, about = (speaker or "").strip() or None, (about or "").strip() or None
    if speaker is None and about is None:
        raise AssistantError("say whose quotations (--speaker NAME) or about what (--about TEXT), or both")
    if speaker is not None and not query_terms(speaker):
        raise AssistantError(f"'{speaker}' has no word to look a speaker up by; give a name, e.g. 'Zelensky'")
    where = Filter.parse(filters)
    with view.reading():
        found = [
            (article_id, q, text)
            for article_id in _articles(view, encoder, settings, speaker, about, filters, where)
            for text in [view.article_text(article_id) or ""]
            for q in article_quotes(text)
            if (speaker_matches(speaker, q.speaker, q.forms) if speaker else bool(q.speaker))
        ]
        scores = _relevance(view, encoder, about, [(q, text) for _, q, text in found])
        order = sorted(range(len(found)), key=lambda i: (-scores[i], *_newest(view, found[i][0]), found[i][1].start))
        out: list[Said] = []
        kept: list[tuple[list[str], set[tuple[str, ...]]]] = []  # each kept quotation's folded words and shingles
        for i in order:
            article_id, q, text = found[i]
            if about is not None and speaker is None and scores[i] <= 0:
                continue  # any speaker's words, but on the topic
            words = text[q.start : q.end].strip()
            folded = fold(words).split()
            runs = shingles(folded, 3)
            cited = citation(view, article_id, q.start, q.end)
            at = next((j for j, (w, r) in enumerate(kept) if _same(folded, runs, w, r, out[j], article_id)), None)
            if at is not None:
                first = out[at]
                if all(c.article_id != article_id for c in (first.citation, *first.also_in)):
                    out[at] = dataclasses.replace(first, also_in=(*first.also_in, cited))
                continue
            if len(out) < k:
                kept.append((folded, runs))
                out.append(Said(q.speaker, words, q.kind, float(scores[i]), cited))
        return out


def _same(words: list[str], runs: set, other: list[str], other_runs: set, kept: Said, article_id: str) -> bool:
    """Whether a quotation is one already kept: the same words, or, in another article (another outlet's copy),
    nearly the same (SAME_RUNS of their three-word runs shared, or the one's words inside the other's)."""
    if words == other:
        return True
    if article_id == kept.citation.article_id or min(len(words), len(other)) < 6:
        return False
    short, long_ = (words, other) if len(words) <= len(other) else (other, words)
    if " ".join(short) in " ".join(long_):
        return True
    return bool(runs and other_runs) and len(runs & other_runs) / min(len(runs), len(other_runs)) >= SAME_RUNS


def _articles(
    view: View,
    encoder: Embedder,
    settings: RetrievalSettings,
    speaker: str | None,
    about: str | None,
    filters: Mapping[str, Any] | None,
    where: Filter | None,
) -> list[str]:
    """The articles to read: those whose passages name the speaker (by BM25 of the name), and, with a topic,
    those best matching it (with the speaker's name), at most MAX_ARTICLES."""
    ids: dict[str, None] = {}
    if about is not None:
        question = f"{speaker} {about}" if speaker else about
        ranking = rank(view, encoder, settings, question, max(settings.candidates, 200), filters)
        ids.update((a, None) for a, _ in rank_articles(ranking, MAX_ARTICLES // 2))
    if speaker is not None:
        named = view.lexical_top(query_terms(speaker), NAMING_PASSAGES, where)
        for article_id in named.articles:
            if len(ids) >= MAX_ARTICLES:
                break
            ids.setdefault(article_id, None)
    return list(ids)


def _relevance(view: View, encoder: Embedder, about: str | None, quotes: list[tuple[Quote, str]]) -> np.ndarray:
    """Each quotation's relevance to the topic: MEANING_WEIGHT times its cosine to it (the ENCODED with most of
    its words), the rest the IDF-weighted share of its words the quotation and its sentence hold."""
    scores = np.zeros(len(quotes))
    if about is None or not quotes:
        return scores
    wanted = set(query_terms(about))
    weight = {t: view.idf(t) for t in wanted}
    total = sum(weight.values()) or 1.0
    for i, (q, text) in enumerate(quotes):
        held = wanted.intersection(terms(around(text, q)))
        scores[i] = (1 - MEANING_WEIGHT) * sum(weight[t] for t in held) / total
    best = np.argsort(-scores, kind="stable")[:ENCODED]
    vectors = encoder.encode([about] + [quotes[i][1][quotes[i][0].start : quotes[i][0].end] for i in best])
    cosines = vectors[1:] @ vectors[0]
    scores[best] += MEANING_WEIGHT * np.clip(cosines, 0, 1)
    return scores


def _newest(view: View, article_id: str) -> tuple[str]:
    """A sort key putting newer articles first (undated last)."""
    published = (view.article(article_id) or {}).get("published") or ""
    return ("".join(chr(0x10FFFF - ord(c)) for c in published) if published else "\U0010ffff",)
