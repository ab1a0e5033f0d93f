"""A deterministic fake embedder for fast unit tests: hashed stemmed words, no model."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from assistant.analysis import terms


class HashEmbedder:
    """Bag of hashed word stems in 384 dimensions, L2-normalised; same text, same vector."""

    name = "hash"
    dimension = 384

    def __init__(self, max_words: int = 10_000) -> None:
        self.max_words = max_words
        self.calls = 0
        self.encoded = 0

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dimension, dtype=np.float32)
        for t in terms(text):
            h = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
            v[h % self.dimension] += 1.0 if (h >> 32) & 1 else -1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.encoded += len(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.vstack([self._vector(t) for t in texts])

    def fits(self, texts: Sequence[str]) -> list[bool]:
        return [len(t.split()) <= self.max_words for t in texts]
