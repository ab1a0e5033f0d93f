"""Searching within the period a question's dates name: the period met with the filter given, and what to say."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .engines.base import Filter
from .retrieval import searchable
from .timeframe import Period, mentions_time, month_end, read_period
from .types import Dated, Hit


@dataclass(frozen=True)
class Archive:
    """What the index knows of dates: each article's publication date, the newest, how many have none."""

    published: dict[str, str]  # article id -> 'YYYY-MM-DD' (dated articles only)
    newest: datetime.date | None
    undated: int

    @classmethod
    def of(cls, articles: list[dict[str, Any]]) -> Archive:
        """The archive's dates from every article's metadata (`View.articles`)."""
        published: dict[str, str] = {}
        for a in articles:
            day = (a.get("published") or "")[:10]
            try:
                datetime.date.fromisoformat(day)
            except ValueError:
                continue
            published[a["id"]] = day
        newest = datetime.date.fromisoformat(max(published.values())) if published else None
        return cls(published, newest, len(articles) - len(published))


@dataclass(frozen=True)
class Plan:
    """How to search a question with dates: the words to search, the filters, and the period to report."""

    query: str  # the question without its dates (the question itself when that leaves nothing to search)
    filters: Mapping[str, Any] | None
    dated: Dated | None


def _first_day(bound: str) -> str:
    """A lower bound 'YYYY[-MM[-DD]]' as its first day."""
    return (bound + "-01-01")[:10] if bound else ""


def _last_day(bound: str) -> str:
    """An upper bound 'YYYY[-MM[-DD]]' as its last day."""
    if len(bound) == 4:
        return f"{bound}-12-31"
    if len(bound) == 7:
        return month_end(int(bound[:4]), int(bound[5:])).isoformat()
    return bound


def _span(start: str, end: str) -> str:
    """A period in words: "1987-03-01 to 1987-03-31", "from 1987-09-01", "up to 1987-12-31"."""
    if start and end:
        return start if start == end else f"{start} to {end}"
    return f"from {start}" if start else f"up to {end}"


def plan(question: str, filters: Mapping[str, Any] | None, archive: Archive | Callable[[], Archive]) -> Plan:
    """The search for a question: its period (read against the newest article) met with the date filter given.

    They are intersected; where they do not overlap, the filter given wins and the period is reported as not
    applied. The question is searched without its dates unless that leaves no words to search for.
    """
    where = Filter.parse(filters)  # a bad filter is an error before anything else
    if not mentions_time(question):  # the archive's dates (every article's metadata) are read only when needed
        return Plan(question, filters, None)
    archive = archive() if callable(archive) else archive
    period, rest = read_period(question, archive.newest)
    if period is None or archive.newest is None:  # no article has a date: a period could only find nothing
        return Plan(question, filters, None)
    given_from = _first_day(where.published_from) if where else ""
    given_to = _last_day(where.published_to) if where else ""
    start = max(period.start, given_from)
    end = min(b for b in (period.end, given_to) if b) if period.end or given_to else ""
    notes = []
    if archive.undated:
        notes.append(f"{archive.undated:,} article(s) without a publication date were left out.")
    if start and end and start > end:
        notes = [
            f"Your date filter ({_span(given_from, given_to)}) was kept: the question's period does not overlap it."
        ]
        dated = Dated(period.start, period.end, period.text(), period.words, tuple(notes), applied=False)
        return Plan(question, filters, dated)
    merged = {key: value for key, value in (filters or {}).items() if key not in ("published_from", "published_to")}
    merged.update(Period(start, end, period.words).to_filter())
    dated = Dated(start, end, Period(start, end, period.words).text(), period.words, tuple(notes))
    return Plan(rest if searchable(rest) else question, merged, dated)


def search_dated(
    search: Callable[[str, Mapping[str, Any] | None], list[Hit]],
    question: str,
    filters: Mapping[str, Any] | None,
    archive: Archive | Callable[[], Archive],
    dates: bool = True,
) -> tuple[list[Hit], Dated | None]:
    """`search(text, filters)` within the period the question's dates name (with `dates`), and that period. When
    nothing in it answers, the whole question is searched with the filter given and its passages are marked as
    outside the period: a false "nothing found" is the worst answer."""
    p = plan(question, filters, archive) if dates else Plan(question, filters, None)
    hits = search(p.query, p.filters)
    dated = p.dated
    if hits or dated is None or not dated.applied:
        return hits, dated
    hits = search(question, filters)
    if hits:
        outside = f"Nothing published {_span(dated.start, dated.end)} answers this; these passages are from outside it."
        dated = replace(dated, notes=(outside,), outside=True)  # undated articles were searched this time
    return hits, dated
