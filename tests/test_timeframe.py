"""Reading a question's dates as a publication period (assistant/timeframe.py)."""

from __future__ import annotations

import datetime

import pytest

from assistant.timeframe import Period, read_period

NEWEST = datetime.date(1987, 10, 20)  # a Tuesday: the newest Reuters-21578 story


@pytest.mark.parametrize(
    ("question", "start", "end", "words", "rest"),
    [
        ("What did OPEC decide in March 1987?", "1987-03-01", "1987-03-31", "in March 1987", "What did OPEC decide?"),
        ("Coffee quotas in 1987", "1987-01-01", "1987-12-31", "in 1987", "Coffee quotas"),
        ("Coffee quotas during 1986?", "1986-01-01", "1986-12-31", "during 1986", "Coffee quotas?"),
        ("Cocoa prices March 1987", "1987-03-01", "1987-03-31", "March 1987", "Cocoa prices"),
        ("The report of 17 March 1987", "1987-03-17", "1987-03-17", "of 17 March 1987", "The report"),
        ("Iraq at the end of June 1987?", "1987-06-01", "1987-06-30", "at the end of June 1987", "Iraq?"),
        ("Texaco on 26 February 1987?", "1987-02-26", "1987-02-26", "on 26 February 1987", "Texaco?"),
        ("Texaco on February 26, 1987?", "1987-02-26", "1987-02-26", "on February 26, 1987", "Texaco?"),
        ("Texaco on the 3rd of March 1987", "1987-03-03", "1987-03-03", "on the 3rd of March 1987", "Texaco"),
        ("Earnings 1987-03-05", "1987-03-05", "1987-03-05", "1987-03-05", "Earnings"),
        ("Earnings in 1987-04", "1987-04-01", "1987-04-30", "in 1987-04", "Earnings"),
        ("Sugar in Sept. 1987", "1987-09-01", "1987-09-30", "in Sept. 1987", "Sugar"),
        ("Sugar in early March 1987", "1987-03-01", "1987-03-31", "in early March 1987", "Sugar"),
        # weeks run Monday to Sunday
        ("Gold in the week of 4 March 1987", "1987-03-02", "1987-03-08", "in the week of 4 March 1987", "Gold"),
        ("Gold the week of March 2, 1987", "1987-03-02", "1987-03-08", "the week of March 2, 1987", "Gold"),
        # relative to the newest article (Tuesday 1987-10-20), never the clock
        ("Gold prices last week", "1987-10-12", "1987-10-18", "last week", "Gold prices"),
        ("Gold prices this week", "1987-10-19", "1987-10-20", "this week", "Gold prices"),
        ("Gold prices last month", "1987-09-01", "1987-09-30", "last month", "Gold prices"),
        ("Gold prices this month", "1987-10-01", "1987-10-20", "this month", "Gold prices"),
        ("Gold prices last year", "1986-01-01", "1986-12-31", "last year", "Gold prices"),
        ("Gold prices this year", "1987-01-01", "1987-10-20", "this year", "Gold prices"),
        ("Gold prices yesterday", "1987-10-19", "1987-10-19", "yesterday", "Gold prices"),
        ("Gold in the past 3 weeks", "1987-09-30", "1987-10-20", "in the past 3 weeks", "Gold"),
        ("Gold over the past two months", "1987-08-21", "1987-10-20", "over the past two months", "Gold"),
        ("Gold in the last year", "1986-10-21", "1987-10-20", "in the last year", "Gold"),
        ("Gold last 10 days", "1987-10-11", "1987-10-20", "last 10 days", "Gold"),
        ("Gold last March", "1987-03-01", "1987-03-31", "last March", "Gold"),
        ("Gold last October", "1986-10-01", "1986-10-31", "last October", "Gold"),
        # a month with no year: the most recent one at or before the newest article
        ("Cocoa since September", "1987-09-01", "", "since September", "Cocoa"),
        ("Cocoa in October", "1987-10-01", "1987-10-31", "in October", "Cocoa"),
        ("Cocoa in December", "1986-12-01", "1986-12-31", "in December", "Cocoa"),
        ("Cocoa in may", "1987-05-01", "1987-05-31", "in may", "Cocoa"),
        ("Cocoa on October 19", "1987-10-19", "1987-10-19", "on October 19", "Cocoa"),
        ("Cocoa on 25 October", "1986-10-25", "1986-10-25", "on 25 October", "Cocoa"),
        # open and closed ranges
        ("Sales before 1988", "", "1987-12-31", "before 1988", "Sales"),
        ("Sales before March 1987", "", "1987-02-28", "before March 1987", "Sales"),
        ("Sales after March 1987", "1987-04-01", "", "after March 1987", "Sales"),
        ("Sales until 1 April 1987", "", "1987-04-01", "until 1 April 1987", "Sales"),
        ("Sales since 1987", "1987-01-01", "", "since 1987", "Sales"),
        ("Oil between March and April 1987?", "1987-03-01", "1987-04-30", "between March and April 1987", "Oil?"),
        ("between 1 March and 15 April 1987", "1987-03-01", "1987-04-15", "between 1 March and 15 April 1987", ""),
        ("Oil from March to May", "1987-03-01", "1987-05-31", "from March to May", "Oil"),
        ("Oil from November to February 1988", "1987-11-01", "1988-02-29", "from November to February 1988", "Oil"),
        ("In March 1987, what did Brazil say?", "1987-03-01", "1987-03-31", "In March 1987", "what did Brazil say?"),
        # words that give their year win over those that do not
        ("Output in May, out in June 1987", "1987-06-01", "1987-06-30", "in June 1987", "Output in May, out"),
        ("Japan GNP in the January/March quarter", None, None, "", "Japan GNP in the January/March quarter"),
        ("GNP, Jan-March quarter, June 1987", "1987-06-01", "1987-06-30", "June 1987", "GNP, Jan-March quarter"),
    ],
)
def test_reads_a_period(question: str, start: str | None, end: str | None, words: str, rest: str) -> None:
    period, left = read_period(question, NEWEST)
    assert period == (Period(start, end, words) if start is not None else None)
    assert left == rest


