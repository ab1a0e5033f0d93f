"""A polite HTTP client: robots.txt, a per-host delay, conditional requests, and limits on size, time and redirects."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from .. import __version__
from ..documents import MB
from ..types import AssistantError

USER_AGENT = f"news-assistant/{__version__} (+offline archive tool)"
ROBOTS_AGENT = "news-assistant"  # the name robots.txt rules are matched against
MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
SCHEMES = ("http", "https")
ENCODINGS = {"gzip": 47, "x-gzip": 47, "deflate": 47}  # what is asked for; zlib's wbits: a gzip or zlib header


class FetchError(AssistantError):
    """A URL that could not be fetched; one line naming it and why."""


@dataclass
class Fetched:
    """A response: its final URL, status, body and validators; `not_modified` for a 304 answer to a conditional
    request (then the body is empty)."""

    url: str
    status: int
    body: bytes = b""
    content_type: str = ""
    etag: str = ""
    last_modified: str = ""
    not_modified: bool = False

    @property
    def charset(self) -> str:
        """The charset the Content-Type header names ("" when none)."""
        for part in self.content_type.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset":
                return value.strip().strip('"').lower()
        return ""


def check_url(url: str) -> str:
    """The URL when it is http or https with a host, else a FetchError saying only those are followed."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port out of range raises here, not in the middle of a request
    except ValueError as e:
        raise FetchError(f"{url}: not a URL that can be fetched ({e})") from None
    if parts.scheme.lower() not in SCHEMES or not parts.hostname:
        raise FetchError(f"{url}: only http and https URLs are followed (not {parts.scheme or 'a bare path'}://)")
    return url


def inside(url: str) -> bool:
    """Whether a URL's host is, or resolves to, an address of this machine or of a private network (loopback,
    private, link-local, reserved): where a page on the internet must not send the follower."""
    host = urlsplit(url).hostname or ""
    try:
        found = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False  # not resolvable: the request fails on its own
    for *_, address in found:
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_unspecified:
            return True
    return False


def host_of(url: str) -> str:
    """'scheme://host:port' of a URL: the unit of robots.txt and of the per-host delay."""
    p = urlsplit(url)
    return f"{p.scheme.lower()}://{(p.hostname or '').lower()}{f':{p.port}' if p.port else ''}"


