"""Questions and filters a person (or a hostile client) may send: nothing to search, bad text, bad dates."""

import json

import pytest

from assistant import Assistant
from assistant.answer import NOTHING_TO_SEARCH
from assistant.retrieval import searchable
from assistant.types import AssistantError

from .conftest import settings_for
from .fakes import HashEmbedder

EMPTY_QUESTIONS = ["what did", "???", "\U0001f600\U0001f4f0\U0001f525", "the of and to", "How did they do it?", "  !  "]


@pytest.mark.parametrize("question", EMPTY_QUESTIONS)
def test_a_question_without_content_words_finds_nothing_and_says_why(fake_assistant, question):
    assert not searchable(question)
    fake_assistant.settings = fake_assistant.settings.replace("retrieval", min_score=float("-inf"))  # no floor
    answer = fake_assistant.ask(question)
    assert not answer.found and answer.passages == () and answer.message == NOTHING_TO_SEARCH
    assert fake_assistant.search(question) == []


def test_a_question_with_one_content_word_is_searched(fake_assistant):
    assert searchable("Who is Lavrov?") and searchable("2022?") and searchable("Что сказал Зеленский?")
    assert fake_assistant.ask("What did Lavrov say?").found


@pytest.mark.parametrize("question", ["\ud800", "Lavrov \udfff said"])
def test_a_lone_surrogate_is_refused_in_one_line(fake_assistant, question):
    with pytest.raises(AssistantError, match="the question holds a lone UTF-16 surrogate"):
        fake_assistant.ask(question)
    with pytest.raises(AssistantError, match="history item 1 holds a lone UTF-16 surrogate"):
        fake_assistant.ask("What else did Lavrov say?", history=[question])


@pytest.mark.parametrize("key", ["published_from", "published_to"])
@pytest.mark.parametrize("value", ["yesterday", "2005-13", "2005-02-30", "05/03/2005", 2005])
def test_a_bad_date_filter_is_named(fake_assistant, key, value):
    with pytest.raises(AssistantError, match=f"filter {key} = .* is not a date; use YYYY-MM-DD"):
        fake_assistant.ask("What did Lavrov say?", filters={key: value})


def test_date_filters_take_whole_months_and_years(tmp_path):
    records = [
        {
            "id": f"d{day}",
            "title": f"Harbour report {day}",
            "text": f"The harbour ferry ran on day {day} of March.",
            "published": f"2005-03-{day:02d}",
        }
        for day in (1, 15, 31)
    ] + [
        {"id": "april", "title": "Harbour report", "text": "The harbour ferry ran in April.", "published": "2005-04-01"}
    ]
    corpus = tmp_path / "dated.jsonl"
    corpus.write_text("\n".join(json.dumps(r) for r in records))
    a = Assistant(settings_for(tmp_path / "index", min_score=float("-inf")), embedder=HashEmbedder())
    a.add([corpus])

    def ids(**filters):
        return sorted({c.article_id for h in a.search("harbour ferry", k=10, filters=filters) for c in h.citations})

    assert ids(published_to="2005-03") == ["d1", "d15", "d31"]
    assert ids(published_from="2005-03-15", published_to="2005-03") == ["d15", "d31"]
    assert ids(published_from="2005-04") == ["april"]
    assert ids(published_to="2005") == ["april", "d1", "d15", "d31"]
