"""Follow-up questions without an LLM: pronouns and ellipsis resolved from the earlier questions.

Rules, in order: "What about X?" / "And X?" asks the previous question of X; a short fragment ("And in
Dagestan?") is put into the previous question; he/she/they... become the name they most likely point at;
a question that still leans on the conversation ("Why not?", "Where was that filmed?") carries the previous
question's content words along. A question that stands alone is left as it is.
"""

from __future__ import annotations

import calendar
import datetime
import re
from collections.abc import Sequence

from .timeframe import read_period

_TOKEN = re.compile(r"[A-Za-z0-9][\w'’.-]*\w|[A-Za-z0-9]|\S")
_AUX = frozenset("did does do is are was were has have had will would can could should may might".split())
_WH = frozenset("what who whom whose which when where why how".split())
_OPENERS = _WH | _AUX | frozenset("and but so then also tell show give list".split())
_DETERMINERS = frozenset("the a an which what whose this that".split())
_SINGULAR = {"he": "", "him": "", "she": "", "her": "", "his": "'s", "hers": "'s", "himself": "", "herself": ""}
_PLURAL = {"they": "", "them": "", "their": "'s", "theirs": "'s", "themselves": ""}
_POINTERS = frozenset("it its that this these those there then".split()) | set(_SINGULAR) | set(_PLURAL)
_DEMONYM = ("ian", "ean", "ish", "ese")
_BARE_DATE = re.compile(  # a date with no preposition of its own: "June 1987", "26 February 1987"
    r"\d|(?:" + "|".join(m for m in (*calendar.month_name, *calendar.month_abbr) if m) + r")\b", re.IGNORECASE
)
_ANY_DAY = datetime.date(2000, 1, 1)  # which words are a date does not depend on the newest article, only their meaning
_PREPOSITIONS = frozenset("in at on for from about during after before with to by of among".split())
_PLACE_PREPOSITIONS = frozenset("in at from near inside across".split())
_ABOUT = re.compile(r"^(?:and|but|so)?\s*(?:what|how)\s+about\s+(?P<x>.+?)\s*\??$", re.IGNORECASE)
_LEADING_AND = re.compile(r"^(?:and|but|so)\s+(?=\w)", re.IGNORECASE)
_WORDS = re.compile(r"[\w'’-]+")
_STOP = frozenset(
    "a an the of to in on at for from by with about as and or but if is are was were be been being did does do "
    "has have had what who whom whose which when where why how that this these those it its there their they "
    "them he him his she her hers say said says tell told any some more most much many very just also into "
    "after before than then so not no yes".split()
)


def _entities(question: str) -> list[str]:
    """Names: runs of capitalised words, plus the noun they modify ('the Putin ally', 'Russian soldiers')."""
    out: list[str] = []
    run: list[str] = []
    before = ""
    tokens = [t.rstrip(".") for t in _TOKEN.findall(question)]
    for i, word in enumerate(tokens):
        if word[:1].isupper() and word != "I" and not (i == 0 and word.lower() in _OPENERS | _STOP):
            if not run:
                before = tokens[i - 1].lower() if i else ""
            run.append(word)
            continue
        if run:
            modifier = before in _DETERMINERS or (len(run) == 1 and run[0].endswith(_DEMONYM))
            if modifier and word[:1].islower() and word.lower() not in _STOP and word.isalpha():
                run.append(word)
            out.append(" ".join(run))
            run = []
    if run:
        out.append(" ".join(run))
    return out


def _is_plural(entity: str) -> bool:
    """'Russians', 'Russian soldiers', 'Western allies': a group rather than one person or place."""
    last = entity.split()[-1]
    return last.endswith("s") and not last.endswith("ss") and not last.isupper() and len(last) > 3


def _subject(question: str, plural: bool) -> str | None:
    """The name a pronoun most likely points at: the one right after 'did/is/...', else the first of its number.

    'he'/'she' skip names after 'in', 'at', 'from' ('in Dagestan' is a place) and bare adjectives ('Russian').
    """
    entities = _entities(question)
    if not plural:
        entities = [
            e
            for e in entities
            if _word_before(question, e) not in _PLACE_PREPOSITIONS and not (" " not in e and e.endswith(_DEMONYM))
        ]
    tokens = _TOKEN.findall(question)
    for i, tok in enumerate(tokens[:-1]):
        if tok.lower() in _AUX:
            after = next((e for e in entities if e.startswith(tokens[i + 1])), None)
            if after and _is_plural(after) == plural:
                return after
    same = [e for e in entities if _is_plural(e) == plural and not e.isupper()]
    return same[0] if same else None


