"""Measuring retrieval: Recall@1, Recall@5 and MRR@10 on questions with gold passages, and abstention."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .types import AssistantError, Hit

_QUOTES = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "\u00a0": " "})


def normalise(text: str) -> str:
    """Lower-case, straight quotes, single spaces: the form gold phrases are matched in."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    return re.sub(r"\s+", " ", text).strip()


@dataclass(frozen=True)
class Question:
    """A question and its gold (article id, phrase) pairs; no gold means it should find nothing."""

    question: str
    gold: tuple[tuple[str, str], ...]
    history: tuple[str, ...] = ()  # earlier questions of the conversation, oldest first
    split: str = ""  # "tune" or "held": the half of its set it was drawn into (once, at random), or ""


def load_questions(path: str | Path) -> list[Question]:
    """Read a JSONL question file, naming the line of any malformed entry."""
    out = []
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise AssistantError(f"cannot read {p}: {e.strerror or e}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            gold = tuple((str(a), str(ph)) for a, ph in obj.get("gold", []))
            history = obj.get("history", [])
            if not isinstance(history, list):
                raise TypeError
            split = str(obj.get("split", ""))
            out.append(Question(str(obj["question"]), gold, tuple(str(h) for h in history), split))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise AssistantError(
                f'{p} line {n}: expected {{"question": str, "gold": [[article, phrase], ...], "history": [str, ...]}}'
            ) from None
    return out


@dataclass
class EvalResult:
    """Scores over a question set."""

    positives: int = 0
    negatives: int = 0
    recall_at_1: float = 0.0
    recall_at_5: float = 0.0
    mrr_at_10: float = 0.0
    abstained: float = 0.0
    told_nothing: int = 0  # answerable questions given no passage at all
    strong_off_topic: int = 0  # off-topic questions answered with strong confidence
    best_sentence: float = 0.0  # share of answers found in the top 5 whose marked sentence holds the gold phrase
    repeated: int = 0  # answers whose top 5 shows the same passage text twice
    misses: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report, one metric a line."""
        out = [
            f"questions     {self.positives} answerable, {self.negatives} off-topic",
            f"Recall@1      {self.recall_at_1:.3f}",
            f"Recall@5      {self.recall_at_5:.3f}",
            f"MRR@10        {self.mrr_at_10:.3f}",
            f"sentence      {self.best_sentence:.3f} of answers in the top 5 mark a sentence holding the gold phrase",
            f"repeats       {self.repeated} answers show the same passage text twice in their top 5",
        ]
        out.append(f"told nothing  {self.told_nothing} of {self.positives} answerable questions")
        if self.negatives:
            out.append(f"nothing-found {self.abstained:.3f} of off-topic questions")
            out.append(f"strong        {self.strong_off_topic} of {self.negatives} off-topic questions answered strong")
        return out + [f"miss: {m}" for m in self.misses]


def first_relevant(hits: Sequence[Hit], gold: Sequence[tuple[str, str]], text_of: Callable[[str], str]) -> int:
    """1-based rank of the first hit citing a gold article at a span that holds its phrase (0 if none)."""
    for rank, hit in enumerate(hits, 1):
        for c in hit.citations:
            span = normalise(text_of(c.article_id)[c.char_start : c.char_end])
            if any(c.article_id == art and normalise(phrase) in span for art, phrase in gold):
                return rank
    return 0


def marks_gold(hit: Hit, gold: Sequence[tuple[str, str]]) -> bool:
    """Whether the sentence marked in a hit holds the gold phrase of an article the hit cites."""
    if hit.highlight is None:
        return False
    sentence = normalise(hit.text[hit.highlight[0] : hit.highlight[1]])
    cited = {c.article_id for c in hit.citations}
    return any(art in cited and normalise(phrase) in sentence for art, phrase in gold)


def evaluate(
    search: Callable[[Question], Sequence[Hit]],
    text_of: Callable[[str], str],
    questions: Sequence[Question],
    progress: bool = False,
) -> EvalResult:
    """Run every question through `search` (top 10 used) and score the ranks."""
    from tqdm import tqdm

    r = EvalResult()
    ranks = []
    found_nothing = marked = 0
    for q in tqdm(questions, desc="questions", unit="q", disable=not progress):
        hits = list(search(q))[:10]
        if not q.gold:
            r.negatives += 1
            found_nothing += not hits
            strong = bool(hits) and hits[0].confidence == "strong"
            r.strong_off_topic += strong
            if hits:
                r.misses.append(f"off-topic question found {'strong' if strong else 'weak'} passages: {q.question}")
            continue
        r.told_nothing += not hits
        rank = first_relevant(hits, q.gold, text_of)
        ranks.append(rank)
        shown = [normalise(h.text) for h in hits[:5]]
        r.repeated += len(set(shown)) < len(shown)
        marked += 0 < rank <= 5 and marks_gold(hits[rank - 1], q.gold)
        if not rank or rank > 5:
            r.misses.append(f"rank {rank or '>10'}: {q.question}")
    r.positives = len(ranks)
    if ranks:
        r.recall_at_1 = sum(1 for x in ranks if x == 1) / len(ranks)
        r.recall_at_5 = sum(1 for x in ranks if 0 < x <= 5) / len(ranks)
        r.mrr_at_10 = sum(1 / x for x in ranks if x) / len(ranks)
        in_top5 = sum(1 for x in ranks if 0 < x <= 5)
        r.best_sentence = marked / in_top5 if in_top5 else 0.0
    if r.negatives:
        r.abstained = found_nothing / r.negatives
    return r


def to_dict(result: EvalResult) -> dict[str, Any]:
    """Plain data for JSON output."""
    return dict(result.__dict__)
