import pytest

from assistant.evaluate import evaluate, first_relevant, load_questions, normalise
from assistant.types import AssistantError, Citation, Hit

TEXTS = {"a": "Zelensky said: “You are already complicit.” More text.", "b": "Other article text here."}


def _hit(article, start, end, highlight=None):
    return Hit(0, TEXTS[article][start:end], 1.0, (Citation(article, "", "", "", start, end),), highlight)


def test_first_relevant_needs_article_and_phrase_in_span():
    gold = [("a", "you are already complicit")]
    assert normalise("“You  are”") == '"you are"'
    assert first_relevant([_hit("b", 0, 10), _hit("a", 0, 45)], gold, TEXTS.__getitem__) == 2
    assert first_relevant([_hit("a", 40, 50)], gold, TEXTS.__getitem__) == 0


def test_metrics_by_hand():
    # ranks 1, 3 and none; one off-topic question answered with nothing.
    results = {
        "q1": [_hit("a", 0, 45, (0, 45))],  # the marked sentence holds the phrase
        "q2": [_hit("b", 0, 5), _hit("b", 0, 5), _hit("a", 0, 45, (0, 14))],  # it does not; "b" shown twice
        "q3": [_hit("b", 0, 5)],
        "off": [],
    }
    from assistant.evaluate import Question

    qs = [Question(q, (("a", "already complicit"),)) for q in ("q1", "q2", "q3")] + [Question("off", ())]
    r = evaluate(lambda q: results[q.question], TEXTS.__getitem__, qs)
    assert (r.positives, r.negatives) == (3, 1)
    assert r.recall_at_1 == pytest.approx(1 / 3)
    assert r.recall_at_5 == pytest.approx(2 / 3)
    assert r.mrr_at_10 == pytest.approx((1 + 1 / 3) / 3)
    assert r.abstained == 1.0
    assert r.best_sentence == pytest.approx(1 / 2)
    assert r.repeated == 1


def test_bad_question_file_names_the_line(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text('{"question": "ok", "gold": []}\n{"gold": []}\n')
    with pytest.raises(AssistantError, match="q.jsonl line 2"):
        load_questions(f)


def test_bbc_question_set_is_sound():
    """eval/bbc.jsonl: 60+ answerable questions whose gold phrases are in their articles, 20+ off-topic."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    corpus = root.parent / "shared" / "corpora" / "bbc-news" / "bbc.jsonl"
    questions = load_questions(root / "eval" / "bbc.jsonl")
    assert sum(1 for q in questions if q.gold) >= 60 and sum(1 for q in questions if not q.gold) >= 20
    if not corpus.exists():
        pytest.skip("../shared/corpora/bbc-news missing")
    texts = {}
    for line in corpus.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        texts[r["id"]] = normalise(r["title"] + "\n" + r["text"])
    for q in questions:
        for article, phrase in q.gold:
            assert normalise(phrase) in texts[article], (q.question, article, phrase)


def test_confidence_is_counted_and_halves_are_read():
    import dataclasses

    from assistant.evaluate import Question

    weak = dataclasses.replace(_hit("b", 0, 5), confidence="weak")
    results = {"told nothing": [], "weakly": [weak], "off strong": [_hit("b", 0, 5)], "off weak": [weak], "off": []}
    gold = (("a", "already complicit"),)
    qs = [Question("told nothing", gold), Question("weakly", gold)]
    qs += [Question(q, ()) for q in ("off strong", "off weak", "off")]
    r = evaluate(lambda q: results[q.question], TEXTS.__getitem__, qs)
    assert (r.told_nothing, r.strong_off_topic, r.abstained) == (1, 1, pytest.approx(1 / 3))
    assert any("found weak passages: off weak" in m for m in r.misses)
    assert "told nothing  1 of 2 answerable questions" in r.lines()


def test_the_question_sets_are_split_in_halves_once_at_random():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "eval"
    for name in ("seeds", "bbc", "followups", "seeds-new", "bbc-new"):
        qs = load_questions(root / f"{name}.jsonl")
        tune = [q for q in qs if q.split == "tune"]
        assert len(tune) == len(qs) // 2 and all(q.split in ("tune", "held") for q in qs), name
