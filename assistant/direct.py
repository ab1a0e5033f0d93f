"""The direct answer above the passages: the speaker and the quotation for a question about speech, or the
sentence of the first passage that plainly holds what the question asks for; never made up."""

from __future__ import annotations

import re
from collections.abc import Sequence

from .analysis import query_terms, terms
from .highlight import asks_name, holds_asked
from .speech import SAID_MATCH, quote_match
from .speech import read as read_speech
from .types import Direct, Hit

_FULL_NAME = re.compile(r"\b[A-Z][a-z]+(?:[ ](?:de |van |von |al |da )?[A-Z][a-z'’-]+)+")
SENTENCE_COVERS = 0.5  # share of the question's words a sentence must hold to be given as the answer


def direct_answer(question: str, hits: Sequence[Hit]) -> Direct | None:
    """The first passage's quotation that answers a question about speech ("Speaker: “...”"), or its marked
    sentence when the question asks for a number, date or name and that sentence holds one; else None. Only a
    strong first passage answers directly."""
    if not hits or hits[0].confidence != "strong":
        return None
    top = hits[0]
    asked = read_speech(question)
    if asked is not None:
        graded = [(quote_match(asked, q, top.text), -q.start, q) for q in top.quotes]
        good = [g for g in graded if g[0] >= SAID_MATCH and g[2].speaker]
        if good:
            q = max(good, key=lambda g: (len(top.text[g[2].start : g[2].end].split()) >= 4, g[0], g[1]))[2]
            said = top.text[q.start : q.end].strip()
            return Direct(f"{q.speaker}: “{said}”", q.speaker, 1, q.start, q.end)
        if asked.asks_who:
            return None
    if top.highlight is None:
        return None
    s, e = top.highlight
    sentence = top.text[s:e]
    wanted = set(query_terms(question))
    covered = len(wanted & set(terms(sentence))) / len(wanted) if wanted else 0.0
    if covered < SENTENCE_COVERS or not holds_asked(question, sentence):
        return None
    if asks_name(question) and not _new_name(question, sentence):
        return None  # "who" is answered by a person's full name the question does not already give
    return Direct(sentence, "", 1, s, e)


def _new_name(question: str, sentence: str) -> bool:
    """Whether the sentence names someone in full (two or more capitalised words) the question does not."""
    asked = {w.lower() for w in re.findall(r"[A-Za-z]+", question)}
    return any(not set(re.findall(r"[a-z]+", m.group(0).lower())) & asked for m in _FULL_NAME.finditer(sentence))
