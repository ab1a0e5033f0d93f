"""One segment's BM25 postings: which rows hold each term and how often, and each row's length, as numpy files.

Scores are not stored: they depend on the whole index (its passage count, average length and each term's
document frequency over every segment), so `scores` takes those and a segment scores exactly what a single
index of every live passage would (see analysis.py for the formula).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .analysis import K1, B

FILES = ("terms.npy", "indptr.npy", "rows.npy", "tfs.npy", "lengths.npy")


class _Chunks:
    """A file numpy writes to in chunks (not by `tofile`, whose errors lose errno: a full disk must say so)."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f

    def write(self, data: bytes) -> int:
        """Write bytes."""
        return self.f.write(data)


def save_array(path: Path, array: np.ndarray) -> None:
    """Save an array as a .npy file; a full disk raises OSError(ENOSPC) like any other write."""
    with open(path, "wb") as f:
        np.lib.format.write_array(_Chunks(f), np.asarray(array), allow_pickle=False)


def mapped(path: Path) -> np.ndarray:
    """A saved array mapped into memory, as a plain array (a numpy memmap object costs more on every index)."""
    return np.load(path, mmap_mode="r", allow_pickle=False).view(np.ndarray)


class Postings:
    """Terms (sorted, UTF-8), and for term i its rows `rows[indptr[i]:indptr[i+1]]` (ascending) and counts `tfs`."""

    def __init__(
        self, terms: np.ndarray, indptr: np.ndarray, rows: np.ndarray, tfs: np.ndarray, lengths: np.ndarray
    ) -> None:
        """Wrap the five arrays (built, or memory-mapped from a folder)."""
        self.terms, self.indptr, self.rows, self.tfs, self.lengths = terms, indptr, rows, tfs, lengths
        self._listed: list[str] | None = None

    @classmethod
    def build(cls, docs: Iterable[Sequence[str]]) -> Postings:
        """Postings of documents given as lists of analysed terms (`analysis.terms`), row i = document i."""
        vocab: dict[str, int] = {}
        term_ids: list[int] = []
        doc_of: list[int] = []
        lengths: list[int] = []
        for row, doc in enumerate(docs):
            lengths.append(len(doc))
            for t in doc:
                term_ids.append(vocab.setdefault(t, len(vocab)))
            doc_of.extend([row] * len(doc))
        names = sorted(vocab)
        rank = np.zeros(len(vocab), dtype=np.int64)
        rank[[vocab[t] for t in names]] = np.arange(len(names))
        tid = rank[np.asarray(term_ids, dtype=np.int64)] if term_ids else np.zeros(0, np.int64)
        pair = tid * (len(lengths) + 1) + np.asarray(doc_of, dtype=np.int64)
        unique, counts = np.unique(pair, return_counts=True)  # sorted by term, then row
        terms_of, rows = np.divmod(unique, len(lengths) + 1)
        indptr = np.zeros(len(names) + 1, dtype=np.int64)
        np.cumsum(np.bincount(terms_of, minlength=len(names)), out=indptr[1:])
        encoded = np.array([t.encode("utf-8") for t in names], dtype=bytes) if names else np.zeros(0, dtype="S1")
        return cls(
            encoded, indptr, rows.astype(np.int32), counts.astype(np.float32), np.asarray(lengths, dtype=np.float32)
        )

    @classmethod
    def merge(cls, parts: Sequence[tuple[Postings, np.ndarray]]) -> Postings:
        """One segment's postings from others' (each with a boolean array of the rows it keeps), rows renumbered in
        order: part 0's kept rows first. Nothing is analysed again."""
        names = sorted(set().union(*(p.terms.tolist() for p, _ in parts)))
        encoded = np.array(names, dtype=bytes) if names else np.zeros(0, dtype="S1")
        term_parts, row_parts, tf_parts, lengths = [], [], [], []
        offset = 0
        for p, keep in parts:
            new_row = np.cumsum(keep) - 1 + offset
            per_term = np.diff(p.indptr)
            tid = np.repeat(np.searchsorted(encoded, p.terms), per_term)
            rows = np.asarray(p.rows)
            kept = keep[rows]
            term_parts.append(tid[kept])
            row_parts.append(new_row[rows[kept]])
            tf_parts.append(np.asarray(p.tfs)[kept])
            lengths.append(np.asarray(p.lengths)[keep])
            offset += int(keep.sum())
        tid = np.concatenate(term_parts) if term_parts else np.zeros(0, np.int64)
        order = np.argsort(tid, kind="stable")  # within a term, rows stay ascending: parts come in row order
        indptr = np.zeros(len(names) + 1, dtype=np.int64)
        np.cumsum(np.bincount(tid, minlength=len(names)), out=indptr[1:])
        return cls(
            encoded,
            indptr,
            np.concatenate(row_parts)[order].astype(np.int32),
            np.concatenate(tf_parts)[order].astype(np.float32),
            np.concatenate(lengths).astype(np.float32) if lengths else np.zeros(0, np.float32),
        )

    def save(self, folder: Path) -> None:
        """Write the arrays into a folder (one .npy file each)."""
        for name, array in zip(FILES, (self.terms, self.indptr, self.rows, self.tfs, self.lengths), strict=True):
            save_array(folder / name, array)

    @classmethod
    def load(cls, folder: Path) -> Postings:
        """Map a saved segment's postings into memory (pages are read as searches touch them)."""
        arrays = [mapped(folder / name) for name in FILES]
        return cls(*arrays)

    def __len__(self) -> int:
        """Rows (passages)."""
        return len(self.lengths)

    def _index(self, term: str) -> int | None:
        key = term.encode("utf-8")
        i = int(np.searchsorted(self.terms, key))
        return i if i < len(self.terms) and self.terms[i] == key else None

    def holding(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """The rows that hold a term and how often each does (empty when none)."""
        i = self._index(term)
        if i is None:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        lo, hi = int(self.indptr[i]), int(self.indptr[i + 1])
        return np.asarray(self.rows[lo:hi]), np.asarray(self.tfs[lo:hi])

    def starting_with(self, prefix: str) -> list[str]:
        """Terms that begin with a prefix."""
        if self._listed is None:
            self._listed = [t.decode("utf-8") for t in self.terms.tolist()]
        at = bisect.bisect_left(self._listed, prefix)
        found = []
        while at < len(self._listed) and self._listed[at].startswith(prefix):
            found.append(self._listed[at])
            at += 1
        return found

    def norms(self, avg_length: float) -> np.ndarray:
        """BM25's length part of every row for an average passage length: K1 * (1 - B + B * length / avg)."""
        return (K1 * (1 - B + B * np.asarray(self.lengths, dtype=np.float64) / max(avg_length, 1e-9))).astype(
            np.float32
        )

    def scores(self, weighted: Sequence[tuple[str, float]], norms: np.ndarray, out: np.ndarray) -> None:
        """Add each (term, idf) pair's BM25 part to `out` (one float32 per row): idf * tf / (tf + norm)."""
        for term, weight in weighted:
            rows, tfs = self.holding(term)
            if len(rows):
                out[rows] += np.float32(weight) * tfs / (tfs + norms[rows])
