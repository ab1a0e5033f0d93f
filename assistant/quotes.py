"""Quotations in an article and who said them: direct speech in any quote marks and reported speech ("X said
that ..."), each with its speaker resolved over the article (see speakers.py) and its character span."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence

from .chunking import sentence_spans
from .speakers import NOT_NAMES, ROLES, TITLES, Cast, fold, learn, name_in
from .types import Quote

VERBS = (
    r"said|says|say|added|adds|told|tells|explained|explains|warned|warns|insisted|insists|argued|argues|claimed|"
    r"claims|stated|states|noted|notes|wrote|writes|tweeted|posted|asked|asks|replied|continued|declared|"
    r"announced|admitted|admits|suggested|suggests|stressed|urged|urges|commented|remarked|conceded|confirmed|"
    r"believes|predicted|predicts|maintained|maintains|acknowledged|recalled|joked|complained|cautioned|observed|"
    r"pointed out|went on|added that|was quoted as saying|is quoted as saying|reportedly said|revealed|reveals|"
    r"vowed|promised|accused|denied|alleged|boasted|conceded|concluded|countered|estimated|forecast|hit back|"
    r"described|called|branded|dismissed|dubbed|labelled|ruled|saying|adding|insisting|warning|arguing|"
    r"claiming|noting|explaining"
)
_VERB = re.compile(rf"(?<![\w-])(?:{VERBS})\b(?!\s+by\b)")  # not "so-called", not "announced by" (a passive)
# Words allowed between a speaker and the speech verb ("Zelensky also told", "Lavrov later said").
_BETWEEN = (
    r"(?:\s+(?:also|later|then|today|yesterday|previously|earlier|has|had|have|was|is|would|will|once|again|"
    r"recently|separately|further|repeatedly|simply|privately|publicly|[a-z]+ly)\b)*"
)
_NAMED = r"[A-Z][\w'’.\-]*(?:\s+(?:de |van |von |da |al |bin |der |la |le |du )?[A-Z][\w'’.\-]*)*"
_SPEAKER = r"((?:[\w'’.\-]+\s+){0,7}?[\w'’.\-]+)"
_AFTER = re.compile(
    rf"^[\s,]*(?:(?:{VERBS}|according to)\s+({_NAMED}|(?:the|a|an|one)\s+[a-z]+(?:\s+[a-z]+)?)|"
    rf"{_SPEAKER}{_BETWEEN}\s+(?:{VERBS})\b)"
)
_ACCORDING = re.compile(r"according to\s+([^,]{2,60}),\s*$", re.IGNORECASE)
_BOUNDARY = re.compile(r"[,;:()—–]|\s-\s|\b(?:and|but|who|which|that|as|while|when|after|before|because)\b")
_TAIL_ADVERBS = re.compile(_BETWEEN + r"\s*$")
_TRAILING = re.compile(
    rf",\s+{_SPEAKER}{_BETWEEN}\s+(?:said|says|added|warned|claimed|insisted|argued|noted|believes|"
    rf"told [\w\s]{{2,30}}?|stated|explained|admitted|suggested|confirmed|reported)(?:\s+[\w,]+){{0,6}}?\s*[.!]?\s*$"
)
GROUPS = {
    "analysts", "officials", "experts", "critics", "economists", "observers", "police", "sources", "campaigners",
    "residents", "witnesses", "doctors", "scientists", "researchers", "investors", "traders", "dealers", "ministers",
    "mps", "lawyers", "officers", "diplomats", "reports", "insiders", "aides", "activists", "organisers", "organizers",
    "prosecutors", "commentators", "executives", "bosses", "fans", "locals", "unions", "leaders", "authorities",
}  # fmt: skip
_SOURCE_TAIL = re.compile(r"\s+(?:figures|data|statistics|estimates|reports?|statements?|survey|research)$")
MAX_SENTENCE = 1500  # characters: a longer "sentence" is not prose, and is not read for reported speech
NEAR = 200  # characters either side of a speech verb that its speaker is looked for in
MIN_WORDS = 4  # a shorter quotation counts only with a speaker beside it ("'noise', he said")
_OPEN = {"“": "”", "‘": "’", '"': '"', "'": "'", "«": "»", "„": "“"}
_END_ALLOWED = set(" \t\n,.;:!?)]—–-…")


def _closing(text: str, at: int, opener: str, stop: int) -> int:
    """Where the quotation opened at `at` closes (the index of its closing mark), or -1 when it runs on."""
    closer = _OPEN[opener]
    i = at + 1
    candidates = []
    while True:
        j = (
            text.find(closer, i, stop)
            if closer == opener
            else _find_any(text, (closer, '"') if opener == "“" else (closer,), i, stop)
        )
        if j < 0:
            break
        before, after = text[j - 1] if j else " ", text[j + 1] if j + 1 < len(text) else " "
        apostrophe = opener in "‘'" and before.isalnum() and after.isalnum()
        if not apostrophe and not before.isspace():
            if after in _END_ALLOWED or after.isspace() or j + 1 >= len(text):
                candidates.append(j)
                strong = after in ",.;:!?…" or j + 1 >= stop or not (before in "sS" and opener in "‘'")
                if strong:
                    return j
        i = j + 1
    return candidates[0] if candidates else -1


def _find_any(text: str, marks: tuple[str, ...], start: int, stop: int) -> int:
    """Where the first of the marks stands in text[start:stop] (-1: none)."""
    found = [j for j in (text.find(m, start, stop) for m in marks) if j >= 0]
    return min(found) if found else -1


def _opens(text: str, i: int) -> bool:
    """Whether the mark at i opens a quotation (not an apostrophe, not a closing mark)."""
    c = text[i]
    if c in "“«„":
        return True
    before = text[i - 1] if i else " "
    after = text[i + 1] if i + 1 < len(text) else " "
    if after.isspace() or not (before.isspace() or before in "([—–-:/…" or i == 0):
        return False
    return c in '"‘' or (c == "'" and (after.isalnum() or after in '‘“"'))


def direct_spans(text: str) -> list[tuple[int, int, int, int]]:
    """Direct quotations: (start, end) of the quoted words and (open, close) of the marks around them; one that
    runs to the end of its paragraph without a closing mark (a quotation going on next paragraph) ends there."""
    out = []
    for pm in re.finditer(r"[^\n]+", text):
        ps, pe = pm.start(), pm.end()
        i = ps
        while i < pe:
            c = text[i]
            if c in _OPEN and _opens(text, i):
                j = _closing(text, i, c, pe)
                end = j if j >= 0 else pe
                s, e = i + 1, end
                while e > s and text[e - 1] in " \t,":
                    e -= 1
                if e > s and text[s:e].strip():
                    out.append((s, e, i, j + 1 if j >= 0 else pe))
                i = (j + 1) if j >= 0 else pe
                continue
            i += 1
    return out


def _goes_on(between: str) -> bool:
    """Whether a quotation continues the last one, by what stands between them: nothing but marks, the rest of
    the last one's attribution ("..., said Mr Moran. 'Payroll ...'") or its paragraph's end."""
    if not between.strip(" \t\n'’”\".,"):
        return True
    if "\n" in between:
        return not between[between.index("\n") :].strip()
    return len(between) < 100 and _VERB.search(between) is not None and between.count(".") <= 1


def _words(text: str) -> int:
    """How many words a text has."""
    return len(re.findall(r"\w+", text))


def find_quotes(text: str) -> list[Quote]:
    """Every quotation in an article's text with its speaker, in order of position."""
    cast = Cast()
    sentences = sentence_spans(text)
    directs = direct_spans(text)
    quotes: list[Quote] = []
    last_speaker, last_end = "", -1  # the speaker of the last quotation and where its marks closed
    di = 0
    for ss, se in sentences:
        learn(cast, text[ss:se])
        inside = []
        while di < len(directs) and directs[di][2] < se:
            inside.append(directs[di])
            di += 1
        long_inside = [d for d in inside if _words(text[d[0] : d[1]]) >= MIN_WORDS]
        parts = _reported(text, ss, se, cast)
        if long_inside and not (parts and parts[0].start < long_inside[0][2] <= long_inside[-1][3] - 1 <= parts[0].end):
            parts = ()  # a long quotation stands alone, unless reported speech quotes it: 'X said it struck "a ..."'
        if parts:
            for reported in parts:
                quotes.append(reported)
                for d in inside:  # quoted words inside the reported clause are the same speaker's
                    if reported.start <= d[0] and d[1] <= reported.end:
                        quotes.append(Quote(d[0], d[1], reported.speaker, "direct"))
            reported = parts[-1]
            last_speaker, last_end = reported.speaker, reported.end
            continue
        sentence_speaker = ""
        for s, e, o, c in inside:
            after = text[c : min(len(text), c + 120)].split("\n")[0]
            line_start = text.rfind("\n", max(0, o - NEAR), o) + 1 or max(0, o - NEAR)
            before = text[max(line_start, ss, o - 160) : o]
            last = text[s:c].rstrip("'\"’”» ").strip()[-1:]
            nxt = after.lstrip()[:1]
            # "...," he said / "...!" she shouted / "..." - said Smith: the words after name the speaker; after a
            # full stop a capital opens the next sentence ("... player." Coria conceded ...), not an attribution
            ended = last in {",", "-", "—", "–"} or nxt == "," or (last in {".", "!", "?", "…"} and nxt.islower())
            phrase = _attribution(after, before, text[ss : min(o, ss + NEAR)], ended)
            if phrase is not None:
                speaker = cast.resolve(phrase)
            elif sentence_speaker:
                speaker = sentence_speaker
            elif last_end >= 0 and _goes_on(text[last_end:o]):
                speaker = last_speaker  # a quotation going on from the one before (the next paragraph, say)
            else:
                speaker = ""
            if _words(text[s:e]) < MIN_WORDS and phrase is None:
                continue  # scare quotes, a title, a nickname
            sentence_speaker = speaker or sentence_speaker
            quotes.append(Quote(s, e, speaker, "direct"))
            if speaker:
                last_speaker, last_end = speaker, c
        subject = cast.person(_lead(text[ss : min(se, ss + NEAR)]))
        if subject:
            cast.last = subject  # "he" in a later sentence most often stands for this one's subject
    return [Quote(q.start, q.end, q.speaker, q.kind, tuple(cast.forms_of(q.speaker))) for q in quotes]


