"""Highlighting: the sentence of a passage that best answers a question, and shared runs of words."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .analysis import sentence_words, stems_of, terms
from .chunking import sentence_spans
from .quotes import Quote, find_quotes, passage_quotes, quotes_from_json, quotes_json
from .types import Passage

_WORD = re.compile(r"\w+")
# Questions asking for an amount or a time, and those asking for a person, team or organisation.
_ASKS_NUMBER = re.compile(
    r"^\W*(how (much|many|long|far|high|big|old|often|large|fast)|(by|to|at) (how|what)|when|(in )?what year|"
    r"what (percentage|proportion|share|figure|level|sum|amount|price|margin|fee|bill|cost|number|size|rate|age))\b",
    re.IGNORECASE,
)
_ASKS_NAME = re.compile(r"^\W*(who|whom|whose|which)\b", re.IGNORECASE)
_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|"
    r"hundred|thousand|million|billion|half|double|twice)\b",
    re.IGNORECASE,
)
_NAME = re.compile(r"(?<!^)(?<![.!?] )\b[A-Z][a-z]+")
ANSWER_TYPE_WEIGHT = 0.5


def _answer_pattern(question: str) -> re.Pattern[str] | None:
    """What an answer to the question holds: a number (how much, when), a name (who, which), or None."""
    if _ASKS_NUMBER.search(question):
        return _NUMBER
    if _ASKS_NAME.search(question):
        return _NAME
    return None


def _holds_answer(pattern: re.Pattern[str] | None, asked: frozenset[str], sentence: str) -> bool:
    """Whether the sentence holds a number or name (as the question asks) that is not one of the question's words."""
    return pattern is not None and any(m.group(0).lower() not in asked for m in pattern.finditer(sentence))


@functools.lru_cache(maxsize=256)
def _read_question(question: str) -> tuple[frozenset[str], re.Pattern[str] | None, frozenset[str]]:
    """What best_sentence needs of a question, read once for all the passages of a search."""
    return frozenset(terms(question)), _answer_pattern(question), frozenset(w.lower() for w in _WORD.findall(question))


def asks_name(question: str) -> bool:
    """Whether a question asks for a person, team or organisation ("who", "which")."""
    return bool(_ASKS_NAME.search(question))


def holds_asked(question: str, sentence: str) -> bool:
    """Whether a question asks for a number, a date or a name and the sentence holds one that is not among the
    question's own words."""
    _, pattern, asked = _read_question(question)
    return _holds_answer(pattern, asked, sentence)


Sentences = list[tuple[int, int, list[str]]]  # each sentence's span in a passage, and its terms
# Of `analyse`'s output; an index with another is analysed again when next written (2: quotations added).
ANALYSIS_VERSION = 2


def analysed_otherwise(meta: Mapping[str, Any]) -> bool:
    """Whether an index (its manifest or meta) holds passages analysed by another version than this one's: a search
    then works the analysis out again, and the next write (even one changing no article) stores it anew."""
    return meta.get("analysis") != ANALYSIS_VERSION


def sentence_terms(text: str) -> Sentences:
    """The sentences of a text, each with its span and its terms (as `terms` reads them, each once)."""
    spans = sentence_spans(text)
    found = sentence_words(text, spans)
    stem = stems_of({w for ws in found for w in ws})
    return [(s, e, sorted({stem[w] for w in ws if w in stem})) for (s, e), ws in zip(spans, found, strict=True)]


def analyse(text: str, quotes: Sequence[Quote] = ()) -> str:
    """What a search reads of a passage, worked out once when it is indexed: its plain words on the first line,
    its quotations (spans in the passage, found over the whole article: see `quotes.passage_quotes`) as JSON on
    the second, then a line per sentence: its start, its end and its terms (see `stored_words`,
    `stored_quotes`, `stored_sentences`)."""
    lines = [" ".join(plain_words(text)), quotes_json(quotes)]
    lines += [" ".join([str(s), str(e), *found]) for s, e, found in sentence_terms(text)]
    return "\n".join(lines)


def analyse_article(text: str, passages: Iterable[tuple[str, int, int]]) -> list[str]:
    """`analyse` for each passage (its text, start and end in the article) of an article whose cleaned text is
    `text`, its quotations found over the whole article."""
    quotes = find_quotes(text)
    return [analyse(t, passage_quotes(quotes, start, end)) for t, start, end in passages]


def spans(passages: Iterable[Passage]) -> list[tuple[str, int, int]]:
    """Passages as `analyse_article` takes them."""
    return [(p.text, p.char_start, p.char_end) for p in passages]


def stored_words(analysis: str) -> list[str]:
    """A passage's plain words, read from its `analyse` output."""
    return analysis.partition("\n")[0].split()


def stored_quotes(analysis: str) -> list[Quote]:
    """A passage's quotations, read from its `analyse` output."""
    return quotes_from_json(analysis.split("\n", 2)[1])


def stored_sentences(analysis: str) -> Sentences:
    """A passage's sentences with their terms, read from its `analyse` output."""
    out = []
    for line in analysis.split("\n")[2:]:
        start, end, *found = line.split(" ")
        out.append((int(start), int(end), found))
    return out