def _content_words(question: str) -> list[str]:
    return [w for w in _WORDS.findall(question) if w.lower() not in _STOP and w.lower() not in _OPENERS]


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _resolve_pronouns(question: str, previous: str) -> tuple[str, bool, bool]:
    """he/she/they... replaced by the name they point at in `previous`; whether any was, and whether any
    word still points outside the question ('it', 'there', a pronoun with no name to take)."""
    own = _entities(question)
    parts = re.split(r"(\W+)", question)
    out, changed, dangling = [], False, False
    for i, tok in enumerate(parts):
        low = tok.lower()
        table = _SINGULAR if low in _SINGULAR else _PLURAL if low in _PLURAL else None
        said = "".join(parts[:i])
        if table is None or any(e in said and _is_plural(e) == (table is _PLURAL) for e in own):
            dangling = dangling or (table is None and low in _POINTERS)
            out.append(tok)  # not a pronoun, or one that points at a name in this very question
            continue
        target = _subject(previous, table is _PLURAL)
        if target is None:
            dangling = True
            out.append(tok)
            continue
        following = next((p for p in parts[i + 1 :] if p[:1].isalnum()), "")
        owner = table[low] or (low == "her" and following.isalpha() and following.lower() not in _STOP)
        out.append(target + (("'" if target.endswith("s") else "'s") if owner else ""))
        changed = True
    return "".join(out), changed, dangling


def _word_before(text: str, phrase: str) -> str:
    words = text[: text.find(phrase)].split()
    return words[-1].lower() if words else ""


def _swap_period(previous: str, fragment: str) -> str | None:
    """A fragment that is only a date ("in June 1987", "last week") put into the previous question in place of its
    own date, or added to it; None when the fragment is more than a date."""
    period, rest = read_period(fragment, _ANY_DAY)
    if period is None or _WORDS.findall(rest):
        return None
    old, _ = read_period(previous, _ANY_DAY)
    if old is None:
        return f"{previous.rstrip('?')} {period.words}?"
    new = period.words
    preposition = old.words.split()[0]
    if preposition.lower() in _PREPOSITIONS and _BARE_DATE.match(new):
        new = f"{preposition} {new}"  # "What about June 1987?" after "... in March 1987?": "in June 1987"
    return previous.replace(old.words, new, 1)


def _swap_in(previous: str, fragment: str) -> str:
    """A fragment put into the previous question in place of its counterpart, or added to it."""
    dated = _swap_period(previous, fragment)
    if dated is not None:
        return dated
    own = _entities(fragment)
    head = fragment.split()[0].lower()
    if own and head in _PREPOSITIONS:  # "in Dagestan": replaces the place after a preposition
        spots = [e for e in _entities(previous) if _word_before(previous, e) in _PREPOSITIONS]
        if spots:
            old = next((e for e in spots if _word_before(previous, e) == head), spots[0])
            at = previous.find(old)
            start = previous.rfind(" ", 0, at - 1) + 1
            return previous[:start] + fragment + previous[at + len(old) :]
    elif own or head in ("the", "a", "an"):  # "the German foreign minister": replaces the subject
        old = _subject(previous, _is_plural(fragment))
        if old:
            return previous.replace(old, fragment, 1)
    return f"{previous.rstrip('?')} {fragment}?"


def contextualize(question: str, history: Sequence[str]) -> str:
    """The question made standalone from the earlier ones (oldest first); unchanged when it already stands alone."""
    question = question.strip()
    if not history:
        return question
    previous = ""
    for earlier in history:  # each earlier question resolved against its own past, so chains work
        previous = contextualize(earlier, [previous] if previous else [])

    about = _ABOUT.match(question)
    if about:  # "What about Lavrov?": the previous question, asked of someone else
        return _swap_in(previous, about.group("x").strip())

    continued = bool(_LEADING_AND.match(question))  # "And ...", "But ...", "So ..."
    text, changed, dangling = _resolve_pronouns(_LEADING_AND.sub("", question), previous)
    words = _WORDS.findall(text)
    if not words:
        return question
    if changed and not dangling:
        return _capital(text)
    lowered = {w.lower() for w in words}
    first = words[0].lower()
    if len(words) <= 5 and not lowered & _OPENERS and (continued or first in _PREPOSITIONS):
        return _swap_in(previous, text.rstrip("?").strip())  # "And in Dagestan?", "And the Kremlin?"
    leaning = continued or len(words) <= 3 or first in _PREPOSITIONS
    if not (dangling or (leaning and not _entities(text))):
        return _capital(text) if continued else question  # stands alone
    # Still leaning on the conversation ("Why not?", "Where was that filmed?"): carry its content words along.
    carried = [w for w in _content_words(previous) if w.lower() not in text.lower()]
    text = _capital(text) if continued or changed else text
    return f"{text.rstrip('?')} ({' '.join(carried)})?" if carried else text
