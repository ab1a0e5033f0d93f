"""Decoding a file's bytes: UTF-8, UTF-16 with or without a byte-order mark, a guessed code page, Windows-1252."""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections import Counter

# A file that is not UTF-8: its code page is guessed from this many bytes, from the first line with a non-ASCII byte.
SNIFF_BYTES = 64 * 1024
MIN_SNIFF_LETTERS = 8  # fewer non-ASCII letters than this are too few to tell a code page by: Windows-1252
SNIFF_ROUNDS = 3  # how many times the detector is asked again, without the readings already found implausible
_CJK_SCRIPTS = {"CJK", "HIRAGANA", "KATAKANA", "HANGUL"}  # one script here: Japanese mixes three of them
SURROGATE = re.compile(r"[\ud800-\udfff]")  # JSON can carry "\ud800" alone; no UTF-8 text can hold it


class SkipFile(Exception):
    """Raised inside a reader: this file (or record) cannot be used, for the given reason."""


def _utf16_without_bom(head: bytes) -> str | None:
    """'utf-16-le' or 'utf-16-be' when NUL bytes sit at nearly every odd (or even) position, as in text."""
    pairs = len(head) // 2
    if pairs < 8:
        return None
    even, odd = head[0::2], head[1::2]
    if odd.count(0) >= 0.9 * pairs and even.count(0) == 0:
        return "utf-16-le"
    if even.count(0) >= 0.9 * pairs and odd.count(0) == 0:
        return "utf-16-be"
    return None


def _sniff_sample(raw: bytes) -> bytes:
    """Up to SNIFF_BYTES of a file from the start of the line holding its first non-ASCII byte, cut at a line end."""
    first = re.search(rb"[\x80-\xff]", raw)
    start = raw.rfind(b"\n", 0, first.start()) + 1 if first else 0
    sample = raw[start : start + SNIFF_BYTES]
    if len(sample) < SNIFF_BYTES:
        return sample
    end = sample.rfind(b"\n")  # a multi-byte code page's character is never cut in two at a line end
    return sample[:end] if end > len(sample) // 2 else sample


def _script(ch: str) -> str:
    """The script of a letter, from its Unicode name (LATIN, CYRILLIC, GREEK...); Chinese, Japanese, Korean: CJK."""
    word = unicodedata.name(ch, "UNKNOWN").split()[0].split("-")[0]
    return "CJK" if word in _CJK_SCRIPTS else word


def _ascii_letter(text: str, i: int) -> bool:
    """Whether text[i] exists and is an ASCII letter."""
    return 0 <= i < len(text) and text[i].isascii() and text[i].isalpha()


def _one_script(text: str) -> str | None:
    """The one script other than Latin that text decoded with a guessed code page reads in; None when implausible.

    Its non-ASCII characters must be mostly letters, nine in ten of one script, and seldom touch an ASCII letter:
    English with a few accents guessed as Cyrillic reads "cafй". A Latin reading is left to Windows-1252, which
    news in English, German or French is written in; detectors guess wildly between Latin code pages on them.
    """
    letters = [i for i, ch in enumerate(text) if not ch.isascii() and ch.isalpha()]
    others = sum(1 for ch in text if not ch.isascii()) - len(letters)
    if len(letters) < MIN_SNIFF_LETTERS or others > 0.4 * len(letters):
        return None
    script, n = Counter(_script(text[i]) for i in letters).most_common(1)[0]
    if script in ("LATIN", "HALFWIDTH") or n < 0.9 * len(letters):  # half-width katakana: Cyrillic read as Japanese
        return None
    touching = sum(1 for i in letters if _ascii_letter(text, i - 1) or _ascii_letter(text, i + 1))
    return script if touching <= 0.1 * len(letters) else None


def _guess_code_page(raw: bytes) -> str | None:
    """The code page (charset-normalizer's best plausible guess) of bytes that are not UTF-8; None: Windows-1252."""
    sample = _sniff_sample(raw)
    if len(re.findall(rb"[\x80-\xff]", sample)) < MIN_SNIFF_LETTERS:  # English with a £ or two stops here
        return None
    import charset_normalizer

    tried: list[str] = []
    for _ in range(SNIFF_ROUNDS):
        matches = list(charset_normalizer.from_bytes(sample, cp_exclusion=tried or None))
        if not matches:
            return None
        for match in matches:
            script = _one_script(str(match))
            # The detector's language model agreeing, or a CJK multi-byte code page decoding at all, is evidence.
            if script and (match.coherence > 0 or script == "CJK"):
                return match.encoding
        tried += [match.encoding for match in matches]
    return None


def _code_page_name(codec: str) -> str:
    """The usual name of a Python codec: windows-1251, koi8-r, shift_jis..."""
    return re.sub(r"^cp(125\d)$", r"windows-\1", codecs.lookup(codec).name)


def decode_bytes(raw: bytes) -> tuple[str, str]:
    """Decode file bytes: UTF-8 (BOM or not), UTF-16 (BOM or not), a detected code page, else Windows-1252."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as e:
            raise SkipFile(f"invalid UTF-16 at byte {e.start}") from None
    if b"\x00" in raw[:8192]:
        codec = _utf16_without_bom(raw[:8192])
        if codec:
            try:
                return raw.decode(codec), "utf-16"
            except UnicodeDecodeError:
                pass
        raise SkipFile("binary file (contains NUL bytes)")
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    codec = _guess_code_page(raw)
    if codec:
        try:
            return SURROGATE.sub("\ufffd", raw.decode(codec)), _code_page_name(codec)  # UTF-7 can give "\ud800"
        except (UnicodeDecodeError, LookupError):  # guessed from a sample: the rest of the file may not fit
            pass
    try:
        return raw.decode("cp1252"), "windows-1252"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1"
