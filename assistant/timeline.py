"""A timeline: how many matching articles were published each day, week, month or year, gaps included."""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterable

DAYS_BY_DAY = 14  # a span up to two weeks is shown by day (a short chart)
DAYS_BY_WEEK = 26 * 7  # up to half a year by week (ISO weeks: 1987-W10)
MONTHS_BY_MONTH = 48  # up to four years by month, longer by year


def _label(day: datetime.date, unit: str) -> str:
    """The bucket a day falls in: 1987-03-05, 1987-W10, 1987-03 or 1987."""
    if unit == "day":
        return day.isoformat()
    if unit == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return day.isoformat()[:7] if unit == "month" else str(day.year)


def _next(day: datetime.date, unit: str) -> datetime.date:
    """The first day of the next bucket."""
    if unit == "day":
        return day + datetime.timedelta(days=1)
    if unit == "week":
        return day + datetime.timedelta(days=7 - day.weekday())
    if unit == "month":
        return datetime.date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return datetime.date(day.year + 1, 1, 1)


def unit_for(first: datetime.date, last: datetime.date) -> str:
    """The bucket a span is best shown by: day, week, month or year."""
    days = (last - first).days
    months = (last.year - first.year) * 12 + last.month - first.month
    if days <= DAYS_BY_DAY:
        return "day"
    if days <= DAYS_BY_WEEK:
        return "week"
    return "month" if months <= MONTHS_BY_MONTH else "year"


def timeline(published: Iterable[str]) -> list[tuple[str, int]]:
    """Counts of articles by bucket from their publication dates ('YYYY-MM-DD...'; unreadable ones skipped),
    every bucket from the first to the last, oldest first; [] for none."""
    days = []
    for value in published:
        try:
            days.append(datetime.date.fromisoformat((value or "")[:10]))
        except ValueError:
            continue
    if not days:
        return []
    first, last = min(days), max(days)
    unit = unit_for(first, last)
    counts = Counter(_label(d, unit) for d in days)
    out, day = [], first
    while day <= last:
        label = _label(day, unit)
        out.append((label, counts.get(label, 0)))
        day = _next(day, unit)
    return out
