"""RSS, Atom and sitemap parsing (lxml, no network, no entities), and telling a feed from a sitemap or a page."""

from __future__ import annotations

import datetime
import email.utils
import hashlib
import html
import re
from dataclasses import dataclass, field
from urllib.parse import urljoin

from lxml import etree
from lxml import html as lxml_html

from .fetch import Fetched, FetchError

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"
DC_DATE = "{http://purl.org/dc/elements/1.1/}date"
_DECLARED = re.compile(rb"^\s*<\?xml[^>]*encoding=", re.I)
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)\b", re.I | re.S)


@dataclass(frozen=True)
class Entry:
    """One item of a feed or sitemap: the page it links to and what the feed says about it."""

    url: str
    title: str = ""
    published: str = ""  # YYYY-MM-DD, or "" when the feed gives no date
    text: str = ""  # the feed's own text of it (content or summary), as plain text
    fingerprint: str = ""  # changes when the feed's item changes: its page is fetched again


@dataclass
class Parsed:
    """What a URL turned out to be: kind ("rss", "atom", "sitemap" or "page"), its title, entries, nested
    sitemaps."""

    kind: str
    title: str = ""
    entries: list[Entry] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)


def parse(got: Fetched) -> Parsed:
    """Tell what a response is and read its entries; broken XML is a FetchError naming the URL and where."""
    body = got.body
    if "html" in got.content_type.lower() or _HTML_START.match(body[:4096]):
        return Parsed("page")
    root = _xml(got)
    tag = etree.QName(root).localname.lower()
    if tag == "rss" or tag == "rdf":
        return _rss(root, got.url)
    if tag == "feed":
        return _atom(root, got.url)
    if tag in ("urlset", "sitemapindex"):
        return _sitemap(root, got.url)
    if tag == "html":
        return Parsed("page")
    raise FetchError(f"{got.url}: not a feed, sitemap or page (its XML starts with <{tag}>)")


def _xml(got: Fetched) -> etree._Element:
    """The parsed document: the encoding its declaration names, else the header's charset, else UTF-8."""
    body = got.body
    if got.charset and not _DECLARED.match(body[:200]) and not body.startswith((b"\xef\xbb\xbf", b"\xff\xfe")):
        try:
            body = body.decode(got.charset).encode("utf-8")
        except (LookupError, UnicodeDecodeError):
            pass
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as e:
        raise FetchError(f"{got.url}: broken XML ({e.msg or e}); fix the feed or stop following it") from None
    if root is None:
        raise FetchError(f"{got.url}: empty document")
    _inline_entities(root)
    return root


def _inline_entities(root: etree._Element) -> None:
    """Entity references the parser kept (no DTD is read) become their character where HTML names one (RSS 0.91's
    DTD declares HTML's: &eacute;, &nbsp;), else nothing; the text around them is kept."""
    for ent in list(root.iter(etree.Entity)):
        char = html.unescape(f"&{ent.name};")
        glue = ("" if char.startswith("&") else char) + (ent.tail or "")
        parent, before = ent.getparent(), ent.getprevious()
        if before is not None:
            before.tail = (before.tail or "") + glue
        else:
            parent.text = (parent.text or "") + glue
        parent.remove(ent)


def _elements(node: etree._Element) -> list[etree._Element]:
    """A node's child elements, without the comments and processing instructions among them."""
    return [c for c in node if isinstance(c.tag, str)]


def _text(node: etree._Element | None) -> str:
    """An element's text, whitespace collapsed ("" when absent)."""
    if node is None:
        return ""
    return " ".join("".join(node.itertext()).split())


def plain(markup: str) -> str:
    """Text of an HTML fragment (a feed's summary), tags dropped, paragraphs kept apart."""
    if "<" not in markup:
        return markup.strip()
    try:
        tree = lxml_html.fragment_fromstring(markup, create_parent="div")
    except (etree.ParserError, ValueError):
        return markup.strip()
    for bad in tree.xpath(".//script|.//style"):
        bad.drop_tree()
    for block in tree.xpath(".//p|.//br|.//div|.//li"):
        block.tail = "\n" + (block.tail or "")
    return "\n".join(" ".join(line.split()) for line in tree.text_content().splitlines() if line.strip())


