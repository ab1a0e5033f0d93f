"""One web target's poll: its feed, sitemap or page fetched, and each new or changed page read into an article."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..types import Article
from .extract import page_article, text_hash
from .feeds import Entry, Parsed, parse
from .fetch import Fetched, Fetcher, FetchError, inside
from .state import FollowState, SourceState, UrlState, stamp

MAX_PAGES = 100  # pages fetched for one source in one poll; the rest wait for the next poll
MAX_SITEMAPS = 20  # sitemaps of a sitemap index read in one poll


@dataclass
class Found:
    """What one target gave in a poll: its articles, the URL states to keep once they are written, and one line
    for each entry that could not be read."""

    source: SourceState
    articles: list[Article] = field(default_factory=list)
    urls: list[UrlState] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unchanged: int = 0
    failed: list[str] = field(default_factory=list)  # entries whose page could not be read


@dataclass
class Poll:
    """What this poll has taken already: the same story in two feeds is read once, the same text once."""

    urls: dict[str, str] = field(default_factory=dict)  # url -> the target that read it
    texts: dict[str, Article] = field(default_factory=dict)  # text hash -> the article read with it


def collect(target: str, fetcher: Fetcher, state: FollowState, poll: Poll) -> Found:
    """Poll one URL target; a failure of the target itself is its source's `last_error`, of one entry a note."""
    source = state.source(target)
    fetcher.inside_ok = inside(target)  # what a target on the internet names may not lead into this network
    found = Found(SourceState(target, kind=source.kind, etag=source.etag, last_modified=source.last_modified))
    try:
        got = fetcher.get(target, source.etag, source.last_modified)
        if got.not_modified:
            found.notes.append(f"{target}: not modified since the last poll")
            return found
        parsed = parse(got)
    except FetchError as e:
        found.source.last_error = str(e)
        return found
    found.source.kind, found.source.etag, found.source.last_modified = parsed.kind, got.etag, got.last_modified
    if parsed.kind == "page":
        _read(Entry(target, fingerprint=""), got, "", fetcher, state, poll, found)
        return found
    entries = parsed.entries + _nested(parsed, fetcher, found)
    fresh = [e for e in entries if _wanted(e, state, poll, found)]
    # Entries never tried first, in the feed's order, then those that failed, the longest untried first: pages that
    # always fail do not keep the ones after them waiting.
    failed = state.failures([e.url for e in fresh])
    fresh.sort(key=lambda e: failed.get(e.url, ("", 0))[0])
    if len(fresh) > MAX_PAGES:
        found.notes.append(f"{target}: {len(fresh) - MAX_PAGES} more new entries are left for the next poll")
        found.source.etag = found.source.last_modified = ""  # so that the next poll reads the feed whole, not a 304
    for entry in fresh[:MAX_PAGES]:
        _read(entry, None, parsed.title, fetcher, state, poll, found)
    return found


def _nested(parsed: Parsed, fetcher: Fetcher, found: Found) -> list[Entry]:
    """The entries of the sitemaps a sitemap index names (one level down)."""
    entries: list[Entry] = []
    for url in parsed.sitemaps[:MAX_SITEMAPS]:
        try:
            entries += parse(fetcher.get(url)).entries
        except FetchError as e:
            found.notes.append(str(e))
    return entries


def _wanted(entry: Entry, state: FollowState, poll: Poll, found: Found) -> bool:
    """Whether an entry's page is to be fetched: not read by another source in this poll, and new or changed in its
    feed since it was last read."""
    target = found.source.target
    if entry.url in poll.urls:
        if poll.urls[entry.url] != target:
            found.notes.append(f"{entry.url}: also in {poll.urls[entry.url]}; read once")
        found.unchanged += 1
        return False
    poll.urls[entry.url] = target
    known = state.url(entry.url)
    if known is not None and known.fingerprint == entry.fingerprint:
        found.unchanged += 1
        return False
    return True


def _read(
    entry: Entry, got: Fetched | None, title: str, fetcher: Fetcher, state: FollowState, poll: Poll, found: Found
) -> None:
    """Fetch an entry's page (unless `got` is it) and add its article to `found`, or a note saying why not."""
    known = state.url(entry.url) or UrlState(entry.url)
    try:
        if got is None:
            got = fetcher.get(entry.url, known.etag, known.last_modified)
        if got.not_modified:
            found.unchanged += 1
            found.urls.append(_seen(known, entry, got, known.text_hash, known.article_id))
            return
        article = page_article(got, entry, title)
    except FetchError as e:
        found.notes.append(str(e))
        found.failed.append(entry.url)
        return
    except Exception as e:  # a reader's own failure (a parser's recursion limit, ...) skips this page only
        found.notes.append(f"{entry.url}: could not be read ({type(e).__name__}: {str(e)[:200]})")
        found.failed.append(entry.url)
        return
    digest = text_hash(article.text)
    first = poll.texts.get(digest)
    same = state.same_text(digest, entry.url) if first is None else UrlState(first.url, article_id=first.id)
    if same is not None and same.article_id != article.id:
        found.notes.append(f"{entry.url}: the same text as {same.url}; not indexed twice")
        found.urls.append(_seen(known, entry, got, digest, same.article_id))
        return
    poll.texts.setdefault(digest, article)
    if not article.published:
        found.notes.append(f"{entry.url}: no date in the feed or on the page; published left empty")
    found.articles.append(article)
    found.urls.append(_seen(known, entry, got, digest, article.id))


def _seen(known: UrlState, entry: Entry, got: Fetched, digest: str, article_id: str) -> UrlState:
    """A URL's state after this fetch (validators of a 304 answer kept when it sends none)."""
    return UrlState(
        entry.url,
        got.etag or known.etag,
        got.last_modified or known.last_modified,
        digest,
        article_id,
        entry.fingerprint,
        stamp(),
    )
