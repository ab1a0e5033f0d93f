"""Text repair and clean-up: mojibake, whitespace, and page furniture such as comments and link lists."""

from __future__ import annotations

import re
import unicodedata

import ftfy

# UTF-8 read as a Mac code page (the seeds carry "‚ÄĒ" for "—"): runs of non-ASCII characters,
# re-encoded with the code page and decoded as UTF-8 by Python's own codecs.
_MAC_CODECS = ("mac_latin2", "mac_roman")
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]{2,}")


def _plausible(text: str) -> bool:
    """Punctuation, spaces, currency and Latin letters: what a repaired news run should hold."""
    for ch in text:
        cat = unicodedata.category(ch)
        if ch.isascii() or cat[0] in "PZ" or cat == "Sc" or (cat[0] == "L" and "LATIN" in unicodedata.name(ch, "")):
            continue
        return False
    return True


def _redecode(run: str) -> str | None:
    for codec in _MAC_CODECS:
        try:
            fixed = run.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if len(fixed) < len(run) and _plausible(fixed):
            return fixed
    return None


def _undo_latin_pass(run: str) -> str:
    """Undo a second, cp1252 mis-decoding that merged two mojibake characters into one ('Ä¶' -> 'Ķ')."""
    out = []
    for ch in run:
        try:
            raw = ch.encode("utf-8")
            out.append(raw.decode("cp1252") if len(raw) == 2 else ch)
        except UnicodeDecodeError:
            out.append(ch)
    return "".join(out)


def _fix_mac_run(match: re.Match[str]) -> str:
    run = match.group(0)
    fixed = _redecode(run)
    if fixed is None:
        fixed = _redecode(_undo_latin_pass(run))
    return run if fixed is None else fixed


def repair_text(text: str) -> str:
    """Repair mojibake (Mac and Windows code pages) and odd characters, keeping real punctuation."""
    text = _NON_ASCII_RUN.sub(_fix_mac_run, text)
    text = ftfy.fix_text(text, uncurl_quotes=False, fix_character_width=False, normalization="NFC")
    return unicodedata.normalize("NFC", text)


# Page furniture, line by line.
_DROP_LINE = re.compile(
    r"""^(?:
        read\ (?:also|more)\b.*                           # "Read also:" link lists
      | related\ (?:article|articles|stories|content)\b.* # "Related Article: ..."
      | view\ all
      | more\ coverage\ on\b.*
      | (?:twitter|instagram|facebook|youtube|tiktok)?\s*/?\s*@[\w.]+  # "@YouTube", "Twitter / @handle"
      | \(photo\s*:.*\)                                   # "(Photo : NAME)"
      | (?:share|tweet|email|print|comments?)(?:\ (?:this|on|article|story))*
      | share\ or\ comment\ on\ this\ article.*
      | advertisement
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
# A comment section: everything from its header to the end of the article.
_COMMENTS_START = re.compile(
    r"^(?:the comments below have (?:not )?been moderated|we are no longer accepting comments"
    r"|comments? \(\d+\)|\d+ comments?|leave a comment|join the (?:discussion|conversation)"
    r"|add your comment)\b",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^\s*(?:[•·▪●◦‣*-]|\d+[.)])\s+")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_INVISIBLE = re.compile(r"[\u200b-\u200d\ufeff\u00ad]")


def _trailing_numbered_comments(lines: list[str], raw_indented: list[bool]) -> int:
    """Index where a trailing block of indented, numbered reader comments starts (len(lines) if none)."""
    end = len(lines)
    start = end
    while start > 0 and (not lines[start - 1] or (raw_indented[start - 1] and re.match(r"^\d+\.\s", lines[start - 1]))):
        start -= 1
    block = [x for x in lines[start:end] if x]
    if len(block) >= 1 and all(re.match(r"^\d+\.\s", x) for x in block) and block[0].startswith("1."):
        return start
    return end


def clean_text(text: str) -> str:
    """Repair the text, normalise whitespace and drop page furniture; paragraphs stay apart."""
    text = repair_text(text).replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    raw_lines = text.split("\n")
    indented = [bool(re.match(r"^[ \t\u00a0]+\d+\.\s", x)) for x in raw_lines]
    lines = [_SPACES.sub(" ", x).strip() for x in raw_lines]
    for i, line in enumerate(lines):
        if _COMMENTS_START.match(line):
            lines, indented = lines[:i], indented[:i]
            break
    cut = _trailing_numbered_comments(lines, indented)
    lines = lines[:cut]
    kept: list[str] = []
    in_link_list = False
    for line in lines:
        if not line:
            kept.append("")
            continue
        if _DROP_LINE.match(line):
            in_link_list = line.lower().startswith(("read also", "read more", "related"))
            continue
        if in_link_list and _BULLET.match(line):
            continue
        in_link_list = False
        kept.append(line)
    # Trailing "View all"-style leftovers and blank runs collapse to single paragraph breaks.
    out = "\n".join(kept)
    out = re.sub(r"\n{3,}", "\n\n", out)
    return out.strip()


MAX_TITLE_CHARS = 200  # a longer first line is body text, not a title


def first_words(text: str, n: int = 12) -> str:
    """The first n words of a text, with an ellipsis when cut, for titles made from body text."""
    words = text.split()
    return " ".join(words[:n]) + ("…" if len(words) > n else "")
