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
