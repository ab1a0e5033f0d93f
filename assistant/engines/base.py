"""The engine contract: what retrieval, the indexer and the faces may ask of an index, whatever stores it."""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..types import AssistantError

if TYPE_CHECKING:
    from .listing import ArticleQuery

FILTER_KEYS = ("article_id", "source", "published_from", "published_to")
META_KEYS = ("model", "dimension", "chunking")  # how an index was made: its vectors fit only the same
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def check_date(value: Any, name: str) -> str:
    """A date filter's value as 'YYYY', 'YYYY-MM' or 'YYYY-MM-DD' ('' when not given); else a one-line error."""
    if value is None or value == "":
        return ""
    text = value.strip() if isinstance(value, str) else ""
    try:
        ok = bool(_DATE.match(text)) and bool(datetime.date.fromisoformat((text + "-01-01")[:10]))
    except ValueError:
        ok = False
    if not ok:
        raise AssistantError(f"filter {name} = {value!r} is not a date; use YYYY-MM-DD (or YYYY-MM, YYYY)")
    return text


_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")  # no id or source holds one


def _as_set(value: Any, key: str) -> frozenset[str]:
    """A filter's string or list of strings as a set; a value holding a control character or a lone surrogate (which
    PostgreSQL cannot even be sent) is a one-line error naming the filter."""
    if isinstance(value, str):
        values = frozenset({value})
    elif isinstance(value, Sequence | set | frozenset):
        values = frozenset(str(v) for v in value)
    else:
        raise AssistantError(f"filter value {value!r} must be a string or a list of strings")
    for v in values:
        if _NOT_TEXT.search(v):
            raise AssistantError(f"filter {key} = {ascii(v)[:80]} holds a control character or a lone surrogate; "
                                 "send plain text")  # fmt: skip
    return values


@dataclass(frozen=True)
class Filter:
    """Which articles a search may return: by id, by source, by publication date (bounds as 'YYYY[-MM[-DD]]').

    A value each engine compiles its own way (a row mask, a SQL WHERE); `admits` is its meaning.
    """

    article_ids: frozenset[str] | None = None
    sources: frozenset[str] | None = None
    published_from: str = ""
    published_to: str = ""

    @classmethod
    def parse(cls, filters: Mapping[str, Any] | None) -> Filter | None:
        """The filter that plain-dict filters (FILTER_KEYS) describe; None for none; a one-line error when bad."""
        if not filters:
            return None
        unknown = set(filters) - set(FILTER_KEYS)
        if unknown:
            raise AssistantError(f"unknown filter {sorted(unknown)[0]!r}; filters are {', '.join(FILTER_KEYS)}")
        return cls(
            _as_set(filters["article_id"], "article_id") if "article_id" in filters else None,
            _as_set(filters["source"], "source") if "source" in filters else None,
            check_date(filters.get("published_from"), "published_from"),
            check_date(filters.get("published_to"), "published_to"),
        )

    def admits(self, article_id: str, meta: Mapping[str, Any]) -> bool:
        """Whether an article (its id and metadata) passes."""
        if self.article_ids is not None and article_id not in self.article_ids:
            return False
        if self.sources is not None and meta.get("source") not in self.sources:
            return False
        date = (meta.get("published") or "")[:10]
        lo, hi = self.published_from, self.published_to
        # "published_to 2005-03" takes all of March: compare as many characters as the bound has
        return not ((lo and (not date or date < lo)) or (hi and (not date or date[: len(hi)] > hi)))


@dataclass(frozen=True)
class Scored:
    """Passages found by one retriever: their ids, their articles' ids and their scores, best first."""

    ids: np.ndarray  # int64 passage ids
    articles: list[str]
    scores: np.ndarray  # float32

    @classmethod
    def empty(cls) -> Scored:
        """No passages."""
        return cls(np.zeros(0, np.int64), [], np.zeros(0, np.float32))


PassageRow = tuple[str, int, int, str, str | None]  # article id, char start, char end, text, stored analysis


