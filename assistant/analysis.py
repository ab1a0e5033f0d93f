"""Text analysis shared by every engine and by highlighting: words, stems, query terms, BM25's formula."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import numpy as np

# BM25 as bm25s scores it ("lucene": Kamphuis et al. 2020), so that every engine gives the same numbers:
# score(q, d) = sum over the query's terms t in d of idf(t) * tf / (tf + K1 * (1 - B + B * len(d) / avg len)).
K1 = 1.5
B = 0.75


_WORD = re.compile(r"(?u)\b\w\w+\b")
_NAME_WORD = re.compile(r"\b\w[\w'-]*")


@functools.lru_cache(maxsize=1)
def _stemmer():  # noqa: ANN202 - Stemmer.Stemmer
    import Stemmer

    return Stemmer.Stemmer("english")


@functools.lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


# Words that ask rather than say what about: interrogatives and do-support ("What did he say?"). BM25 leaves them
# out of a query (passages keep them): in a small archive they are rarer than its topic words, so they outweighed
# them. "which", "who", "when", "where" stay: they also join clauses in an answer ("the firm, which ..."). Measured
# (MRR@10): seeds 0.869 -> 0.885, BBC 0.861 -> 0.867, SciFact the same; with those four left out too, BBC fell.
_ASKING = frozenset({"what", "how", "why", "do", "does", "did"})


def _stemmed(words: list[str], drop: frozenset[str] = frozenset()) -> list[str]:
    """Stems of lower-cased words, stop words and `drop` left out."""
    stop = _stopwords()
    kept = [w for w in words if w not in stop and w not in drop]
    return _stemmer().stemWords(kept) if kept else []


def terms(text: str) -> list[str]:
    """Lower-cased, stop-word-free, stemmed words of a text (the same analysis as the index)."""
    return _stemmed(_WORD.findall(text.lower()))


def query_terms(question: str) -> list[str]:
    """`terms` of a question as BM25 searches them: without the words that only ask, each term once.

    Once: bm25s adds a repeated query term's score again, and counting it once measured better on SciFact
    (0.7285 -> 0.7304 nDCG@10 in the pipeline) and the same on the news sets."""
    return list(dict.fromkeys(_stemmed(_WORD.findall(question.lower()), _ASKING)))


_STEMS: dict[str, str] = {}  # word -> stem ("" for a stop word), shared by every search
_STEMS_MAX = 200_000  # words; emptied when full (a news archive uses far fewer)


def stems_of(words: set[str]) -> dict[str, str]:
    """Each of a set of lower-cased words that is not a stop word, with its stem."""
    new = [w for w in words if w not in _STEMS]
    if new:
        if len(_STEMS) + len(new) > _STEMS_MAX:
            _STEMS.clear()
        stop = _stopwords()
        _STEMS.update((w, "" if w in stop else t) for w, t in zip(new, _stemmer().stemWords(new), strict=True))
    return {w: t for w in words if (t := _STEMS[w])}


def words(text: str) -> list[str]:
    """The lower-cased words `terms` reads, before stop words and stemming."""
    return _WORD.findall(text.lower())


def sentence_words(text: str, spans: Sequence[tuple[int, int]]) -> list[list[str]]:
    """`words` of each span of a text (sentences: each starts and ends beside a non-word character), read off the
    lower-cased text in one go where lower-casing keeps every character in place."""
    lowered = text.lower()
    if len(lowered) != len(text):  # e.g. "İ" lower-cases to two characters: each span on its own
        return [words(text[s:e]) for s, e in spans]
    return [_WORD.findall(lowered, s, e) for s, e in spans]


def named_terms(question: str) -> set[str]:
    """Stemmed terms of the question's names and numbers: words after the first that are capitalised or hold a digit."""
    words = _NAME_WORD.findall(question)
    return {t for w in words[1:] if w[0].isupper() or any(ch.isdigit() for ch in w) for t in terms(w)}


def idf(df: np.ndarray | float, n: int) -> np.ndarray:
    """BM25's inverse document frequency of terms found in `df` of `n` rows."""
    return np.log(1.0 + (n - df + 0.5) / (df + 0.5))


def tf_part(tf: np.ndarray | float, length: np.ndarray | float, avg_length: float) -> np.ndarray | float:
    """BM25's term-frequency part of a term found `tf` times in a passage of `length` terms."""
    return tf / (tf + K1 * (1 - B + B * length / max(avg_length, 1e-9)))
