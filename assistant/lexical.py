"""The embedded engine's lexical index: BM25 (bm25s) over stemmed passage words (see analysis.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .analysis import K1, B, idf, terms


class LexicalIndex:
    """BM25 over passages; row i of the index is passage `ids[i]`."""

    def __init__(self, bm25, ids: np.ndarray) -> None:  # noqa: ANN001 - bm25s.BM25
        """Wrap a built or loaded bm25s model and its row-to-passage-id map."""
        self.bm25 = bm25
        self.ids = ids
        self._n = max(1, int(bm25.scores["num_docs"]))
        self._idf = idf(np.diff(bm25.scores["indptr"]).astype(np.float64), self._n)

    @classmethod
    def build(cls, texts: Sequence[str], ids: Sequence[int]) -> LexicalIndex:
        """Index passage texts; `ids` gives the passage id of each text."""
        import bm25s

        tokens = [terms(t) for t in texts]
        vocab: dict[str, int] = {}
        token_ids = [[vocab.setdefault(w, len(vocab)) for w in doc] for doc in tokens]
        if not vocab:
            vocab[""] = 0
        bm25 = bm25s.BM25(k1=K1, b=B, method="lucene")
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

    def scores(self, query: Sequence[str], mask: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every row for query terms (`analysis.query_terms`; 0 where `mask` is 0)."""
        vocab = self.bm25.vocab_dict
        qids = [vocab[t] for t in query if t in vocab]
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

    def starting_with(self, prefix: str, limit: int) -> list[str]:
        """Up to `limit` indexed terms that begin with `prefix`, those in most passages first."""
        import bisect

        if not hasattr(self, "_sorted"):
            self._sorted = sorted(self.bm25.vocab_dict)
        at = bisect.bisect_left(self._sorted, prefix)
        found = []
        while at < len(self._sorted) and self._sorted[at].startswith(prefix):
            found.append(self._sorted[at])
            at += 1
        df = np.diff(self.bm25.scores["indptr"])
        vocab = self.bm25.vocab_dict
        return sorted(found, key=lambda t: (-int(df[vocab[t]]) if vocab[t] < len(df) else 0, t))[:limit]

    @property
    def max_idf(self) -> float:
        """The IDF a term found in no passage would have."""
        return float(idf(0.0, self._n))

    def idf(self, term: str) -> float:
        """Inverse document frequency of a stemmed term (0 when unknown)."""
        i = self.bm25.vocab_dict.get(term)
        return float(self._idf[i]) if i is not None and i < len(self._idf) else 0.0