class View(Protocol):
    """A consistent view of an index (one generation, one database snapshot): everything a search reads."""

    generation: str  # names the state this view shows; a newer write makes a new one
    meta: dict[str, Any]  # how the index was made (META_KEYS), its counts ("articles", "passages") and more
    location: str  # where the index is, for messages (a folder, a database URL without its password)

    def reading(self, terms: Sequence[str] = ()) -> AbstractContextManager[None]:
        """Within the block, every read sees one and the same state (a search wraps itself in it). `terms`: the
        analysed terms the block will ask about, which an engine may read together (one round trip)."""

    def dense_top(self, qvec: np.ndarray, k: int, where: Filter | None, ef_search: int) -> Scored:
        """The k passages with the highest cosine to a unit query vector, among those `where` admits."""

    def dense_scores(self, qvec: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The cosine of each given passage to a unit query vector."""

    def lexical_top(self, terms: Sequence[str], k: int, where: Filter | None) -> Scored:
        """The k passages with the highest BM25 score (above 0) for query terms, among those `where` admits."""

    def lexical_scores(self, terms: Sequence[str], ids: np.ndarray) -> np.ndarray:
        """The BM25 score of each given passage for query terms."""

    def term_stats(self, terms: Sequence[str], article_ids: Sequence[str]) -> dict[str, tuple[float, set[str]]]:
        """For each term: its IDF (that of a term in no passage when it is in none) and which of the given
        articles hold it (the relevance floor's coverage)."""

    def idf(self, term: str) -> float:
        """A stemmed term's IDF (0 when no passage has it)."""

    def expand(self, prefix: str, limit: int) -> list[str]:
        """Up to `limit` indexed terms that begin with `prefix`, those in most passages first."""

    def passages(self, ids: Sequence[int]) -> dict[int, PassageRow]:
        """Passages by id."""

    def article(self, article_id: str) -> dict[str, Any] | None:
        """An article's metadata (title, source, path, url, published), or None."""

    def articles(self) -> list[dict[str, Any]]:
        """Every article's id and metadata, by id."""

    def metas(self, article_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Several articles' metadata at once, by id (those not indexed left out)."""

    def listing(self, query: ArticleQuery, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """A page of the articles `query` admits, newest first (listing.newest_first), each as listing.row (with
        its passage count), and how many it admits in all."""

    def article_text(self, article_id: str) -> str | None:
        """The cleaned text of an article, as passages' spans refer to it."""

    def shas(self, article_ids: Sequence[str] | None = None) -> dict[str, str]:
        """Content hashes of the given articles that are indexed (of all with None)."""

    def article_roots(self, article_ids: Sequence[str]) -> dict[str, str]:
        """The root (folder or file given) each of these indexed articles was read from."""

    def roots(self) -> list[str]:
        """The folders and files the index was built from."""

    def articles_under(self, roots: Sequence[str]) -> set[str]:
        """Ids of the articles read from any of these roots."""

    def paths_in_use(self, paths: Sequence[str], besides: Sequence[str]) -> set[str]:
        """Which of these file paths some article other than `besides` was read from."""

    def close(self) -> None:
        """Let go of what the view holds."""


class Engine(Protocol):
    """An index's storage: opens views, notices newer states, applies changes atomically."""

    location: str

    def exists(self) -> bool:
        """Whether an index is there (complete or damaged)."""

    def open(self) -> View:
        """A consistent view of the current state; a one-line error when there is none or it is damaged."""

    def changed(self, view: View) -> bool:
        """Whether someone has written a newer state since `view` was opened."""

    def writing(self, wait_s: float | None = None) -> AbstractContextManager[float]:
        """Hold the engine's writer lock (saying so while waiting, up to `wait_s`); yields the seconds waited."""

    def latest(self, base: View | None) -> AbstractContextManager[View | None]:
        """Under the writer lock: the current state to build on (`base` itself when no one wrote since it)."""

    def commit(
        self, latest: View | None, change: Any, exact_max: int, neighbors: int, progress: bool = False
    ) -> dict[str, Any]:
        """Under the writer lock: apply a change (writer.Change, already rebased) on `latest` atomically; the new
        state's meta (`progress`: bars for long steps). A failure is one line and leaves the previous state."""

    def optimize(self, exact_max: int, neighbors: int, progress: bool = False) -> dict[str, Any]:
        """Compact the index for search (the embedded engine: every segment merged into one, deleted passages
        dropped); readers keep answering meanwhile. The state's meta after."""

    def check(self, full: bool = False) -> dict[str, Any]:
        """Check the index's integrity; a one-line error naming what is wrong, else a summary."""

    def rebuild_hint(self) -> str:
        """The command that rebuilds this index from its articles."""