@pytest.mark.parametrize(
    "question",
    [
        "What did Theresa May say about Brexit?",
        "May the company sell its stake?",
        "Thousands march in Paris against the reform",
        "Why did they march on Washington?",
        "What happened on the last day of the summit?",
        "Who chaired the last month of talks?",
        "What did the august body decide?",
        "What is the 1987 harvest forecast?",  # a year with no preposition is a word, not a filter
        "Did the company sell 1987 shares?",
        "A vote for May in the party",
        "Output rose to 1,990 tonnes",
        "Shares up to 1990 in number",
        "What was the price on 31 February 1987?",  # no such day
        "What did Will Smith say in court today?",
    ],
)
def test_false_friends_are_no_period(question: str) -> None:
    assert read_period(question, NEWEST) == (None, question)


def test_relative_dates_need_a_newest_article() -> None:
    assert read_period("Gold last week", None) == (None, "Gold last week")
    assert read_period("Cocoa since September", None) == (None, "Cocoa since September")
    period, rest = read_period("Cocoa in March 1987", None)  # an absolute date needs none
    assert period == Period("1987-03-01", "1987-03-31", "in March 1987") and rest == "Cocoa"


def test_a_yearless_day_after_the_newest_article_is_the_year_before() -> None:
    period, _ = read_period("Cocoa on 30 October", NEWEST)
    assert period == Period("1986-10-30", "1986-10-30", "on 30 October")


def test_the_period_as_text_and_filter() -> None:
    assert Period("1987-03-01", "1987-03-31", "").text() == "Understood as: published 1987-03-01 to 1987-03-31"
    assert Period("1987-03-02", "1987-03-02", "").text() == "Understood as: published 1987-03-02"
    assert Period("1987-09-01", "", "").text() == "Understood as: published from 1987-09-01"
    assert Period("", "1987-12-31", "").text() == "Understood as: published up to 1987-12-31"
    assert Period("1987-09-01", "", "").to_filter() == {"published_from": "1987-09-01"}
    assert Period("1987-03-01", "1987-03-31", "").to_filter() == {
        "published_from": "1987-03-01",
        "published_to": "1987-03-31",
    }
