import dataclasses
import difflib
import random
import types

import numpy as np
import pytest

from assistant.analysis import named_terms, query_terms, terms
from assistant.answer import build_answer, cite, render_text
from assistant.config import RetrievalSettings
from assistant.engines.embedded import _half_top
from assistant.highlight import (
    analyse,
    best_sentence,
    long_blocks,
    plain_words,
    sentence_terms,
    shared_runs,
    stored_sentences,
    stored_words,
)
from assistant.postings import Postings
from assistant.retrieval import collapse, coverage
from assistant.types import AssistantError, Citation, Hit
from assistant.vectors import half_copy


def _hit(pid, text, article, highlight_phrase):
    s = text.index(highlight_phrase)
    cit = Citation(article, article.upper(), "", f"{article}.txt", 0, len(text))
    return Hit(pid, text, 1.0 / pid, (cit,), (s, s + len(highlight_phrase)))


QUOTE = "anyone who courageously opposes Putin's regime and therefore puts himself in the greatest danger can apply"


def test_same_quote_collapses_into_one_hit_citing_both():
    a = _hit(1, f"Faeser said that {QUOTE} for asylum. Other news follows here.", "a", QUOTE)
    b = _hit(2, f"Unrelated opening sentence. She told a paper that {QUOTE} for asylum.", "b", QUOTE)
    c = _hit(3, "A different passage about flights out of Moscow and prices.", "c", "flights")
    out = collapse([a, b, c], RetrievalSettings())
    assert [h.passage_id for h in out] == [1, 3]
    assert [x.article_id for x in out[0].citations] == ["a", "b"]


def test_a_text_citation_names_the_article_where_its_file_holds_many():
    one = Citation("sub/a.txt", "A", "", "seeds/sub/a.txt", 0, 9)
    first = Citation("business/001", "Same title", "BBC", "corpus/bbc.jsonl", 0, 40)
    copy = dataclasses.replace(first, article_id="business/071")
    assert cite(one) == "A (seeds/sub/a.txt, chars 0-9)"
    assert cite(first) == "Same title, BBC (corpus/bbc.jsonl, article business/001, chars 0-40)"
    hit = Hit(1, "Some passage text here.", 1.0, (first, copy))
    text = render_text(build_answer("q", [hit]))
    assert "— also in: Same title, BBC (corpus/bbc.jsonl, article business/071, chars 0-40)" in text


def test_shared_quote_that_does_not_answer_does_not_collapse():
    filler_a = " ".join(f"alpha{i}" for i in range(40))
    filler_b = " ".join(f"beta{i}" for i in range(40))
    a = _hit(
        1, f"Faeser said that {QUOTE} for asylum. Flights were sold out. {filler_a}", "a", "Flights were sold out."
    )
    b = _hit(2, f"She said {QUOTE} for asylum. Baerbock praised the protesters. {filler_b}", "b", "Baerbock praised")
    assert len(collapse([a, b], RetrievalSettings())) == 2


def test_shared_runs_and_best_sentence():
    runs = shared_runs("x y " + QUOTE + " z", "q " + QUOTE, 8)
    assert len(runs) == 1 and runs[0][0] == len(QUOTE.replace("'", " ").split())
    text = "Flights were sold out. Lavrov accused Ukraine of Russophobia. The end came at last."
    s, e = best_sentence("What did Lavrov accuse Ukraine of?", text, lambda t: 1.0)
    assert text[s:e] == "Lavrov accused Ukraine of Russophobia."
    assert best_sentence("omelette", text, lambda t: 1.0) is None


def test_filters_restrict_and_unknown_filter_is_named(fake_assistant):
    hits = fake_assistant.search("Zelensky Russians protest", k=10, filters={"article_id": "001_5f183a81a63fc7fc.txt"})
    assert hits and all(c.article_id == "001_5f183a81a63fc7fc.txt" for h in hits for c in h.citations[:1])
    assert fake_assistant.search("Zelensky", filters={"source": "nowhere"}) == []
    with pytest.raises(AssistantError, match="unknown filter 'colour'"):
        fake_assistant.search("Zelensky", filters={"colour": "red"})


def test_spans_point_into_the_article(fake_assistant):
    for hit in fake_assistant.search("Lavrov stormed out of the UN Security Council", k=5):
        c = hit.citations[0]
        assert fake_assistant.article_text(c.article_id)[c.char_start : c.char_end] == hit.text


def test_floor_gives_nothing_found(fake_assistant):
    fake_assistant.settings = fake_assistant.settings.replace("retrieval", min_score=0.7)
    assert fake_assistant.ask("Lavrov stormed out of the UN Security Council meeting").found
    answer = fake_assistant.ask("quantum chromodynamics lattice gauge")
    assert not answer.found and answer.passages == () and "Nothing" in answer.message


def test_named_terms_are_capitalised_words_after_the_first_and_numbers():
    assert named_terms("Who won the 2018 FIFA World Cup in Russia?") == set(terms("2018 FIFA World Cup Russia"))
    assert named_terms("how do i reverse a list?") == set()


def test_bm25_counts_a_term_repeated_in_the_question_once():
    texts = ["the cat sat", "a dog barked at the cat", "dogs and more dogs", "rain"]
    index = Postings.build(terms(t) for t in texts)
    norms = index.norms(float(np.mean(index.lengths)))

    def scores(question: str) -> np.ndarray:
        out = np.zeros(len(texts), np.float32)
        index.scores([(t, 1.0) for t in query_terms(question)], norms, out)
        return out

    once = scores("dog cat")
    assert once[1] > once[0] > 0 and once[2] > 0 and once[3] == 0
    assert np.array_equal(scores("dog dogs cat, the cat"), once)
    assert np.array_equal(scores("What did the dog do? How does a dog cat?"), once)


