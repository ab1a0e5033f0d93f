"""Core types: small frozen dataclasses shared by every part of the assistant."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Article:
    """One cleaned article, as read from a file or a JSONL record."""

    id: str
    title: str
    text: str
    path: str = ""
    source: str = ""
    url: str = ""
    published: str = ""

    @property
    def sha(self) -> str:
        """Content hash of what gets embedded: an unchanged hash means nothing to re-embed."""
        return hashlib.sha256(f"{self.title}\n{self.text}".encode()).hexdigest()


@dataclass(frozen=True)
class Passage:
    """A run of whole sentences of an article, with its exact span in the cleaned text."""

    article_id: str
    seq: int
    text: str
    char_start: int
    char_end: int
    n_tokens: int


@dataclass(frozen=True)
class Citation:
    """Where a passage comes from: the article and the character span inside its text."""

    article_id: str
    title: str
    source: str
    path: str
    char_start: int
    char_end: int
    published: str = ""  # the article's publication date, as given ("" when unknown)
    url: str = ""  # the article's web address, when its file gave one


@dataclass(frozen=True)
class Quote:
    """A quotation: the span of its words (without the marks) in the text, who said it and how."""

    start: int
    end: int
    speaker: str  # full name as the article first gives it, a description ("a woman from Omsk"), or "" unknown
    kind: str  # "direct" or "reported"
    forms: tuple[str, ...] = ()  # the other forms the article uses for the speaker ("Mr Smith")

    def text(self, source: str) -> str:
        """The quoted words, from the text the span refers to."""
        return source[self.start : self.end]


@dataclass(frozen=True)
class Hit:
    """A retrieved passage, its score, and every article it stands for."""

    passage_id: int
    text: str
    score: float
    citations: tuple[Citation, ...]
    highlight: tuple[int, int] | None = None
    dense: float = 0.0
    lexical: float = 0.0
    evidence: float = 0.0  # what the relevance floor compared: cosine plus the article's coverage of the question
    quotes: tuple[Quote, ...] = ()  # quotations in the passage (spans in `text`), with their speakers
    confidence: str = "strong"  # "strong": clears the relevance floor; "weak": close to it (see retrieval.search)

    @property
    def sentence(self) -> str:
        """The sentence inside the passage that best answers the question."""
        if self.highlight is None:
            return ""
        return self.text[self.highlight[0] : self.highlight[1]]


@dataclass(frozen=True)
class Direct:
    """A direct answer: a quotation with its speaker, or one sentence, taken word for word from a passage."""

    text: str
    speaker: str  # who said it ("" when the answer is a sentence, not a quotation)
    passage: int  # 1-based rank of the passage it comes from (and whose citation it carries)
    start: int  # its span in that passage's text
    end: int


@dataclass(frozen=True)
class Said:
    """A quotation found across the archive (`assistant quotes`): who said what, where, and where else."""

    speaker: str
    text: str
    kind: str  # "direct" or "reported"
    score: float  # relevance to what it was asked about (0 when nothing was)
    citation: Citation  # its span in the article's text
    also_in: tuple[Citation, ...] = ()  # the same words in other articles (another outlet's copy)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `assistant quotes --json`, the HTTP API and the MCP tool."""
        return {
            "speaker": self.speaker,
            "text": self.text,
            "kind": self.kind,
            "score": round(self.score, 4),
            "citation": asdict(self.citation),
            "also_in": [asdict(c) for c in self.also_in],
        }


@dataclass(frozen=True)
class Dated:
    """The publication period a question's dates were read as, and what searching within it did."""

    start: str  # first day, 'YYYY-MM-DD'; '' when open
    end: str  # last day; '' when open
    text: str  # "Understood as: published 1987-03-01 to 1987-03-31"
    words: str  # the question's words that said it ("in March 1987")
    notes: tuple[str, ...] = ()  # one line each: undated articles left out, a conflict with the filter given
    outside: bool = False  # nothing in the period answered: the passages are from outside it
    applied: bool = True  # False when the filter given does not overlap the period and was kept instead

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape under an answer's "period"."""
        return {
            "from": self.start,
            "to": self.end,
            "text": self.text,
            "words": self.words,
            "notes": list(self.notes),
            "outside": self.outside,
            "applied": self.applied,
        }


