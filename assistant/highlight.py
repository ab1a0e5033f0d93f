"""Highlighting: the sentence of a passage that best answers a question, and shared runs of words."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable

from .chunking import sentence_spans
from .lexical import terms

_WORD = re.compile(r"\w+")


def best_sentence(question: str, text: str, idf: Callable[[str], float]) -> tuple[int, int] | None:
    """Span of the sentence in `text` whose words carry most of the question's weight (None if none)."""
    wanted = set(terms(question))
    best, best_score = None, 0.0
    for start, end in sentence_spans(text):
        present = wanted & set(terms(text[start:end]))
        score = sum(idf(t) for t in present)
        if score > best_score + 1e-9:
            best, best_score = (start, end), score
    return best


def shared_runs(a: str, b: str, min_words: int) -> list[tuple[int, tuple[int, int], tuple[int, int]]]:
    """Runs of at least `min_words` identical words (case-insensitive) in two texts, with their spans."""
    wa = [(m.group(0).lower(), m.start(), m.end()) for m in _WORD.finditer(a)]
    wb = [(m.group(0).lower(), m.start(), m.end()) for m in _WORD.finditer(b)]
    sm = difflib.SequenceMatcher(None, [w for w, _, _ in wa], [w for w, _, _ in wb], autojunk=False)
    return [
        (m.size, (wa[m.a][1], wa[m.a + m.size - 1][2]), (wb[m.b][1], wb[m.b + m.size - 1][2]))
        for m in sm.get_matching_blocks()
        if m.size >= min_words
    ]


def word_count(text: str) -> int:
    """Number of words, as `shared_run` counts them."""
    return len(_WORD.findall(text))


def overlaps(a: tuple[int, int] | None, b: tuple[int, int]) -> bool:
    """Whether two character spans intersect."""
    return a is not None and a[0] < b[1] and b[0] < a[1]
