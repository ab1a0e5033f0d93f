"""Hybrid search: dense (FAISS) and BM25 candidates fused, floored, highlighted and de-duplicated."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .config import RetrievalSettings
from .embedding import Embedder
from .highlight import best_sentence, overlaps, shared_runs, word_count
from .store import Snapshot
from .types import AssistantError, Citation, Hit

FILTER_KEYS = ("article_id", "source", "published_from", "published_to")


def _as_set(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, Sequence | set | frozenset):
        return {str(v) for v in value}
    raise AssistantError(f"filter value {value!r} must be a string or a list of strings")


def allowed_articles(snapshot: Snapshot, filters: Mapping[str, Any] | None) -> np.ndarray | None:
    """Indices (into snapshot.article_ids) of the articles the filters allow; None for all."""
    if not filters:
        return None
    unknown = set(filters) - set(FILTER_KEYS)
    if unknown:
        raise AssistantError(f"unknown filter {sorted(unknown)[0]!r}; filters are {', '.join(FILTER_KEYS)}")
    ids = _as_set(filters["article_id"]) if "article_id" in filters else None
    sources = _as_set(filters["source"]) if "source" in filters else None
    lo, hi = str(filters.get("published_from", "")), str(filters.get("published_to", ""))
    keep = []
    for i, aid in enumerate(snapshot.article_ids):
        meta = snapshot.articles[aid]
        date = (meta.get("published") or "")[:10]
        if ids is not None and aid not in ids:
            continue
        if sources is not None and meta.get("source") not in sources:
            continue
        if (lo and (not date or date < lo[:10])) or (hi and (not date or date > hi[:10])):
            continue
        keep.append(i)
    return np.array(keep, dtype=np.int64)


def _minmax(x: np.ndarray) -> np.ndarray:
    span = float(x.max() - x.min()) if len(x) else 0.0
    return (x - x.min()) / span if span > 1e-12 else np.where(x > 0, 1.0, 0.0)


def candidates(
    snapshot: Snapshot, qvec: np.ndarray, question: str, n: int, allowed: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Passage ids from both retrievers, with their cosine and BM25 scores."""
    import faiss

    lex = snapshot.lexical
    total = len(lex.ids)
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32)
    row_mask = None if allowed is None else np.isin(snapshot.row_article, allowed)
    params = None
    if row_mask is not None:
        params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(lex.ids[row_mask]))
    k = min(n, total)
    _, ids = snapshot.vectors.search(qvec.reshape(1, -1), k, params=params)
    dense_ids = ids[0][ids[0] >= 0]
    bm25 = lex.scores(question, None if row_mask is None else row_mask.astype(np.float32))
    top_rows = np.argpartition(-bm25, k - 1)[:k] if k < total else np.arange(total)
    top_rows = top_rows[bm25[top_rows] > 0]
    pids = np.unique(np.concatenate([dense_ids, lex.ids[top_rows]]))
    vecs = np.vstack([snapshot.vectors.reconstruct(int(p)) for p in pids]) if len(pids) else np.zeros((0, len(qvec)))
    dense = vecs @ qvec if len(pids) else np.zeros(0, np.float32)
    lexical = bm25[np.searchsorted(lex.ids, pids)]
    return pids, dense.astype(np.float32), lexical.astype(np.float32)


def _citation(snapshot: Snapshot, article_id: str, start: int, end: int) -> Citation:
    meta = snapshot.articles[article_id]
    return Citation(article_id, meta["title"], meta.get("source") or "", meta.get("path") or "", start, end)


def collapse(hits: list[Hit], settings: RetrievalSettings) -> list[Hit]:
    """Fold near-duplicate passages into the best-ranked one, which then cites every article."""
    kept: list[Hit] = []
    for h in hits:
        for i, g in enumerate(kept):
            runs = shared_runs(g.text, h.text, settings.duplicate_min_words)
            if not runs:
                continue
            shorter = min(word_count(g.text), word_count(h.text))
            same_text = sum(r[0] for r in runs) >= settings.duplicate_overlap * shorter
            same_answer = any(overlaps(g.highlight, sg) and overlaps(h.highlight, sh) for _, sg, sh in runs)
            if same_text or same_answer:
                cited = {c.article_id for c in g.citations}
                extra = tuple(c for c in h.citations if c.article_id not in cited)
                kept[i] = Hit(g.passage_id, g.text, g.score, g.citations + extra, g.highlight, g.dense, g.lexical)
                break
        else:
            kept.append(h)
    return kept


def search(
    snapshot: Snapshot,
    embedder: Embedder,
    settings: RetrievalSettings,
    question: str,
    k: int = 10,
    filters: Mapping[str, Any] | None = None,
) -> list[Hit]:
    """The k best passages for a question, or [] when nothing clears the relevance floor."""
    question = question.strip()
    if not question:
        raise AssistantError("the question is empty")
    allowed = allowed_articles(snapshot, filters)
    if allowed is not None and len(allowed) == 0:
        return []
    qvec = embedder.encode([question])[0]
    pids, dense, lexical = candidates(snapshot, qvec, question, max(settings.candidates, k), allowed)
    keep = dense >= settings.min_score
    if not keep.any():
        return []
    w = settings.dense_weight
    fused = w * _minmax(dense) + (1 - w) * _minmax(lexical)
    order = [i for i in np.argsort(-fused, kind="stable") if keep[i]][: max(3 * k, 10)]
    rows = snapshot.passages([int(pids[i]) for i in order])
    hits = []
    for i in order:
        pid = int(pids[i])
        article_id, start, end, text = rows[pid]
        hits.append(
            Hit(
                passage_id=pid,
                text=text,
                score=float(fused[i]),
                citations=(_citation(snapshot, article_id, start, end),),
                highlight=best_sentence(question, text, snapshot.lexical.idf),
                dense=float(dense[i]),
                lexical=float(lexical[i]),
            )
        )
    return collapse(hits, settings)[:k]
