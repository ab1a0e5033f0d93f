"""Time in a question: its dates read as a publication period, relative ones against the newest article's date.

"in March 1987", "on 26 February 1987", "since September", "between March and April 1987", "last week":
each becomes a `Period` (first and last day, ISO; an open end is ""), and the question is given back without
those words. A month name or a year alone counts only after a preposition ("in", "since", "before"...), so
"Theresa May" and "thousands march in Paris" stay words. Relative dates ("last week", "yesterday", a month
without a year) are read against the newest article in the index, never the clock.
"""

from __future__ import annotations

import calendar
import datetime
import re
from dataclasses import dataclass

Day = datetime.date
_MONTH_NAMES = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTH_NAMES.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name and name != "May"})
_MONTH_NAMES["sept"] = 9
_MONTH = r"(?:" + "|".join(sorted(_MONTH_NAMES, key=len, reverse=True)) + r")\b\.?"
_DAY = r"(?:[12][0-9]|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_YEAR = r"(?:19|20)\d\d"
_YEARLESS = "|".join(  # forms with a day or month but no year: need a preposition, and a newest article
    (
        rf"(?P<d1>{_DAY})\s+(?:of\s+)?(?P<m1>{_MONTH})",
        rf"(?P<m2>{_MONTH})\s+(?P<d2>{_DAY})\b",
        rf"(?P<m3>{_MONTH})(?!\s*(?:/|-\s*[a-z]|quarter|half))",  # not "the January/March quarter"
    )
)
_DATED = "|".join(  # forms that carry their year: a date on their own
    (
        rf"(?P<iso>{_YEAR}-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|[12]\d|3[01]))?)\b",
        rf"(?P<d4>{_DAY})\s+(?:of\s+)?(?P<m4>{_MONTH}),?\s+(?P<y4>{_YEAR})\b",
        rf"(?P<m5>{_MONTH})\s+(?P<d5>{_DAY}),?\s+(?P<y5>{_YEAR})\b",
        rf"(?P<m6>{_MONTH}),?\s+(?P<y6>{_YEAR})\b",
    )
)
_POINT = rf"(?:{_DATED}|{_YEARLESS}|(?P<y7>{_YEAR})\b)"
_LONE = re.compile(  # a dated form with no preposition before it ("the report of 17 March 1987")
    rf"\b(?:(?:at\s+)?the\s+(?:end|start|beginning|middle)\s+of\s+|of\s+)?(?:{_DATED})", re.I
)
_IN = r"(?:in|on|during|throughout)"  # not "for" or "of": "a vote for May"; "figures for March 1987" is dated
_EARLY = r"(?:(?:early|late|mid|the\s+end\s+of|the\s+start\s+of|the\s+beginning\s+of)[\s-]+)?"
_UNIT = r"(?P<unit>day|week|month|year)s?"


def _tagged(pattern: str, tag: str) -> str:
    """A pattern with its group names suffixed, to be used twice in one expression."""
    return re.sub(r"\(\?P<(\w+)>", rf"(?P<\1_{tag}>", pattern)


_PATTERNS = [
    (
        "between",
        re.compile(
            rf"\b(?:between\s+(?P<a>{_EARLY}{_tagged(_POINT, 'a')})\s+and"
            rf"|from\s+(?P<b>{_EARLY}{_tagged(_POINT, 'b')})\s+(?:to|until|till|through))"
            rf"\s+(?P<z>{_EARLY}{_tagged(_POINT, 'z')})",
            re.I,
        ),
    ),
    ("week", re.compile(rf"\b(?:{_IN}\s+)?the\s+week\s+(?:of|starting|beginning)\s+(?P<p>{_POINT})", re.I)),
    ("since", re.compile(rf"\b(?:since|after|from)\s+(?P<p>{_EARLY}{_POINT})", re.I)),
    ("before", re.compile(rf"\b(?:before|prior\s+to)\s+(?P<p>{_EARLY}{_POINT})", re.I)),
    ("until", re.compile(rf"\b(?:until|till)\s+(?P<p>{_EARLY}{_POINT})", re.I)),
    (
        "past",
        re.compile(
            rf"\b(?P<pre>in\s+|during\s+|over\s+|within\s+)?the\s+(?:last|past)\s+(?P<n>\d{{1,3}}|two|three|four|five|six|"
            rf"seven|eight|nine|ten|twelve)?\s*{_UNIT}\b",
            re.I,
        ),
    ),
    (
        "relative",
        re.compile(
            rf"\b(?:(?:in|during|over)\s+)?(?<!the\s)(?P<which>last|this|past|previous)\s+(?:(?P<n>\d{{1,3}})\s+)?"
            rf"(?:{_UNIT}|(?P<lm>{_MONTH}))(?!\w)",
            re.I,
        ),
    ),
    ("day", re.compile(r"\b(?P<which>yesterday)\b", re.I)),
    ("in", re.compile(rf"\b{_IN}\s+(?:the\s+)?(?P<p>{_EARLY}{_POINT})", re.I)),
]
_NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
_NUMBERS["twelve"] = 12


