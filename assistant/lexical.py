"""The lexical index: BM25 (bm25s) over stemmed passage words, with IDF lookups for highlighting."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

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
    """`terms` of a question as BM25 searches them: without the words that only ask, each term once."""
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


def _idf(df: np.ndarray | float, n: int) -> np.ndarray:
    """BM25's inverse document frequency of terms found in `df` of `n` rows."""
    return np.log(1.0 + (n - df + 0.5) / (df + 0.5))


class LexicalIndex:
    """BM25 over passages; row i of the index is passage `ids[i]`."""

    def __init__(self, bm25, ids: np.ndarray) -> None:  # noqa: ANN001 - bm25s.BM25
        """Wrap a built or loaded bm25s model and its row-to-passage-id map."""
        self.bm25 = bm25
        self.ids = ids
        self._n = max(1, int(bm25.scores["num_docs"]))
        self._idf = _idf(np.diff(bm25.scores["indptr"]).astype(np.float64), self._n)

    @classmethod
    def build(cls, texts: Sequence[str], ids: Sequence[int]) -> LexicalIndex:
        """Index passage texts; `ids` gives the passage id of each text."""
        import bm25s

        tokens = [terms(t) for t in texts]
        vocab: dict[str, int] = {}
        token_ids = [[vocab.setdefault(w, len(vocab)) for w in doc] for doc in tokens]
        if not vocab:
            vocab[""] = 0
        bm25 = bm25s.BM25()
        bm25.index(bm25s.tokenization.Tokenized(ids=token_ids, vocab=vocab), show_progress=False)
        return cls(bm25, np.asarray(ids, dtype=np.int64))

    def save(self, folder: Path) -> None:
        """Write the index into a folder."""
        folder.mkdir(parents=True, exist_ok=True)
        self.bm25.save(str(folder), show_progress=False)
        np.save(folder / "ids.npy", self.ids)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        """Read an index written by `save`."""
        import bm25s

        bm25 = bm25s.BM25.load(str(folder), show_progress=False)
        return cls(bm25, np.load(folder / "ids.npy"))

    def scores(self, query: str, mask: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every row for the query's `query_terms` (0 where `mask` is 0)."""
        vocab = self.bm25.vocab_dict
        # Each term once: bm25s adds a repeated query term's score again, and counting it once measured better on
        # SciFact (0.7285 -> 0.7304 nDCG@10 in the pipeline) and the same on the news sets.
        qids = [vocab[t] for t in query_terms(query) if t in vocab]
        n = int(self.bm25.scores["num_docs"])
        if not qids or n == 0:
            return np.zeros(n, dtype=np.float32)
        return self.bm25.get_scores(qids, weight_mask=mask)

    def rows_with(self, term: str) -> np.ndarray:
        """Rows whose text contains a stemmed term (empty when the term is unknown)."""
        i = self.bm25.vocab_dict.get(term)
        if i is None or i + 1 >= len(self.bm25.scores["indptr"]):
            return np.zeros(0, dtype=np.int64)
        indptr = self.bm25.scores["indptr"]
        return np.asarray(self.bm25.scores["indices"][indptr[i] : indptr[i + 1]], dtype=np.int64)

    @property
    def max_idf(self) -> float:
        """The IDF a term found in no passage would have."""
        return float(_idf(0.0, self._n))

    def idf(self, term: str) -> float:
        """Inverse document frequency of a stemmed term (0 when unknown)."""
        i = self.bm25.vocab_dict.get(term)
        return float(self._idf[i]) if i is not None and i < len(self._idf) else 0.0
