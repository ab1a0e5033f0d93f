"""A fetched page as an `Article`: its main text by trafilatura, with the feed's title, source, URL and date."""

from __future__ import annotations

import codecs
import hashlib
import re
from urllib.parse import urlsplit

from ..decoding import SkipFile, decode_bytes
from ..documents import html_fields, make_article
from ..types import Article
from .feeds import Entry, iso_day
from .fetch import Fetched, FetchError

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w.:-]+)""", re.I)


def decode_page(got: Fetched) -> str:
    """A page's text: the charset its header or <meta> names, else the code page guessed as for files."""
    named = got.charset
    if not named and (m := _META_CHARSET.search(got.body[:4096])):
        named = m.group(1).decode("ascii", "replace")
    if named:
        try:
            return got.body.decode(codecs.lookup(named).name, errors="replace")
        except LookupError:
            pass
    return decode_bytes(got.body)[0]


def text_hash(text: str) -> str:
    """A hash of an article's words (case, punctuation and spacing ignored): the same story at another URL."""
    words = re.findall(r"\w+", text.lower())
    return hashlib.sha256(" ".join(words).encode()).hexdigest()


def _same_words(line: str, *titles: str) -> bool:
    """Whether a line says what one of the titles says (case, punctuation and spacing aside)."""
    words = re.findall(r"\w+", line.lower())
    return bool(words) and any(words == re.findall(r"\w+", t.lower()) for t in titles if t)


def page_article(got: Fetched, entry: Entry, source: str) -> Article:
    """The article on a fetched page, its id and url the entry's URL (stable when the page moves); title and date
    from the feed where it gives them, else from the page; source: the feed's title, else the site's name, else
    its host. A page with no text is a FetchError."""
    fields = {k: str(v or "") for k, v in html_fields(decode_page(got)).items()}
    first, _, rest = fields.get("text", "").strip().partition("\n")
    if rest.strip() and _same_words(first, fields.get("title", ""), entry.title):
        fields["text"] = rest  # the headline, kept as the title: a copy under another headline reads the same
    fields["title"] = entry.title or fields.get("title", "")
    fields["published"] = entry.published or iso_day(fields.get("published", ""))
    fields["source"] = source or fields.get("source", "") or (urlsplit(entry.url).hostname or "")
    fields["url"] = fields["id"] = entry.url
    try:
        if not fields.get("text", "").strip():
            raise SkipFile("no text found")
        return make_article(fields, entry.url, entry.url)
    except SkipFile as e:
        raise FetchError(f"{entry.url}: {e} on the page") from None