def test_bm25_searches_a_question_without_the_words_that_only_ask():
    assert query_terms("What did the minister say, and how did the minister say it?") == terms("minister say")
    assert query_terms("Why does Which? magazine say so?") == terms("which magazine say so")
    assert query_terms("What did they do?") == terms("they")


def test_coverage_weighs_the_question_words_its_article_holds(fake_assistant):
    view = fake_assistant.view
    hits = fake_assistant.search("What did Lavrov say at the UN?", k=3)
    ids = [h.citations[0].article_id for h in hits]
    everything, names = coverage(view, "What did Lavrov say at the UN?", ids)
    lavrov = [i for i, h in enumerate(hits) if "Lavrov" in fake_assistant.article_text(h.citations[0].article_id)]
    assert lavrov and all(names[i] == 1.0 for i in lavrov)  # "Lavrov" and "UN" are both in that article
    everything, names = coverage(view, "What did Lavrov say about Zorblaxian treaties?", ids)
    assert all(n < 1.0 for n in names)  # a name found in no article weighs most and is missing everywhere
    assert all(0.0 <= e < 1.0 for e in everything)
    everything, names = coverage(view, "what did they say?", ids)
    assert list(names) == [1.0] * len(ids)  # no names: nothing to miss


def test_identical_texts_share_one_run_as_difflib_finds_it():

    text = "Lavrov, at the UN, accused Ukraine of Russophobia; flights were sold out."
    found = [w.lower() for w in __import__("re").findall(r"\w+", text)]
    block = difflib.SequenceMatcher(None, found, found, autojunk=False).get_matching_blocks()[0]
    assert shared_runs(text, text.upper(), 8) == [(block.size, (0, len(text) - 1), (0, len(text) - 1))]
    assert shared_runs("only four words here", "only four words here", 8) == []
    # where a text's words begin and end: "İ" is a word character, "_" too, "…" is not
    assert shared_runs("«İzmir grew_ fast…»", "İZMIR GREW_ FAST!", 1) == [(3, (1, 17), (0, 16))]


def test_best_sentence_where_lower_casing_moves_characters():
    # "İ" lower-cases to two characters: the sentences' words are then read one sentence at a time.
    text = "İstanbul grew fast. Ankara stayed the capital of Turkey. The rest is weather."
    s, e = best_sentence("What is the capital of Turkey?", text, lambda t: 1.0)
    assert text[s:e] == "Ankara stayed the capital of Turkey."
    assert best_sentence("What is the capital of Turkey?", text.replace("İ", "I"), lambda t: 1.0) == (s, e)


@pytest.mark.parametrize(
    "text",
    [
        "İstanbul grew fast. Ankara stayed the capital of Turkey. The rest is weather.",
        "Mr. Smith said: “We won!” Then he left.\n\nA new paragraph, with 3.5% growth…",
        "...",
        "one",
    ],
)
def test_stored_analysis_reads_back_what_the_text_gives(text):
    stored = analyse(text)
    assert stored_words(stored) == plain_words(text)
    assert stored_sentences(stored) == sentence_terms(text)
    question = "What is the capital of Turkey?"
    assert best_sentence(question, text, lambda t: 1.0, stored_sentences(stored)) == best_sentence(
        question, text, lambda t: 1.0
    )


def test_the_16_bit_scan_finds_the_exact_top_or_says_it_cannot(fake_assistant):
    seg = fake_assistant.view.snap.segments[0]
    matrix = np.asarray(seg.matrix)
    assert seg.half is not None and len(matrix) > 20
    sure = 0
    for question in ("Who fled Russia?", "What did Zelensky say to Russians?", "prisoner swap Medvedchuk"):
        q = fake_assistant.embedder.encode([question])[0]
        exact = matrix @ q
        rows = _half_top(seg, q, 8)
        if rows is not None:  # the 8 best by exact cosine, whatever order
            assert sorted(exact[rows].tolist()) == sorted(np.sort(exact)[-8:].tolist())
            sure += 1
    assert sure >= 2
    # Rows that tie cannot be told apart in 16 bits: it gives up, and the exact scan answers.
    same = np.repeat(matrix[:1], 30, axis=0)
    tied = types.SimpleNamespace(matrix=same, half=half_copy(same), ids=np.arange(30))
    assert _half_top(tied, matrix[0], 5) is None


def test_long_blocks_are_the_blocks_difflib_finds():
    rng = random.Random(1)
    found = 0
    for _ in range(3000):
        vocab = rng.choice([2, 3, 5, 20])  # few distinct words: many ties between equally long matches
        a = [str(rng.randrange(vocab)) for _ in range(rng.randrange(60))]
        b = list(a)
        for _ in range(rng.randrange(6)):
            pos = rng.randrange(len(b) + 1)
            if rng.random() < 0.5:
                b.insert(pos, str(rng.randrange(vocab)))
            elif b:
                b[min(pos, len(b) - 1)] = str(rng.randrange(vocab))
        if rng.random() < 0.3:
            b = b[rng.randrange(len(b) + 1) :] + a[: rng.randrange(len(a) + 1)]
        n = rng.choice([1, 2, 3, 5, 8])
        blocks = difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks()
        expected = [(m.a, m.b, m.size) for m in blocks if m.size >= n]
        assert long_blocks(a, b, n) == expected, (a, b, n)
        found += bool(expected)
    assert found > 2000
