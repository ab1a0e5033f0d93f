from assistant.chunking import Chunker, sentence_spans
from assistant.documents import load_paths
from assistant.types import Article

from .conftest import SEEDS


def test_sentences_respect_abbreviations_and_lines():
    text = (
        "Mr. Putin spoke to them. The U.S. replied at once! Did it really happen?\nA new line here. Please come back."
    )
    got = [text[s:e] for s, e in sentence_spans(text)]
    assert got == [
        "Mr. Putin spoke to them.",
        "The U.S. replied at once!",
        "Did it really happen?",
        "A new line here. Please come back.",
    ]  # a fragment of under 4 words stays with its sentence


def test_passages_are_bounded_exact_and_overlap():
    chunker = Chunker(max_tokens=60, overlap_tokens=20)
    for art in load_paths([SEEDS]).articles:
        passages = chunker.chunk(art)
        assert passages[0].char_start == 0 and passages[-1].char_end == len(art.text)
        for p, q in zip(passages, passages[1:], strict=False):
            assert q.char_start > p.char_start  # moves on
            assert q.char_start <= p.char_end or not art.text[p.char_end : q.char_start].strip()  # no gap
        for p in passages:
            assert art.text[p.char_start : p.char_end] == p.text
            assert p.n_tokens == chunker.count(p.text) <= 60
            # Whole sentences only, unless one sentence alone is over the limit.
            sentence = next((s, e) for s, e in sentence_spans(art.text) if s <= p.char_start < e)
            assert p.char_start == sentence[0] or chunker.count(art.text[sentence[0] : sentence[1]]) > 60


def test_long_sentence_is_cut_at_words_and_model_limit_is_honoured():
    text = " ".join(f"word{i}" for i in range(400)) + "."
    art = Article("x", "t", text)
    passages = Chunker(max_tokens=50, overlap_tokens=0).chunk(art)
    assert all(p.n_tokens <= 50 for p in passages) and len(passages) > 5
    assert " ".join(p.text for p in passages) == text
    limited = Chunker(max_tokens=50, overlap_tokens=0, model_limit=lambda ts: [len(t.split()) <= 10 for t in ts])
    assert all(len(p.text.split()) <= 10 for p in limited.chunk(art))
