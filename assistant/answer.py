"""Turning hits into a reply: passages in order, the best sentence marked, numbered citations."""

from __future__ import annotations

from collections.abc import Sequence

from .direct import direct_answer
from .types import Answer, Citation, Hit

NOTHING_FOUND = "Nothing in the indexed articles answers this question."
MAY_NOT_ANSWER = "These passages may not answer the question: none matches it closely."
NOTHING_TO_SEARCH = (
    "Nothing to search for: the question has no words that say what it is about (only words such as "
    "'what', 'did', 'the', or punctuation and symbols). Ask about someone or something, e.g. "
    "'What did Zelensky say to Russians?'"
)


def build_answer(
    question: str, hits: Sequence[Hit], query: str = "", index: str = "", searchable: bool = True
) -> Answer:
    """An answer from ranked hits; no hits means a plain 'nothing found'. `query` is what was searched,
    `index` the generation searched, `searchable` whether the query had any words to search for."""
    query = "" if query == question else query
    if not hits:
        message = NOTHING_FOUND if searchable else NOTHING_TO_SEARCH
        return Answer(question=question, found=False, passages=(), message=message, query=query, index=index)
    confidence = hits[0].confidence
    return Answer(
        question=question,
        found=True,
        passages=tuple(hits),
        message=MAY_NOT_ANSWER if confidence == "weak" else "",
        query=query,
        index=index,
        confidence=confidence,
        direct=direct_answer(query or question, hits),
    )


def cite(c: Citation) -> str:
    """One citation as text: title, source, file (and the article's id where the file holds many) and span."""
    source = f", {c.source}" if c.source else ""
    source += f", {c.published}" if c.published else ""
    where = c.path or c.article_id
    if c.path and not c.path.replace("\\", "/").endswith(c.article_id):  # a JSONL line, an SGML story, a record id
        where = f"{c.path}, article {c.article_id}"
    return f"{c.title}{source} ({where}, chars {c.char_start}-{c.char_end})"


def split_highlight(hit: Hit) -> tuple[str, str, str]:
    """A passage as (before, best sentence, after); the middle is empty when nothing is marked."""
    if not hit.highlight:
        return hit.text, "", ""
    s, e = hit.highlight
    return hit.text[:s], hit.text[s:e], hit.text[e:]


def period_lines(answer: Answer) -> list[str]:
    """The lines that say which publication period a question's dates were read as, and what that did."""
    if answer.period is None:
        return []
    return [answer.period.text, *answer.period.notes]


def render_text(answer: Answer, mark: tuple[str, str] = ("**", "**")) -> str:
    """The answer as plain text for a terminal, the best sentence of each passage between marks."""
    understood = f"(understood as: {answer.query})\n\n" if answer.query else ""
    understood += "".join(f"{line}\n" for line in period_lines(answer)) + ("\n" if answer.period else "")
    if not answer.found:
        return understood + answer.message
    blocks = [understood.strip()] if understood else []
    if answer.message:
        blocks.append(answer.message)
    if answer.direct is not None:
        d = answer.direct
        blocks.append(f"Answer: {d.text}\n    — [{d.passage}] {cite(answer.passages[d.passage - 1].citations[0])}")
    for n, hit in enumerate(answer.passages, 1):
        before, sentence, after = split_highlight(hit)
        text = f"{before}{mark[0]}{sentence}{mark[1]}{after}" if sentence else before
        lines = [f"[{n}] {text}", f"    — {cite(hit.citations[0])}  score {hit.score:.2f}"]
        lines += [f"    — quote: {q.speaker}: “{_clip(hit.text[q.start : q.end])}”" for q in hit.quotes if q.speaker]
        lines += [f"    — also in: {cite(c)}" for c in hit.citations[1:]]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _clip(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"
