"""Reuters-21578 SGML: stories read by regex (the files are not well-formed XML) into title, text, source, date."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import date

from .clean import MAX_TITLE_CHARS

_REUTERS_STORY = re.compile(r"<REUTERS\b([^>]*)>(.*?)(?:</REUTERS>|(?=<REUTERS\b)|\Z)", re.S | re.I)
_NEWID = re.compile(r"\bNEWID\s*=\s*\"?(\d+)", re.I)
_SGML_TEXT = re.compile(r"<TEXT\b([^>]*)>(.*?)(?:</TEXT>|\Z)", re.S | re.I)
_TEXT_TYPE = re.compile(r"\bTYPE\s*=\s*\"?(\w+)", re.I)
_SGML_TAG = re.compile(r"<[^>]*>")
_CONTROL_REF = re.compile(r"&#(?:x([0-9a-f]+)|(\d+));", re.I)
_REUTERS_DATE = re.compile(r"(\d{1,2})-([A-Za-z]{3})-(\d{4})")
_MONTHS = {m: i for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), 1)}
# The wire's sign-off: a last line "Reuter" (also "REUTER...", "reuters"), or " REUTER" after a sentence;
# not "... told\nReuters." that ends a sentence.
_SIGN_OFF = re.compile(r"(?:^|(?<=[.!?\"')]))[ \t]*\breuters?(?:\.{2,})?\s*\Z", re.I | re.M)


def _sgml_element(inner: str, tag: str) -> str | None:
    """The raw content of the first <TAG>...</TAG> in a story, or None when it has none."""
    m = re.search(rf"<{tag}\b[^>]*>(.*?)</{tag}\s*>", inner, re.S | re.I)
    return m.group(1) if m else None


def _drop_control_ref(m: re.Match[str]) -> str:
    """A numeric character reference: removed for control characters (&#3;, &#127;), else kept."""
    n = int(m.group(1), 16) if m.group(1) else int(m.group(2))
    return "" if n < 32 or 127 <= n < 160 else m.group(0)


def _sgml_text(raw: str) -> str:
    """SGML content as plain text: tags and control references dropped, entities unescaped."""
    text = _CONTROL_REF.sub(_drop_control_ref, _SGML_TAG.sub("", raw))
    return re.sub(r"\^M$", "", html.unescape(text), flags=re.M)  # a literal "^M" marks a carriage return


def _unwrap(text: str) -> str:
    """Join a wire story's hard-wrapped lines; an indented or blank-line-led line starts a new paragraph."""
    paragraphs: list[list[str]] = []
    new = True
    for line in text.split("\n"):
        if not line.strip():
            new = True
            continue
        if new or line[0].isspace():
            paragraphs.append([])
        paragraphs[-1].append(line.strip())
        new = False
    return "\n".join(" ".join(p) for p in paragraphs)


def _reuters_date(raw: str) -> str:
    """A Reuters <DATE> such as "26-FEB-1987 15:01:01.79" as ISO "1987-02-26"; "" when unreadable."""
    m = _REUTERS_DATE.search(raw)
    month = _MONTHS.get(m.group(2).upper()) if m else None
    if not m or not month:
        return ""
    try:
        return date(int(m.group(3)), month, int(m.group(1))).isoformat()
    except ValueError:
        return ""


def _reuters_story(inner: str) -> dict[str, str]:
    """Title, text and date of one <REUTERS> story; BRIEF ones are title-only, UNPROC ones have no markup."""
    text_m = _SGML_TEXT.search(inner)
    kind = ""
    if text_m and (type_m := _TEXT_TYPE.search(text_m.group(1))):
        kind = type_m.group(1).upper()
    title_raw = _sgml_element(inner, "TITLE")
    title = _sgml_text(title_raw).strip() if title_raw is not None else ""
    if kind == "BRIEF":
        body = ""  # after the title comes only a "Blah blah blah." filler
    elif kind == "UNPROC" or (text_m and title_raw is None and _sgml_element(inner, "BODY") is None):
        body = _sgml_text(text_m.group(2)) if text_m else ""
        body = re.sub(r"^\s*\S*?\*{3,}", "", body)  # wire codes before a headline: "161125******S/P ..."
        if not title:
            first = body.strip().partition("\n")[0].strip()
            title = first if len(first) <= MAX_TITLE_CHARS else ""
    else:
        body = _sgml_text(_sgml_element(inner, "BODY") or "")
    body = _unwrap(_SIGN_OFF.sub("", body.rstrip()))
    date_raw = _sgml_element(inner, "DATE")
    return {
        "title": title,
        "text": body.strip() or title,
        "source": "Reuters",
        "published": _reuters_date(date_raw) if date_raw else "",
    }


def reuters_stories(text: str) -> Iterator[tuple[str, dict[str, str], bool]]:
    """Each <REUTERS> story of a file: its key (NEWID, else its position), its fields, and whether it had a <DATE>."""
    for n, m in enumerate(_REUTERS_STORY.finditer(text), 1):
        newid_m = _NEWID.search(m.group(1))
        key = newid_m.group(1) if newid_m else str(n)
        yield key, _reuters_story(m.group(2)), bool(re.search(r"<DATE\b", m.group(2), re.I))
