"""A real HTTP server on loopback for the follow tests: routes set by the test, requests counted."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MB = 1_000_000


@dataclass
class Route:
    """What the server answers at one path."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    stream: Callable[[BaseHTTPRequestHandler], None] | None = None  # writes the whole answer itself


@dataclass
class Site:
    """The routes a test serves, and what the server saw."""

    url: str = ""
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[float, str, dict[str, str]]] = field(default_factory=list)  # (time, path, headers)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def page(self, path: str, body: str | bytes, kind: str = "text/html; charset=utf-8", **headers: str) -> None:
        """Serve a body at a path (ETag and Last-Modified from `headers` make it answer conditionals with 304)."""
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = Route(
            data, headers={"Content-Type": kind, **{k.replace("_", "-"): v for k, v in headers.items()}}
        )

    def hits(self, path: str) -> list[dict[str, str]]:
        """The headers of every request for a path."""
        with self.lock:
            return [h for _, p, h in self.requests if p == path]


def trickle(handler: BaseHTTPRequestHandler) -> None:
    """Headers, then one byte every 50 ms for a minute: a page that never finishes."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html")
    handler.end_headers()
    with contextlib.suppress(OSError):
        for _ in range(1200):
            handler.wfile.write(b"a")
            handler.wfile.flush()
            time.sleep(0.05)


def huge(handler: BaseHTTPRequestHandler, size: int = 50 * MB) -> None:
    """A 50 MB page, sent until the reader stops reading."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html")
    handler.end_headers()  # no Content-Length: the limit must be kept while reading
    chunk = b"<p>" + b"word " * 20_000 + b"</p>\n"
    with contextlib.suppress(OSError):
        sent = 0
        while sent < size:
            handler.wfile.write(chunk)
            sent += len(chunk)


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            with site.lock:
                site.requests.append((time.monotonic(), self.path, dict(self.headers.items())))
            route = site.routes.get(self.path)
            if route is None:
                self._send(404, b"not here", {"Content-Type": "text/plain"})
            elif route.stream is not None:
                self.close_connection = True
                route.stream(self)
            elif route.status == 200 and self._fresh(route):
                self._send(304, b"", {"ETag": route.headers.get("ETag", "")})
            else:
                self._send(route.status, route.body, route.headers)

        def _fresh(self, route: Route) -> bool:
            etag = route.headers.get("ETag")
            modified = route.headers.get("Last-Modified")
            return bool(
                (etag and self.headers.get("If-None-Match") == etag)
                or (modified and self.headers.get("If-Modified-Since") == modified)
            )

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for k, v in headers.items():
                if v:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 304:
                with contextlib.suppress(OSError):
                    self.wfile.write(body)

    return Handler


class _Quiet(ThreadingHTTPServer):
    """A threading server that does not print a client's dropped connection (the fetcher stops reading on purpose)."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass


@contextlib.contextmanager
def serving() -> Iterator[Site]:
    """A site on 127.0.0.1 at a free port, in a thread, for the length of the block."""
    site = Site()
    server = _Quiet(("127.0.0.1", 0), _handler(site))
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


def article_page(title: str, body: str, date: str = "", site_name: str = "") -> str:
    """An article page as a news site serves it: navigation, the story, a footer."""
    meta = f'<meta property="article:published_time" content="{date}">' if date else ""
    meta += f'<meta property="og:site_name" content="{site_name}">' if site_name else ""
    paragraphs = "".join(f"<p>{p}</p>" for p in body.split("\n\n"))
    return (
        f"<!doctype html><html><head><title>{title}</title>{meta}</head><body>"
        "<nav><a href='/'>Home</a> <a href='/world'>World</a></nav>"
        f"<article><h1>{title}</h1>{paragraphs}</article>"
        "<footer>Copyright the Harbour Gazette</footer></body></html>"
    )


def rss(title: str, items: list[dict[str, str]], encoding: str = "utf-8") -> bytes:
    """An RSS 2.0 feed; each item's title, link, pubDate (when given) and description."""
    from xml.sax.saxutils import escape

    parts = []
    for it in items:
        date = f"<pubDate>{it['date']}</pubDate>" if it.get("date") else ""
        parts.append(
            f"<item><title>{escape(it['title'])}</title><link>{it['link']}</link>{date}"
            f"<description>{escape(it.get('summary', ''))}</description></item>"
        )
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel><title>{escape(title)}</title>'
        f"<link>http://example.org/</link>{''.join(parts)}</channel></rss>"
    )
    return text.encode(encoding)


def atom(title: str, entries: list[dict[str, str]]) -> bytes:
    """An Atom feed; each entry's title, alternate link and published date."""
    from xml.sax.saxutils import escape

    parts = "".join(
        f"<entry><title>{escape(e['title'])}</title><link rel='alternate' href='{e['link']}'/>"
        f"<id>{e['link']}</id><published>{e['date']}</published><summary>{escape(e.get('summary', ''))}</summary>"
        "</entry>"
        for e in entries
    )
    return (
        f"<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom'><title>{escape(title)}"
        f"</title><id>urn:x</id>{parts}</feed>"
    ).encode()


def sitemap(urls: list[tuple[str, str]]) -> bytes:
    """A sitemap of (loc, lastmod)."""
    rows = "".join(f"<url><loc>{u}</loc><lastmod>{m}</lastmod></url>" for u, m in urls)
    return (
        f"<?xml version='1.0' encoding='UTF-8'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>{rows}"
        "</urlset>"
    ).encode()