def _attribution(after: str, before: str, sentence_head: str, ended: bool) -> str | None:
    """The speaker phrase beside a direct quotation: after it ("..., Mr Smith said") or before it ("Smith
    added: ...", "Zelensky ... told Kremlin troops to '...'"), else None."""
    m = _AFTER.match(after) if ended else None
    if m:
        phrase = m.group(1) or m.group(2)
        if _plausible(phrase) and _subject_like(phrase):
            return phrase
    m = _ACCORDING.search(before)
    if m:
        return m.group(1)
    verbs = [v for v in _VERB.finditer(before) if len(before) - v.end() <= 80]
    for v in reversed(verbs):
        if re.search(r"['\"“‘”’]\s", before[v.end() :]):
            continue  # another quotation stands between this verb and ours
        return _subject(before[: v.start()], sentence_head)
    return None


def _subject(prefix: str, sentence_head: str) -> str | None:
    """Who a speech verb's subject is, from the text before the verb (its own clause), else the sentence's
    leading name ("Mr Heappey, who noted ..., told MPs" -> "Mr Heappey")."""
    prefix, sentence_head = prefix[-NEAR:], sentence_head[:NEAR]  # a speaker stands near; garbage stays cheap
    cut = 0
    for b in _BOUNDARY.finditer(prefix):
        cut = b.end()
    seg = _TAIL_ADVERBS.sub("", prefix[cut:]).strip()
    if seg and _plausible(seg) and _subject_like(seg):
        return seg
    if seg:
        return None  # a clause of its own ("the move showed"): not a speaker
    lead = _lead(sentence_head)
    return lead or None