def best_sentence(
    question: str, text: str, idf: Callable[[str], float], sentences: Sentences | None = None
) -> tuple[int, int] | None:
    """Span of the sentence in `text` that best answers the question (None if none shares a word with it).

    A sentence scores by the share of the question's weight (IDF) its words carry, plus ANSWER_TYPE_WEIGHT
    when it holds what the question asks for: a number for "how much"/"when", a name for "who"/"which".
    `sentences`: the text's `sentence_terms`, when they were worked out beforehand.
    """
    wanted, pattern, asked = _read_question(question)
    weight = {t: idf(t) for t in wanted}
    total = sum(weight[t] for t in wanted)
    if total <= 0:
        return None
    best, best_score = None, 0.0
    for start, end, found in sentence_terms(text) if sentences is None else sentences:
        present = wanted.intersection(found)
        if not present:
            continue
        share = sum(weight[t] for t in present) / total
        if share + ANSWER_TYPE_WEIGHT <= best_score + 1e-9:
            continue  # cannot win even with the bonus: the answer-type check is skipped
        bonus = ANSWER_TYPE_WEIGHT if _holds_answer(pattern, asked, text[start:end]) else 0.0
        score = share + bonus
        if score > best_score + 1e-9:
            best, best_score = (start, end), score
    return best


def plain_words(text: str) -> list[str]:
    """The lower-cased words of a text, without their spans (quick, for `shingles`)."""
    return _WORD.findall(text.lower())


def shingles(words: list[str], size: int) -> set[tuple[str, ...]]:
    """Every run of `size` consecutive words: texts sharing none share no such run."""
    return set(zip(*(words[i:] for i in range(size)), strict=False))


def long_blocks(a: list[str], b: list[str], n: int) -> list[tuple[int, int, int]]:
    """The matching blocks (i, j, size) of at least n items that difflib's SequenceMatcher (no junk) finds.

    difflib takes the longest match (earliest in a, then in b) and recurses on each side of it. A side whose
    longest match is shorter than n holds no block of n, so only runs of n-item windows shared by a and b need
    reading: the same blocks, without comparing every word with every other.
    """
    at: dict[tuple[str, ...], list[int]] = {}
    for j, window in enumerate(zip(*(b[x:] for x in range(n)), strict=False)):
        at.setdefault(window, []).append(j)
    pairs = {
        (i, j) for i, window in enumerate(zip(*(a[x:] for x in range(n)), strict=False)) for j in at.get(window, ())
    }
    runs = []  # maximal diagonal runs of shared windows, as matches (i, j, size)
    for i, j in pairs:
        if (i - 1, j - 1) not in pairs:
            size = 1
            while (i + size, j + size) in pairs:
                size += 1
            runs.append((i, j, size + n - 1))
    blocks = []
    todo = [(0, len(a), 0, len(b))]
    while todo:
        alo, ahi, blo, bhi = todo.pop()
        best = None  # (size, -i, -j): the longest, then the earliest in a, then in b
        for i, j, size in runs:
            skip = max(alo - i, blo - j, 0)
            size = min(size, ahi - i, bhi - j) - skip
            if size >= n and (best is None or (size, -(i + skip), -(j + skip)) > best):
                best = (size, -(i + skip), -(j + skip))
        if best is None:
            continue
        size, i, j = best[0], -best[1], -best[2]
        blocks.append((i, j, size))
        if alo < i and blo < j:
            todo.append((alo, i, blo, j))
        if i + size < ahi and j + size < bhi:
            todo.append((i + size, ahi, j + size, bhi))
    return sorted(blocks)


def _word_end(text: str) -> int:
    """Where the last word of a text ends (a word character is what `\\w` matches: alphanumeric or '_')."""
    end = len(text)
    while end and not (text[end - 1].isalnum() or text[end - 1] == "_"):
        end -= 1
    return end


def shared_runs(a: str, b: str, min_words: int) -> list[tuple[int, tuple[int, int], tuple[int, int]]]:
    """Runs of at least `min_words` identical words (case-insensitive) in two texts, with their spans: the
    matching blocks difflib finds between their word lists (see `long_blocks`)."""
    sa = [w.lower() for w in _WORD.findall(a)]
    sb = [w.lower() for w in _WORD.findall(b)]
    if sa == sb:  # the same words (a duplicated article): one run over all of them, as difflib would find
        if len(sa) < max(1, min_words):
            return []
        return [(len(sa), (_WORD.search(a).start(), _word_end(a)), (_WORD.search(b).start(), _word_end(b)))]
    blocks = long_blocks(sa, sb, max(1, min_words))
    if not blocks:
        return []
    pa = [m.span() for m in _WORD.finditer(a)]
    pb = [m.span() for m in _WORD.finditer(b)]
    return [(size, (pa[i][0], pa[i + size - 1][1]), (pb[j][0], pb[j + size - 1][1])) for i, j, size in blocks]


def overlaps(a: tuple[int, int] | None, b: tuple[int, int]) -> bool:
    """Whether two character spans intersect."""
    return a is not None and a[0] < b[1] and b[0] < a[1]
