"""The postgres engine's passage map: each passage's article, held by the engine between reads (no query)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

MAP_MAX = 500_000  # passages (about 60 MB held); a larger index asks the database instead


class PassageMap:
    """Every passage's article, read once and then only what later writes added.

    Sound across reads of different states because a passage id is never given twice, never changes article and
    grows with each write (one writer at a time, ids from one sequence): the passages a state holds are those up
    to its last id, less the removed ones (which a read leaves out itself). Passages of a newer state than a read's
    are in no postings and no top list of that read, so holding them does no harm."""

    def __init__(self, limit: int = MAP_MAX) -> None:
        """An empty map, used for indexes of up to `limit` passages."""
        self.limit = limit
        self.generation = -1  # the newest state read into the map
        self.upto = -1  # the highest passage id in the map
        self.article: dict[int, str] = {}
        self.held: dict[str, list[int]] = {}  # article -> its passage ids, ascending
        self._lock = threading.Lock()

    def synced(self, generation: int, passages: int, rows_after: Callable[[int], list[tuple]]) -> bool:
        """Bring the map up to a read's state (`rows_after(id)`: that read's (passage id, article id) above an id,
        in id order); False when the index is too large to map (the read asks the database)."""
        if passages > self.limit:
            return False
        if generation <= self.generation:
            return True
        with self._lock:
            if generation > self.generation:
                rows = rows_after(self.upto)
                article, held = self.article, self.held
                if len(article) + len(rows) > 2 * self.limit:  # replaced passages pile up: start again, aside
                    article, held, rows = {}, {}, rows_after(-1)
                for pid, of in rows:
                    article[pid] = of
                    held.setdefault(of, []).append(pid)
                self.article, self.held = article, held
                self.upto = max(self.upto, rows[-1][0]) if rows else self.upto
                self.generation = generation
        return True

    def articles_of(self, ids: Sequence[int]) -> list[str | None]:
        """Each passage's article (None: not in the map)."""
        return [self.article.get(int(i)) for i in ids]

    def passages_of(self, articles: Sequence[str]) -> np.ndarray:
        """The passage ids of these articles that the map holds, ascending (removed ones included)."""
        ids = [pid for a in articles for pid in self.held.get(a, ())]
        return np.unique(np.array(ids, np.int64))


def generation_number(generation: Any) -> int:
    """A view's generation ("pg-000000012") as its number."""
    return int(str(generation).rsplit("-", 1)[-1])


COPY_MAX = 50_000  # passages whose vectors a search process scans itself (about 77 MB; 3 ms a question at 37,000)


def decode_vectors(rows: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, float32 matrix) from rows of (passage id, pgvector's binary form: 2-byte dimension, 2 unused bytes, then
    big-endian float4s)."""
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    dim = int.from_bytes(bytes(rows[0][1][:2]), "big")
    raw = np.frombuffer(b"".join(bytes(r[1]) for r in rows), ">f4").reshape(len(rows), 1 + dim)
    return np.fromiter((r[0] for r in rows), np.int64, len(rows)), np.ascontiguousarray(raw[:, 1:], np.float32)


class VectorCopy:
    """The index's vectors held by the engine, scanned exactly as the embedded engine scans an index of this size.

    Read once, then only what writes add (rows above the last id held, as the passage map). A read uses the copy
    only when the rows it holds alive are exactly that read's passages: those up to the last id its state had,
    less its removed ones, must be as many as the state counts (every passage of the state is in the copy, ids
    growing in commit order); else (an optimize or rebuild dropped passages for good) the copy is read again, or
    the read asks the database. So a search never returns a passage its snapshot does not hold."""

    def __init__(self, limit: int = COPY_MAX) -> None:
        """An empty copy, used for indexes of up to `limit` passages."""
        self.limit = limit
        self.generation = -1
        self.ids = np.zeros(0, np.int64)
        self.matrix = np.zeros((0, 0), np.float32)
        self.upto_of: dict[int, int] = {}  # generation -> the last passage id of that state
        self.live: dict[int, np.ndarray] = {}  # generation -> its passages' rows (the last few)
        self._lock = threading.Lock()

    def serving(
        self, generation: int, passages: int, dead: np.ndarray, rows_after: Callable[[int], list[tuple]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(ids, matrix, live rows) as a read of `generation` holds them (`passages` of them; `dead`: its removed
        passages that blocks still hold; `rows_after(id)`: its (id, vector) rows above an id, in id order); None
        when the copy cannot serve it (too many passages, or an older state it was not read at)."""
        if passages > self.limit:
            if len(self.ids):
                with self._lock:
                    self._clear()  # let the memory go
            return None
        with self._lock:
            if generation > self.generation:
                self._add(generation, rows_after(int(self.ids[-1]) if len(self.ids) else -1))
            live = self.live.get(generation)
            if live is None:
                upto = self.upto_of.get(generation)
                if upto is None:
                    return None
                live = (self.ids <= upto) & ~np.isin(self.ids, dead)
                if int(live.sum()) != passages:
                    if generation != self.generation:
                        return None
                    self._clear()  # read again
                    self._add(generation, rows_after(-1))
                    live = ~np.isin(self.ids, dead)
                    if int(live.sum()) != passages:
                        return None
                self.live = {g: m for g, m in list(self.live.items())[-3:]}
                self.live[generation] = live
            return self.ids, self.matrix, live

    def _clear(self) -> None:
        self.generation, self.ids, self.matrix = -1, np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        self.upto_of, self.live = {}, {}

    def _add(self, generation: int, rows: list[tuple]) -> None:
        """Append a state's passages above the last id held (the live rows of earlier states: the new ones not)."""
        ids, matrix = decode_vectors(rows)
        if len(ids):
            self.ids = np.concatenate([self.ids, ids])
            self.matrix = np.concatenate([self.matrix, matrix]) if len(self.matrix) else matrix
            self.live = {g: np.concatenate([m, np.zeros(len(ids), bool)]) for g, m in self.live.items()}
        self.upto_of = {g: u for g, u in list(self.upto_of.items())[-7:]}
        self.upto_of[generation] = int(self.ids[-1]) if len(self.ids) else -1
        self.generation = generation