@dataclass
class Fetcher:
    """Fetches http(s) URLs politely and within limits; every failure is a FetchError of one line.

    `refusal(url)` (robots.txt) is asked before every request, redirects included: a reason not to fetch, or None;
    `delay(url)` gives the seconds to keep between two requests to its host. Without `inside_ok` (a followed
    target on the internet) no request goes to this machine or its private network, whatever a feed, a sitemap or a
    redirect names: a hostile feed cannot have the follower read and index pages only this network can see.
    """

    max_bytes: int = 5 * MB
    timeout: float = 30.0
    delay: Callable[[str], float] = lambda url: 0.0
    refusal: Callable[[str], str | None] | None = None
    inside_ok: bool = True
    _last: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        read = min(self.timeout, max(1.0, self.timeout / 4))  # a silent server is noticed well before the deadline
        self.client = httpx.Client(
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": ", ".join(ENCODINGS)},
            timeout=httpx.Timeout(self.timeout, read=read),
            follow_redirects=False,
        )

    def get(self, url: str, etag: str = "", last_modified: str = "", max_bytes: int | None = None) -> Fetched:
        """GET a URL, following up to MAX_REDIRECTS redirects (a loop is an error); conditional when given the
        validators of an earlier answer, so that 304 means nothing to do."""
        seen: list[str] = []
        while True:
            check_url(url)
            if url in seen:
                raise FetchError(f"{seen[0]}: redirect loop ({' -> '.join([*seen, url])})")
            if len(seen) > MAX_REDIRECTS:
                raise FetchError(f"{seen[0]}: more than {MAX_REDIRECTS} redirects")
            seen.append(url)
            if not self.inside_ok and inside(url):
                raise FetchError(f"{url}: refused: a followed site on the internet may not lead into this network")
            if self.refusal is not None and (why := self.refusal(url)):
                raise FetchError(f"{url}: {why}")
            headers = {}
            if etag:
                headers["If-None-Match"] = etag
            if last_modified:
                headers["If-Modified-Since"] = last_modified
            got = self._request(url, headers, self.max_bytes if max_bytes is None else max_bytes)
            if isinstance(got, str):  # a redirect: where to
                url = got
                continue
            return got

    def _request(self, url: str, headers: dict[str, str], max_bytes: int) -> Fetched | str:
        """One request, within the size and time limits: the response, or the URL a redirect points to."""
        self._wait(url)
        started = time.monotonic()
        try:
            request = self.client.build_request("GET", url, headers=headers)
            try:
                r = self.client.send(request, stream=True)
            except (httpx.InvalidURL, ValueError) as e:  # httpx parses a redirect's Location even when not following it
                why = f"{str(e)[:120]}; only http and https URLs are followed"
                raise FetchError(f"{url}: redirects to a URL that cannot be fetched ({why})") from None
            with contextlib.closing(r):
                if r.status_code in REDIRECTS and "location" in r.headers:
                    return urljoin(url, r.headers["location"])
                common = {
                    "url": url,
                    "status": r.status_code,
                    "content_type": r.headers.get("content-type", ""),
                    "etag": r.headers.get("etag", ""),
                    "last_modified": r.headers.get("last-modified", ""),
                }
                if r.status_code == 304:
                    return Fetched(**common, not_modified=True)
                if r.status_code >= 400:
                    raise FetchError(f"{url}: HTTP {r.status_code} {r.reason_phrase}".rstrip())
                return Fetched(**common, body=self._body(url, r, max_bytes, started))
        except httpx.TimeoutException:
            raise FetchError(f"{url}: no answer within {self.timeout:g} s (follow.timeout)") from None
        except httpx.HTTPError as e:
            raise FetchError(f"{url}: {type(e).__name__}: {str(e)[:200] or 'connection failed'}") from None
        finally:
            with self._lock:
                self._last[host_of(url)] = time.monotonic()

    def _body(self, url: str, r: httpx.Response, max_bytes: int, started: float) -> bytes:
        """The body, read no further than `max_bytes` and no longer than the time limit from `started`."""
        too_big = f"{url}: over the {max_bytes / MB:g} MB limit (follow.max_page_mb); not read further"
        length = r.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_bytes:
            raise FetchError(too_big)
        decode = _decoder(url, r.headers.get("content-encoding", ""))
        body = bytearray()
        for chunk in r.iter_raw():
            body += decode(chunk, max_bytes + 1 - len(body))  # a compressed bomb never expands past the limit
            if len(body) > max_bytes:
                raise FetchError(too_big)
            if time.monotonic() - started > self.timeout:
                raise FetchError(f"{url}: not finished after {self.timeout:g} s (follow.timeout); cut off")
        return bytes(body)

    def _wait(self, url: str) -> None:
        """Sleep until this host's delay since its last request has passed."""
        host = host_of(url)
        with self._lock:
            last = self._last.get(host)
        if last is not None:
            pause = last + self.delay(url) - time.monotonic()
            if pause > 0:
                time.sleep(pause)

    def close(self) -> None:
        """Close the connections."""
        self.client.close()


def _decoder(url: str, encoding: str) -> Callable[[bytes, int], bytes]:
    """A function decoding a body's next raw chunk into at most `room` bytes (more output than that stays unread):
    none for an uncompressed body, zlib for gzip and deflate (the encodings asked for); any other is a FetchError."""
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return lambda chunk, room: chunk
    if name not in ENCODINGS:
        asked = ", ".join(ENCODINGS)
        raise FetchError(f"{url}: sent in the content encoding '{encoding[:40]}', which was not asked for ({asked})")
    state = {"inflate": zlib.decompressobj(ENCODINGS[name]), "first": True}

    def decode(chunk: bytes, room: int) -> bytes:
        first, state["first"] = state["first"], False
        try:
            return state["inflate"].decompress(chunk, max(room, 1))
        except zlib.error as e:
            if name == "deflate" and first:  # a raw deflate stream without the zlib header, as some servers send
                state["inflate"] = zlib.decompressobj(-zlib.MAX_WBITS)
                return decode(chunk, room)
            raise FetchError(f"{url}: its {name} content is damaged ({e}); not read") from None

    return decode
