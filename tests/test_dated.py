"""Dates in a question searched as a publication period (assistant/dated.py, the core), and the timeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant import Assistant
from assistant.timeline import timeline
from tests.conftest import settings_for
from tests.fakes import HashEmbedder

ARTICLES = [
    ("coffee-march", "1987-03-10", "Coffee council meets", "The coffee council agreed export quotas for producers."),
    ("coffee-june", "1987-06-05", "Coffee council again", "The coffee council dropped export quotas for producers."),
    ("cocoa-may", "1987-05-12", "Cocoa buffer stock", "The cocoa buffer stock manager bought cocoa beans."),
    ("tin-june", "1987-06-20", "Tin market closes", "The tin market closed after the tin council debts."),
]


@pytest.fixture(scope="module")
def dated(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    """An assistant over four dated articles (the newest 1987-06-20) and one undated, with the fake embedder."""
    root = tmp_path_factory.mktemp("dated")
    corpus = root / "news"
    corpus.mkdir()
    lines = [json.dumps({"id": i, "published": d, "title": t, "text": x}) for i, d, t, x in ARTICLES]
    (corpus / "wire.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (corpus / "undated.txt").write_text("Coffee notes\nThe coffee council said little.\n", encoding="utf-8")
    a = Assistant(settings_for(root / "index", min_score=0.05), embedder=HashEmbedder())
    a.add([corpus])
    return a


def _articles(answer: dict) -> list[str]:
    return [c["article_id"] for p in answer["passages"] for c in p["citations"]]


def test_a_month_and_year_filters_the_search(dated: Assistant) -> None:
    answer = dated.ask("What did the coffee council decide on export quotas in March 1987?").to_dict()
    assert _articles(answer) == ["coffee-march"]
    period = answer["period"]
    assert (period["from"], period["to"], period["words"]) == ("1987-03-01", "1987-03-31", "in March 1987")
    assert period["text"] == "Understood as: published 1987-03-01 to 1987-03-31"
    assert period["notes"] == ["1 article(s) without a publication date were left out."]
    assert not period["outside"] and period["applied"]
    assert answer["timeline"] == [{"period": "1987-03-10", "articles": 1}]


def test_relative_dates_are_read_against_the_newest_article(dated: Assistant) -> None:
    answer = dated.ask("What did the cocoa buffer stock manager buy last month?").to_dict()
    assert (answer["period"]["from"], answer["period"]["to"]) == ("1987-05-01", "1987-05-31")
    assert _articles(answer) == ["cocoa-may"]


def test_nothing_in_the_period_shows_passages_outside_it_marked(dated: Assistant) -> None:
    answer = dated.ask("What did the tin council do in April 1987?").to_dict()
    assert answer["found"] and "tin-june" in _articles(answer)
    period = answer["period"]
    assert period["outside"]
    assert period["notes"] == [
        "Nothing published 1987-04-01 to 1987-04-30 answers this; these passages are from outside it."
    ]


def test_the_period_meets_the_filter_given(dated: Assistant) -> None:
    answer = dated.ask("coffee council export quotas in 1987", filters={"published_to": "1987-04"}).to_dict()
    assert (answer["period"]["from"], answer["period"]["to"]) == ("1987-01-01", "1987-04-30")
    assert _articles(answer) == ["coffee-march"]


def test_a_filter_that_conflicts_wins_and_the_reply_says_so(dated: Assistant) -> None:
    answer = dated.ask("coffee council export quotas in March 1987", filters={"published_from": "1987-06"}).to_dict()
    period = answer["period"]
    assert not period["applied"] and (period["from"], period["to"]) == ("1987-03-01", "1987-03-31")
    assert period["notes"] == [
        "Your date filter (from 1987-06-01) was kept: the question's period does not overlap it."
    ]
    assert _articles(answer)[0] == "coffee-june" and "coffee-march" not in _articles(answer)


def test_a_question_without_dates_has_no_period_but_a_timeline(dated: Assistant) -> None:
    answer = dated.ask("coffee council export quotas").to_dict()
    assert answer["period"] is None
    assert {"coffee-march", "coffee-june"} <= set(_articles(answer))
    weeks = {row["period"]: row["articles"] for row in answer["timeline"]}
    assert answer["timeline"][0] == {"period": "1987-W11", "articles": 1}
    assert weeks["1987-W23"] == 1 and weeks["1987-W12"] == 0  # every week between, empty ones too
    assert sum(weeks.values()) <= len(ARTICLES)  # the undated article is not counted


def test_dates_off_leaves_them_as_words(dated: Assistant) -> None:
    off = Assistant(dated.settings.replace("retrieval", dates=False), embedder=HashEmbedder())
    answer = off.ask("coffee council export quotas in March 1987").to_dict()
    assert answer["period"] is None
    assert {"coffee-march", "coffee-june"} <= set(_articles(answer))


def test_a_bad_filter_is_still_one_line(dated: Assistant) -> None:
    with pytest.raises(Exception, match="is not a date"):
        dated.ask("coffee in March 1987", filters={"published_from": "March"})


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        ([], []),
        (
            ["1987-03-02", "1987-03-04", "1987-03-04T10:00", "bad", ""],
            [("1987-03-02", 1), ("1987-03-03", 0), ("1987-03-04", 2)],
        ),
        (
            ["1987-03-02", "1987-04-20"],
            [("1987-W10", 1)] + [(f"1987-W{w}", 0) for w in range(11, 17)] + [("1987-W17", 1)],
        ),
        (
            ["1987-02-26", "1987-10-20"],
            [("1987-02", 1)] + [(f"1987-{m:02d}", 0) for m in range(3, 10)] + [("1987-10", 1)],
        ),
        (
            ["1980-05-01", "1987-10-20", "1987-01-01"],
            [("1980", 1)] + [(str(y), 0) for y in range(1981, 1987)] + [("1987", 2)],
        ),
    ],
)
def test_timeline_buckets_by_the_span(dates: list[str], expected: list[tuple[str, int]]) -> None:
    assert timeline(dates) == expected


def test_old_json_keys_stay(dated: Assistant, tmp_path: Path) -> None:
    answer = dated.ask("coffee council export quotas").to_dict()
    old = {"question", "query", "found", "message", "confidence", "answer", "passages", "index"}
    assert old <= set(answer) and {"period", "timeline"} <= set(answer)


def test_an_archive_without_dates_reads_no_period(fake_assistant: Assistant) -> None:
    answer = fake_assistant.ask("What did Zelensky say to Russians in September 2022?").to_dict()
    assert answer["period"] is None and answer["found"]  # the seeds carry no dates: the words are searched