def iso_day(value: str) -> str:
    """A feed's date (RFC 822 in RSS, ISO 8601 in Atom and sitemaps) as YYYY-MM-DD; "" when it is not one."""
    value = value.strip()
    if not value:
        return ""
    try:
        return email.utils.parsedate_to_datetime(value).date().isoformat()
    except (TypeError, ValueError, IndexError):
        pass
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        m = re.match(r"(\d{4}-\d{2}-\d{2})", value)
        return m.group(1) if m else ""


def _entry(base: str, link: str, title: str, date: str, text: str) -> Entry | None:
    """An entry with an absolute link, or None when it has no link."""
    if not link.strip():
        return None
    url = urljoin(base, link.strip()).split("#")[0]
    mark = hashlib.sha256(f"{title}\n{date}\n{text}".encode()).hexdigest()
    return Entry(url, title, iso_day(date), text, mark)


def _rss(root: etree._Element, url: str) -> Parsed:
    """RSS 2.0 (and RSS 1.0/RDF): each item's link (or permalink guid), title, date and text."""
    channel = next((n for n in root.iter(etree.Element) if etree.QName(n).localname == "channel"), root)
    title = next((_text(n) for n in _elements(channel) if etree.QName(n).localname == "title"), "")
    out = Parsed("rss", title)
    for item in (n for n in root.iter(etree.Element) if etree.QName(n).localname == "item"):
        fields: dict[str, str] = {}
        for child in _elements(item):
            name = etree.QName(child).localname
            if child.tag == CONTENT:
                fields["content"] = child.text or ""
            elif child.tag == DC_DATE:
                fields.setdefault("date", _text(child))
            elif name in ("title", "link", "description", "pubDate") and name not in fields:
                fields[name] = child.text or "" if name == "description" else _text(child)
            elif name == "guid" and child.get("isPermaLink", "true") != "false":
                fields["guid"] = _text(child)
        link = fields.get("link") or fields.get("guid", "")
        body = plain(fields.get("content") or fields.get("description", ""))
        date = fields.get("pubDate") or fields.get("date", "")
        if entry := _entry(url, link, fields.get("title", ""), date, body):
            out.entries.append(entry)
    return out


def _atom(root: etree._Element, url: str) -> Parsed:
    """Atom: each entry's alternate link, title, published (else updated) date and content (else summary)."""
    out = Parsed("atom", _text(root.find(f"{ATOM}title")))
    for item in root.iter(f"{ATOM}entry"):
        links = item.findall(f"{ATOM}link")
        link = next((x.get("href", "") for x in links if x.get("rel", "alternate") == "alternate"), "")
        date = _text(item.find(f"{ATOM}published")) or _text(item.find(f"{ATOM}updated"))
        body = item.find(f"{ATOM}content")
        if body is None:
            body = item.find(f"{ATOM}summary")
        text = ""
        if body is not None:
            text = plain(body.text or "") if body.get("type") in ("html", None) else _text(body)
        if entry := _entry(url, link, _text(item.find(f"{ATOM}title")), date, text):
            out.entries.append(entry)
    return out


def _sitemap(root: etree._Element, url: str) -> Parsed:
    """A sitemap's page URLs with their lastmod (the fingerprint), or a sitemap index's sitemaps."""
    out = Parsed("sitemap")
    for node in root:
        if not isinstance(node.tag, str):
            continue
        loc = next((_text(c) for c in _elements(node) if etree.QName(c).localname == "loc"), "")
        mod = next((_text(c) for c in _elements(node) if etree.QName(c).localname == "lastmod"), "")
        if not loc:
            continue
        if etree.QName(node).localname == "sitemap":
            out.sitemaps.append(urljoin(url, loc))
        elif entry := _entry(url, loc, "", mod, ""):
            out.entries.append(Entry(entry.url, published="", fingerprint=mod or "-"))
    return out