@dataclass(frozen=True)
class Answer:
    """The reply to a question: the passages that answer it, or a plain 'nothing found'."""

    question: str
    found: bool
    passages: tuple[Hit, ...] = field(default_factory=tuple)
    message: str = ""
    query: str = ""  # what was searched: the question made standalone from the conversation; "" = the question
    index: str = ""  # the index generation that answered (every passage comes from this one)
    confidence: str = "none"  # "strong", "weak" (shown under a warning that they may not answer) or "none"
    direct: Direct | None = None  # the answer above the passages, when one plainly answers
    period: Dated | None = None  # the publication period the question's dates were read as, if any
    timeline: tuple[tuple[str, int], ...] = ()  # matching articles per day, week or month: (label, count)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape shared by `ask --json`, the HTTP API and the MCP tool."""
        return answer_to_dict(self)


def hit_to_dict(hit: Hit, rank: int) -> dict[str, Any]:
    """Serialise one hit as it appears in the JSON output."""
    return {
        "rank": rank,
        "text": hit.text,
        "score": round(hit.score, 4),
        "highlight": list(hit.highlight) if hit.highlight else None,
        "citations": [asdict(c) for c in hit.citations],
        "quotes": [
            {"speaker": q.speaker, "text": hit.text[q.start : q.end], "start": q.start, "end": q.end, "kind": q.kind}
            for q in hit.quotes
        ],
    }


def hit_to_record(hit: Hit, rank: int) -> dict[str, Any]:
    """One hit as a flat record: its first citation's fields beside rank, score and passage id, then the text; the
    other articles it stands for under `also_in` (the rows of `assistant batch`, other tools' metadata)."""
    first, *others = hit.citations
    return {
        "rank": rank,
        **asdict(first),
        "score": round(hit.score, 4),
        "confidence": hit.confidence,
        "passage_id": hit.passage_id,
        "also_in": [c.article_id for c in others],
        "text": hit.text,
    }


def answer_to_dict(answer: Answer) -> dict[str, Any]:
    """Serialise an answer to plain JSON-ready data."""
    return {
        "question": answer.question,
        "query": answer.query or answer.question,
        "found": answer.found,
        "message": answer.message,
        "confidence": answer.confidence,
        "answer": _direct_to_dict(answer),
        "passages": [hit_to_dict(h, i + 1) for i, h in enumerate(answer.passages)],
        "index": answer.index,
        "period": answer.period.to_dict() if answer.period else None,
        "timeline": [{"period": label, "articles": n} for label, n in answer.timeline],
    }


def _direct_to_dict(answer: Answer) -> dict[str, Any] | None:
    d = answer.direct
    if d is None:
        return None
    cited = answer.passages[d.passage - 1].citations[0]
    return {
        "text": d.text,
        "speaker": d.speaker or None,
        "passage": d.passage,
        "start": d.start,
        "end": d.end,
        "citation": asdict(cited),
    }


def answer_from_dict(data: dict[str, Any]) -> Answer:
    """Rebuild an `Answer` from the JSON shape made by `answer_to_dict`."""
    hits = []
    for p in data.get("passages", []):
        hl = p.get("highlight")
        quotes = tuple(
            Quote(int(q["start"]), int(q["end"]), str(q["speaker"]), str(q.get("kind", "direct")))
            for q in p.get("quotes", [])
        )
        hits.append(
            Hit(
                passage_id=-1,
                text=p["text"],
                score=float(p["score"]),
                citations=tuple(Citation(**c) for c in p["citations"]),
                highlight=(int(hl[0]), int(hl[1])) if hl else None,
                quotes=quotes,
                confidence=data.get("confidence", "strong"),
            )
        )
    d = data.get("answer")
    direct = None
    if d:
        direct = Direct(str(d["text"]), str(d.get("speaker") or ""), int(d["passage"]), int(d["start"]), int(d["end"]))
    return Answer(
        question=data["question"],
        found=bool(data["found"]),
        passages=tuple(hits),
        message=data.get("message", ""),
        query=data.get("query", ""),
        index=data.get("index", ""),
        confidence=data.get("confidence", "strong" if data["found"] else "none"),
        direct=direct,
    )


class AssistantError(Exception):
    """An error meant for the user: one line saying what is wrong and how to fix it."""