def _lead(text: str) -> str:
    """The name (with its titles) a sentence opens with: "German foreign minister Annalena Baerbock praised"
    -> "German foreign minister Annalena Baerbock"; "" when it opens otherwise."""
    for seg in _BOUNDARY.split(text):
        words = seg.split()
        if not words:
            continue
        taken = []
        for w in words:
            if w[:1].isupper() or fold(w) in TITLES | ROLES:
                taken.append(w)
            else:
                break
        named = [w for w in taken if w[:1].isupper() and fold(w) not in NOT_NAMES]
        if named and fold(words[0]) not in NOT_NAMES - {"the"}:
            return " ".join(taken)
        if fold(words[0]) in {"he", "she"}:
            return words[0]  # the person last named
    return ""


def _plausible(phrase: str) -> bool:
    """Whether a phrase could be who spoke: a name, a pronoun or a description, not a clause."""
    words = fold(phrase).split()
    if not words or len(words) > 8:
        return False
    if words[0] in {"it", "this", "that", "which", "there", "what", "who"}:
        return False
    return not any(w in {"and", "but", "because", "if", "when", "while"} for w in words[1:])


_CLAUSE_VERBS = re.compile(
    r"\b(?:said|says|added|warned|claimed|insisted|argued|believes|believed|predicted|stressed|noted|"
    r"admitted|suggested|explained|confirmed|announced|stated|maintained)\b(?!\s+by\b)"
)


