"""`Assistant.quotes` over a small index (fake embedder): a speaker's quotations, their citations, ranking by a
topic, filters, and the same words from two outlets shown once."""

import json

import pytest

from assistant import Assistant
from assistant.types import AssistantError

from .conftest import settings_for
from .fakes import HashEmbedder

WIRE = "'We will not sail until the ferry is safe for every passenger,' union leader Ann Lee said on Monday."
ROWS = [
    {"id": "herald-1", "title": "Ferry strike", "source": "Herald", "published": "2005-03-14",
     "text": f"Crews walked out over pay.\n\n{WIRE}\n\nMs Lee added that talks could resume on Friday."},
    {"id": "times-1", "title": "Ferry crews strike", "source": "Times", "published": "2005-03-15",
     "text": f"The island ferry stopped.\n\n{WIRE.replace('every passenger', 'every single passenger')}"},
    {"id": "post-1", "title": "Bridge plan", "source": "Post", "published": "2005-04-01",
     "text": "'A bridge would end it,' council leader Tom Hart said.\n\nMr Hart said the bridge would cost 40m."},
]  # fmt: skip


@pytest.fixture
def quoting(tmp_path) -> Assistant:
    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "news.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS), encoding="utf-8")
    a = Assistant(settings_for(tmp_path / "index", min_score=0.05), embedder=HashEmbedder())
    a.add([folder])
    return a


def test_every_quotation_by_a_speaker_cited_and_the_same_words_from_two_outlets_once(quoting):
    said = quoting.quotes(speaker="Lee")
    assert [q.speaker for q in said] == ["Ann Lee", "Ann Lee"]
    wire = next(q for q in said if q.text.startswith("We will not sail"))
    assert {wire.citation.article_id, *(c.article_id for c in wire.also_in)} == {"herald-1", "times-1"}
    for q in said:
        c = q.citation
        assert quoting.article_text(c.article_id)[c.char_start : c.char_end].strip() == q.text
        assert c.published and c.source
    assert {q.kind for q in said} == {"direct", "reported"}
    assert quoting.quotes(speaker="Ms Lee") == said  # a later form of the name finds her too


def test_a_topic_ranks_the_quotations_and_alone_finds_anyone_s_on_it(quoting):
    said = quoting.quotes(speaker="Hart", about="how much the bridge costs")
    assert said[0].text == "the bridge would cost 40m" and said[0].score > said[-1].score
    anyone = quoting.quotes(about="bridge cost")
    assert anyone and all(q.speaker == "Tom Hart" for q in anyone)
    assert quoting.quotes(speaker="Lee", filters={"source": "Times"})[0].citation.article_id == "times-1"


def test_asking_for_nobody_is_one_line(quoting):
    with pytest.raises(AssistantError, match="--speaker NAME"):
        quoting.quotes()
    with pytest.raises(AssistantError, match="no word to look a speaker up by"):
        quoting.quotes(speaker="the")
    assert quoting.quotes(speaker="Nobody Known") == []
