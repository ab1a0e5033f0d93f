"""Quotations and speakers: the rules of quotes.py and speakers.py, the speech questions of speech.py and the
direct answer of direct.py, on short made-up articles."""

from assistant.direct import direct_answer
from assistant.quotes import find_quotes, passage_quotes, quotes_from_json, quotes_json, speaker_matches
from assistant.speech import read
from assistant.types import Citation, Hit, Quote

ARTICLE = (
    "Foreign Secretary James Cleverly spoke at the UN on Thursday.\n\n"
    "'He has left the chamber, I'm not surprised,' Mr Cleverly said.\n\n"
    "Russian Foreign Minister Sergei Lavrov told the council that the West had imposed a false narrative on Russia.\n\n"
    "'There is an attempt today to impose on us a completely different story,' Lavrov said.\n\n"
    "He added: 'We have no illusions about what the collective West wants from us.'\n\n"
    "'The war will come to every home,' a woman from Omsk said.\n\n"
    "The economy grew by 2% last year, analysts said.\n"
)


def _by_text(quotes, text):
    return {text[q.start : q.end]: q for q in quotes}


def test_direct_quotes_get_their_speakers_full_names_and_forms():
    got = _by_text(find_quotes(ARTICLE), ARTICLE)
    q = got["He has left the chamber, I'm not surprised"]
    assert (q.speaker, q.kind) == ("James Cleverly", "direct") and "Mr Cleverly" in q.forms
    assert got["There is an attempt today to impose on us a completely different story"].speaker == "Sergei Lavrov"


def test_he_is_the_person_last_named_and_an_unnamed_speaker_keeps_the_article_s_words():
    got = _by_text(find_quotes(ARTICLE), ARTICLE)
    assert got["We have no illusions about what the collective West wants from us."].speaker == "Sergei Lavrov"
    assert got["The war will come to every home"].speaker == "a woman from Omsk"


def test_reported_speech_is_a_quotation_of_its_clause():
    got = _by_text(find_quotes(ARTICLE), ARTICLE)
    q = got["the West had imposed a false narrative on Russia"]
    assert (q.speaker, q.kind) == ("Sergei Lavrov", "reported")
    assert got["The economy grew by 2% last year"].speaker == "analysts"


def test_a_title_in_scare_quotes_is_not_a_quotation_and_apostrophes_do_not_open_one():
    text = "The so-called 'war on terror' went on. It's Britain's 'golden rule' now, and the Smiths' house stood."
    assert find_quotes(text) == []


def test_a_quotation_going_on_in_the_next_paragraph_keeps_its_speaker():
    text = "Zelensky told Russians: 'You are complicit. Because you were silent.\n\n'And now it is time to choose.'"
    speakers = [q.speaker for q in find_quotes(text)]
    assert speakers == ["Zelensky", "Zelensky"]


def test_passage_spans_are_cut_to_the_passage_and_survive_storage():
    quotes = find_quotes(ARTICLE)
    start = ARTICLE.index("'There")
    end = ARTICLE.index("He added")
    inside = passage_quotes(quotes, start, end)
    text = ARTICLE[start:end]
    assert [text[q.start : q.end] for q in inside] == [
        "There is an attempt today to impose on us a completely different story"
    ]
    assert quotes_from_json(quotes_json(inside)) == inside


def test_a_name_asked_for_matches_the_full_name_or_a_later_form():
    assert speaker_matches("Cleverly", "James Cleverly")
    assert speaker_matches("Mr Cleverly", "James Cleverly", ("Mr Cleverly",))
    assert not speaker_matches("Lavrov", "James Cleverly", ("Mr Cleverly",))
    assert not speaker_matches("Lavrov", "")


def test_questions_about_speech_are_read_and_others_are_not():
    assert read("What did Zelensky say to Russians?").speaker == "Zelensky"
    assert read("What did Zelensky say to Russians?").topic == "Russians"
    assert read("Lavrov's words on Ukraine?").speaker == "Lavrov"
    who = read("Who called the plan a disaster?")
    assert who.asks_who and "disaster" in who.topic
    assert read("Who said 'we have no illusions'?").quoted == "we have no illusions"
    assert read("How many soldiers died?") is None
    assert read("What did it say about growth?") is None


def _hit(text, quotes=(), highlight=None, confidence="strong"):
    c = Citation("a", "A title", "", "a.txt", 0, len(text))
    return Hit(1, text, 1.0, (c,), highlight=highlight, quotes=tuple(quotes), confidence=confidence)


def test_the_direct_answer_is_the_speaker_s_quotation_or_a_sentence_holding_what_is_asked():
    text = "Lavrov told the council: 'We have no illusions about the West.'"
    s = text.index("We")
    hit = _hit(text, [Quote(s, len(text) - 2, "Sergei Lavrov", "direct")])
    d = direct_answer("What did Lavrov say about the West?", [hit])
    assert d is not None and d.speaker == "Sergei Lavrov" and d.text.startswith("Sergei Lavrov: “We have")
    number = _hit("Exports rose. The firm sold 1,200 cars in May.", highlight=(14, 46))
    assert direct_answer("How many cars did the firm sell in May?", [number]).text == "The firm sold 1,200 cars in May."


def test_no_direct_answer_is_made_up():
    plain = _hit("Exports rose sharply in the spring.", highlight=(0, 35))
    assert direct_answer("How many cars did the firm sell?", [plain]) is None  # no number in the sentence
    quoted = _hit("'It is fine,' she said.", [Quote(1, 11, "Jane Doe", "direct")])
    assert direct_answer("What did Lavrov say about the West?", [quoted]) is None  # not his words
    assert direct_answer("Who said the plan was a disaster?", [quoted]) is None
    weak = _hit("The firm sold 1,200 cars in May.", highlight=(0, 32), confidence="weak")
    assert direct_answer("How many cars did the firm sell in May?", [weak]) is None
    assert direct_answer("How many cars?", []) is None


def test_text_built_to_hurt_does_not_hang_the_indexer():
    # Each of these took time quadratic in its length before speakers were looked for near their verb only
    # (26 KB of the first: 21 s). The bound is a thousand times what they take now: a hang, not a speed target.
    import subprocess
    import sys

    script = (
        "from assistant.quotes import find_quotes\n"
        "for unit in ('and said the ', 'the move showed said the ', '\"a b c d\" ', '‘a ’a ', 'Mr Smith Jones '):\n"
        "    find_quotes(unit * 40000)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


def test_who_is_answered_only_by_a_full_name_the_question_does_not_give():
    who = "Who won the ferry race in May?"
    named = _hit("The ferry race in May was won by Ann Lee of Port Ellery.", highlight=(0, 56))
    assert direct_answer(who, [named]).text.startswith("The ferry race in May was won by Ann Lee")
    place = _hit("The ferry race in May was won by Russia.", highlight=(0, 40))
    assert direct_answer(who, [place]) is None  # a place or a single word is not an answer to "who"
    echo = _hit("The ferry race in May was won by Mr Putin.", highlight=(0, 42))
    assert direct_answer("Who beat Putin in the ferry race in May?", [echo]) is None  # the question's own name
