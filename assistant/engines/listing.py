"""An archive listing's query: which indexed articles to show (title words, source, dates), newest first, a page."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..types import AssistantError
from .base import Filter, check_date

MAX_PAGE = 200  # the most articles one listing call returns
LISTED = ("title", "source", "published", "path", "url")  # each row's metadata, beside its id and passage count


@dataclass(frozen=True)
class ArticleQuery:
    """Which articles a listing shows: every word in the title, the text in the source (both ignoring case), and a
    publication date range (bounds as 'YYYY[-MM[-DD]]'; an undated article is left out when one is given).

    A value each engine answers its own way (a scan of its metadata, a SQL WHERE); `admits` is its meaning.
    """

    words: tuple[str, ...] = ()  # lower-case
    source: str = ""  # lower-case
    dates: Filter | None = None  # its published_from and published_to only

    @classmethod
    def parse(cls, title: str = "", source: str = "", since: str = "", until: str = "") -> ArticleQuery:
        """The query that a listing's search fields describe; a bad date is a one-line error naming its field."""
        for value, name in ((title, "title"), (source, "source")):
            if not isinstance(value, str):
                raise AssistantError(f"{name} must be text, got {type(value).__name__}")
        lo, hi = check_date(since, "since"), check_date(until, "until")
        return cls(
            tuple(dict.fromkeys(fold(title).split())),
            fold(source).strip(),
            Filter(published_from=lo, published_to=hi) if lo or hi else None,
        )

    @property
    def everything(self) -> bool:
        """Whether the query admits every article (nothing to search for)."""
        return not (self.words or self.source or self.dates)

    def admits(self, article_id: str, meta: Mapping[str, Any]) -> bool:
        """Whether an article (its id and metadata) is listed."""
        title = fold(meta.get("title") or "")
        if any(w not in title for w in self.words):
            return False
        if self.source and self.source not in fold(meta.get("source") or ""):
            return False
        return self.dates is None or self.dates.admits(article_id, meta)


def fold(text: str) -> str:
    """Text as a listing compares it: lower-case (PostgreSQL's lower() under the pg_c_utf8 collation agrees)."""
    return text.lower()


def check_page(offset: int, limit: int) -> tuple[int, int]:
    """A page's offset and size as whole numbers in range (size 1 to MAX_PAGE); else a one-line error."""
    try:
        offset, limit = int(offset), int(limit)
    except (TypeError, ValueError):
        raise AssistantError(f"offset and limit must be whole numbers, got {offset!r} and {limit!r}") from None
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise AssistantError(f"offset must be 0 or more and limit 1 to {MAX_PAGE}; got {offset} and {limit}")
    return offset, limit


def newest_first(rows: Iterable[tuple[str, Mapping[str, Any]]]) -> list[tuple[str, Mapping[str, Any]]]:
    """(id, metadata) pairs newest first by their publication date as written, undated last, ties by id."""
    by_id = sorted(rows, key=lambda r: r[0])
    return sorted(by_id, key=lambda r: r[1].get("published") or "", reverse=True)  # stable: ids stay in order


def row(article_id: str, meta: Mapping[str, Any], passages: int) -> dict[str, Any]:
    """One listed article: its id, metadata ('' for what it lacks) and passage count."""
    return {"id": article_id, **{k: meta.get(k) or "" for k in LISTED}, "passages": passages}
