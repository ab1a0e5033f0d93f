import pytest

from assistant.evaluate import evaluate, first_relevant, load_questions, normalise
from assistant.types import AssistantError, Citation, Hit

TEXTS = {"a": "Zelensky said: “You are already complicit.” More text.", "b": "Other article text here."}


def _hit(article, start, end):
    return Hit(0, TEXTS[article][start:end], 1.0, (Citation(article, "", "", "", start, end),))


def test_first_relevant_needs_article_and_phrase_in_span():
    gold = [("a", "you are already complicit")]
    assert normalise("“You  are”") == '"you are"'
    assert first_relevant([_hit("b", 0, 10), _hit("a", 0, 45)], gold, TEXTS.__getitem__) == 2
    assert first_relevant([_hit("a", 40, 50)], gold, TEXTS.__getitem__) == 0


def test_metrics_by_hand():
    # ranks 1, 3 and none; one off-topic question answered with nothing.
    results = {
        "q1": [_hit("a", 0, 45)],
        "q2": [_hit("b", 0, 5), _hit("b", 0, 5), _hit("a", 0, 45)],
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


def test_bad_question_file_names_the_line(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text('{"question": "ok", "gold": []}\n{"gold": []}\n')
    with pytest.raises(AssistantError, match="q.jsonl line 2"):
        load_questions(f)