@dataclass(frozen=True)
class Period:
    """A publication period read from a question: first and last day ('YYYY-MM-DD', '' when open), and the
    words that said it."""

    start: str
    end: str
    words: str

    def text(self) -> str:
        """The period as the reply states it: "Understood as: published 1987-03-01 to 1987-03-31"."""
        if self.start and self.end:
            span = self.start if self.start == self.end else f"{self.start} to {self.end}"
        else:
            span = f"from {self.start}" if self.start else f"up to {self.end}"
        return f"Understood as: published {span}"

    def to_filter(self) -> dict[str, str]:
        """The period as search filters (published_from, published_to)."""
        bounds = {"published_from": self.start, "published_to": self.end}
        return {key: value for key, value in bounds.items() if value}


def month_end(year: int, month: int) -> Day:
    """The last day of a month."""
    return Day(year, month, calendar.monthrange(year, month)[1])


def _shift_months(day: Day, months: int) -> Day:
    """The same day `months` later (earlier when negative), kept within the month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return Day(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _recent_month(month: int, newest: Day, before: bool = False) -> int:
    """The year of the latest such month at or before the newest article's month (strictly before with `before`)."""
    after = month > newest.month or (before and month == newest.month)
    return newest.year - 1 if after else newest.year


def _group(m: re.Match[str], *names: str) -> str:
    """The first of these named groups that matched ('' if none)."""
    return next((m.group(n) for n in names if m.group(n)), "")


def _point(text: str, newest: Day | None, year_hint: int | None = None) -> tuple[Day, Day] | None:
    """The first and last day a date expression names ("26 February 1987", "March", "1987", "1987-03"); None when
    it is no date or needs a newest article that there is not."""
    m = re.fullmatch(rf"\s*{_EARLY}{_POINT}\s*", text, re.I)
    if m is None:
        return None
    try:
        if m.group("iso"):
            parts = [int(x) for x in m.group("iso").split("-")]
            if len(parts) == 3:
                return Day(*parts), Day(*parts)
            return Day(parts[0], parts[1], 1), month_end(parts[0], parts[1])
        if m.group("y7"):
            year = int(m.group("y7"))
            return Day(year, 1, 1), Day(year, 12, 31)
        month = _MONTH_NAMES[_group(m, "m1", "m2", "m3", "m4", "m5", "m6").lower().rstrip(".")]
        day_text = _group(m, "d1", "d2", "d4", "d5")
        year_text = _group(m, "y4", "y5", "y6")
        if year_text:
            year = int(year_text)
        elif year_hint is not None:
            year = year_hint
        elif newest is not None:
            year = _recent_month(month, newest)
        else:
            return None
        if day_text:
            day = Day(year, month, int(re.sub(r"\D", "", day_text)))
            if not year_text and year_hint is None and newest is not None and day > newest:
                day = Day(year - 1, month, day.day)
            return day, day
        return Day(year, month, 1), month_end(year, month)
    except ValueError:  # 31 February
        return None