_MIDDLE = re.compile(  # "The economy had grown, he said, and was forecast to ...": words reported either side
    rf",\s+{_SPEAKER}{_BETWEEN}\s+(?:said|says|added|insisted|argued|warned|claimed|believes|noted|stressed),\s+"
)
_TOLD = re.compile(  # "told MPs he had ...", "told the BBC the plan was ...": whom, then the clause
    r"\s+(?:(?:the|a|an|his|her|their)\s+)?(?:[\w'’-]+\s+){0,2}?(?:MPs|reporters|journalists|delegates|[A-Z][\w'’-]*|"
    r"BBC|parliament|the\s+\w+)\b(?=\s+(?:he|she|they|it|the|there|this|that|his|her|their|its|we|i|[a-z]+s)\b)"
)
_CLAUSE_START = re.compile(  # what may follow "said" as the start of the words reported (not "said in a statement")
    r"\s+(?!(?:in|on|at|to|during|after|before|of|with|by|for|from|as|when|while|yesterday|today|last|on)\b)[\w£$€'‘“\"]"
)


def _reported(text: str, ss: int, se: int, cast: Cast) -> tuple[Quote, ...]:
    """Reported speech in a sentence: "X said (that) ...", "X told Y that ...", "..., X said", or "...,
    X said, ..." (two parts): the reported words as quotations (none: empty)."""
    sentence = text[ss:se]
    if len(sentence) > MAX_SENTENCE:
        return ()  # not prose (a table, a list run together): no reported speech is looked for
    according = re.match(r"according to\s+([^,]{2,60}),\s+", sentence, re.IGNORECASE)
    if according:
        e = se
        while e > ss + according.end() and text[e - 1] in ".!? ":
            e -= 1
        if _words(text[ss + according.end() : e]) >= MIN_WORDS:
            who = _SOURCE_TAIL.sub("", according.group(1).strip())
            return (Quote(ss + according.end(), e, cast.resolve(who), "reported"),)
    for v in _VERB.finditer(sentence):
        rest = sentence[v.end() :]
        that = re.match(r"(?:\s+[\w'’,-]+){0,7}?\s+that\b|\s*:", rest)
        if that is None:
            that = _TOLD.match(rest) if v.group(0) in {"told", "tells"} else None
        if that is None and not (_CLAUSE_VERBS.fullmatch(v.group(0)) and _CLAUSE_START.match(rest)):
            continue
        subject = _subject(sentence[: v.start()], sentence)
        if subject is None:
            continue
        s = ss + v.end() + (that.end() if that else 0)
        e = se
        while e > s and text[e - 1] in ".!? ":
            e -= 1
        while s < e and text[s].isspace():
            s += 1
        if _words(text[s:e]) >= MIN_WORDS:
            return (Quote(s, e, cast.resolve(subject), "reported"),)
        break
    m = _MIDDLE.search(sentence)
    if m and _plausible(m.group(1)) and _subject_like(m.group(1)) and _words(sentence[: m.start()]) >= MIN_WORDS:
        speaker = cast.resolve(m.group(1))
        e = se
        while e > ss + m.end() and text[e - 1] in ".!? ":
            e -= 1
        second = [Quote(ss + m.end(), e, speaker, "reported")] if _words(text[ss + m.end() : e]) >= MIN_WORDS else []
        return Quote(ss, ss + m.start(), speaker, "reported"), *second
    m = _TRAILING.search(sentence)
    if m and _plausible(m.group(1)) and _subject_like(m.group(1)):
        s, e = ss, ss + m.start()
        if _words(text[s:e]) >= MIN_WORDS:
            return (Quote(s, e, cast.resolve(m.group(1)), "reported"),)
    return ()


