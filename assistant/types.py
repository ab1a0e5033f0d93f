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

    @property
    def sentence(self) -> str:
        """The sentence inside the passage that best answers the question."""
        if self.highlight is None:
            return ""
        return self.text[self.highlight[0] : self.highlight[1]]


@dataclass(frozen=True)
class Answer:
    """The reply to a question: the passages that answer it, or a plain 'nothing found'."""

    question: str
    found: bool
    passages: tuple[Hit, ...] = field(default_factory=tuple)
    message: str = ""
    query: str = ""  # what was searched: the question made standalone from the conversation; "" = the question
    index: str = ""  # the index generation that answered (every passage comes from this one)

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
    }


def answer_to_dict(answer: Answer) -> dict[str, Any]:
    """Serialise an answer to plain JSON-ready data."""
    return {
        "question": answer.question,
        "query": answer.query or answer.question,
        "found": answer.found,
        "message": answer.message,
        "passages": [hit_to_dict(h, i + 1) for i, h in enumerate(answer.passages)],
        "index": answer.index,
    }


def answer_from_dict(data: dict[str, Any]) -> Answer:
    """Rebuild an `Answer` from the JSON shape made by `answer_to_dict`."""
    hits = []
    for p in data.get("passages", []):
        hl = p.get("highlight")
        hits.append(
            Hit(
                passage_id=-1,
                text=p["text"],
                score=float(p["score"]),
                citations=tuple(Citation(**c) for c in p["citations"]),
                highlight=(int(hl[0]), int(hl[1])) if hl else None,
            )
        )
    return Answer(
        question=data["question"],
        found=bool(data["found"]),
        passages=tuple(hits),
        message=data.get("message", ""),
        query=data.get("query", ""),
        index=data.get("index", ""),
    )


class AssistantError(Exception):
    """An error meant for the user: one line saying what is wrong and how to fix it."""