def _relative(m: re.Match[str], newest: Day) -> tuple[Day, Day] | None:
    """A relative date ("last week", "past 3 days", "last September"): a period ending by the newest day."""
    which = (m.groupdict().get("which") or "past").lower()
    named = m.groupdict()
    if named.get("lm"):
        month = _MONTH_NAMES[named["lm"].lower().rstrip(".")]
        year = _recent_month(month, newest, before=which in ("last", "previous"))
        return Day(year, month, 1), month_end(year, month)
    unit = m.group("unit").lower()
    count = m.group("n")
    n = int(count) if count and count.isdigit() else _NUMBERS.get((count or "").lower(), 1)
    if n < 1:
        return None
    if which == "past" or count:  # a rolling span that ends with the newest day
        if unit == "day":
            return newest - datetime.timedelta(days=n - 1), newest
        if unit == "week":
            return newest - datetime.timedelta(days=7 * n - 1), newest
        months = n * (12 if unit == "year" else 1)
        return _shift_months(newest, -months) + datetime.timedelta(days=1), newest
    back = 1 if which in ("last", "previous") else 0
    if unit == "day":
        day = newest - datetime.timedelta(days=back)
        return day, day
    if unit == "week":
        monday = newest - datetime.timedelta(days=newest.weekday() + 7 * back)
        return monday, min(monday + datetime.timedelta(days=6), newest)
    if unit == "month":
        first = _shift_months(newest.replace(day=1), -back)
        return first, min(month_end(first.year, first.month), newest)
    year = newest.year - back
    return Day(year, 1, 1), min(Day(year, 12, 31), newest)


def _read(kind: str, m: re.Match[str], newest: Day | None) -> tuple[Day | None, Day | None] | None:
    """The period one matched expression names (an open end is None); None when it names none."""
    if kind == "between":
        end = _point(m.group("z"), newest)
        start = end and _point(_group(m, "a", "b"), newest, end[0].year)
        if not (start and end):
            return None
        if start[0] > end[1]:  # "between November and February 1988": November of the year before
            start = _point(_group(m, "a", "b"), newest, end[0].year - 1)
        return (start[0], end[1]) if start and start[0] <= end[1] else None
    if kind in ("relative", "past", "day"):
        if newest is None:
            return None
        if kind == "day":
            return newest - datetime.timedelta(days=1), newest - datetime.timedelta(days=1)
        if kind == "past" and not (m.group("n") or m.group("pre")):  # "the last day of the summit": no period
            return None
        return _relative(m, newest)
    span = _point(m.group("p"), newest)
    if span is None:
        return None
    if kind == "week":
        monday = span[0] - datetime.timedelta(days=span[0].weekday())
        return monday, monday + datetime.timedelta(days=6)
    if kind == "since":
        after = re.match(r"\s*after\b", m.group(0), re.I)
        return (span[1] + datetime.timedelta(days=1) if after else span[0]), None
    if kind == "before":
        return None, span[0] - datetime.timedelta(days=1)
    if kind == "until":
        return None, span[1]
    return span


def mentions_time(question: str) -> bool:
    """Whether a question has words that may name a period (read_period then needs the newest article's date)."""
    return _LONE.search(question) is not None or any(pattern.search(question) for _, pattern in _PATTERNS)


def read_period(question: str, newest: Day | None = None) -> tuple[Period | None, str]:
    """The publication period a question's words name, and the question without them; (None, question) when it
    names none. `newest`: the newest article's date, which relative dates are read against."""
    found = [
        (m, span) for kind, pattern in _PATTERNS for m in pattern.finditer(question) if (span := _read(kind, m, newest))
    ]
    lone = _LONE.search(question)
    if lone and (span := _point(re.sub(r"^.*\bof\s+", "", lone.group(0)), newest)):
        found.append((lone, span))
    if not found:
        return None, question
    # "output in May, published in June 1987": words that give their year are read before those that do not
    m, span = next(((m, span) for m, span in found if re.search(rf"\b{_YEAR}\b", m.group(0))), found[0])
    return _period(question, m.start(), m.end(), span)


def _period(question: str, start: int, end: int, span: tuple[Day | None, Day | None]) -> tuple[Period, str]:
    """The period of a span, and the question with the words [start, end) taken out."""
    first, last = span
    words = question[start:end].strip()
    rest = re.sub(r"\s+([?!.,;:])", r"\1", " ".join((question[:start] + " " + question[end:]).split()))
    rest = re.sub(r"^[,;:]\s*|(?:\s*[,;:]|\s+(?:and|or))+\s*([?!.]?)$", r"\1", rest).strip()
    return Period(first.isoformat() if first else "", last.isoformat() if last else "", words), rest