def _subject_like(phrase: str) -> bool:
    """Whether a phrase reads as who speaks: a capitalised name, a pronoun, or a noun phrase with a determiner."""
    words = phrase.split()
    first = fold(words[0])
    if first in {"he", "she", "they", "we", "i"}:
        return len(words) == 1
    if words[0][:1].isupper() or name_in(phrase) is not None:
        return True  # "Lavrov", "union leader Ann Lee"
    if len(words) <= 3 and fold(words[-1]) in GROUPS:
        return True  # "analysts", "Ukrainian officials", "some economists"
    return first in {"the", "a", "an", "one", "another", "some", "many", "several", "its", "his", "her", "their"}


def around(text: str, quote: Quote, after: int = 0) -> str:
    """A quotation with the sentence it stands in (from that sentence's start, or the line's) and `after`
    characters past its end: where its speaker and what it is about are said."""
    start = max(text.rfind(". ", 0, quote.start), text.rfind("\n", 0, quote.start), 0)
    return text[start : min(len(text), quote.end + after)]


def speaker_matches(wanted: str, speaker: str, forms: tuple[str, ...] | list[str] = ()) -> bool:
    """Whether a name asked for ("Zelensky", "Mr Smith", "John Smith") is this speaker (or one of its forms)."""
    want = [w for w in fold(wanted).split() if w not in {"mr", "mrs", "ms", "dr", "sir"}]
    if not want or not speaker:
        return False
    for name in (speaker, *forms):
        have = fold(name).split()
        if all(w in have for w in want):
            return True
    return False


@functools.lru_cache(maxsize=512)
def article_quotes(text: str) -> tuple[Quote, ...]:
    """`find_quotes` of an article, remembered for the articles met lately (an index analysed before quotations
    were stored works them out at search time)."""
    return tuple(find_quotes(text))


def passage_quotes(quotes: Sequence[Quote], start: int, end: int) -> list[Quote]:
    """The quotations of an article that fall in a passage (its span `start`-`end` in the article), with spans
    made relative to the passage and cut to it."""
    out = []
    for q in quotes:
        s, e = max(q.start, start), min(q.end, end)
        if s < e:
            out.append(Quote(s - start, e - start, q.speaker, q.kind, q.forms))
    return out


def quotes_json(quotes: Sequence[Quote]) -> str:
    """Quotations as one line of JSON (as stored with a passage)."""
    return json.dumps([[q.start, q.end, q.speaker, q.kind, list(q.forms)] for q in quotes], ensure_ascii=False)


def quotes_from_json(line: str) -> list[Quote]:
    """Quotations back from `quotes_json`."""
    return [Quote(int(s), int(e), str(sp), str(k), tuple(f)) for s, e, sp, k, f in json.loads(line)]
