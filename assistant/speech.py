"""Questions about what someone said: "What did X say about Y?", "X's words on Y", "Who said '...'?", "Who
called the plan a disaster?"; and how well a passage's quotations answer one."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .analysis import terms
from .quotes import around, speaker_matches
from .types import Quote

_SAY = (
    r"say|said|tell|told|think|thought|claim|claimed|warn|warned|add|added|write|wrote|tweet|tweeted|argue|"
    r"argued|announce|announced|promise|promised|accuse|accused|reply|replied|admit|admitted|predict|predicted|"
    r"suggest|suggested|insist|insisted|call|called|describe|described"
)
_WHAT_DID = re.compile(
    rf"^\W*(?:what|how)\s+(?:did|does|do|has|have|had|is|was)\s+(?P<who>.+?)\s+(?:(?:{_SAY})\b)(?P<rest>.*)$",
    re.IGNORECASE,
)
_WORDS_ON = re.compile(
    r"^\W*(?:what (?:were|are) )?(?P<who>.+?)['’]s?\s+(?:words|comments?|remarks?|view|views|verdict|reaction|"
    r"response|message|statement|quote|quotes)\b(?P<rest>.*)$",
    re.IGNORECASE,
)
_WHO = re.compile(rf"^\W*who\s+(?:(?:{_SAY})\b|was\s+quoted|has\s+(?:{_SAY}))(?P<rest>.*)$", re.IGNORECASE)
SAID_MATCH = 0.5  # share of a question's other words a quotation (and its sentence) must hold to answer it
_QUOTED = re.compile(r"[\"“‘']([^\"”’']{3,}?)[\"”’']")
_LEAD = re.compile(r"^\s*(?:about|on|of|to|that|regarding|concerning|in)\b", re.IGNORECASE)


@dataclass(frozen=True)
class SpeechQuestion:
    """What a question about speech asks: whose words (None: it asks who), on what, and any words it quotes."""

    speaker: str | None
    topic: str
    quoted: str = ""

    @property
    def asks_who(self) -> bool:
        """Whether the question asks who said something."""
        return self.speaker is None


def read(question: str) -> SpeechQuestion | None:
    """The question as one about speech, or None when it is not one."""
    q = question.strip().rstrip("?").strip()
    m = _WHO.match(q)
    if m:
        rest = m.group("rest").strip()
        quoted = _QUOTED.search(rest)
        return SpeechQuestion(None, rest, quoted.group(1) if quoted else "")
    for pattern in (_WHAT_DID, _WORDS_ON):
        m = pattern.match(q)
        if m and _names_someone(m.group("who")):
            rest = _LEAD.sub("", m.group("rest")).strip()
            return SpeechQuestion(m.group("who").strip(), rest)
    return None


def _names_someone(phrase: str) -> bool:
    """Whether a phrase can be a speaker asked about (a name or a role, not "it" or "the report")."""
    words = phrase.split()
    if not words or len(words) > 6:
        return False
    if words[0].lower() in {"it", "this", "that", "they", "there", "you", "i", "we"}:
        return False
    return any(w[:1].isupper() for w in words) or words[0].lower() in {"the", "a", "an"}


def quote_match(asked: SpeechQuestion, quote: Quote, passage: str) -> float:
    """How well a quotation answers a speech question, 0 to 1: by the speaker asked about (when one is), then by
    the share of the question's other words in the quotation and the sentence around it (1.0 with no others)."""
    if asked.speaker is not None and not speaker_matches(asked.speaker, quote.speaker, quote.forms):
        return 0.0
    if asked.speaker is None and not quote.speaker:
        return 0.0
    said = passage[quote.start : quote.end]
    if asked.asks_who and not asked.quoted:  # "Who called the plan a disaster?": the words are in the quotation
        wanted = set(terms(asked.topic))
        return len(wanted & set(terms(said))) / len(wanted) if wanted else 0.0
    if asked.quoted:
        wanted = set(terms(asked.quoted))
        return len(wanted & set(terms(said))) / len(wanted) if wanted else 0.0
    wanted = set(terms(asked.topic))
    if not wanted:
        return 1.0
    return len(wanted & set(terms(around(passage, quote, after=80)))) / len(wanted)


def said_by(asked: SpeechQuestion, quote: Quote, passage: str) -> bool:
    """Whether a quotation is by the speaker asked about (any of them, for "who said" questions: those answering)."""
    if asked.speaker is None:
        return quote_match(asked, quote, passage) >= SAID_MATCH
    return speaker_matches(asked.speaker, quote.speaker, quote.forms)
